"""Offline analysis of results directories: parsers, run summaries, the contiguity checker
and plots. Reads files only; never needs the cluster, never imports the orchestrator.

Submodules are imported on demand (``analysis.plots`` pulls in matplotlib, which the
parsers and the checker do not need).
"""
