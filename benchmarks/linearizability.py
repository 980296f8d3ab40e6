"""How long the linearizability checker takes on histories of 10k operations per znode.

Histories come from the simulated correct register of the unit tests (8 clients with 2
operations outstanding each, 45% reads, 10% checks, 30% of the writes conditional); they
are written as client history files, read back and checked, as `masonctl
check-linearizable` does. Writes bench-results/linearizability.{json,md}.

    python -m benchmarks.linearizability [--out bench-results] [--ops 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from analysis.linearizability import check_operations, load_history
from benchmarks.register_sim import INITIAL, Outage, corrupt_value, ok_gets, simulate
from benchmarks.run import write_report
from tests.unit.test_zk_history import write_run


def scenarios(nops: int) -> list[tuple[str, dict[str, object], bool]]:
    # The simulated run lasts about 170 ns per operation; the outage sits in its middle.
    middle = nops * 85
    outage = Outage(start=middle, end=middle + nops * 10, applied=0.5, late=nops * 10)
    return [
        ("no faults", {}, False),
        ("1% unknown outcomes", {"unknown_rate": 0.01}, False),
        ("leader kill", {"outage": outage}, False),
        ("leader kill, one read corrupted", {"outage": outage}, True),
        ("leader kill, 4 znodes", {"outage": outage, "paths": ("/a", "/b", "/c", "/d")},
         False),
    ]


def bench(name: str, nops: int, options: dict[str, object], corrupt: bool,
          root: Path) -> dict[str, object]:
    paths = options.get("paths", ("/k0",))
    assert isinstance(paths, tuple)
    ops = simulate(1, nops * len(paths), 8, outstanding=2, **options)  # type: ignore[arg-type]
    if corrupt:
        ops = corrupt_value(ops, ok_gets(ops)[-len(ops) // 4])
    run_dir = root / name.replace(" ", "-").replace(",", "")
    write_run(ops, run_dir, {p: INITIAL for p in paths})
    start = time.perf_counter()
    history = load_history(run_dir)
    loaded = time.perf_counter()
    verdict = check_operations(history.operations, history.initial)
    checked = time.perf_counter()
    return {
        "history": name, "operations": len(ops), "znodes": len(paths),
        "unknown": sum(k.unknown for k in verdict.keys),
        "verdict": verdict.lines()[-1].removeprefix("linearizability: "),
        "steps": sum(k.steps for k in verdict.keys),
        "read_s": round(loaded - start, 3), "check_s": round(checked - loaded, 3),
    }


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| history | operations | znodes | unknown | verdict | search steps | read s "
             "| check s |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['history']} | {r['operations']} | {r['znodes']} | "
                     f"{r['unknown']} | {r['verdict']} | {r['steps']} | {r['read_s']} | "
                     f"{r['check_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--ops", type=int, default=10_000, help="operations per znode")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lin-bench-") as tmp:
        rows = [bench(name, args.ops, options, corrupt, Path(tmp))
                for name, options, corrupt in scenarios(args.ops)]
    write_report(args.out, "linearizability", "Linearizability checker", None,
                 f"{args.ops} operations per znode from 8 simulated clients with 2 "
                 "outstanding each; read = parsing the history files, check = the search.",
                 rows, table(rows))


if __name__ == "__main__":
    main()
