"""The per-shard checker of ZK-Mason, on what a finished run left behind.

Inputs in the run directory:

* every shard replica's config `<name>.toml` (nodes.config.ZkShardConfig: its shard, its
  replica index, the number of shards) and its execution record `<name>.exec`
  (nodes/zkshard/execlog.py): the runs of numbers it executed, in order, each one
  operation (its client id and reqid) or a noop;
* the sequencers' final summaries `<name>.node.json` (nodes/status.py), whose `counters`
  say the next number of every space: the highest number handed out is one less.

Claims, per shard k (ordered by space k):

(a) every replica executed numbers 0, 1, 2, ... each once and in order: its runs start at
    0 and follow each other without gap or overlap (a replica killed or stopped early has
    a shorter prefix, not a hole);
(b) the replicas agree on what every number was (the same operation, by client id and
    reqid, or a noop) wherever two of them executed it;
(c) a majority of the shard's replicas executed through the highest number the sequencers
    handed out in space k. Without a sequencer summary (one killed and none restarted, or
    an older run) the figure is unknown: the verdict says so and rests on (a) and (b).
    The claim is exact for a run whose proxies drove everything they were handed before
    the stop; a number handed out at the very moment of the stop and never logged shows
    up here as a majority short of the figure.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from nodes import config as node_config
from nodes.status import read_summary
from nodes.zkshard.execlog import NOOP, ExecLogError, Run, read

__all__ = ["ReplicaRecord", "ShardVerdict", "Verdict", "check_run", "check_shard"]

StrPath = str | os.PathLike[str]

EXEC_SUFFIX = ".exec"
MAX_EXAMPLES = 5  # per replica or shard


@dataclass
class ReplicaRecord:
    """One replica's execution record, as read."""

    name: str
    shard: int
    replica: int
    runs: list[Run] | None  # None: it left no .exec file
    expected: bool = True  # its config asked for the record (record_exec)


@dataclass
class _Executed:
    """What one replica says each number was: operations by number, noops as intervals."""

    ops: dict[int, tuple[int, int]] = field(default_factory=dict)  # number -> (client, reqid)
    noop_starts: list[int] = field(default_factory=list)  # merged, sorted
    noop_ends: list[int] = field(default_factory=list)

    def noop_at(self, number: int) -> bool:
        i = bisect.bisect_right(self.noop_starts, number) - 1
        return i >= 0 and number <= self.noop_ends[i]


@dataclass
class ReplicaVerdict:
    name: str
    replica: int
    recorded: bool
    through: int  # the end of its gapless prefix from 0; -1 when it executed nothing
    problems: list[str] = field(default_factory=list)  # the first MAX_EXAMPLES
    violations: int = 0


@dataclass
class ShardVerdict:
    shard: int
    replicas: list[ReplicaVerdict]
    majority_through: int  # a majority of the replicas executed 0..this; -1: none did
    handed_out: int | None  # highest number the sequencers handed out; None: unknown
    disagreements: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def unrecorded(self) -> bool:
        """Fewer than a majority of the replicas left a record: nothing to go on."""
        return sum(r.recorded for r in self.replicas) < len(self.replicas) // 2 + 1

    @property
    def behind(self) -> bool:
        return self.handed_out is not None and self.majority_through < self.handed_out

    @property
    def ok(self) -> bool:
        return (not any(r.violations for r in self.replicas) and self.disagreements == 0
                and not self.behind and not self.unrecorded)

    def lines(self) -> list[str]:
        recorded = sum(r.recorded for r in self.replicas)
        handed = ("sequencer figure unknown" if self.handed_out is None
                  else f"sequencers handed out {_upto(self.handed_out)}")
        out = [f"shard {self.shard}: {recorded} of {len(self.replicas)} replica(s) recorded, "
               f"a majority executed {_upto(self.majority_through)} ({handed})"]
        for r in self.replicas:
            if not r.recorded:
                out.append(f"  {r.name} (replica {r.replica}): no execution record")
            out.extend(f"  {r.name} (replica {r.replica}): {p}" for p in r.problems)
            if r.violations > len(r.problems):
                out.append(f"  {r.name}: {r.violations - len(r.problems)} more")
        out.extend(f"  {e}" for e in self.examples)
        if self.disagreements > len(self.examples):
            out.append(f"  {self.disagreements - len(self.examples)} more disagreements")
        if self.behind:
            out.append(f"  a majority stopped at {self.majority_through}, short of "
                       f"{self.handed_out}")
        if not self.replicas:
            out.append("  no replica configured")
        elif self.unrecorded:
            out.append("  fewer than a majority of its replicas left a record")
        return out


