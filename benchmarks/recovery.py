"""Recovery time: from a fault until throughput is back to 90% of what it was before.

Runs a local cluster under load (2 spaces, 2 groups), once killing group 0's leader, once
the sequencer, once pausing group 0's leader, then once both kills (the recovery figure).
Then the restart rows (--restart_after 1): a follower of group 0 killed, restarted a second
later, and the leader killed once it rejoined (the group only survives that with the
follower back); the sequencer killed and restarted, then the backup killed (two
sequencers: the restarted one takes over). Each row is the time after one kill. The
partition rows (group 0's leader cut from its followers; group 0 cut from every sequencer)
need nodes on distinct addresses and root on them: they run on a rehearsal testbed when
given one (`--machine-info` from `masonctl setup`, `--testbed`), and are otherwise listed
as skipped with that reason. For a partition the time is counted both from the cut and
from the heal, against the throughput before the cut. Every run also passes the
contiguity checker. Writes bench-results/recovery.{json,md} and the plots
(recovery-<run>.png/.pdf).

    python -m benchmarks.recovery [--out bench-results] [--seconds 8] [--kill-at 3]
        [--machine-info machine_info.txt --testbed /tmp/mason-testbed]
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


def recovery_time(run_dir: Path, event: str, baseline_event: str = "") -> dict[str, float]:
    """Seconds from `event` until 90% of the throughput before `baseline_event` (the
    event itself when not given) is back (and holds)."""
    log = read_faults(run_dir / "faults.log")
    kill = next(e.unix_ms for e in log if e.event == event)
    base = next(e.unix_ms for e in log if e.event == (baseline_event or event))
    return recovery_after(run_dir, kill, base)


def recovery_after(run_dir: Path, kill: int, base: int | None = None) -> dict[str, float]:
    """recovery_time for a fault at unix ms `kill`, against the throughput before `base`
    (the fault itself when None)."""
    base = kill if base is None else base
    series = total_series(run_dir, BIN_MS)
    t = series["unix_ms"].to_numpy()
    rate = series["ops"].to_numpy() * (1000 / BIN_MS)
    before = rate[(t >= base - 2000) & (t + BIN_MS <= base - 100)]
    baseline = float(np.mean(before)) if len(before) else float("nan")
    after = np.nonzero(t >= kill)[0]
    # A fault shows once what was in flight drains (a cut rule lands, a partitioned leader's
    # last answers arrive): recovery is counted past the first bin that fell below 90%
    # in the next 2 s; none is no dip, and recovery is then the first good bin.
    dips = [i for i in after[: 2000 // BIN_MS] if rate[i] < 0.9 * baseline]
    recovered_at = None
    for i in after[after >= dips[0]] if dips else after:
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


def fault_flags(seconds: float, faults: Mapping[str, object]) -> dict[str, object]:
    """The failure experiments' cluster: 2 spaces, 2 groups, 2 clients, every number recorded."""
    return {
        "nsequence_spaces": 2, "nproxy_threads": 2, "nclient_threads": 2,
        "client_concurrency": 16, "expduration": seconds, "warmup": 1.0, "cooldown": 0.5,
        "record_seqnums": True, "record_noops": True, **faults,
    }


def fault_spec(name: str, seconds: float, base_port: int,
               faults: Mapping[str, object]) -> ExperimentSpec:
    return build(name, "mason", {**fault_flags(seconds, faults), "base_port": base_port})


def run_one(name: str, root: Path, seconds: float, **faults: float) -> Path:
    spec = fault_spec(name, seconds, free_port_block(64), faults)
    run_dir = root / name
    execute_local(spec, run_dir, console)
    return checked(name, run_dir)


def checked(name: str, run_dir: Path) -> Path:
    verdict = check_run(run_dir)
    if not verdict.ok:
        raise SystemExit(f"{name}: " + verdict.lines()[-1])
    return run_dir


# Partition rows: (row, flag, the event recovery is counted from, baseline event).
PARTITIONS = (
    ("partition_leader (from the cut)", "partition_leader", "partition_leader", ""),
    ("partition_leader (from the heal)", "partition_leader", "heal", "partition_leader"),
    ("partition_sequencer (from the heal)", "partition_sequencer", "heal",
     "partition_sequencer"),
)
HEAL_AFTER = 3.0


