"""The plain Corfu client: positions from the sequencer, then its own chain writes and reads."""
