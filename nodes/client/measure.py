"""What every closed-loop client measures, and the files it leaves: shared by all clients.

Warm-up, then the measured window, then cool-down; latency in microseconds from an
operation's first transmission to its answer over the whole window (an exact histogram),
completions per bin for the time series (appended to `.series` twice a second, so a run
can be watched), and at the end the histogram, the rest of the series and the summary. The
original's one-line `.dat` is written per client machine, from these, by the orchestrator
(analysis.aggregate.merge_machine_dats): a `.dat` per process beside it would be counted
twice by scripts that sum every `.dat` of a run, as the original's did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Protocol

from nodes import runtime
from nodes.metrics import (
    ClientSummary,
    LatencyHistogram,
    SeriesFile,
    ThroughputSeries,
    write_summary,
)

log = logging.getLogger("mason.client")

# How often the bins that are over go to the .series file: the live line of `masonctl run`
# shows the last second, so half a second keeps it at most that late.
SERIES_APPEND_S = 0.5


class Timeline(Protocol):
    name: str
    outdir: str
    client_id: int
    warmup_s: float
    duration_s: float
    cooldown_s: float
    series_bin_ms: int


async def phase(stop: runtime.Stop, seconds: float) -> bool:
    """Wait out one phase; True when a stop was requested."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True


class Measurement:
    def __init__(self, conf: Timeline) -> None:
        self.conf = conf
        self.hist = LatencyHistogram()
        self.series = ThroughputSeries(conf.series_bin_ms)
        self.measuring = False
        self.ops_total = 0
        self.ops_measured = 0
        self.window: list[int] = [0, 0]  # unix ms of the measured window
        self.elapsed = 0.0
        self.series_file = SeriesFile(Path(conf.outdir) / f"{conf.name}.series")
        self.appender: asyncio.Task[None] | None = None

    def done(self, first_ns: int, n: int = 1) -> int:
        """`n` operations sent together at `first_ns` answered; returns the wall-clock time
        (ns) they were recorded at."""
        now_ns = time.time_ns()
        self.ops_total += n
        self.series.record(now_ns, n)
        if self.measuring:
            self.ops_measured += n
            self.hist.record((time.perf_counter_ns() - first_ns) // 1000, n)
        return now_ns

    async def append_series(self) -> None:
        """Until write(): the bins that are over go to the .series file."""
        while True:
            await asyncio.sleep(SERIES_APPEND_S)
            self.series_file.append(self.series.take(time.time_ns()))

    async def timeline(self, stop: runtime.Stop) -> None:
        """Warm-up, measured window, cool-down (each cut short by a stop request)."""
        conf = self.conf
        self.appender = asyncio.get_running_loop().create_task(self.append_series())
        if await phase(stop, conf.warmup_s):
            return
        self.measuring = True
        self.window[0] = time.time_ns() // 1_000_000
        t0 = time.perf_counter()
        stopped = await phase(stop, conf.duration_s)
        self.elapsed = time.perf_counter() - t0
        self.window[1] = time.time_ns() // 1_000_000
        self.measuring = False
        if not stopped:
            await phase(stop, conf.cooldown_s)

    def write(self, *, retransmits: int, redirects: int, unanswered: int,
              read_misses: int = 0, refused: int = 0, recorded: int = -1) -> None:
        conf = self.conf
        out = Path(conf.outdir)
        elapsed = self.elapsed
        self.hist.write(out / f"{conf.name}.hist")
        if self.appender is not None:
            self.appender.cancel()
        self.series_file.append(self.series.take())
        self.series_file.close()
        write_summary(
            out / f"{conf.name}.summary.json",
            ClientSummary(
                name=conf.name,
                client_id=conf.client_id,
                ops_total=self.ops_total,
                ops_measured=self.ops_measured,
                window_start_unix_ms=self.window[0],
                window_end_unix_ms=self.window[1],
                retransmits=retransmits,
                redirects=redirects,
                unanswered=unanswered,
                read_misses=read_misses,
                refused=refused,
                recorded=recorded,
            ),
        )
        log.info(
            "done: %d ops measured in %.2f s (%.0f ops/s), p50 %.0f us, p99 %.0f us, "
            "%d retransmits, %d redirects, %d unanswered, %d read misses",
            self.ops_measured, elapsed, self.ops_measured / elapsed if elapsed else 0.0,
            self.hist.percentile(0.5), self.hist.percentile(0.99), retransmits,
            redirects, unanswered, read_misses,
        )
