"""Recovery time: from a kill -9 until throughput is back to 90% of what it was before.

Runs a local cluster under load (2 spaces, 2 groups), once killing group 0's leader and
once the sequencer, then once both (the recovery figure). Then the restart rows
(--restart_after 1): a follower of group 0 killed, restarted a second later, and the
leader killed once it rejoined (the group only survives that with the follower back); the
sequencer killed and restarted, then the backup killed (two sequencers: the restarted one
takes over). Each row is the time after one kill. Every run also passes the contiguity
checker. Writes bench-results/recovery.{json,md} and the plots (recovery-<run>.png/.pdf).

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


RESTART_AFTER = 1.0  # seconds from a kill to the restart, in the restart rows
# Restart runs: (run name, its faults as offsets from --kill-at, the kills to time with
# their row labels). The second kill comes 4 s after the first: 1 s down, then catching up.
RESTART_RUNS: tuple[tuple[str, dict[str, float], tuple[tuple[str, str], ...]], ...] = (
    ("restart-follower", {"kill_follower": 0.0, "kill_leader": 4.0},
     (("kill_follower", "follower killed, restarted 1 s later"),
      ("kill_leader", "then its leader killed (the restarted follower votes)"))),
    ("restart-sequencer", {"kill_sequencer": 0.0, "kill_backup": 4.0},
     (("kill_sequencer", "sequencer killed, restarted 1 s later"),
      ("kill_backup", "then the backup killed (the restarted one takes over)"))),
)


def recovery_time(run_dir: Path, event: str) -> dict[str, float]:
    """Seconds from the kill until 90% of the pre-kill throughput is back (and holds)."""
    kill = next(e.unix_ms for e in read_faults(run_dir / "faults.log") if e.event == event)
    return recovery_after(run_dir, kill)


def recovery_after(run_dir: Path, kill: int) -> dict[str, float]:
    """recovery_time for a kill at unix ms `kill`."""
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
        restart_runs = []
        for name, offsets, kills in RESTART_RUNS:
            console.print(f"recovery: {name}")
            faults = {event: args.kill_at + at for event, at in offsets.items()}
            run_dir = run_one(name, root, args.seconds + 4, restart_after=RESTART_AFTER,
                              nsequencers=2, **faults)
            restart_runs.append(run_dir)
            for event, label in kills:
                results[label] = recovery_time(run_dir, event)
        for run_dir in (root / "kill-leader", root / "kill-sequencer", both, *restart_runs):
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
             f"Restart rows: the killed process is started again {RESTART_AFTER:g} s after its "
             "kill (`--restart_after`); each row times one kill of that run.",
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
