"""The ZooKeeper wire codec's cost per operation: CPU time to decode the requests and encode
the replies a ZooKeeper server handles most, and to split a pipelined stream into frames.

CPU time (process_time), not wall time, so that other processes on a shared box weigh
less; each figure is the best of several repeats. Writes bench-results/zk_wire.json and
bench-results/zk_wire.md.
"""

from __future__ import annotations

import argparse
import struct
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from benchmarks.run import write_report
from nodes.zk import wire
from nodes.zk.stat import Stat

PATH = "/bench/node-0000012345"
STAT = Stat(1 << 32, (1 << 32) + 7, 1_700_000_000_000, 1_700_000_000_500, 7, 0, 0, 0, 1024,
            0, 1 << 32)
PIPELINE = 64


def cases() -> dict[str, Callable[[], object]]:
    def request(body: wire.Record) -> bytes:
        return wire.encode_request(7, body)[4:]

    get_data = request(wire.GetDataRequest(PATH, True))
    set_data = request(wire.SetDataRequest(PATH, b"x" * 1024, -1))
    create = request(wire.CreateRequest(PATH, b"x" * 100, wire.OPEN_ACL_UNSAFE, 0))
    multi = request(wire.MultiRequest(tuple(wire.SetDataRequest(f"{PATH}{i}", b"x" * 100, -1)
                                            for i in range(4))))
    data = b"x" * 1024
    stream = wire.encode_request(7, wire.GetDataRequest(PATH, False)) * PIPELINE
    splitter = wire.FrameSplitter()
    splitter.feed(wire.encode_request(1, wire.PingRequest()))  # past the four-letter check
    unpack = struct.Struct("!ii").unpack_from
    eight = bytes(8)
    return {
        "struct unpack of 2 ints (reference)": lambda: unpack(eight, 0),
        "decode getData": lambda: wire.decode_request(get_data),
        "decode setData 1 KB": lambda: wire.decode_request(set_data),
        "decode create (world ACL)": lambda: wire.decode_request(create),
        "decode multi of 4 setData": lambda: wire.decode_request(multi),
        "encode getData reply 1 KB": lambda: wire.reply_frame(7, 9, 0,
                                                              wire.data_stat_body(data, STAT)),
        "encode setData reply": lambda: wire.reply_frame(7, 9, 0, wire.stat_body(STAT)),
        "encode notification": lambda: wire.notification_frame(3, PATH),
        f"split {PIPELINE} pipelined getData frames": lambda: splitter.feed(stream),
    }


def cpu_ns(fn: Callable[[], object], seconds: float) -> float:
    timer = timeit.Timer(fn, timer=time.process_time)
    number, _ = timer.autorange()
    repeats = max(3, int(seconds / max(timer.timeit(number), 1e-3)))
    return min(timer.repeat(number=number, repeat=repeats)) / number * 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="measured seconds per case")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    for name, fn in cases().items():
        ns = cpu_ns(fn, args.seconds)
        rows.append({"case": name, "cpu_ns": round(ns), "per_s": round(1e9 / ns)})
    lines = ["| case | CPU ns | per second |", "|---|---:|---:|"]
    lines += [f"| {r['case']} | {r['cpu_ns']} | {r['per_s']} |" for r in rows]
    write_report(args.out, "zk_wire", "ZooKeeper wire codec", args.seconds,
                 "One process, CPU time per call, best of repeats.", rows,
                 "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
