"""Recovery time: from a kill -9 until throughput is back to 90% of what it was before.

Runs a local cluster under load (2 spaces, 2 groups), once killing group 0's leader and
once the sequencer, then once both (the recovery figure). Every run also passes the
contiguity checker. Writes bench-results/recovery.{json,md} and the plots
(recovery-<run>.png/.pdf).

    python -m benchmarks.recovery [--out bench-results] [--seconds 8] [--kill-at 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from rich.console import Console

from analysis.contiguity import check_run
from analysis.datfiles import read_faults
from analysis.plots import plot_recovery, total_series
from orchestrator.ports import free_port_block
from orchestrator.runner import execute_local
from orchestrator.spec import ExperimentSpec, build

console = Console(stderr=True)
BIN_MS = 50
SUSTAIN_BINS = 5  # the mean over this many bins must hold too (one lucky bin is not recovery)


def recovery_time(run_dir: Path, event: str) -> dict[str, float]:
    """Seconds from the kill until 90% of the pre-kill throughput is back (and holds)."""
    kill = next(e.unix_ms for e in read_faults(run_dir / "faults.log") if e.event == event)
    series = total_series(run_dir, BIN_MS)
    t = series["unix_ms"].to_numpy()
    rate = series["ops"].to_numpy() * (1000 / BIN_MS)
    before = rate[(t >= kill - 2000) & (t + BIN_MS <= kill - 100)]
    baseline = float(np.mean(before)) if len(before) else float("nan")
    after = np.nonzero(t >= kill)[0]
    recovered_at = None
    for i in after:
        window = rate[i : i + SUSTAIN_BINS]
        if (len(window) == SUSTAIN_BINS and rate[i] >= 0.9 * baseline
                and window.mean() >= 0.9 * baseline):
            recovered_at = int(t[i]) + BIN_MS  # the end of the first good bin
            break
    lowest = float(rate[after[: 2000 // BIN_MS]].min()) if len(after) else float("nan")
    return {
        "baseline_ops_per_s": baseline,
        "lowest_ops_per_s": lowest,
        "recovery_s": float("nan") if recovered_at is None else (recovered_at - kill) / 1000,
    }


def fault_spec(name: str, seconds: float, base_port: int,
               faults: Mapping[str, object]) -> ExperimentSpec:
    """The failure experiments' cluster: 2 spaces, 2 groups, 2 clients, every number recorded."""
    return build(name, "mason", {
        "nsequence_spaces": 2, "nproxy_threads": 2, "nclient_threads": 2,
        "client_concurrency": 16, "expduration": seconds, "warmup": 1.0, "cooldown": 0.5,
        "base_port": base_port, "record_seqnums": True, "record_noops": True, **faults,
    })


def run_one(name: str, root: Path, seconds: float, **faults: float) -> Path:
    spec = fault_spec(name, seconds, free_port_block(64), faults)
    run_dir = root / name
    execute_local(spec, run_dir, console)
    verdict = check_run(run_dir)
    if not verdict.ok:
        raise SystemExit(f"{name}: " + verdict.lines()[-1])
    return run_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--kill-at", type=float, default=3.0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    plots: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mason-recovery-") as tmp:
        root = Path(tmp)
        for event in ("kill_leader", "kill_sequencer"):
            console.print(f"recovery: {event}")
            run_dir = run_one(event.replace("_", "-"), root, args.seconds,
                              **{event: args.kill_at})
            results[event] = recovery_time(run_dir, event)
        console.print("recovery: both (the recovery figure)")
        both = run_one("both", root, args.seconds + 4, kill_leader=args.kill_at,
                       kill_sequencer=args.kill_at + 4)
        for run_dir in (root / "kill-leader", root / "kill-sequencer", both):
            for path in plot_recovery(run_dir, args.out / f"recovery-{run_dir.name}"):
                plots.append(str(path))
        shutil.copytree(both, args.out / "recovery-run", dirs_exist_ok=True)
    doc = {"unix_time": int(time.time()), "bin_ms": BIN_MS, "results": results,
           "plots": plots}
    (args.out / "recovery.json").write_text(json.dumps(doc, indent=2))
    lines = ["# recovery time", "",
             f"kill -9 at {args.kill_at:g} s into the measured window; recovered = end of the "
             f"first {BIN_MS} ms bin at >= 90% of the mean throughput of the 2 s before the "
             f"kill, with the mean over it and the next {SUSTAIN_BINS - 1} bins also >= 90%.",
             "",
             "| failure | throughput before (ops/s) | lowest after (ops/s) | recovery (s) |",
             "|---|---|---|---|"]
    for event, r in results.items():
        lines.append(f"| {event} | {r['baseline_ops_per_s']:,.0f} | "
                     f"{r['lowest_ops_per_s']:,.0f} | {r['recovery_s']:.2f} |")
    lines += ["", "Plots: " + ", ".join(p for p in plots if p.endswith(".png"))]
    (args.out / "recovery.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
