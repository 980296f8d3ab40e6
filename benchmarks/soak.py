"""Seeded fault soak: many random failure schedules, each run ending with the checker.

    python -m benchmarks.soak --schedules 20 [--first-seed 100] [--seconds 5]

Each seed gives a reproducible schedule (orchestrator.faults.seeded_schedule): which of
kill leader / kill follower / kill sequencer / leader dying mid-batch, and when. Writes
bench-results/soak.json; exits non-zero if any run loses contiguity.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from analysis.contiguity import check_run
from benchmarks.recovery import fault_spec
from orchestrator.experiment import RunFailed
from orchestrator.faults import seeded_schedule
from orchestrator.ports import free_port_block
from orchestrator.runner import execute_local

console = Console(stderr=True)


def soak_one(seed: int, seconds: float, root: Path) -> dict[str, object]:
    schedule = seeded_schedule(seed, seconds)
    spec = fault_spec(f"seed-{seed}", seconds, free_port_block(64), schedule)
    run_dir = root / spec.name
    try:
        execute_local(spec, run_dir, console)
    except RunFailed as exc:
        return {"seed": seed, "schedule": schedule, "ok": False, "verdict": str(exc)}
    verdict = check_run(run_dir)
    return {"seed": seed, "schedule": schedule, "ok": verdict.ok,
            "verdict": verdict.lines()[-1]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="mason-soak-") as tmp:
        for seed in range(args.first_seed, args.first_seed + args.schedules):
            result = soak_one(seed, args.seconds, Path(tmp))
            console.print(f"seed {seed}: {result['schedule']} -> {result['verdict']}")
            runs.append(result)
    failed = [r for r in runs if not r["ok"]]
    (args.out / "soak.json").write_text(json.dumps({"runs": runs}, indent=2))
    print(f"{len(runs) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
