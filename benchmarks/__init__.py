"""Performance harnesses; each writes its figures to files under bench-results/."""
