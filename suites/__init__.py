"""Suite definitions as data: one TOML file per system (``mason.toml``, ``recovery.toml``),
and ``suites.loader``, which reads and checks a file's shape. The orchestrator expands a
suite into runs (orchestrator/sweep.py); nothing here imports the orchestrator.

Adding a system's sweep is adding a file here; nothing in the code names a system's loops.
"""

from suites.loader import SuiteError, SuiteFile, find_suite, list_suites, load_suite

__all__ = ["SuiteError", "SuiteFile", "find_suite", "list_suites", "load_suite"]
