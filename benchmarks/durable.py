"""What keeping Raft's log on disk costs: one local run per `--durable` mode.

The same cluster as the recovery benchmark (2 spaces, 2 groups of 3, 2 client processes x
16 outstanding), no faults; only the proxies' fsync policy differs. Writes
bench-results/durable.{json,md}. The modes alternate over `--rounds` so that a slow
moment of a shared machine does not land on one mode only; the table keeps the median.
Beside it, the cost of one ready on its own: `RaftFile.persist` of one entry (a batch of
`--entry-bytes`) in a loop, with the fsync each mode does on the event loop.

    python -m benchmarks.durable [--out bench-results] [--seconds 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

from analysis.aggregate import summarize_run
from benchmarks.recovery import fault_spec
from benchmarks.run import write_report
from nodes.proxy.durable import RaftFile
from nodes.raft import Entry
from orchestrator.ports import free_port_block
from orchestrator.runner import execute_local

MODES = ("off", "batch", "always")
console = Console(stderr=True)


def bench(mode: str, seconds: float, root: Path, round_: int) -> dict[str, float]:
    spec = fault_spec(f"durable-{mode}-{round_}", seconds, free_port_block(64),
                      {"durable": mode, "record_seqnums": False, "record_noops": False})
    run_dir = root / spec.name
    execute_local(spec, run_dir, console)
    s = summarize_run(run_dir)
    return {"ops_per_s": s.throughput_ops, "p50_us": s.p50_us, "p99_us": s.p99_us}


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
             "loop |", "|---|---|---|---|---|---|"]
    for r in rows:
        ops, p50, p99, us = r["ops_per_s"], r["p50_us"], r["p99_us"], r["persist_us"]
        assert isinstance(ops, float) and isinstance(p50, float) and isinstance(p99, float)
        assert isinstance(us, float)
        lines.append(f"| {r['mode']} | {ops:,.0f} | {p50:,.0f} | {p99:,.0f} | "
                     f"{ops / off:.2f} | {us:,.1f} |")
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
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="durable-bench-") as tmp:
        persist_us = {m: persist_cost(m, args.entry_bytes, 2000, Path(tmp)) for m in MODES}
        for round_ in range(args.rounds):
            for mode in MODES:
                console.print(f"round {round_ + 1}: --durable {mode}")
                runs[mode].append(bench(mode, args.seconds, Path(tmp), round_))
    rows: list[dict[str, object]] = []
    for mode in MODES:
        med = {k: statistics.median(r[k] for r in runs[mode]) for k in runs[mode][0]}
        rows.append({"mode": mode, **med, "persist_us": persist_us[mode], "runs": runs[mode]})
    write_report(args.out, "durable", "Raft log on disk: --durable modes", args.seconds,
                 f"2 groups of 3 proxies, 2 spaces, 2 client processes x 16 outstanding, "
                 f"no faults; {args.rounds} run(s) per mode, alternating. All on this "
                 f"machine (load average at the start: {load:.1f}). Per ready: one "
                 f"{args.entry_bytes}-byte entry persisted (batch mode's fsync runs in a "
                 f"worker thread, off the loop).", rows, table(rows))


if __name__ == "__main__":
    main()
