"""`make bench`: Corfu beside CorfuMason, appends and reads, same box, same run.

Both systems get the same log (2 log servers, one chain of 2) and the same client load
(one client machine, 2 processes, each with the same number of outstanding operations);
CorfuMason adds one Raft group of three proxies. Every row also gives the CPU each role
(client, sequencer, log server, leader, follower) spent per operation (benchmarks/cpu.py).
Writes bench-results/corfu.json and bench-results/corfu.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rich.console import Console

from analysis.aggregate import summarize_run
from analysis.datfiles import read_summary
from analysis.runfiles import run_files
from benchmarks.cpu import CpuSampler, client_window, cpu_per_op, format_roles
from benchmarks.run import write_report
from orchestrator.ports import free_port_block
from orchestrator.runner import execute_local
from orchestrator.spec import build

SYSTEMS = ("corfu", "corfumason")
WORKLOADS = ("appends", "reads")
CONCURRENCY = (8, 32)
console = Console(stderr=True)


def bench(system: str, workload: str, concurrency: int, seconds: float,
          root: Path) -> dict[str, object]:
    values: dict[str, object] = {
        "ncorfu_servers": 2, "corfu_replication_factor": 2, "corfu_units": 1,
        "nclients": 1, "nclient_threads": 2, "client_concurrency": concurrency,
        "expduration": seconds, "warmup": 1.0, "cooldown": 0.5,
        "base_port": free_port_block(64), workload: True,
    }
    if workload == "reads":
        values["max_log_position"] = 100_000
    spec = build(f"{system}-{workload}-c{concurrency}", system, values)
    run_dir = root / spec.name
    with CpuSampler(str(run_dir)) as sampler:
        execute_local(spec, run_dir, console)
    s = summarize_run(run_dir)
    misses = sum(read_summary(p).read_misses
                 for p in run_files(run_dir, "client-*.summary.json"))
    start, end, ops = client_window(run_dir)
    return {"ops_per_s": s.throughput_ops, "p50_us": s.p50_us, "p99_us": s.p99_us,
            "read_misses": misses,
            "cpu_us_per_op": cpu_per_op(sampler, run_dir, start, end, ops)}


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| workload | outstanding | corfu ops/s | p50 us | p99 us | corfumason ops/s "
             "| p50 us | p99 us | corfumason/corfu | corfu CPU us/op (by role) "
             "| corfumason CPU us/op (by role) |", "|" + "---|" * 11]
    for r in rows:
        c, m = r["corfu"], r["corfumason"]
        assert isinstance(c, dict) and isinstance(m, dict)
        lines.append(
            f"| {r['workload']} | {r['outstanding']} | {c['ops_per_s']:,.0f} | "
            f"{c['p50_us']:,.0f} | {c['p99_us']:,.0f} | {m['ops_per_s']:,.0f} | "
            f"{m['p50_us']:,.0f} | {m['p99_us']:,.0f} | "
            f"{m['ops_per_s'] / c['ops_per_s']:.2f} | "
            f"{format_roles(c.get('cpu_us_per_op') or {})} | "
            f"{format_roles(m.get('cpu_us_per_op') or {})} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--concurrency", type=int, nargs="*", default=list(CONCURRENCY),
                        help="outstanding operations per client process")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="corfu-bench-") as tmp:
        for workload in WORKLOADS:
            for c in args.concurrency:
                row: dict[str, object] = {"workload": workload, "outstanding": c}
                for system in SYSTEMS:
                    console.print(f"{workload}, {c} outstanding per process: {system}")
                    row[system] = bench(system, workload, c, args.seconds, Path(tmp))
                rows.append(row)
    write_report(args.out, "corfu", "Corfu and CorfuMason", args.seconds,
                 "One chain of 2 log servers, 1 client machine x 2 processes; CorfuMason "
                 "adds one Raft group of 3 proxies. All on this machine. CPU per operation: every "
                 "process's CPU (from /proc) in the clients' measured window over the "
                 "operations answered in it; log servers, followers: all of them together.",
                 rows, table(rows))


if __name__ == "__main__":
    main()
