"""Run summaries: aggregate throughput and exact latency percentiles over all clients.

The original ``parse_datfiles.sh`` summed the clients' throughputs and *averaged* their
percentiles, which is not a percentile of anything. Every client process here also writes
its exact latency histogram, so a run's percentiles come from the merge of all of them;
the old mean is kept beside them (``mean_of_percentiles``) for comparison with old results.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analysis.datfiles import DatFormatError, read_dat, read_hist, read_summary
from analysis.runfiles import run_files
from nodes.metrics import PERCENTILES, LatencyHistogram, format_dat

__all__ = [
    "ClientFiles",
    "RunSummary",
    "client_files",
    "format_parse_line",
    "merge_machine_dats",
    "parse_results",
    "summarize_run",
]

StrPath = str | os.PathLike[str]

# Per-process client files are client-<machine>-<thread>.* (in clients/, analysis.runfiles);
# merge_machine_dats adds client-<machine>.dat, which must then not be counted a second time.
_PROCESS_NAME = re.compile(r"client-(\d+)-(\d+)")
_MACHINE_NAME = re.compile(r"client-(\d+)")
_RESULT_EXTS = ("dat", "hist", "summary.json", "series", "seqnums")


@dataclass
class ClientFiles:
    """The result files of one client (a process, or a machine in original results)."""

    name: str
    dat: Path | None = None
    hist: Path | None = None
    summary: Path | None = None
    series: Path | None = None
    seqnums: Path | None = None

    @property
    def is_process(self) -> bool:
        return _PROCESS_NAME.fullmatch(self.name) is not None


@dataclass
class RunSummary:
    """One run: what ``masonctl parse`` prints and what plots are drawn from.

    ``throughput_ops`` is the sum over clients of each client's measured rate (ops/s).
    The percentiles (µs) are exact (from the merged histograms) when ``exact_percentiles``;
    runs without histograms (original results) fall back to the mean over ``.dat`` files.
    """

    run_dir: str
    clients: int
    throughput_ops: float
    p50_us: float
    p99_us: float
    p999_us: float
    p9999_us: float
    exact_percentiles: bool
    samples: int
    retransmits: int
    redirects: int
    unanswered: int
    window_s: float | None
    mean_of_percentiles: tuple[float, float, float, float] | None
    dat_throughput_ops: float | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def client_files(run_dir: StrPath) -> list[ClientFiles]:
    """Group a run directory's client result files by client name, sorted by name."""
    groups: dict[str, ClientFiles] = {}
    for path in run_files(run_dir, "*.*"):
        name, ext = path.name.split(".", 1)
        if ext not in _RESULT_EXTS:
            continue
        entry = groups.setdefault(name, ClientFiles(name))
        setattr(entry, ext.replace(".json", ""), path)
    # Keep only clients: a group with a throughput or latency file (.seqnums alone is not a
    # result, and proxies' .noops never match the extensions above).
    clients = {n: g for n, g in groups.items() if g.dat or g.hist or g.summary}
    process_machines = {
        m.group(1) for n in clients if (m := _PROCESS_NAME.fullmatch(n)) is not None
    }
    for name in list(clients):
        m = _MACHINE_NAME.fullmatch(name)
        if m is not None and m.group(1) in process_machines:
            del clients[name]  # a machine merge of processes that are counted themselves
    return [clients[n] for n in sorted(clients, key=_natural_key)]


