"""A suite's results as two tidy CSV files, and the frames its figures are drawn from.

A suite directory (``<results>/<suite>/``) holds one directory per run, named
``<point>-t<trial>``; a run is complete when the runner has written its ``done`` marker.
``suite.csv`` has one row per complete run: the run's experiment parameters (from its
``experiment.toml``) and its summary (aggregate throughput, exact merged percentiles).
``suite_medians.csv`` has one row per point: the median over trials of the throughput and
of each percentile, as the paper reported, and how many trials it had.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec
import msgspec.toml
import pandas as pd

from analysis.aggregate import format_parse_line, summarize_run
from analysis.datfiles import DatFormatError

__all__ = [
    "DONE",
    "FAILED",
    "METRICS",
    "SUITE_RECORD",
    "SuiteTableError",
    "find_suite_dirs",
    "is_suite_dir",
    "latency_curves",
    "parse_lines",
    "peak_throughput",
    "point_medians",
    "run_dirs",
    "suite_figures",
    "suite_runs",
    "suite_table",
    "write_suite_csvs",
]

StrPath = str | os.PathLike[str]

DONE = "done"  # marker: the run finished and every client's results are there
FAILED = "failed"  # marker: the run measured but its verdict failed; kept as evidence
SUITE_RECORD = "suite.toml"  # what the runner expanded: suite, variant, scale, overrides
METRICS = ("throughput_ops", "p50_us", "p99_us", "p999_us", "p9999_us")
_RUN_NAME = re.compile(r"(?P<point>.+)-t(?P<trial>[0-9]+)")
# Parameters that say nothing about the point (the interpreter's path) stay out of the CSV.
_SKIP_PARAMS = ("name", "python")


class SuiteTableError(ValueError):
    """A suite directory that cannot be tabulated; the message is one line."""


def is_suite_dir(path: StrPath) -> bool:
    path = Path(path)
    if (path / SUITE_RECORD).is_file():
        return True
    return path.is_dir() and any((child / DONE).is_file() for child in path.iterdir()
                                 if _RUN_NAME.fullmatch(child.name))


def find_suite_dirs(root: StrPath) -> list[Path]:
    """``root`` itself when it is a suite directory, else every suite directory below it."""
    root = Path(root)
    if is_suite_dir(root):
        return [root]
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        if is_suite_dir(dirpath):
            found.append(Path(dirpath))
            dirnames[:] = []  # runs below a suite are not suites
    return found


def suite_runs(suite_dir: StrPath) -> list[Path]:
    """The complete runs of a suite (``<point>-t<k>`` with a ``done`` marker), sorted by
    point (numbers as numbers: c2 before c16) and trial."""
    runs = [p for p in Path(suite_dir).iterdir()
            if p.is_dir() and _RUN_NAME.fullmatch(p.name) and (p / DONE).is_file()]
    return sorted(runs, key=lambda p: _natural_key(p.name))


def suite_table(suite_dir: StrPath) -> pd.DataFrame:
    """One row per complete run: point, trial, run, parameters, then the summary."""
    rows = []
    for run in suite_runs(suite_dir):
        match = _RUN_NAME.fullmatch(run.name)
        assert match is not None  # suite_runs keeps only matching names
        summary = summarize_run(run)
        row: dict[str, Any] = {
            "point": match["point"],
            "trial": int(match["trial"]),
            "run": run.name,
        }
        row.update(_params(run))
        if "nproxies" in row:
            row["triples"] = int(row["nproxies"]) // 3
        row.update({m: float(getattr(summary, m)) for m in METRICS})
        row["exact_percentiles"] = summary.exact_percentiles
        row["clients"] = summary.clients
        row["samples"] = summary.samples
        rows.append(row)
    return pd.DataFrame(rows)


def point_medians(table: pd.DataFrame) -> pd.DataFrame:
    """Per point: its parameters, the median over trials of every metric, the trial count.

    With an even number of trials the median is the mean of the middle two, as usual.
    """
    if table.empty:
        return pd.DataFrame(columns=["point", "trials", *METRICS])
    per_run = {"point", "trial", "run", "exact_percentiles", "clients", "samples", *METRICS}
    params = [c for c in table.columns if c not in per_run]
    grouped = table.groupby("point", sort=False)
    # The parameters are the same in every trial of a point: take the first trial's.
    out = grouped[params].first() if params else pd.DataFrame(index=grouped.size().index)
    out.insert(0, "trials", grouped.size())
    for metric in METRICS:
        out[metric] = grouped[metric].median()
    return out.reset_index()


def write_suite_csvs(suite_dir: StrPath) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    """Write ``suite.csv`` and ``suite_medians.csv`` into the suite directory."""
    suite_dir = Path(suite_dir)
    try:
        table = suite_table(suite_dir)
    except (DatFormatError, FileNotFoundError, ValueError) as exc:
        raise SuiteTableError(str(exc)) from None
    medians = point_medians(table)
    runs_csv, medians_csv = suite_dir / "suite.csv", suite_dir / "suite_medians.csv"
    table.to_csv(runs_csv, index=False)
    medians.to_csv(medians_csv, index=False, float_format="%.6g")
    return runs_csv, medians_csv, table, medians


def run_dirs(root: StrPath) -> list[Path]:
    """Every run directory at or below ``root`` (one holding ``*.dat`` files), naturally
    sorted, leaving out a suite's unfinished runs (no marker: interrupted or in progress)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        path = Path(dirpath)
        if not any(f.endswith(".dat") for f in filenames):
            continue
        unfinished = not ((path / DONE).is_file() or (path / FAILED).is_file())
        if unfinished and _RUN_NAME.fullmatch(path.name) and is_suite_dir(path.parent):
            continue
        found.append(path)
    return sorted(found, key=lambda p: _natural_key(str(p)))


