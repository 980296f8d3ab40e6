"""Synthetic group leaders for the sequencer benchmark: one driver process, many leaders.

`python -m benchmarks.seq_leaders PORT FIRST_GROUP LEADERS OUTSTANDING BATCH HIST`

Each leader is what a group leader is to the sequencer (nodes/proxy/sequencer_link.py),
minus the group: its own connection, the hello (srid 0) of its term first, then srids
1, 2, 3, ... with OUTSTANDING requests in flight (closed loop), each asking for BATCH
numbers in the one space, and a `floor` that follows the answers, so the sequencer's
at-most-once table is pruned as a real group's is. Once every leader is loaded the driver
prints `loaded` and reads the measured window, `START END` in unix seconds, from stdin
(so every driver measures the same window, opened only when all are loaded). Answers that
complete in it are counted and their latencies written to the histogram file HIST.
Prints one JSON line: the requests answered in the window and the first wrong answers if
any.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from nodes import rpc, wire
from nodes.metrics import LatencyHistogram

TERM = 1
EPOCH = 1


class SridWindow:
    """A leader's srids: handed out in order; the floor is the highest srid below which
    every srid was answered (what a group settles in its log), never one still in flight."""

    __slots__ = ("next_srid", "floor", "_in_flight")

    def __init__(self) -> None:
        self.next_srid = 1
        self.floor = 0
        self._in_flight: set[int] = set()  # a handful: the leader's outstanding requests

    def issue(self) -> int:
        srid = self.next_srid
        self.next_srid = srid + 1
        self._in_flight.add(srid)
        return srid

    def answered(self, srid: int) -> None:
        in_flight = self._in_flight
        if srid not in in_flight:
            raise ValueError(f"srid {srid} is not in flight (floor {self.floor}, "
                             f"next {self.next_srid})")
        in_flight.discard(srid)
        self.floor = min(in_flight) - 1 if in_flight else self.next_srid - 1


class Window:
    """The measured interval and what completed in it, shared by a driver's leaders."""

    def __init__(self) -> None:
        self.measuring = False
        self.requests = 0
        self.hist = LatencyHistogram()
        self.errors: list[str] = []


class Leader:
    def __init__(self, conn: rpc.Conn, group: int, outstanding: int, batch: int,
                 window: Window) -> None:
        self.conn = conn
        self.group = group
        self.outstanding = outstanding
        self.counts = [batch]
        self.window = window
        self.srids = SridWindow()
        self.last = -1  # highest number handed to this leader so far
        self.loaded = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        hello = wire.SeqRequest(self.group, TERM, 0, [0], 0, EPOCH)
        self.conn.call_cb(hello, self.greeted)

    def greeted(self, reply: Any) -> None:
        if not isinstance(reply, wire.SeqReply) or reply.status != wire.SEQ_OK:
            self.fail(f"hello refused: {reply!r}")
            return
        for _ in range(self.outstanding):
            self.send()
        self.loaded.set_result(None)

    def send(self) -> None:
        srid = self.srids.issue()
        req = wire.SeqRequest(self.group, TERM, srid, self.counts, self.srids.floor, EPOCH)
        sent = time.perf_counter_ns()
        self.conn.call_cb(req, lambda reply: self.done(srid, sent, reply))

    def done(self, srid: int, sent: int, reply: Any) -> None:
        if (not isinstance(reply, wire.SeqReply) or reply.status != wire.SEQ_OK
                or reply.srid != srid or reply.retx or reply.lasts[0] <= self.last):
            self.fail(f"bad answer to srid {srid}: {reply!r}")
            return
        self.last = reply.lasts[0]
        self.srids.answered(srid)
        window = self.window
        if window.measuring:
            window.requests += 1
            window.hist.record((time.perf_counter_ns() - sent) // 1000)
        self.send()

    def fail(self, why: str) -> None:
        self.window.errors.append(f"group {self.group}: {why}")
        if not self.loaded.done():
            self.loaded.set_result(None)


async def drive(port: int, first_group: int, leaders: int, outstanding: int, batch: int,
                hist: str) -> dict[str, object]:
    window = Window()
    peers = [rpc.Peer("127.0.0.1", port, lambda c, r, m: None, name=f"leader {g}").start()
             for g in range(first_group, first_group + leaders)]
    running: list[Leader] = []
    for k, peer in enumerate(peers):
        if not await peer.wait_up(10) or peer.conn is None:
            raise SystemExit(f"error: sequencer on port {port} unreachable")
        leader = Leader(peer.conn, first_group + k, outstanding, batch, window)
        leader.start()
        running.append(leader)
    await asyncio.gather(*(leader.loaded for leader in running))
    print("loaded", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        start, end = (float(t) for t in line.split())
    except ValueError:
        raise SystemExit(f"error: expected START END on stdin, got {line[:60]!r}") from None
    await asyncio.sleep(max(0.0, start - time.time()))
    window.measuring = True
    t0 = time.time()
    await asyncio.sleep(max(0.0, end - t0))
    window.measuring = False
    measured = time.time() - t0
    for peer in peers:
        peer.stop()
    window.hist.write(hist)
    return {"requests": window.requests, "seconds": measured,
            "errors": window.errors[:5]}


def main(argv: list[str]) -> None:
    if len(argv) != 6:
        raise SystemExit(__doc__.splitlines()[2] if __doc__ else "bad arguments")
    try:
        port, first, leaders, outstanding, batch = (int(a) for a in argv[:5])
    except ValueError:
        raise SystemExit("error: PORT FIRST_GROUP LEADERS OUTSTANDING BATCH: integers") from None
    rpc.install_uvloop()
    result = asyncio.run(drive(port, first, leaders, outstanding, batch, argv[5]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
