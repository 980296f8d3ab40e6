"""`make mutation`: how many planted bugs the unit tests catch, per module that carries a
guarantee.

mutmut (configured in pyproject's [tool.mutmut]: the modules and their fast unit tests)
plants one small change at a time and runs the tests that reach it; a mutant the tests do
not fail on "survived". Writes bench-results/mutation.md and .json with a score per module
and the surviving mutants (`mutmut show <name>` prints one).

A module passes when at least 90% of its mutants are caught (killed or timed out) and every
mutant that is not caught is named as equivalent: a change no input can tell from the
original. Equivalents live in benchmarks/equivalent_mutants/<module>.toml, one file per
module (``nodes.bitmap.toml`` for nodes/bitmap.py), each entry a ``[[mutant]]`` table::

    [[mutant]]
    name = "nodes.bitmap.x_zero_runs__mutmut_11"
    reason = "x | -x == -(x & -x) for x > 0, and bit_length ignores the sign"

``name`` is the name `mutmut results` prints and must belong to the file's module;
``reason`` says why no input can distinguish the mutant (a non-empty sentence). Mutant names
number the mutations of one function in order, so editing a function renames its mutants:
an entry that no longer names a surviving mutant is reported as stale (it does not fail the
module, but should be removed or renamed). The score is (killed + timed out) / mutants;
the equivalent column counts the survivors the files explain. A mutant the run never reached
("not checked": an interrupted run) fails its module. Exits 1 when a module fails.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import msgspec

MIN_SCORE = 0.90
EQUIVALENTS = Path(__file__).with_name("equivalent_mutants")
CAUGHT = ("killed", "timeout")  # a hang is a caught mutant too
UNCHECKED = "not checked"  # the run stopped before reaching it: neither caught nor survived

# "nodes.proxy.batching.xǁAdmissionǁadmit__mutmut_3: survived" or "...x_split_ranges__..."
LINE = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+?)\.x[ǁ_][^:]*):\s*(?P<status>\w[\w ]*)$")


class Equivalent(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    reason: str


class EquivalentFile(msgspec.Struct, forbid_unknown_fields=True):
    mutant: list[Equivalent] = []


@dataclass
class ModuleResult:
    module: str
    statuses: dict[str, list[str]]  # status -> mutant names
    equivalents: dict[str, str]  # name -> reason, as listed for this module

    @property
    def total(self) -> int:
        return sum(len(names) for names in self.statuses.values())

    @property
    def caught(self) -> int:
        return sum(len(self.statuses.get(status, [])) for status in CAUGHT)

    @property
    def score(self) -> float:
        return self.caught / self.total if self.total else 1.0

    @property
    def survivors(self) -> list[str]:
        """Every checked mutant not caught: survived, but also "no tests", "suspicious", ..."""
        return sorted(n for s, names in self.statuses.items()
                      if s not in (*CAUGHT, UNCHECKED) for n in names)

    @property
    def unchecked(self) -> int:
        return len(self.statuses.get(UNCHECKED, []))

    @property
    def explained(self) -> list[str]:
        return [n for n in self.survivors if n in self.equivalents]

    @property
    def unexplained(self) -> list[str]:
        return [n for n in self.survivors if n not in self.equivalents]

    @property
    def stale(self) -> list[str]:
        """Listed as equivalent but not surviving (killed now, or renamed by an edit)."""
        survivors = set(self.survivors)
        return sorted(n for n in self.equivalents if n not in survivors)

    @property
    def passed(self) -> bool:
        return self.score >= MIN_SCORE and not self.unexplained and not self.unchecked

    @property
    def verdict(self) -> str:
        if self.unchecked:
            return f"FAIL ({self.unchecked} not checked)"
        return "pass" if self.passed else "FAIL"


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


def load_equivalents(folder: Path) -> dict[str, dict[str, str]]:
    """module -> mutant name -> reason. Raises ValueError (one line) on a malformed file."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted(folder.glob("*.toml")):
        module = path.stem
        try:
            entries = msgspec.toml.decode(path.read_bytes(), type=EquivalentFile).mutant
        except msgspec.ValidationError as e:
            raise ValueError(f"{path}: {e}") from None
        except msgspec.DecodeError as e:
            raise ValueError(f"{path}: not TOML: {e}") from None
        listed: dict[str, str] = {}
        for entry in entries:
            if not entry.name.startswith(module + ".x"):
                raise ValueError(f"{path}: {entry.name} is not a mutant of {module}")
            if not entry.reason.strip():
                raise ValueError(f"{path}: {entry.name} has no reason")
            if entry.name in listed:
                raise ValueError(f"{path}: {entry.name} is listed twice")
            listed[entry.name] = entry.reason.strip()
        found[module] = listed
    return found


