"""The recovery figure's second measure: per space, the highest contiguous number over time.

At each moment h(t) is the largest number such that every number 0..h had been handed out
(to an answered operation or to a noop) by t: the paper's recovery figure, which shows the
frontier stall while a failed proxy leader or sequencer is replaced and resume after it.
The input is a run's own records (``*.seqnums`` of the clients, ``*.noops`` of the proxies);
the original derived the same from per-number client logs (mason-core.md 6.4).

``recovery_data_<space>.dat`` keeps the original script's file shape, so gnuplot files
written for it still read ours: a header ``,time,highest_num``, then one row per 1 ms bin
holding records, ``"(lo, hi]",time,highest_num``, where ``time`` is the latest record of the
bin and ``highest_num`` the frontier then, both counted from the clients' start (microseconds
since the warm-up began, as the original's clients counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.datfiles import (
    DatFormatError,
    IntArray,
    RangeLog,
    StrPath,
    read_faults,
    read_noops,
    read_seqnums,
)
from analysis.runfiles import run_files

BIN_US = 1000  # the original's bins: 1 ms of client time
DAT_HEADER = ",time,highest_num"


@dataclass(frozen=True)
class Frontier:
    """One space's contiguous frontier as a step function.

    ``rise_us[i]`` (ascending) is when the frontier reached ``highest[i]`` (ascending);
    before ``rise_us[0]`` it is -1 (no number yet). ``record_us`` holds the time of every
    record that carried a number in this space, sorted: the moments the original sampled.
    """

    space: int
    rise_us: IntArray
    highest: IntArray
    record_us: IntArray

    def at(self, unix_us: IntArray) -> IntArray:
        """The frontier at each of the given times (-1 before the first rise)."""
        if self.highest.size == 0:
            return np.full(np.shape(unix_us), -1, np.int64)
        i = np.searchsorted(self.rise_us, unix_us, side="right") - 1
        return np.where(i >= 0, self.highest[np.maximum(i, 0)], -1).astype(np.int64)


@dataclass(frozen=True)
class FrontierBins:
    """The frontier sampled per bin with records, as ``recovery_data_<space>.dat`` holds it.
    Times are microseconds since ``t0_us``; bin k is ``(k * width, (k + 1) * width]``."""

    space: int
    lo_us: IntArray
    time_us: IntArray
    highest: IntArray
    width_us: int


def frontier(space: int, unix_us: IntArray, firsts: IntArray, lasts: IntArray) -> Frontier:
    """The frontier of one space from its ranges ``firsts..lasts`` received at ``unix_us``.

    Sorted by first number, the prefix 0..E_j (E the running maximum of the range ends) is
    complete once every range up to j has arrived, i.e. at the running maximum of their
    times; a range starting above E_{j-1} + 1 is a hole and the prefix stops there. The same
    range recorded twice (a repeated answer, a noop re-sent by a new leader) counts from its
    first arrival. O(n log n), whatever the counts.
    """
    record_us = np.sort(unix_us.astype(np.int64))
    if firsts.size == 0:
        empty = np.zeros(0, np.int64)
        return Frontier(space, empty, empty, record_us)
    order = np.lexsort((unix_us, lasts, firsts))
    f, last, t = firsts[order], lasts[order], unix_us[order]
    repeat = np.zeros(f.size, bool)
    repeat[1:] = (f[1:] == f[:-1]) & (last[1:] == last[:-1])
    f, last, t = f[~repeat], last[~repeat], t[~repeat]
    ends = np.maximum.accumulate(last)
    reachable = np.ones(f.size, bool)
    reachable[0] = f[0] == 0
    reachable[1:] = f[1:] <= ends[:-1] + 1
    stop = f.size if reachable.all() else int(np.argmin(reachable))
    ends, done = ends[:stop], np.maximum.accumulate(t[:stop])
    # One step per distinct completion time: the highest end complete by then.
    last_of_time = np.flatnonzero(np.append(done[1:] != done[:-1], True))
    return Frontier(space, done[last_of_time].astype(np.int64),
                    ends[last_of_time].astype(np.int64), record_us)


def run_frontiers(run_dir: StrPath) -> list[Frontier]:
    """Every space's frontier from a run's ``*.seqnums`` and ``*.noops``; DatFormatError
    when there are no number records or a file is malformed."""
    run_dir = Path(run_dir)
    logs: list[RangeLog] = [read_seqnums(p)[1] for p in run_files(run_dir, "*.seqnums")]
    if not logs:
        raise DatFormatError(f"{run_dir}: no *.seqnums files (run with --record-seqnums)")
    logs += [read_noops(p) for p in run_files(run_dir, "*.noops")]
    nspaces = {log.nspaces for log in logs}
    if len(nspaces) != 1:
        raise DatFormatError(f"{run_dir}: records disagree on the number of spaces: "
                             f"{sorted(nspaces)}")
    out = []
    for space in range(nspaces.pop()):
        times, firsts, lasts = [], [], []
        for log in logs:
            has = log.counts[:, space] > 0
            times.append(log.unix_us[has])
            lasts.append(log.lasts[has, space])
            firsts.append(log.lasts[has, space] - log.counts[has, space] + 1)
        out.append(frontier(space, np.concatenate(times), np.concatenate(firsts),
                            np.concatenate(lasts)))
    return out


def bin_frontier(front: Frontier, t0_us: int, width_us: int = BIN_US) -> FrontierBins:
    """Per bin of ``width_us`` that holds records: the latest record time and the frontier
    then (the original's per-bin maximum of both columns)."""
    rel = front.record_us - t0_us
    if rel.size == 0:
        empty = np.zeros(0, np.int64)
        return FrontierBins(front.space, empty, empty, empty, width_us)
    # Right-closed bins, as pandas.cut made them: t in (k * w, (k + 1) * w].
    k = -((-rel) // width_us) - 1
    last_in_bin = np.append(k[1:] != k[:-1], True)
    times = rel[last_in_bin]
    return FrontierBins(front.space, k[last_in_bin] * width_us, times,
                        front.at(times + t0_us), width_us)


def write_recovery_dat(path: StrPath, bins: FrontierBins) -> Path:
    rows = [DAT_HEADER]
    for lo, t, h in zip(bins.lo_us.tolist(), bins.time_us.tolist(), bins.highest.tolist(),
                        strict=True):
        rows.append(f'"({lo}, {lo + bins.width_us}]",{t},{h}')
    path = Path(path)
    path.write_text("\n".join(rows) + "\n")
    return path


def clients_start_us(run_dir: StrPath, fronts: list[Frontier]) -> int:
    """When the clients' warm-up began: ``measure_start`` of ``faults.log`` less the warm-up
    of ``experiment.toml``, or the first record when that is earlier (the controller marks
    the window from its own clock, a little after the clients began) or either is missing:
    times in the data files are never negative, as the original's."""
    run_dir = Path(run_dir)
    faults = run_dir / "faults.log"
    starts = [e.unix_ms for e in read_faults(faults) if e.event == "measure_start"] \
        if faults.exists() else []
    warmup = _recorded_warmup(run_dir / "experiment.toml")
    firsts = [int(f.record_us[0]) for f in fronts if f.record_us.size]
    if starts and warmup is not None:
        firsts.append(starts[0] * 1000 - round(warmup * 1e6))
    return min(firsts, default=0)


def write_recovery_dats(run_dir: StrPath, out_dir: StrPath,
                        fronts: list[Frontier] | None = None) -> list[Path]:
    """``recovery_data_<space>.dat`` for every space of a run, into ``out_dir``."""
    fronts = run_frontiers(run_dir) if fronts is None else fronts
    t0 = clients_start_us(run_dir, fronts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [write_recovery_dat(out / f"recovery_data_{f.space}.dat", bin_frontier(f, t0))
            for f in fronts]


def _recorded_warmup(path: Path) -> float | None:
    import msgspec.toml

    try:
        warmup = msgspec.toml.decode(path.read_bytes())["experiment"]["warmup"]
    except (OSError, msgspec.DecodeError, KeyError, TypeError):
        return None
    return float(warmup) if isinstance(warmup, int | float) else None
