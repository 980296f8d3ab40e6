"""What keeping Raft's log on disk costs: one local run per `--durable` mode.

The same cluster as the recovery benchmark (2 spaces, 2 groups of 3, 2 client processes x
16 outstanding), no faults; only the proxies' fsync policy differs. Writes
bench-results/durable.{json,md}. The modes alternate over `--rounds` so that a slow
moment of a shared machine does not land on one mode only; the table keeps the median.
Beside it, the cost of one ready on its own: `RaftFile.persist` of one entry (a batch of
`--entry-bytes`) in a loop, with the fsync each mode does on the event loop. Every row
also gives the CPU per operation of each role (benchmarks/cpu.py), median over the rounds.

    python -m benchmarks.durable [--out bench-results] [--seconds 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from analysis.aggregate import summarize_run
from benchmarks.cpu import CpuSampler, client_window, cpu_per_op, format_roles
from benchmarks.recovery import fault_spec
from benchmarks.run import write_report
from nodes.proxy.durable import RaftFile
from nodes.raft import Entry
from orchestrator.ports import free_port_block
from orchestrator.runner import execute_local

MODES = ("off", "batch", "always")
console = Console(stderr=True)


def bench(mode: str, seconds: float, root: Path, round_: int) -> dict[str, Any]:
    spec = fault_spec(f"durable-{mode}-{round_}", seconds, free_port_block(64),
                      {"durable": mode, "record_seqnums": False, "record_noops": False})
    run_dir = root / spec.name
    with CpuSampler(str(run_dir)) as sampler:
        execute_local(spec, run_dir, console)
    s = summarize_run(run_dir)
    start, end, ops = client_window(run_dir)
    return {"ops_per_s": s.throughput_ops, "p50_us": s.p50_us, "p99_us": s.p99_us,
            "cpu_us_per_op": cpu_per_op(sampler, run_dir, start, end, ops)}


def median_cpu(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Each role's median CPU per operation over the runs that measured it."""
    roles = sorted({role for r in runs for role in r["cpu_us_per_op"]},
                   key=lambda role: (role != "all", role))
    return {role: statistics.median(r["cpu_us_per_op"][role] for r in runs
                                    if role in r["cpu_us_per_op"]) for role in roles}


def persist_cost(mode: str, entry_bytes: int, n: int, root: Path) -> float:
    """Microseconds the event loop spends per ready that appends one entry."""
    f = RaftFile(root / f"micro-{mode}.raft", mode)
    data = b"x" * entry_bytes
    log = f.storage.log
    started = time.perf_counter()
    for i in range(1, n + 1):
        log.append(Entry(1, i, data))
        f.persist()
    elapsed = time.perf_counter() - started
    f.close()
    return elapsed / n * 1e6


def table(rows: list[dict[str, object]]) -> str:
    off = next(r for r in rows if r["mode"] == "off")["ops_per_s"]
    assert isinstance(off, float)
    lines = ["| --durable | ops/s (median) | p50 us | p99 us | vs off | us per ready on the "
             "loop | CPU us/op (by role) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ops, p50, p99, us = r["ops_per_s"], r["p50_us"], r["p99_us"], r["persist_us"]
        assert isinstance(ops, float) and isinstance(p50, float) and isinstance(p99, float)
        assert isinstance(us, float)
        cpu = r.get("cpu_us_per_op")
        lines.append(f"| {r['mode']} | {ops:,.0f} | {p50:,.0f} | {p99:,.0f} | "
                     f"{ops / off:.2f} | {us:,.1f} | "
                     f"{format_roles(cpu if isinstance(cpu, dict) else {})} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per mode")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--entry-bytes", type=int, default=2048,
                        help="entry size for the per-ready cost")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]  # a shared machine's other work shifts every mode's figure
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
        persist_us = {m: persist_cost(m, args.entry_bytes, 2000, Path(tmp)) for m in MODES}
        for round_ in range(args.rounds):
            for mode in MODES:
                console.print(f"round {round_ + 1}: --durable {mode}")
                runs[mode].append(bench(mode, args.seconds, Path(tmp), round_))
    rows: list[dict[str, object]] = []
    for mode in MODES:
        med = {k: statistics.median(r[k] for r in runs[mode])
               for k in ("ops_per_s", "p50_us", "p99_us")}
        rows.append({"mode": mode, **med, "persist_us": persist_us[mode],
                     "cpu_us_per_op": median_cpu(runs[mode]), "runs": runs[mode]})
    write_report(args.out, "durable", "Raft log on disk: --durable modes", args.seconds,
                 f"2 groups of 3 proxies, 2 spaces, 2 client processes x 16 outstanding, "
                 f"no faults; {args.rounds} run(s) per mode, alternating. All on this "
                 f"machine (load average at the start: {load:.1f}). Per ready: one "
                 f"{args.entry_bytes}-byte entry persisted (batch mode's fsync runs in a "
                 f"worker thread, off the loop). CPU per operation: every process's CPU "
                 f"(from /proc) in the clients' measured window over the operations "
                 f"answered in it, median over the runs; followers: all of them together.",
                 rows, table(rows))


if __name__ == "__main__":
    main()
