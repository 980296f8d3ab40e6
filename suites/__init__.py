"""Suite definitions as data: one TOML file per system (``mason.toml``, ``recovery.toml``),
and the loader that expands a file into named experiment points (``suites.loader``).

Adding a system's sweep is adding a file here; nothing in the code names a system's loops.
"""

from suites.loader import (
    Capacity,
    Point,
    SuiteError,
    SuiteFile,
    expand,
    find_suite,
    list_suites,
    load_suite,
)

__all__ = [
    "Capacity",
    "Point",
    "SuiteError",
    "SuiteFile",
    "expand",
    "find_suite",
    "list_suites",
    "load_suite",
]
