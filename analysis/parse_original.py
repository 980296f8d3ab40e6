"""``masonctl parse --original``: the lines the original ``parse_datfiles.sh`` printed, so that
gnuplot files and scripts written for its output read ours unchanged.

Per run directory: every ``*.dat`` file below it (the original took them all, recursively;
in our layout those are exactly the per-machine ``client-<m>.dat`` files, see
analysis.runfiles), then ``aggregate-throughput p50 p99 p99.9 p99.99``: the sum of the first
column with C ``%f`` and the mean over the files of each of the next four with ``%.3f``,
space separated. After every fifth run a blank line, as the original's grouping. These are
the original's figures, means of per-machine percentiles; ``masonctl parse`` without
``--original`` prints the exact percentiles of the merged histograms.
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.datfiles import DatFormatError, read_dat
from analysis.suite_table import run_dirs

__all__ = ["RUNS_PER_BLOCK", "original_line", "original_lines"]

RUNS_PER_BLOCK = 5  # the original printed a blank line after this many runs


def original_line(run_dir: str | os.PathLike[str]) -> str:
    """One run's line; DatFormatError (one line) when a file is malformed or none exists."""
    rows = [read_dat(p) for p in sorted(Path(run_dir).rglob("*.dat")) if p.is_file()]
    if not rows:
        raise DatFormatError(f"{run_dir}: no *.dat files")
    n = len(rows)
    throughput = sum(r.mrps for r in rows)
    means = (sum(r.p50 for r in rows) / n, sum(r.p99 for r in rows) / n,
             sum(r.p999 for r in rows) / n, sum(r.p9999 for r in rows) / n)
    return " ".join([f"{throughput:f}", *(f"{m:.3f}" for m in means)])


def original_lines(root: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """The output lines for every run at or below ``root`` (blank separators included), and
    one error line per run that cannot be read (left out of the output)."""
    lines: list[str] = []
    errors: list[str] = []
    printed = 0
    for run in run_dirs(root):
        try:
            lines.append(original_line(run))
        except (DatFormatError, OSError) as exc:
            errors.append(str(exc))
            continue
        printed += 1
        if printed % RUNS_PER_BLOCK == 0:
            lines.append("")
    return lines, errors
