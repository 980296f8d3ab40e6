"""Where a run's files lie in its results directory: the orchestrator writes by it, every
reader finds files through it.

At the top, where the original launcher left them: one ``client-<m>.dat`` per client
machine (the only ``*.dat`` files anywhere below the run, so scripts that count every
``.dat`` below a run directory, as ``parse_datfiles.sh`` did, read what they expect), the
other roles' files, ``experiment.toml`` and ``faults.log``. Each client process's files
(``client-<m>-<t>.*``: config, log, histogram, series, summary, recorded numbers or
history) are in ``clients/``. Runs written before that split hold everything at the top, so
readers look in both places.

`masonctl plot recovery` writes the original's ``recovery_data_<space>.dat`` beside the
run, in ``recovery-<run>/`` (`recovery_dir`): inside it they would count as client files,
and a ``results-*`` name would make them a run of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CLIENTS_DIR", "recovery_dir", "run_files", "subdir_for"]

CLIENTS_DIR = "clients"


def subdir_for(is_client: bool) -> str:
    """The folder of a run (relative to it) that a process of this kind writes into."""
    return CLIENTS_DIR if is_client else ""


def run_files(run_dir: str | os.PathLike[str], pattern: str) -> list[Path]:
    """Files of a run matching a glob ``pattern``, at its top and in ``clients/``, sorted by
    file name."""
    run_dir = Path(run_dir)
    found = [*run_dir.glob(pattern), *(run_dir / CLIENTS_DIR).glob(pattern)]
    return sorted((p for p in found if p.is_file()), key=lambda p: (p.name, str(p)))


def recovery_dir(run_dir: str | os.PathLike[str]) -> Path:
    """Where a run's ``recovery_data_<space>.dat`` files go: beside the run, not in it."""
    run_dir = Path(run_dir)
    return run_dir.parent / f"recovery-{run_dir.name}"
