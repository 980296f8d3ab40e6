"""The registry of systems: `--system` names, their aliases, and one System object each.

Each system is one module here, `orchestrator/systems/<name>.py`, defining `SYSTEM` (see
`base.System` for what it says); a module is imported when its system is first asked for.
Nothing else in the code base lists systems, machine roles or process kinds: the spec, the
placement, the configs, the profiles, the suites and the CLI all ask here.
"""

from __future__ import annotations

from importlib import import_module

from orchestrator.spec import SpecError
from orchestrator.systems.base import (
    MACHINE_ROLES,
    PROCESS_KINDS,
    Counts,
    ProcessKind,
    System,
)

NAMES = ("mason", "corfu", "corfumason", "rsmkeeper", "zkmason")
ALIASES = {"master": "mason", "zk-mason": "zkmason"}

__all__ = ["ALIASES", "MACHINE_ROLES", "NAMES", "PROCESS_KINDS", "Counts", "ProcessKind",
           "System", "all_systems", "canonical", "choices", "get"]


def choices() -> str:
    """The names for a help text or an error: `mason (alias master), corfu, ...`."""
    aliases: dict[str, list[str]] = {}
    for alias, name in ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    return ", ".join(n + (f" (alias {', '.join(aliases[n])})" if n in aliases else "")
                     for n in NAMES)


def canonical(name: str) -> str:
    """The system's own name for a name or alias; SpecError (one line) for an unknown one."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in NAMES:
        raise SpecError(f"unknown system {name!r}; choose one of {choices()}")
    return key


def get(name: str) -> System:
    system: System = import_module(f"{__name__}.{canonical(name)}").SYSTEM
    return system


def all_systems() -> list[System]:
    return [get(name) for name in NAMES]
