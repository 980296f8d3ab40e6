"""Parsers for every file a run leaves in its results directory.

Each parser is strict: a malformed file raises :class:`DatFormatError` with one line that
names the file and the line, because a silently misread result is worse than none.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd

from nodes.metrics import SERIES_HEADER, ClientSummary, LatencyHistogram

__all__ = [
    "DatFormatError",
    "DatRow",
    "FaultEvent",
    "RangeLog",
    "read_dat",
    "read_faults",
    "fault_intervals",
    "FaultInterval",
    "read_hist",
    "read_noops",
    "read_seqnums",
    "read_series",
    "read_summary",
]

StrPath = str | os.PathLike[str]
IntArray = npt.NDArray[np.int64]

# The largest u64; the sequencer answers a count-0 request with last = counter - 1, which is
# this value while the counter is still 0 (mason-core.md 3.4). It carries no number.
_U64_MAX = 2**64 - 1


class DatFormatError(ValueError):
    """A results file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class DatRow:
    """The original client ``.dat`` line: Mops/s, latency percentiles in µs, retransmits.

    ``retx`` is ``None`` when the file has only five columns (older original runs).
    """

    mrps: float
    p50: float
    p99: float
    p999: float
    p9999: float
    retx: int | None


@dataclass(frozen=True)
class FaultEvent:
    """One line of ``faults.log``: ``unix_ms event target`` (target empty for markers)."""

    unix_ms: int
    event: str
    target: str


@dataclass(frozen=True)
class RangeLog:
    """Number ranges recorded per operation (``.seqnums``) or per noop (``.noops``).

    Row i holds, per space s, ``counts[i, s]`` numbers ending at ``lasts[i, s]``. ``reqid`` is
    ``None`` for noops. A count-0 entry carries no number; its ``last`` is normalised to -1.
    """

    nspaces: int
    unix_us: IntArray
    counts: IntArray
    lasts: IntArray
    reqid: IntArray | None = None
    group: int = -1  # noops: the proxy group that committed them (-1: not recorded)

    def __len__(self) -> int:
        return int(self.unix_us.shape[0])


