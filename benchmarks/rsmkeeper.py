"""RSMKeeper through kazoo: latency of one request at a time and throughput of a pipeline,
on the leader's port and on a follower's, with reads through the log and local reads.

One local group of three proxies per read mode (`orchestrator.serve.served`), one kazoo
client per point. Every point also gives the CPU per operation of the replicas (leader,
followers) and of the kazoo client (this process), from /proc (benchmarks/cpu.py).
Writes bench-results/rsmkeeper.{json,md}.

    python -m benchmarks.rsmkeeper [--out bench-results] [--seconds 3] [--window 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from rich.console import Console

from benchmarks.cpu import CpuSampler, cpu_per_op, format_roles
from benchmarks.run import write_report
from nodes.status import parse_role
from orchestrator import spec as specs
from orchestrator.experiment import Experiment
from orchestrator.ports import free_port_block
from orchestrator.serve import served

console = Console(stderr=True)
Point = Callable[[], dict[str, float]]  # runs one point: ops, ops_per_s, latencies


def endpoint_of(run: Experiment, role: str) -> str:
    for entry in run.running:
        parsed = parse_role(entry.host.read_text(entry.path(".role")))
        if parsed is not None and parsed[0] == role:
            listen = entry.proc.context["zk_listen"]
            return f"{listen['host']}:{listen['port']}"
    raise LookupError(role)


def sequential(op: Callable[[int], Any], seconds: float) -> dict[str, float]:
    latencies = []
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        t = time.perf_counter()
        op(i)
        latencies.append(time.perf_counter() - t)
        i += 1
    latencies.sort()
    return {"ops": len(latencies),
            "ops_per_s": len(latencies) / (time.perf_counter() - started),
            "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3}


def pipelined(op: Callable[[int], Any], window: int) -> dict[str, float]:
    started = time.perf_counter()
    for result in [op(i) for i in range(window)]:
        result.get()
    return {"ops": window, "ops_per_s": window / (time.perf_counter() - started)}


def points(client: KazooClient, seconds: float, window: int, local: bool
           ) -> list[tuple[str, Point]]:
    if client.exists("/bench/r") is None:  # the second port of the same group
        client.create("/bench/r", b"x" * 64, makepath=True)
    out = []
    if not local:
        out.append(("create, one at a time", lambda: sequential(
            lambda i: client.create("/bench/s-", b"x" * 64, sequence=True), seconds)))
        out.append(("create, pipelined", lambda: pipelined(
            lambda i: client.create_async("/bench/p-", b"x" * 64, sequence=True), window)))
    out.append(("getData, one at a time", lambda: sequential(
        lambda i: client.get("/bench/r"), seconds)))
    out.append(("getData, pipelined", lambda: pipelined(
        lambda i: client.get_async("/bench/r"), window)))
    return out


def bench(local: bool, seconds: float, window: int, root: Path) -> list[dict[str, object]]:
    name = "local-reads" if local else "linearizable"
    spec = specs.build(name, "rsmkeeper", {"nclients": 0, "base_port": free_port_block(8),
                                           "zk_local_reads": local})
    rows: list[dict[str, object]] = []
    run_dir = (root / name).resolve()
    with served(spec, run_dir, console) as run:
        assert run is not None
        # The replicas stay up through every point and the client is this process: both are
        # sampled at each point's edges, not by the sampler's thread, whose CPU would count
        # as the client's.
        sampler = CpuSampler(str(run_dir), pids={os.getpid(): ("kazoo", "client")})
        for role in ("leader", "follower"):
            client = KazooClient(hosts=endpoint_of(run, role))
            client.start(timeout=30)
            try:
                for workload, point in points(client, seconds, window, local):
                    sampler.sample()
                    start = time.time()
                    figures = point()
                    end = time.time()
                    sampler.sample()
                    cpu = cpu_per_op(sampler, run_dir, start, end, int(figures["ops"]))
                    rows.append({"reads": name, "port": role, "workload": workload,
                                 **{k: round(v, 2) for k, v in figures.items()},
                                 "cpu_us_per_op": cpu})
                    console.print(rows[-1])
            finally:
                client.stop()
                client.close()
    return rows


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| reads | port | workload | ops/s | p50 ms | p99 ms | CPU us/op (by role) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = r.get("cpu_us_per_op")
        lines.append(f"| {r['reads']} | {r['port']} | {r['workload']} | {r['ops_per_s']:.0f} | "
                     f"{r.get('p50_ms', '')} | {r.get('p99_ms', '')} | "
                     f"{format_roles(cpu if isinstance(cpu, dict) else {})} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rsmkeeper")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--window", type=int, default=2000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench(False, args.seconds, args.window, Path(tmp))
        rows += bench(True, args.seconds, args.window, Path(tmp))
    write_report(args.out, "rsmkeeper", "RSMKeeper through kazoo", args.seconds,
                 "One group of 3 proxies on this machine, one kazoo client per point, "
                 f"pipelines of {args.window} requests, 64-byte nodes. CPU per operation: "
                 "the user + system CPU (from /proc) of the replicas and of the kazoo "
                 "client (this process) during the point over its operations; followers: "
                 "both together.", rows, table(rows))


if __name__ == "__main__":
    main()
