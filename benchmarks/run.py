"""`make bench`: mason beside Redis INCR and the RPC layer's ceiling, on this machine.

(a) mason: 1 sequencer, one group of three proxies, one client process with 1, 16 and 64
    outstanding operations (every process local);
(b) Debian's redis-server, INCR, driven by one client process with the same number of
    outstanding requests on one connection (the shape of a mason client), and for
    reference by redis-benchmark with that many connections;
(c) the RPC ceiling: one process answering every call at once, driven like (b).
Writes bench-results/core.json and bench-results/core.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from analysis.aggregate import summarize_run
from benchmarks.cpu import CpuSampler, client_window, cpu_per_op, format_roles
from orchestrator.ports import free_port_block
from orchestrator.runner import execute_local
from orchestrator.spec import ExperimentSpec, validate

CONCURRENCY = (1, 16, 64)
# Client loads that saturate this machine's two cores: the CPU-per-operation figure.
SATURATION = ("4x64", "16x16")
console = Console(stderr=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def driver(kind: str, port: int, concurrency: int, seconds: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.drivers", kind, str(port), str(concurrency),
         str(seconds)],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_mason(concurrency: int, seconds: float, root: Path,
                processes: int = 1) -> dict[str, Any]:
    """One mason run: `processes` client processes with `concurrency` outstanding each;
    throughput, latency and the CPU every role spent per operation (us)."""
    spec = validate(ExperimentSpec(
        name=f"mason-{processes}x{concurrency}", nclient_threads=processes,
        client_concurrency=concurrency, expduration=seconds, warmup=1.0, cooldown=0.5,
        base_port=free_port_block(64), record_seqnums=False,
    ))
    run_dir = root / spec.name
    with CpuSampler(str(run_dir)) as sampler:
        execute_local(spec, run_dir, console)
    s = summarize_run(run_dir)
    start, end, ops = client_window(run_dir)
    return {"ops_per_s": s.throughput_ops, "p50_us": s.p50_us, "p99_us": s.p99_us,
            "cpu_us_per_op": cpu_per_op(sampler, run_dir, start, end, ops)}


def bench_redis(concurrency: int, seconds: float) -> dict[str, float] | None:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(server).exists():
        console.print("[yellow]redis-server not installed: skipping (b)")
        return None
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        result = driver("redis", port, concurrency, seconds)
        tool = shutil.which("redis-benchmark")
        if tool:
            done = subprocess.run(
                [tool, "-p", str(port), "-t", "incr", "-c", str(concurrency), "-n", "200000",
                 "-q"], capture_output=True, text=True, timeout=120, check=False,
            )
            for token in done.stdout.replace("\r", "\n").split():
                try:
                    value = float(token)
                except ValueError:
                    continue
                result["redis_benchmark_ops_per_s"] = value
                break
        return result
    finally:
        proc.kill()
        proc.wait()


def bench_ceiling(concurrency: int, seconds: float) -> dict[str, float]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.drivers", "echo-server", str(port)])
    try:
        wait_port(port)
        return driver("rpc", port, concurrency, seconds)
    finally:
        proc.kill()
        proc.wait()


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def ratio(row: dict[str, object], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| outstanding | mason ops/s | p50 us | p99 us | redis INCR ops/s | p50 us | p99 us "
        "| redis-benchmark ops/s | RPC ceiling ops/s | p50 us | p99 us | mason/redis "
        "| mason/ceiling | mason CPU us/op (by role) |",
        "|" + "---|" * 14,
    ]
    for r in rows:
        m, rd, c = r["mason"], r.get("redis"), r["ceiling"]
        assert isinstance(m, dict) and isinstance(c, dict)
        rd = rd if isinstance(rd, dict) else {}
        lines.append(
            f"| {r['outstanding']} | {fmt(m['ops_per_s'])} | {fmt(m['p50_us'])} | "
            f"{fmt(m['p99_us'])} | {fmt(rd.get('ops_per_s'))} | {fmt(rd.get('p50_us'))} | "
            f"{fmt(rd.get('p99_us'))} | {fmt(rd.get('redis_benchmark_ops_per_s'))} | "
            f"{fmt(c['ops_per_s'])} | {fmt(c['p50_us'])} | {fmt(c['p99_us'])} | "
            f"{fmt(ratio(r, 'mason_over_redis'), '.2f')} | "
            f"{fmt(ratio(r, 'mason_over_ceiling'), '.2f')} | "
            f"{format_roles(m.get('cpu_us_per_op') or {})} |"
        )
    return "\n".join(lines) + "\n"


def saturation_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return ""
    lines = ["", "Saturation: several client processes against the one group.", "",
             "| client processes x outstanding | ops/s | p50 us | p99 us "
             "| CPU us/op (by role) |", "|---|---|---|---|---|"]
    for r in rows:
        m = r["mason"]
        assert isinstance(m, dict)
        lines.append(f"| {r['saturation']} | {fmt(m['ops_per_s'])} | {fmt(m['p50_us'])} | "
                     f"{fmt(m['p99_us'])} | {format_roles(m.get('cpu_us_per_op') or {})} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--concurrency", type=int, nargs="*", default=list(CONCURRENCY))
    parser.add_argument("--saturation", type=str, nargs="*", default=list(SATURATION),
                        help="PROCESSESxOUTSTANDING client loads for the saturation rows")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="mason-bench-") as tmp:
        for c in args.concurrency:
            console.print(f"outstanding {c}: mason")
            mason = bench_mason(c, args.seconds, Path(tmp))
            console.print(f"outstanding {c}: redis")
            redis = bench_redis(c, args.seconds)
            console.print(f"outstanding {c}: RPC ceiling")
            ceiling = bench_ceiling(c, args.seconds)
            row: dict[str, object] = {"outstanding": c, "mason": mason, "redis": redis,
                                      "ceiling": ceiling}
            if redis:
                row["mason_over_redis"] = mason["ops_per_s"] / redis["ops_per_s"]
            row["mason_over_ceiling"] = mason["ops_per_s"] / ceiling["ops_per_s"]
            rows.append(row)
        for load in args.saturation:
            processes, outstanding = (int(part) for part in load.split("x"))
            console.print(f"saturation {load}: mason")
            rows.append({"saturation": load, "mason": bench_mason(
                outstanding, args.seconds, Path(tmp), processes)})
    single = [r for r in rows if "outstanding" in r]
    saturated = [r for r in rows if "saturation" in r]
    write_report(args.out, "core", "mason core benchmark", args.seconds,
                 "One sequencer, one group of three, one client process; all on this "
                 "machine. CPU per operation: every process's CPU (from /proc) in the "
                 "clients' measured window over the operations answered in it; the "
                 "followers' figure is both followers together.", rows,
                 table(single) + saturation_table(saturated))


def write_report(out: Path, stem: str, title: str, seconds: float | None, setup: str,
                 rows: list[dict[str, object]], table_md: str) -> None:
    """<stem>.json (the rows and how they were measured) and <stem>.md (the table).
    ``seconds`` is the measured time per point; None for benchmarks timed per task."""
    meta = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
            "seconds_per_point": seconds, "unix_time": int(time.time())}
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    per_point = "" if seconds is None else f", {seconds:g} s per point"
    md = (f"# {title}\n\n{meta['cpus']} CPUs, Python {meta['python']}{per_point}. "
          f"{setup}\n\n" + table_md)
    (out / f"{stem}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