def read_dat(path: StrPath) -> DatRow:
    lines = _read_lines(path)
    data = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
    if len(data) != 1:
        raise DatFormatError(f"{path}: expected exactly one line, found {len(data)}")
    lineno, line = data[0]
    fields = [f.strip() for f in line.split(",")]
    if len(fields) not in (5, 6):
        raise DatFormatError(
            f"{path}:{lineno}: expected 5 or 6 comma-separated columns, got {len(fields)}"
        )
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise DatFormatError(f"{path}:{lineno}: not numbers: {line.strip()!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise DatFormatError(f"{path}:{lineno}: non-finite value in {line.strip()!r}")
    retx: int | None = None
    if len(values) == 6:
        # The original printed the count with %f too; accept that when it is integral.
        if not values[5].is_integer() or values[5] < 0:
            raise DatFormatError(f"{path}:{lineno}: retransmits {fields[5]!r} is not a count")
        retx = int(values[5])
    return DatRow(values[0], values[1], values[2], values[3], values[4], retx)


def read_hist(path: StrPath) -> LatencyHistogram:
    try:
        return LatencyHistogram.read(path)
    except UnicodeDecodeError as e:
        raise DatFormatError(f"{path}: not text: {e.reason}") from None
    except ValueError as e:
        raise DatFormatError(str(e)) from None


def read_series(path: StrPath) -> pd.DataFrame:
    """``.series`` -> DataFrame with int64 columns ``unix_ms`` (bin start) and ``ops``."""
    lines = _read_lines(path)
    if not lines or lines[0].strip() != SERIES_HEADER:
        got = lines[0][:60] if lines else ""
        raise DatFormatError(f"{path}:1: expected header {SERIES_HEADER!r}, got {got!r}")
    ms: list[int] = []
    ops: list[int] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            if len(fields) != 2:
                raise ValueError
            t, n = int(fields[0]), int(fields[1])
        except ValueError:
            raise DatFormatError(
                f"{path}:{lineno}: expected 'unix_ms,ops' integers, got {line.strip()!r}"
            ) from None
        if n < 0:
            raise DatFormatError(f"{path}:{lineno}: negative ops {n}")
        if ms and t <= ms[-1]:
            raise DatFormatError(f"{path}:{lineno}: unix_ms not strictly ascending")
        ms.append(t)
        ops.append(n)
    return pd.DataFrame(
        {"unix_ms": np.asarray(ms, dtype=np.int64), "ops": np.asarray(ops, dtype=np.int64)}
    )


def read_summary(path: StrPath) -> ClientSummary:
    try:
        data = Path(path).read_bytes()
        return msgspec.json.decode(data, type=ClientSummary)
    except msgspec.DecodeError as e:
        # JSON summaries are written on one line, so the line is always 1.
        raise DatFormatError(f"{path}:1: {e}") from None


_SEQNUMS_HEADER = re.compile(r"#\s*client_id\s+(-?\d+)\s+spaces\s+(\d+)\s*")
_NOOPS_HEADER = re.compile(r"#\s*noops\s+spaces\s+(\d+)(?:\s+group\s+(\d+))?\s*")


def read_seqnums(path: StrPath) -> tuple[int, RangeLog]:
    """``.seqnums`` -> ``(client_id, RangeLog)``; lines ``reqid unix_us c0 l0 c1 l1 ...``."""
    header = _first_line(path)
    m = _SEQNUMS_HEADER.fullmatch(header)
    if m is None:
        raise DatFormatError(
            f"{path}:1: expected header '# client_id <id> spaces <n>', got {header[:60]!r}"
        )
    client_id, nspaces = int(m.group(1)), int(m.group(2))
    rows = _read_int_table(path, lead=2, nspaces=nspaces)
    counts, lasts = _split_ranges(path, rows, lead=2, nspaces=nspaces)
    return client_id, RangeLog(
        nspaces=nspaces,
        unix_us=np.ascontiguousarray(rows[:, 1]),
        counts=counts,
        lasts=lasts,
        reqid=np.ascontiguousarray(rows[:, 0]),
    )


def read_noops(path: StrPath) -> RangeLog:
    """``.noops`` -> RangeLog without reqids; lines ``unix_us c0 l0 c1 l1 ...``."""
    header = _first_line(path)
    m = _NOOPS_HEADER.fullmatch(header)
    if m is None:
        raise DatFormatError(f"{path}:1: expected header '# noops spaces <n>', got {header[:60]!r}")
    nspaces = int(m.group(1))
    rows = _read_int_table(path, lead=1, nspaces=nspaces)
    counts, lasts = _split_ranges(path, rows, lead=1, nspaces=nspaces)
    return RangeLog(
        nspaces=nspaces, unix_us=np.ascontiguousarray(rows[:, 0]), counts=counts, lasts=lasts,
        group=int(m.group(2)) if m.group(2) is not None else -1,
    )


def read_faults(path: StrPath) -> list[FaultEvent]:
    """``faults.log``: ``unix_ms event [target]`` per line; ``#`` comments and blanks skipped."""
    events = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) not in (2, 3):
            raise DatFormatError(
                f"{path}:{lineno}: expected 'unix_ms event [target]', got {line.strip()!r}"
            )
        try:
            unix_ms = int(fields[0])
        except ValueError:
            raise DatFormatError(
                f"{path}:{lineno}: unix_ms {fields[0]!r} is not an integer"
            ) from None
        events.append(FaultEvent(unix_ms, fields[1], fields[2] if len(fields) == 3 else ""))
    return events


# The events that end an interval fault (orchestrator/nemesis.py writes them with the target
# its start named): a pause ends with resume, a partition with heal, added latency with clear.
INTERVAL_ENDS = ("resume", "heal", "clear")


@dataclass(frozen=True)
class FaultInterval:
    """A fault that lasted: its start event and when it ended (None: still on at the end)."""

    start: FaultEvent
    end_ms: int | None


