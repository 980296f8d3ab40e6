"""Measurement recording for node processes, and the writers of every measurement file.

Node machines carry only msgspec and uvloop, so this module uses nothing else outside the
standard library. ``analysis`` imports it for the shared percentile maths and file formats,
which keeps the writer and the reader of each format in one place.

Files a client process writes into its results directory (``client-<m>-<t>.*``):

* ``.hist``  exact latency histogram, ``# latency_us count`` then ``us count`` ascending;
* ``.series`` CSV ``unix_ms,ops``: completions per fixed bin, zero bins included, appended
  while the client runs (the live line of ``masonctl run`` follows it);
* ``.summary.json`` a :class:`ClientSummary`;
* ``.seqnums`` one line per answered operation (with ``--record-seqnums``).

The original one-line ``.dat`` (``mrps,p50,p99,p999,p9999,retx``, C ``%f``, retx integer) is
written per client machine from those files (``format_dat``), as the original launcher had it.

Proxies write ``<proxyname>.noops`` with the numbers consumed by committed noops.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, TypeVar

import msgspec

__all__ = [
    "HIST_HEADER",
    "PERCENTILES",
    "SERIES_HEADER",
    "ClientSummary",
    "LatencyHistogram",
    "NoopRecorder",
    "SeqnumRecorder",
    "SeriesFile",
    "ThroughputSeries",
    "format_dat",
    "format_series_row",
    "nearest_rank",
    "parse_series_rows",
    "write_dat",
    "write_summary",
]

PERCENTILES: tuple[float, ...] = (0.5, 0.99, 0.999, 0.9999)

HIST_HEADER = "# latency_us count"
SERIES_HEADER = "unix_ms,ops"

StrPath = str | os.PathLike[str]


def nearest_rank(p: float, count: int) -> int:
    """The 1-based rank of the nearest-rank ``p``-percentile among ``count`` samples.

    ``ceil(p * count)``, clamped to at least 1. The product is taken on the decimal value of
    ``p`` (``0.99`` means 99/100, not the binary double just above it), so that 99 % of 100
    samples is rank 99 and never rank 100 because of a rounding error.
    """
    _check_percentile(p)
    # str(float(p)) is the shortest decimal that round-trips, also for numpy scalars.
    return max(1, math.ceil(Fraction(str(float(p))) * count))


def _check_percentile(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"percentile must lie in [0, 1], got {p!r}")


class LatencyHistogram:
    """Exact latency histogram: integer microseconds -> count (dict), no saturation, no bins.

    The original used eRPC's binned histogram, which saturates at about 1.3 ms: useless for
    failure experiments, where latencies of seconds are the point. A dict keyed by the exact
    microsecond value stays small (latencies cluster) and merges exactly.
    """

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: defaultdict[int, int] = defaultdict(int)

    def record(self, us: int, n: int = 1) -> None:
        """`n` operations took `us` (a run answered at once)."""
        # Hot path (tens of thousands of calls per second per process): one dict update.
        self._counts[us] += n

    def merge(self, other: LatencyHistogram) -> None:
        counts = self._counts
        for us, n in other._counts.items():
            counts[us] += n

    @property
    def count(self) -> int:
        return sum(self._counts.values())

    def items(self) -> list[tuple[int, int]]:
        """``(us, count)`` pairs, ascending by latency, zero counts omitted."""
        return sorted((us, n) for us, n in self._counts.items() if n)

    def percentile(self, p: float) -> float:
        """Nearest rank: the smallest recorded value v such that at least ceil(p*count)
        samples are <= v; 0.0 when the histogram is empty."""
        return self.percentiles((p,))[0]

    def percentiles(self, ps: Sequence[float] = PERCENTILES) -> list[float]:
        """:meth:`percentile` for each of ``ps``, with one sort of the histogram."""
        pairs = self.items()
        total = sum(n for _, n in pairs)
        if total == 0:
            for p in ps:
                _check_percentile(p)  # still reject an out-of-range p
            return [0.0 for _ in ps]
        out = []
        for p in ps:
            rank = nearest_rank(p, total)
            seen = 0
            for us, n in pairs:
                seen += n
                if seen >= rank:
                    out.append(float(us))
                    break
        return out

    def clear(self) -> None:
        self._counts.clear()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        return self.items() == other.items()

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, distinct={len(self.items())})"

    def write(self, path: StrPath) -> None:
        lines = [HIST_HEADER]
        lines.extend(f"{us} {n}" for us, n in self.items())
        _write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def read(cls, path: StrPath) -> LatencyHistogram:
        """Parse a ``.hist`` file; ``ValueError`` naming the file and line when malformed."""
        hist = cls()
        counts = hist._counts
        with open(path, encoding="utf-8") as f:
            first = f.readline()
            if first.strip() != HIST_HEADER:
                raise ValueError(f"{path}:1: expected header {HIST_HEADER!r}, got {first[:60]!r}")
            previous = -1
            for lineno, line in enumerate(f, start=2):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2:
                    raise ValueError(f"{path}:{lineno}: expected 'us count', got {line.strip()!r}")
                try:
                    us, n = int(fields[0]), int(fields[1])
                except ValueError:
                    raise ValueError(
                        f"{path}:{lineno}: not two integers: {line.strip()!r}"
                    ) from None
                if us < 0 or n <= 0:
                    raise ValueError(
                        f"{path}:{lineno}: latency must be >= 0 and count > 0: {line.strip()!r}"
                    )
                if us <= previous:
                    raise ValueError(f"{path}:{lineno}: latencies not strictly ascending")
                previous = us
                counts[us] = n
        return hist


class ThroughputSeries:
    """Completed operations per fixed bin of wall-clock time (default 10 ms), for
    throughput-over-time and recovery plots, and for the live line of a run.

    A running client appends the bins that are over to its ``.series`` file as it goes
    (:meth:`take` hands each bin out once), so the file grows while the run is watched and
    at the end holds every bin from the first, zero bins included."""

    __slots__ = ("bin_ms", "_bin_ns", "_bins", "_taken")

    def __init__(self, bin_ms: int = 10) -> None:
        if bin_ms <= 0:
            raise ValueError(f"bin_ms must be positive, got {bin_ms}")
        self.bin_ms = bin_ms
        self._bin_ns = bin_ms * 1_000_000
        self._bins: defaultdict[int, int] = defaultdict(int)
        self._taken: int | None = None  # the first bin index not yet handed out

    def record(self, now_ns: int, n: int = 1) -> None:
        # Hot path: now_ns = time.time_ns(); the key is the bin index.
        self._bins[now_ns // self._bin_ns] += n

    @property
    def total(self) -> int:
        return sum(self._bins.values())

    def rows(self) -> list[tuple[int, int]]:
        """``(unix_ms of the bin start, ops)`` from the first to the last bin, zeros included."""
        if not self._bins:
            return []
        return self._rows(min(self._bins), max(self._bins) + 1)

    def _rows(self, first: int, end: int) -> list[tuple[int, int]]:
        bins = self._bins
        return [(b * self.bin_ms, bins.get(b, 0)) for b in range(first, end)]

    def take(self, before_ns: int | None = None) -> list[tuple[int, int]]:
        """The rows not handed out yet, up to the bin that holds ``before_ns`` (that bin is
        still filling, so it is left out), or to the last bin when None. Each take goes on
        where the previous one stopped, zeros included."""
        if not self._bins:
            return []
        first = min(self._bins) if self._taken is None else self._taken
        end = max(self._bins) + 1 if before_ns is None else before_ns // self._bin_ns
        if end <= first:
            return []
        self._taken = end
        return self._rows(first, end)

    def write(self, path: StrPath) -> None:
        lines = [SERIES_HEADER]
        lines.extend(format_series_row(ms, n) for ms, n in self.rows())
        _write_text(path, "\n".join(lines) + "\n")


def format_series_row(unix_ms: int, ops: int) -> str:
    return f"{unix_ms},{ops}"


def parse_series_rows(text: str) -> list[tuple[int, int]]:
    """The ``unix_ms,ops`` rows of whole lines of a ``.series`` file (the header skipped);
    ValueError names the first line that is not one."""
    rows = []
    for line in text.splitlines():
        if not line or line == SERIES_HEADER:
            continue
        ms, sep, ops = line.partition(",")
        if not sep or not ms.isdigit() or not ops.isdigit():
            raise ValueError(f"not a 'unix_ms,ops' row: {line[:40]!r}")
        rows.append((int(ms), int(ops)))
    return rows


def format_dat(mrps: float, hist: LatencyHistogram, retransmits: int) -> str:
    """The original client ``.dat`` line (with newline): ``mrps,p50,p99,p999,p9999,retx``.

    C ``%f`` for the rate and the latencies so that the original scripts read it unchanged;
    the retransmission count is a count, so it is printed as an integer.
    """
    # Python's "f" presentation type is C's %f: six decimals, no exponent.
    lat = ",".join(f"{v:f}" for v in hist.percentiles(PERCENTILES))
    return f"{mrps:f},{lat},{int(retransmits):d}\n"


def write_dat(
    path: StrPath, ops: int, seconds: float, hist: LatencyHistogram, retransmits: int
) -> None:
    """Write the one-line ``.dat`` for ``ops`` completions in ``seconds`` (whole window).

    A client that never reached its measured window reports 0 Mops/s rather than failing:
    the file must exist so that a run's results are complete.
    """
    mrps = ops / seconds / 1e6 if seconds > 0 else 0.0
    _write_text(path, format_dat(mrps, hist, retransmits))


class ClientSummary(msgspec.Struct, forbid_unknown_fields=True):
    """What one client process reports about its run (``<name>.summary.json``)."""

    name: str
    client_id: int
    ops_total: int
    ops_measured: int
    window_start_unix_ms: int
    window_end_unix_ms: int
    retransmits: int
    redirects: int
    unanswered: int
    read_misses: int = 0  # log reads answered with no entry (unwritten, trimmed, ...)
    refused: int = 0  # operations the service refused
    recorded: int = -1  # lines written to <name>.seqnums (-1: not recording)

    @property
    def window_seconds(self) -> float:
        return (self.window_end_unix_ms - self.window_start_unix_ms) / 1000.0


def write_summary(path: StrPath, s: ClientSummary) -> None:
    write_atomic(path, msgspec.json.encode(s) + b"\n")


_F = TypeVar("_F", bound="BufferedFile")


class BufferedFile:
    """A record file kept open for the life of its writer, through a large write buffer;
    close() (or the with-block) releases it."""

    def __init__(self, path: StrPath, binary: bool = False) -> None:
        self.path = Path(path)
        self._f: IO[Any] | None = (open(self.path, "wb", buffering=1 << 20) if binary else
                                   open(self.path, "w", encoding="ascii", buffering=1 << 20))

    def _file(self) -> IO[Any]:
        if self._f is None:
            raise ValueError(f"{self.path}: recorder is closed")
        return self._f

    def flush(self, fsync: bool = False) -> None:
        """Push buffered lines to the OS; with ``fsync`` also to the disk (the original
        fsync'ed once per second so that a killed client still leaves its numbers)."""
        if self._f is None:
            return
        self._f.flush()
        if fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self: _F) -> _F:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SeriesFile(BufferedFile):
    """A ``.series`` file written as the run goes: the header, then rows appended and pushed
    to the OS at once, so a reader following the file sees every bin that is over."""

    def __init__(self, path: StrPath) -> None:
        super().__init__(path)
        self._file().write(SERIES_HEADER + "\n")
        self.flush()

    def append(self, rows: Sequence[tuple[int, int]]) -> None:
        if rows:
            self._file().write("".join(format_series_row(ms, n) + "\n" for ms, n in rows))
            self.flush()


