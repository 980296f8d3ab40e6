"""Seeded fault soak: many random fault schedules, each run ending with the checker.

    python -m benchmarks.soak --schedules 30 [--first-seed 100] [--seconds 8]

Each seed gives a reproducible mix of pauses (leader, follower, serving sequencer) and
kills (orchestrator/fault_plan.py `seeded`), never more than one replica of a group down
at once and one sequencer fault at a time with a standby left. The runs are local, so
partitions (they need nodes on distinct addresses) are left to `masonctl nemesis --net` on
a testbed. Writes bench-results/soak.json (and each failed run's files under
bench-results/soak-failures/); exits non-zero if any run fails its checker.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from analysis.contiguity import check_run
from benchmarks.recovery import fault_spec
from orchestrator.experiment import RunFailed
from orchestrator.ports import free_port_block
from orchestrator.runner import RunResult, execute_local
from orchestrator.soak import seed_flags, soak

console = Console(stderr=True)


def soak_one(seed: int, name: str, seconds: float, root: Path) -> RunResult:
    flags = seed_flags(seed, False, seconds)
    spec = fault_spec(name, seconds, free_port_block(64),
                      {"faults": flags["faults"], "nsequencers": flags["nsequencers"]})
    try:
        execute_local(spec, root / name, console)
    except RunFailed as exc:
        return RunResult.of(exc)
    verdict = check_run(root / name)
    return RunResult(0) if verdict.ok else RunResult(1, verdict.lines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mason-soak-") as tmp:
        root = Path(tmp)
        runs = soak(range(args.first_seed, args.first_seed + args.schedules), root,
                    lambda seed, name: soak_one(seed, name, args.seconds, root), console)
        failed = [r for r in runs if not r.ok]
        for r in failed:  # kept for a look: every file of the run, its schedule included
            shutil.copytree(root / r.name, args.out / "soak-failures" / r.name,
                            dirs_exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps({"runs": [asdict(r) for r in runs]},
                                                   indent=2))
    print(f"{len(runs) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