def fault_intervals(events: list[FaultEvent]) -> tuple[list[FaultInterval], list[FaultEvent]]:
    """Split a fault log into intervals (a start paired with the next end event of the same
    target) and instants (kills and other one-off events). Markers and ends are consumed."""
    intervals: list[FaultInterval] = []
    instants: list[FaultEvent] = []
    open_at: dict[str, int] = {}  # target -> index of its open interval
    for e in sorted(events, key=lambda ev: ev.unix_ms):
        if e.event in ("measure_start", "measure_end"):
            continue
        if e.event in INTERVAL_ENDS:
            i = open_at.pop(e.target, None)
            if i is not None:
                intervals[i] = FaultInterval(intervals[i].start, e.unix_ms)
            continue
        if e.event.split("_", 1)[0] in ("pause", "partition", "latency"):
            open_at[e.target] = len(intervals)
            intervals.append(FaultInterval(e, None))
        else:
            instants.append(e)
    return intervals, instants


# ---------------------------------------------------------------------------------------------
# helpers


def _read_lines(path: StrPath) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DatFormatError(f"{path}: not UTF-8 text: {e.reason}") from None


def _first_line(path: StrPath) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().rstrip("\r\n")


def _read_int_table(path: StrPath, lead: int, nspaces: int) -> IntArray:
    """All data lines (after the header) as an int64 matrix of ``lead + 2*nspaces`` columns.

    Runs can hold millions of lines, so numpy's C parser reads the file; only when it refuses
    (a malformed line, or a u64 ``last`` beyond int64 in a count-0 space) does the slow
    line-by-line reader run, which finds the line to name or converts the u64 value.
    """
    ncols = lead + 2 * nspaces
    try:
        with warnings.catch_warnings():
            # An empty body is legal (no operations); numpy warns about it.
            warnings.simplefilter("ignore", UserWarning)
            rows = np.loadtxt(
                path, dtype=np.int64, comments="#", skiprows=1, ndmin=2, encoding="utf-8"
            )
    except (ValueError, OverflowError):
        return _read_int_table_slow(path, lead, nspaces)
    if rows.size == 0:
        return np.zeros((0, ncols), dtype=np.int64)
    if rows.shape[1] != ncols:
        return _read_int_table_slow(path, lead, nspaces)
    return rows


def _read_int_table_slow(path: StrPath, lead: int, nspaces: int) -> IntArray:
    ncols = lead + 2 * nspaces
    out: list[list[int]] = []
    for lineno, line in enumerate(_read_lines(path)[1:], start=2):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != ncols:
            raise DatFormatError(
                f"{path}:{lineno}: expected {ncols} columns for {nspaces} spaces, got {len(fields)}"
            )
        try:
            values = [int(f) for f in fields]
        except ValueError:
            raise DatFormatError(f"{path}:{lineno}: not integers: {line.strip()[:80]!r}") from None
        for s in range(nspaces):
            c, last = values[lead + 2 * s], values[lead + 2 * s + 1]
            if c == 0 and last == _U64_MAX:
                values[lead + 2 * s + 1] = -1
        if any(not -(2**63) <= v < 2**63 for v in values):
            raise DatFormatError(f"{path}:{lineno}: value out of the signed 64-bit range")
        out.append(values)
    if not out:
        return np.zeros((0, ncols), dtype=np.int64)
    return np.asarray(out, dtype=np.int64)


def _split_ranges(
    path: StrPath, rows: IntArray, lead: int, nspaces: int
) -> tuple[IntArray, IntArray]:
    counts = np.ascontiguousarray(rows[:, lead::2])
    lasts = np.ascontiguousarray(rows[:, lead + 1 :: 2])
    assert counts.shape[1] == nspaces and lasts.shape[1] == nspaces
    bad = np.flatnonzero((counts < 0).any(axis=1))
    if bad.size:
        raise DatFormatError(f"{path}:{_line_of_row(path, int(bad[0]))}: negative count")
    # A count-0 entry has no number; its last is arbitrary (see _U64_MAX), so normalise it.
    lasts[counts == 0] = -1
    return counts, lasts


def _line_of_row(path: StrPath, row: int) -> int:
    """File line number (1-based) of data row ``row`` (0-based), skipping blanks/comments."""
    seen = -1
    for lineno, line in enumerate(_read_lines(path)[1:], start=2):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        seen += 1
        if seen == row:
            return lineno
    return 0