def collect(table: dict[str, dict[str, list[str]]],
            equivalents: dict[str, dict[str, str]]) -> list[ModuleResult]:
    # A file for a module mutmut did not report is stale as a whole: it shows up with no
    # mutants, all of its entries stale.
    modules = sorted(set(table) | set(equivalents))
    return [ModuleResult(m, dict(table.get(m, {})), equivalents.get(m, {})) for m in modules]


def report(results: list[ModuleResult]) -> tuple[str, dict[str, object]]:
    lines = ["| module | mutants | killed | timed out | survived | equivalent | score | verdict |",
             "|" + "---|" * 8]
    rows = []
    for r in results:
        counts = Counter({status: len(names) for status, names in r.statuses.items()})
        lines.append(f"| {r.module} | {r.total} | {counts['killed']} | {counts['timeout']} | "
                     f"{len(r.survivors)} | {len(r.explained)} | {r.score:.0%} | {r.verdict} |")
        rows.append({"module": r.module, "mutants": r.total, "killed": counts["killed"],
                     "timeout": counts["timeout"], "survived": len(r.survivors),
                     "equivalent": len(r.explained), "score": round(r.score, 4),
                     "not_checked": r.unchecked, "passed": r.passed,
                     "unexplained": r.unexplained, "stale": r.stale,
                     "equivalents": {n: r.equivalents[n] for n in r.explained}})
    md = "\n".join(lines) + "\n"
    unexplained = [(r.module, n) for r in results for n in r.unexplained]
    if unexplained:
        md += ("\n## Unexplained survivors\n\nKill each with a test, or list it in "
               "benchmarks/equivalent_mutants/ with the reason no input can tell it apart.\n\n")
        md += "".join(f"- `{name}`\n" for _, name in unexplained)
    stale = [(r.module, n) for r in results for n in r.stale]
    if stale:
        md += ("\n## Stale equivalents\n\nListed as equivalent but no longer surviving "
               "(killed, or renamed by an edit of the function): remove or rename.\n\n")
        md += "".join(f"- `{name}`\n" for _, name in stale)
    return md, {"unix_time": int(time.time()), "min_score": MIN_SCORE, "modules": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--no-run", action="store_true", help="report the last run only")
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENTS,
                        help="folder of <module>.toml files naming equivalent mutants")
    args = parser.parse_args(argv)
    try:
        equivalents = load_equivalents(args.equivalents)
    except ValueError as e:  # checked before the long run, not after it
        sys.exit(f"error: {e}")
    if not args.no_run:
        mutmut("run")
    results = collect(parse(mutmut("results", "--all", "true")), equivalents)
    md, data = report(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mutation.json").write_text(json.dumps(data, indent=2))
    text = ("# Mutation testing\n\nmutmut over the modules that carry the guarantees, with "
            "their fast unit tests ([tool.mutmut] in pyproject.toml). A timed-out mutant "
            f"counts as caught. A module passes at a score of {MIN_SCORE:.0%} or more with "
            "every surviving mutant named as equivalent (benchmarks/equivalent_mutants/).\n\n"
            + md)
    (args.out / "mutation.md").write_text(text)
    print(text)
    failed = [r.module for r in results if not r.passed]
    if failed:
        sys.exit(f"mutation: {len(failed)} modules fail: {', '.join(failed)}")


if __name__ == "__main__":
    main()