def summarize_run(run_dir: StrPath) -> RunSummary:
    run_dir = Path(run_dir)
    clients = client_files(run_dir)
    if not clients:
        raise FileNotFoundError(f"{run_dir}: no client results (*.dat, *.hist, *.summary.json)")

    notes: list[str] = []
    throughput = 0.0
    retransmits = redirects = unanswered = 0
    windows: list[float] = []
    merged = LatencyHistogram()
    with_hist = 0
    dat_rows = []
    for c in clients:
        dat = read_dat(c.dat) if c.dat else None
        if dat is not None:
            dat_rows.append(dat)
        if c.summary is not None:
            s = read_summary(c.summary)
            window = s.window_seconds
            if window > 0:
                throughput += s.ops_measured / window
                windows.append(window)
            elif s.ops_measured:
                raise DatFormatError(f"{c.summary}:1: {s.ops_measured} ops in an empty window")
            retransmits += s.retransmits
            redirects += s.redirects
            unanswered += s.unanswered
        elif dat is not None:
            throughput += dat.mrps * 1e6
            retransmits += dat.retx or 0
        else:
            raise DatFormatError(f"{c.hist}: no .summary.json or .dat beside this histogram")
        if c.hist is not None:
            merged.merge(read_hist(c.hist))
            with_hist += 1

    mean = None
    if dat_rows:
        n = len(dat_rows)
        mean = (
            sum(r.p50 for r in dat_rows) / n,
            sum(r.p99 for r in dat_rows) / n,
            sum(r.p999 for r in dat_rows) / n,
            sum(r.p9999 for r in dat_rows) / n,
        )
    exact = with_hist == len(clients)
    if with_hist:
        p50, p99, p999, p9999 = merged.percentiles(PERCENTILES)
        if not exact:
            notes.append(f"only {with_hist} of {len(clients)} clients have a .hist")
    elif mean is not None:
        p50, p99, p999, p9999 = mean
        notes.append("no .hist files: percentiles are the mean over .dat files")
    else:
        p50 = p99 = p999 = p9999 = 0.0

    return RunSummary(
        run_dir=str(run_dir),
        clients=len(clients),
        throughput_ops=throughput,
        p50_us=p50,
        p99_us=p99,
        p999_us=p999,
        p9999_us=p9999,
        exact_percentiles=exact,
        samples=merged.count,
        retransmits=retransmits,
        redirects=redirects,
        unanswered=unanswered,
        window_s=sum(windows) / len(windows) if windows else None,
        mean_of_percentiles=mean,
        dat_throughput_ops=sum(r.mrps for r in dat_rows) * 1e6 if dat_rows else None,
        notes=notes,
    )


def merge_machine_dats(run_dir: StrPath) -> list[Path]:
    """Write ``client-<m>.dat`` per client machine m, merging its ``client-<m>-<t>`` files.

    The original launcher produced one ``.dat`` per client machine; writing the same file
    keeps its scripts working. Unlike the original (the mean over threads of one second's
    percentiles), the line is exact: throughput is the sum of the processes' measured rates
    and the percentiles come from their merged histograms over the whole window.
    """
    run_dir = Path(run_dir)
    machines: defaultdict[int, list[ClientFiles]] = defaultdict(list)
    for c in client_files(run_dir):
        m = _PROCESS_NAME.fullmatch(c.name)
        if m is not None:
            machines[int(m.group(1))].append(c)
    written = []
    for machine, procs in sorted(machines.items()):
        hist = LatencyHistogram()
        rate = 0.0
        retx = 0
        for c in procs:
            if c.hist is None:
                raise DatFormatError(f"{c.name}.hist: missing in {run_dir}, cannot merge exactly")
            hist.merge(read_hist(c.hist))
            if c.summary is not None:
                s = read_summary(c.summary)
                if s.window_seconds > 0:
                    rate += s.ops_measured / s.window_seconds
                retx += s.retransmits
            elif c.dat is not None:
                d = read_dat(c.dat)
                rate += d.mrps * 1e6
                retx += d.retx or 0
        out = run_dir / f"client-{machine}.dat"
        out.write_text(format_dat(rate / 1e6, hist, retx), encoding="utf-8")
        written.append(out)
    return written


def parse_results(root: StrPath) -> list[tuple[Path, RunSummary]]:
    """Summaries of every run directory at or below ``root`` (a directory with *.dat files),
    in natural order of their paths (``run-2`` before ``run-10``)."""
    run_dirs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if any(f.endswith(".dat") for f in filenames):
            run_dirs.append(Path(dirpath))
    run_dirs.sort(key=lambda p: _natural_key(str(p)))
    return [(d, summarize_run(d)) for d in run_dirs]


def format_parse_line(summary: RunSummary) -> str:
    """``aggregate-throughput p50 p99 p99.9 p99.99``, the columns of the original
    ``parse_datfiles.sh`` (throughput in Mops/s, latencies in µs), but exact percentiles."""
    values = (
        summary.throughput_ops / 1e6,
        summary.p50_us,
        summary.p99_us,
        summary.p999_us,
        summary.p9999_us,
    )
    return " ".join(f"{v:f}" for v in values)


def _natural_key(text: str) -> list[Any]:
    # Sort numbered names as numbers (client-2 before client-10), text as text.
    parts = re.split(r"(\d+)", text)
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]
