"""`make mutation`: how many planted bugs the unit tests catch, per module that carries a
guarantee.

mutmut (configured in pyproject's [tool.mutmut]: the modules and their fast unit tests)
plants one small change at a time and runs the tests that reach it; a mutant the tests do
not fail on "survived". Writes bench-results/mutation.md and .json with a score per module
and the surviving mutants (`mutmut show <name>` prints one).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

# "nodes.proxy.batching.xǁAdmissionǁadmit__mutmut_3: survived" or "...x_split_ranges__..."
LINE = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+?)\.x[ǁ_][^:]*):\s*(?P<status>\w[\w ]*)$")


def mutmut(*args: str) -> str:
    exe = Path(sys.executable).with_name("mutmut")
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0 and args[0] == "run":
        sys.exit(f"error: mutmut run failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def parse(results: str) -> dict[str, dict[str, list[str]]]:
    """module -> status -> mutant names."""
    table: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for line in results.splitlines():
        m = LINE.match(line)
        if m:
            table[m["module"]][m["status"].strip()].append(m["name"])
    return table


def report(table: dict[str, dict[str, list[str]]]) -> tuple[str, dict[str, object]]:
    rows = []
    lines = ["| module | mutants | killed | timed out | survived | score |", "|" + "---|" * 6]
    for module in sorted(table):
        counts = Counter({status: len(names) for status, names in table[module].items()})
        total = sum(counts.values())
        caught = counts["killed"] + counts["timeout"]  # a hang is a caught mutant too
        score = caught / total if total else 1.0
        rows.append({"module": module, "mutants": total, "killed": counts["killed"],
                     "timeout": counts["timeout"], "survived": counts["survived"],
                     "score": round(score, 4), "survivors": table[module]["survived"]})
        lines.append(f"| {module} | {total} | {counts['killed']} | {counts['timeout']} | "
                     f"{counts['survived']} | {score:.0%} |")
    return "\n".join(lines) + "\n", {"unix_time": int(time.time()), "modules": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--no-run", action="store_true", help="report the last run only")
    args = parser.parse_args(argv)
    if not args.no_run:
        mutmut("run")
    md, data = report(parse(mutmut("results", "--all", "true")))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mutation.json").write_text(json.dumps(data, indent=2))
    text = ("# Mutation testing\n\nmutmut over the modules that carry the guarantees, with "
            "their fast unit tests ([tool.mutmut] in pyproject.toml). A timed-out mutant "
            "counts as caught.\n\n" + md)
    (args.out / "mutation.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
