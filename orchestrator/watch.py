"""The live line of `masonctl run`: elapsed time, the throughput of the last second and the
faults injected so far.

Throughput comes from the clients' `.series` files, which each client appends to twice a
second while it runs (nodes/metrics.py writes and parses the rows): every file is followed
from where the previous read stopped, so a poll reads only what is new, locally or over
SFTP. "The last second" is the second before the earliest moment that every client has
written out, so a client that is half a second behind does not make the rate dip.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from nodes.metrics import parse_series_rows
from orchestrator.hosts import Host

WINDOW_MS = 1000
REFRESH_S = 0.5  # how often the files are read: the clients append twice a second
PLAIN_EVERY_S = 1.0  # one plain line a second when the output is not a terminal


@dataclass
class SeriesFollower:
    """One client's `.series` file, read a piece at a time as it grows."""

    host: Host
    path: str
    offset: int = 0
    covered_ms: int | None = None  # the end of the last bin read (unix ms)
    bin_ms: int = 0  # known from two rows in a row
    partial: bytes = b""

    def poll(self) -> list[tuple[int, int]]:
        """The rows appended since the last poll (a line still being written waits)."""
        data = self.host.read_from(self.path, self.offset)
        self.offset += len(data)
        text, _, self.partial = (self.partial + data).rpartition(b"\n")
        rows = parse_series_rows(text.decode("ascii", errors="replace"))
        if len(rows) >= 2:
            self.bin_ms = rows[-1][0] - rows[-2][0]
        if rows:
            self.covered_ms = rows[-1][0] + self.bin_ms
        return rows


@dataclass
class Throughput:
    """Completions per bin start summed over every client, and the last second's rate."""

    followers: list[SeriesFollower]
    bins: defaultdict[int, int] = field(default_factory=lambda: defaultdict(int))
    broken: str = ""  # why the files cannot be read (a row that is not one)

    def update(self) -> None:
        if self.broken:
            return
        for follower in self.followers:
            try:
                rows = follower.poll()
            except ValueError as exc:
                self.broken = f"{follower.path}: {exc}"
                return
            for ms, ops in rows:
                self.bins[ms] += ops

    def last_second(self) -> float | None:
        """Operations per second over the last second every client has written out; None
        until every client has written a bin."""
        covered = [f.covered_ms for f in self.followers]
        if self.broken or not covered or None in covered:
            return None
        end = min(c for c in covered if c is not None)
        start = end - WINDOW_MS
        for ms in [ms for ms in self.bins if ms < start - WINDOW_MS]:
            del self.bins[ms]  # keep only what a later window may still need
        return sum(n for ms, n in self.bins.items() if start <= ms < end) * 1000.0 / WINDOW_MS


def describe(elapsed: float, phase: str, rate: float | None, faults: Sequence[str]) -> str:
    """The live line's text: `12.0 s measuring | 41,234 ops/s | 1 fault (kill_leader)`."""
    shown = "- ops/s" if rate is None else f"{rate:,.0f} ops/s"
    count = f"{len(faults)} fault{'' if len(faults) == 1 else 's'}"
    if faults:
        count += f" (last: {faults[-1]})"
    return f"{elapsed:5.1f} s {phase} | {shown} | {count}"


class LiveLine:
    """Reads the clients' files every REFRESH_S and keeps the line's text; when the output is
    not a terminal it also says whether a plain line is due (one a second)."""

    def __init__(self, clients: list[tuple[Host, str]], started: float) -> None:
        self.throughput = Throughput([SeriesFollower(h, p) for h, p in clients])
        self.started = started
        self.read_at = float("-inf")
        self.printed_at = started
        self.rate: float | None = None

    def text(self, now: float, phase: str, faults: Sequence[str]) -> str:
        if now - self.read_at >= REFRESH_S:
            self.read_at = now
            self.throughput.update()
            self.rate = self.throughput.last_second()
        return describe(now - self.started, phase, self.rate, faults)

    def plain_due(self, now: float) -> bool:
        if now - self.printed_at < PLAIN_EVERY_S:
            return False
        self.printed_at = now
        return True