class _RangeRecorder(BufferedFile):
    """Shared buffered line writer for per-operation number ranges.

    Each range is written as ``count last``: the range is ``[last-count+1, last]`` and count 0
    means no number in that space. Lines go through a large write buffer; the hot path only
    formats a string.
    """

    def __init__(self, path: StrPath, header: str, nspaces: int) -> None:
        if nspaces <= 0:
            raise ValueError(f"nspaces must be positive, got {nspaces}")
        super().__init__(path)
        self.nspaces = nspaces
        self._file().write(header + "\n")
        self.lines = 0  # records written: the summary says how many, the checker compares

    def _check(self, counts: Sequence[int], lasts: Sequence[int]) -> None:
        if len(counts) != self.nspaces or len(lasts) != self.nspaces:
            raise ValueError(
                f"expected {self.nspaces} counts and lasts, got {len(counts)} and {len(lasts)}"
            )

    def _line(self, head: str, counts: Sequence[int], lasts: Sequence[int]) -> None:
        self._check(counts, lasts)
        f = self._file()
        parts = [head]
        for c, last in zip(counts, lasts, strict=True):
            parts.append(f"{c} {last}")
        f.write(" ".join(parts) + "\n")
        self.lines += 1


class SeqnumRecorder(_RangeRecorder):
    """Appends one line per operation result: for the contiguity/FIFO checker.

    Header ``# client_id <id> spaces <n>``; lines ``reqid unix_us c0 l0 c1 l1 ...``.
    Buffered; call :meth:`flush` and :meth:`close`.
    """

    def __init__(self, path: StrPath, client_id: int, nspaces: int) -> None:
        super().__init__(path, f"# client_id {client_id} spaces {nspaces}", nspaces)

    def record(self, reqid: int, unix_us: int, counts: Sequence[int], lasts: Sequence[int]) -> None:
        self._line(f"{reqid} {unix_us}", counts, lasts)

    def record_run(self, reqid: int, unix_us: int, counts: Sequence[int],
                   lasts: Sequence[int], nops: int) -> None:
        """One line per operation of a run answered at `unix_us` whose highest numbers are
        `lasts` (operation k owns the range ending at lasts[i] - (nops - 1 - k) * counts[i]),
        written in one go."""
        self._check(counts, lasts)
        firsts = [last - (nops - 1) * count for count, last in zip(counts, lasts, strict=True)]
        pairs = list(zip(counts, firsts, strict=True))
        self._file().write("".join(
            f"{reqid + k} {unix_us} " + " ".join(f"{c} {f + k * c}" for c, f in pairs) + "\n"
            for k in range(nops)))
        self.lines += nops


class NoopRecorder(_RangeRecorder):
    """Numbers consumed by committed noops: header ``# noops spaces <n> group <g>``, lines
    ``unix_us c0 l0 c1 l1 ...``. Every replica of a group records the group's noops, so the
    group tells the checker which identical lines are one noop seen twice and which are
    two commits."""

    def __init__(self, path: StrPath, nspaces: int, group: int = -1) -> None:
        tail = f" group {group}" if group >= 0 else ""
        super().__init__(path, f"# noops spaces {nspaces}{tail}", nspaces)

    def record(self, unix_us: int, counts: Sequence[int], lasts: Sequence[int]) -> None:
        self._line(str(unix_us), counts, lasts)


def _write_text(path: StrPath, text: str) -> None:
    write_atomic(path, text.encode())  # str.encode is UTF-8 whatever the locale


def write_atomic(path: StrPath, data: bytes) -> None:
    # Write beside the target and rename, so that a reader (or a collector copying the results
    # directory while the process exits) never sees a half-written file.
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, target)