def run_on_testbed(name: str, root: Path, seconds: float, machine_info: Path,
                   testbed: Path | None, **faults: float) -> Path:
    from orchestrator.remote import RemoteOptions
    from orchestrator.remote import run_on_testbed as remote_run

    options = RemoteOptions(machine_info, None, None, None, False, testbed, 1)
    result = remote_run(name, "mason", fault_flags(seconds, faults), options, root / name,
                        console, console)
    if not result.ok:
        raise SystemExit(f"{name}: {result.cause}")
    return checked(name, root / name)


def partition_rows(root: Path, args: argparse.Namespace,
                   plots: list[str]) -> tuple[dict[str, dict[str, float]], str]:
    """The partition rows on the testbed, or none and why."""
    if args.machine_info is None:
        return {}, ("partition rows skipped: partitions need nodes on distinct addresses "
                    "and root on them; rerun with --machine-info (masonctl setup) and "
                    "--testbed on a rehearsal testbed (masonctl testbed up, as root)")
    results: dict[str, dict[str, float]] = {}
    runs: dict[str, Path] = {}
    for row, flag, event, baseline in PARTITIONS:
        if flag not in runs:
            console.print(f"recovery: {flag} (testbed)")
            # Longer: after the heal the group needs its connections back and a failover.
            runs[flag] = run_on_testbed(flag.replace("_", "-"), root, args.seconds + 4,
                                        args.machine_info, args.testbed,
                                        **{flag: args.kill_at, "heal_after": HEAL_AFTER})
            plots += [str(p) for p in plot_recovery(runs[flag], args.out /
                                                    f"recovery-{runs[flag].name}")]
        results[row] = recovery_time(runs[flag], event, baseline)
    return results, (f"partition rows on the testbed ({args.machine_info}): cut at "
                     f"{args.kill_at:g} s, healed {HEAL_AFTER:g} s later; a partition acts "
                     "on machines, so the other group on the cut machine is cut too")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--kill-at", type=float, default=3.0)
    parser.add_argument("--machine-info", type=Path, default=None,
                        help="testbed machines (masonctl setup) for the partition rows")
    parser.add_argument("--testbed", type=Path, default=None,
                        help="the rehearsal testbed's directory (key, known_hosts)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    plots: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mason-recovery-") as tmp:
        root = Path(tmp)
        for event in ("kill_leader", "kill_sequencer", "pause_leader"):
            console.print(f"recovery: {event}")
            run_dir = run_one(event.replace("_", "-"), root, args.seconds,
                              **{event: args.kill_at})
            results[event] = recovery_time(run_dir, event)
        partitions, partition_note = partition_rows(root, args, plots)
        results.update(partitions)
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
        for run_dir in (root / "kill-leader", root / "kill-sequencer", root / "pause-leader",
                        both, *restart_runs):
            for path in plot_recovery(run_dir, args.out / f"recovery-{run_dir.name}"):
                plots.append(str(path))
        shutil.copytree(both, args.out / "recovery-run", dirs_exist_ok=True)
    doc = {"unix_time": int(time.time()), "bin_ms": BIN_MS, "results": results,
           "plots": plots, "partitions": partition_note}
    (args.out / "recovery.json").write_text(json.dumps(doc, indent=2))
    lines = ["# recovery time", "",
             f"kill -9 at {args.kill_at:g} s into the measured window; recovered = end of the "
             f"first {BIN_MS} ms bin at >= 90% of the mean throughput of the 2 s before the "
             f"kill, with the mean over it and the next {SUSTAIN_BINS - 1} bins also >= 90%, "
             "after the first bin below 90% in the 2 s after the fault (none: no dip). "
             f"pause_leader: SIGSTOP for 2 s (recovery counted from the pause).",
             "",
             f"Restart rows: the killed process is started again {RESTART_AFTER:g} s after its "
             "kill (`--restart_after`); each row times one kill of that run.",
             "", partition_note, "",
             "| failure | throughput before (ops/s) | lowest after (ops/s) | recovery (s) |",
             "|---|---|---|---|"]
    for event, r in results.items():
        lines.append(f"| {event} | {r['baseline_ops_per_s']:,.0f} | "
                     f"{r['lowest_ops_per_s']:,.0f} | {r['recovery_s']:.2f} |")
    for row, *_ in PARTITIONS:
        if row not in results:
            lines.append(f"| {row} | - | - | skipped: needs a testbed |")
    lines += ["", "Plots: " + ", ".join(p for p in plots if p.endswith(".png"))]
    (args.out / "recovery.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
