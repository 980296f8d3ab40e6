"""Closed-loop load drivers and the trivial echo server used as comparison points.

`python -m benchmarks.drivers echo-server PORT`  serves mason RPC calls with an immediate Ack.
`python -m benchmarks.drivers rpc PORT C SECONDS`  drives it with C outstanding calls.
`python -m benchmarks.drivers redis PORT C SECONDS`  drives redis INCR with C outstanding
requests pipelined on one connection, like a mason client process drives its group.
Drivers print one JSON line: ops, seconds, ops_per_s, latency percentiles in us and the
measured window in unix seconds (for the CPU spent in it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque

from nodes import rpc, wire
from nodes.metrics import LatencyHistogram


def report(hist: LatencyHistogram, ops: int, seconds: float, start_unix: float) -> None:
    print(json.dumps({
        "ops": ops, "seconds": seconds, "ops_per_s": ops / seconds,
        "p50_us": hist.percentile(0.5), "p99_us": hist.percentile(0.99),
        "window_start_unix": start_unix, "window_end_unix": start_unix + seconds,
    }), flush=True)


async def echo_server(port: int) -> None:
    def handle(conn: rpc.Conn, rid: int, msg: object) -> None:
        conn.reply(rid, wire.Ack())

    await rpc.serve("127.0.0.1", port, handle)
    await asyncio.Event().wait()


async def drive_rpc(port: int, concurrency: int, seconds: float) -> None:
    peer = rpc.Peer("127.0.0.1", port, lambda c, r, m: None).start()
    if not await peer.wait_up(10):
        raise SystemExit("echo server unreachable")
    hist = LatencyHistogram()
    state = {"ops": 0, "measuring": False}
    msg = wire.OpRequest(0, 0, 0, -1, [1])

    def send() -> None:
        start = time.perf_counter_ns()

        def done(_: object) -> None:
            if state["measuring"]:
                state["ops"] += 1
                hist.record((time.perf_counter_ns() - start) // 1000)
            send()

        peer.call_cb(msg, done)

    for _ in range(concurrency):
        send()
    await asyncio.sleep(1.0)  # warm-up
    state["measuring"] = True
    t0, start_unix = time.perf_counter(), time.time()
    await asyncio.sleep(seconds)
    state["measuring"] = False
    report(hist, state["ops"], time.perf_counter() - t0, start_unix)


class RedisLoad(asyncio.Protocol):
    """INCR with `concurrency` requests in flight; redis answers in order on a connection."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.sent: deque[int] = deque()
        self.buf = b""
        self.hist = LatencyHistogram()
        self.ops = 0
        self.measuring = False
        self.transport: asyncio.Transport | None = None
        self.command = b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send(self.concurrency)

    def send(self, n: int) -> None:
        now = time.perf_counter_ns()
        self.sent.extend([now] * n)
        assert self.transport is not None
        self.transport.write(self.command * n)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        replies = self.buf.count(b"\r\n")
        if not replies:
            return
        cut = self.buf.rfind(b"\r\n") + 2
        self.buf = self.buf[cut:]
        now = time.perf_counter_ns()
        for _ in range(replies):
            start = self.sent.popleft()
            if self.measuring:
                self.ops += 1
                self.hist.record((now - start) // 1000)
        self.send(replies)


async def drive_redis(port: int, concurrency: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    _, load = await loop.create_connection(lambda: RedisLoad(concurrency), "127.0.0.1", port)
    await asyncio.sleep(1.0)
    load.measuring = True
    t0, start_unix = time.perf_counter(), time.time()
    await asyncio.sleep(seconds)
    load.measuring = False
    report(load.hist, load.ops, time.perf_counter() - t0, start_unix)


def main(argv: list[str]) -> None:
    rpc.install_uvloop()
    kind = argv[0]
    if kind == "echo-server":
        asyncio.run(echo_server(int(argv[1])))
    elif kind == "rpc":
        asyncio.run(drive_rpc(int(argv[1]), int(argv[2]), float(argv[3])))
    elif kind == "redis":
        asyncio.run(drive_redis(int(argv[1]), int(argv[2]), float(argv[3])))
    else:
        raise SystemExit(f"unknown driver {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