def parse_lines(root: StrPath) -> tuple[list[str], list[str]]:
    """``<run> aggregate-throughput p50 p99 p99.9 p99.99`` per run (Mops/s, µs), and one
    error line per run that cannot be read (the others are still printed)."""
    root = Path(root)
    lines, errors = [], []
    for run in run_dirs(root):
        label = str(run.relative_to(root)) if run != root else run.name
        try:
            lines.append(f"{label} {format_parse_line(summarize_run(run))}")
        except (DatFormatError, FileNotFoundError, ValueError) as exc:
            errors.append(str(exc))
    return lines, errors


# ---- frames for the figures ------------------------------------------------------------------


def latency_curves(medians: pd.DataFrame, with_spaces: bool = True) -> pd.DataFrame:
    """The medians with a ``config`` label per curve: everything but the client load.

    Mason's points differ in spaces, triples and load; one curve is one (spaces, triples)
    pair swept over the load, labelled e.g. ``2 spaces, 4 triples (32 groups)``.
    """
    df = medians.copy()
    labels = [_config_label(row, with_spaces) for row in df.to_dict("records")]
    # Ordered by the numbers in them (2 triples before 16), not alphabetically: the plot
    # groups by this column with sort=True, which follows a categorical's order.
    order = sorted(set(labels), key=_natural_key)
    df["config"] = pd.Categorical(labels, categories=order, ordered=True)
    return df


def peak_throughput(medians: pd.DataFrame) -> pd.DataFrame:
    """Per (spaces, triples): the highest median throughput over the client loads, the
    number the scaling figure plots, with the load that reached it."""
    need = {"nsequence_spaces", "triples", "throughput_ops", "client_concurrency"}
    missing = need - set(medians.columns)
    if missing:
        raise ValueError(f"missing columns: {sorted(missing)}")
    best = medians.loc[medians.groupby(["nsequence_spaces", "triples"])["throughput_ops"]
                       .idxmax()]
    cols = ["nsequence_spaces", "triples", "client_concurrency", "throughput_ops"]
    return best[cols].sort_values(["nsequence_spaces", "triples"]).reset_index(drop=True)


def _config_label(row: dict[str, Any], with_spaces: bool) -> str:
    parts = []
    if with_spaces and "nsequence_spaces" in row:
        n = int(row["nsequence_spaces"])
        parts.append(f"{n} space{'s' if n != 1 else ''}")
    if "triples" in row:
        t = int(row["triples"])
        label = f"{t} triple{'s' if t != 1 else ''}"
        if "nproxy_leaders" in row:
            g = int(row["nproxy_leaders"])
            label += f" ({g} group{'s' if g != 1 else ''})"
        parts.append(label)
    return ", ".join(parts) or str(row.get("point", ""))


def _params(run: Path) -> dict[str, Any]:
    path = run / "experiment.toml"
    try:
        doc = msgspec.toml.decode(path.read_bytes())
    except OSError as exc:
        raise SuiteTableError(f"{path}: cannot read: {exc.strerror}") from None
    except msgspec.DecodeError as exc:
        raise SuiteTableError(f"{path}: {exc}") from None
    experiment = doc.get("experiment") if isinstance(doc, dict) else None
    if not isinstance(experiment, dict):
        raise SuiteTableError(f"{path}: no [experiment] table")
    return {k: v for k, v in experiment.items()
            if k not in _SKIP_PARAMS and isinstance(v, (int, float, str, bool))}


def _natural_key(text: str) -> list[Any]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"([0-9]+)", text)]


# ---- the suite's figures ------------------------------------------------------------------

# More curves than this in one throughput-latency figure are unreadable: split per space count.
_MAX_CURVES = 8


def suite_figures(medians: pd.DataFrame, out_dir: StrPath, name: str) -> list[Path]:
    """Throughput-latency curves (one figure, or one per space count when there are many
    configurations) and peak throughput against proxy triples; PDF and PNG of each."""
    from analysis.plots import plot_scaling, plot_throughput_latency

    if medians.empty:
        raise SuiteTableError(f"{name}: no complete runs to plot")
    out = Path(out_dir)
    curves = latency_curves(medians)
    paths: list[Path] = []
    if curves["config"].nunique() <= _MAX_CURVES or "nsequence_spaces" not in curves:
        paths += plot_throughput_latency(
            curves, out / "throughput_latency",
            title=f"{name}: latency against throughput (median over trials)")
    else:
        # The space count goes into the title, so the legend names only the rest.
        curves = latency_curves(medians, with_spaces=False)
        for spaces, part in curves.groupby("nsequence_spaces", sort=True):
            n = int(spaces)
            paths += plot_throughput_latency(
                part.assign(config=part["config"].cat.remove_unused_categories()),
                out / f"throughput_latency_s{n}",
                title=f"{name}, {n} space{'s' if n != 1 else ''}: latency against throughput "
                      "(median over trials)")
    if {"nsequence_spaces", "triples", "client_concurrency"} <= set(medians.columns):
        paths += plot_scaling(
            peak_throughput(medians), out / "throughput_scaling",
            title=f"{name}: peak throughput against proxy triples")
    return paths
