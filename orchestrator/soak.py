"""Seeded nemesis soaks: one run per seed with `--faults seed:N`, each ending with the checker.

`masonctl nemesis --seed N --count K` and `python -m benchmarks.soak` both go through
`soak`: the runs, then a table of seeds, their schedules and verdicts. A seed's schedule
is reproducible (orchestrator/fault_plan.py) and each run records it as nemesis.toml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from orchestrator.fault_plan import SCHEDULE_FILE, load
from orchestrator.runner import RunResult


@dataclass(frozen=True)
class SeedResult:
    seed: int
    name: str
    schedule: str  # "pause_leader@1.2+0.8 kill_follower@3.1 ..."
    ok: bool
    verdict: str


def seed_flags(seed: int, network: bool, seconds: float,
               nsequencers: int = 3) -> dict[str, object]:
    """The run flags of one soak run: the seeded schedule, standbys for its sequencer
    faults (two unless the machines allow fewer), every number recorded for the checker."""
    return {"faults": f"seed:{seed}" + (":net" if network else ""), "nsequencers": nsequencers,
            "expduration": seconds, "record_seqnums": True, "record_noops": True}


def describe(run_dir: Path) -> str:
    """The schedule a run recorded, one word per event."""
    path = run_dir / SCHEDULE_FILE
    if not path.exists():
        return "-"
    words = []
    for e in load(path):
        words.append(f"{e.kind}@{e.at:g}" + (f"+{e.duration:g}" if e.duration else "")
                     + (f"/g{e.group}" if e.group else ""))
    return " ".join(words) or "-"


def soak(seeds: range, results: Path, run: Callable[[int, str], RunResult],
         out: Console) -> list[SeedResult]:
    """Run each seed (`run(seed, name)` does one run into results/name) and print the
    table of verdicts."""
    done = []
    for seed in seeds:
        name = f"nemesis-seed-{seed}"
        result = run(seed, name)
        verdict = "checker OK" if result.ok else (result.cause or f"exit {result.code}")
        done.append(SeedResult(seed, name, describe(results / name), result.ok, verdict))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("seed", "schedule", "verdict"):
        table.add_column(column)
    for r in done:
        table.add_row(str(r.seed), r.schedule, "[green]pass[/]" if r.ok else f"[red]{r.verdict}")
    out.print(table)
    passed = sum(r.ok for r in done)
    out.print(f"{passed} of {len(done)} schedules passed")
    return done