@dataclass
class Verdict:
    ok: bool
    reason: str  # "" when ok
    shards: list[ShardVerdict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    recorded: bool = True  # False: no shard replica kept an execution record

    def lines(self) -> list[str]:
        if not self.recorded:
            return ["shards: no shard replica left an execution record"]
        out = [line for shard in self.shards for line in shard.lines()]
        out.extend(self.problems)
        if self.ok:
            known = all(s.handed_out is not None for s in self.shards)
            tail = "" if known else "; no sequencer summary: contiguity and agreement only"
            out.append(f"shards: OK ({len(self.shards)} shard(s){tail})")
        else:
            out.append(f"shards: FAILED ({self.reason})")
        return out


def _upto(n: int) -> str:
    return "nothing" if n < 0 else f"0..{n}"


def _replica_verdict(record: ReplicaRecord) -> tuple[ReplicaVerdict, _Executed]:
    verdict = ReplicaVerdict(record.name, record.replica, record.runs is not None, -1)
    executed = _Executed()
    noops: list[tuple[int, int]] = []
    expect = 0  # the next number, had every run followed the one before
    through = -1
    for run in record.runs or []:
        problem = ""
        if run.first > expect:
            problem = f"gap {expect}..{run.first - 1} (the run after starts at {run.first})"
        elif run.first < expect:
            if run.last < expect:
                problem = f"{_span(run)} executed again"
            else:
                problem = f"run {_span(run)} overlaps numbers up to {expect - 1} executed before"
        if problem:
            verdict.violations += 1
            if len(verdict.problems) < MAX_EXAMPLES:
                verdict.problems.append(problem)
        if run.first <= through + 1:
            through = max(through, run.last)
        expect = max(expect, run.last + 1)
        if run.kind == NOOP:
            noops.append((run.first, run.last))
        else:
            executed.ops.setdefault(run.first, (run.client_id, run.reqid))
    for first, last in sorted(noops):
        if executed.noop_ends and first <= executed.noop_ends[-1] + 1:
            executed.noop_ends[-1] = max(executed.noop_ends[-1], last)
        else:
            executed.noop_starts.append(first)
            executed.noop_ends.append(last)
    verdict.through = through
    return verdict, executed


def _what(owner: tuple[int, int]) -> str:
    return f"client {owner[0]} reqid {owner[1]}"


def _disagreements(names: list[str], seen: list[_Executed]) -> list[tuple[int, str]]:
    """(number, text) for every number two replicas executed differently."""
    found: list[tuple[int, str]] = []
    for a, b in combinations(range(len(seen)), 2):
        for x, y in ((a, b), (b, a)):
            for number, owner in seen[x].ops.items():
                other = seen[y].ops.get(number)
                if other is not None:
                    if x < y and other != owner:
                        found.append((number, f"number {number}: {names[x]} ran "
                                              f"{_what(owner)}, {names[y]} ran "
                                              f"{_what(other)}"))
                elif seen[y].noop_at(number):
                    found.append((number, f"number {number}: {names[x]} ran {_what(owner)}, "
                                          f"{names[y]} a noop"))
    return sorted(found)


def check_shard(shard: int, records: list[ReplicaRecord],
                handed_out: int | None = None) -> ShardVerdict:
    """Claims (a)-(c) for one shard's replicas."""
    records = sorted(records, key=lambda r: r.replica)
    pairs = [_replica_verdict(r) for r in records]
    verdicts = [p[0] for p in pairs]
    majority = len(records) // 2 + 1
    throughs = sorted((v.through for v in verdicts), reverse=True)
    majority_through = throughs[majority - 1] if len(throughs) >= majority else -1
    found = _disagreements([r.name for r in records], [p[1] for p in pairs])
    return ShardVerdict(shard, verdicts, majority_through, handed_out, len(found),
                        [text for _, text in found[:MAX_EXAMPLES]])


def handed_out_by_space(run_dir: Path) -> list[int] | None:
    """The highest number handed out in each space (-1: none), from the sequencers' final
    summaries; None when no sequencer left one."""
    counters: list[list[int]] = []
    for path in sorted(run_dir.glob("*.node.json")):
        try:
            summary = read_summary(path)
        except ValueError:
            continue
        if summary.role == "sequencer":
            counters.append(summary.counters)
    if not counters:
        return None
    nspaces = max(len(c) for c in counters)
    return [max(c[k] for c in counters if k < len(c)) - 1 for k in range(nspaces)]


def read_replicas(run_dir: Path) -> tuple[list[ReplicaRecord], int, list[str]]:
    """Every shard replica the run configured, with its record; the number of shards and
    the reasons any file could not be read."""
    records: list[ReplicaRecord] = []
    problems: list[str] = []
    nshards = 0
    for path in sorted(run_dir.glob("*.toml")):
        try:
            conf = node_config.load(path, node_config.ZkShardConfig)
        except node_config.ConfigError:
            continue  # another process's config, or the experiment's record
        nshards = max(nshards, conf.nspaces)
        exec_path = run_dir / f"{conf.name}{EXEC_SUFFIX}"
        runs: list[Run] | None = None
        if exec_path.is_file():
            try:
                runs = list(read(exec_path))
            except (ExecLogError, OSError) as exc:
                problems.append(f"unreadable execution record: {exc}")
        records.append(ReplicaRecord(conf.name, conf.shard, conf.replica, runs,
                                     conf.record_exec))
    return records, nshards, problems


def check_run(run_dir: StrPath) -> Verdict:
    run_dir = Path(run_dir)
    records, nshards, problems = read_replicas(run_dir)
    if not any(r.expected or r.runs is not None for r in records):
        return Verdict(True, "", recorded=False)
    handed = handed_out_by_space(run_dir)
    shards = []
    for k in range(nshards):
        figure = handed[k] if handed is not None and k < len(handed) else None
        shards.append(check_shard(k, [r for r in records if r.shard == k], figure))
    failed = [s for s in shards if not s.ok]
    reasons = []
    if problems:
        reasons.append(f"{len(problems)} unreadable record(s)")
    if failed:
        reasons.append("shard(s) " + ", ".join(str(s.shard) for s in failed))
    return Verdict(not reasons, "; ".join(reasons), shards, problems)


def _span(run: Run) -> str:
    return f"{run.first}..{run.last}" if run.last != run.first else str(run.first)
