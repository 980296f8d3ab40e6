"""The contiguity and FIFO checker: Mason's correctness claims, checked on a run's records.

Claims (mason-core.md 3.10 and 6):

* contiguity: in every space, the numbers handed out (to operations and to noops) are
  exactly 0..max, each once: no gap, no duplicate;
* FIFO: per client, numbers rise with reqid in every space;
* every client operation was answered (``unanswered`` is 0 in every summary).

Inputs: every ``*.seqnums`` (one line per answered operation), ``*.noops`` (numbers consumed
by committed noops) and ``*.summary.json`` in the run directory.

The same answer may reach a client twice (a retransmission answered by a replica that also
answered the first copy) and a noop may be recorded twice (a new leader re-sends it): such
identical records are counted and kept once. The same reqid with *different* numbers is a
violation.

Runs hold millions of numbers, so each space is checked on its ranges, not number by number:
sorted by first number, a running maximum of the range ends tells, for each range, which of
its numbers are new (distinct), already seen (duplicates) or preceded by a hole (a gap). That
is O(ranges log ranges) time and memory whatever the counts, and a corrupt huge number costs
nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analysis.datfiles import DatFormatError, RangeLog, read_noops, read_seqnums, read_summary
from analysis.runfiles import run_files

__all__ = ["FifoViolation", "SpaceStats", "Verdict", "check_run"]

StrPath = str | os.PathLike[str]
IntArray = npt.NDArray[np.int64]

MAX_REPORTED = 10
NO_SEQNUMS = "no seqnums recorded (run with --record-seqnums)"


@dataclass
class SpaceStats:
    """What one sequence space's numbers look like. ``max`` is -1 when none were handed out."""

    space: int
    max: int
    op_numbers: int
    noop_numbers: int
    distinct: int
    missing: int  # numbers in 0..max never handed out
    duplicated: int  # extra occurrences: (op + noop numbers) - distinct
    gaps: list[tuple[int, int]] = field(default_factory=list)  # first <= 10 holes, inclusive
    duplicates: list[tuple[int, list[str]]] = field(default_factory=list)  # number, holders
    invalid: int = 0  # ranges reaching below 0

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.invalid == 0


@dataclass(frozen=True)
class FifoViolation:
    client_id: int
    space: int  # -1 when the violation is a reqid answered twice with different numbers
    reqid_before: int
    reqid: int
    detail: str


@dataclass
class Verdict:
    ok: bool
    reason: str  # "" when ok
    nspaces: int = 0
    clients: int = 0
    operations: int = 0  # distinct answered operations
    noops: int = 0  # distinct noop records
    repeated_answers: int = 0  # identical answers recorded again
    repeated_noops: int = 0
    spaces: list[SpaceStats] = field(default_factory=list)
    fifo_violations: list[FifoViolation] = field(default_factory=list)  # first <= 10
    fifo_violation_count: int = 0
    unanswered: dict[int, int] = field(default_factory=dict)  # client_id -> count, nonzero only
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.nspaces:
            out.append(
                f"records: {self.clients} clients, {self.operations} operations"
                f" ({self.repeated_answers} repeated answers), {self.noops} noops"
                f" ({self.repeated_noops} repeated)"
            )
        for s in self.spaces:
            head = (
                f"space {s.space}: max {s.max}, {s.op_numbers} op + {s.noop_numbers} noop numbers"
            )
            if s.ok:
                out.append(f"{head}, contiguous")
                continue
            out.append(f"{head}, {s.missing} missing, {s.duplicated} duplicated")
            if s.invalid:
                out.append(f"  {s.invalid} ranges reach below 0")
            if s.gaps:
                out.append("  first gaps: " + ", ".join(_span(lo, hi) for lo, hi in s.gaps))
            for number, holders in s.duplicates:
                out.append(f"  duplicate {number}: " + "; ".join(holders))
        if self.nspaces:
            if self.fifo_violation_count:
                out.append(f"FIFO: {self.fifo_violation_count} violations")
                out.extend(f"  client {v.client_id}: {v.detail}" for v in self.fifo_violations)
            else:
                out.append(f"FIFO: OK ({self.clients} clients)")
        for cid, n in sorted(self.unanswered.items()):
            out.append(f"client {cid}: {n} operations never answered")
        out.extend(self.problems)
        out.append("contiguity: OK" if self.ok else f"contiguity: FAILED ({self.reason})")
        return out


def check_run(run_dir: StrPath) -> Verdict:
    run_dir = Path(run_dir)
    seq_paths = run_files(run_dir, "*.seqnums")
    noop_paths = run_files(run_dir, "*.noops")
    if not seq_paths:
        return Verdict(ok=False, reason=NO_SEQNUMS, problems=[f"{run_dir}: no *.seqnums files"])

    reasons: list[str] = []
    problems: list[str] = []
    clients: dict[int, list[RangeLog]] = {}
    try:
        for p in seq_paths:
            cid, log = read_seqnums(p)
            clients.setdefault(cid, []).append(log)
        noop_logs = [(p.stem, read_noops(p)) for p in noop_paths]
    except DatFormatError as e:
        # A verdict, not an exception: `masonctl check` prints it like any other failure.
        name = Path(str(e).partition(":")[0]).name
        return Verdict(ok=False, reason=f"unreadable records in {name}", problems=[str(e)])
    space_counts = {log.nspaces for logs in clients.values() for log in logs}
    space_counts |= {log.nspaces for _, log in noop_logs}
    if len(space_counts) != 1:
        return Verdict(
            ok=False,
            reason="files disagree on the number of spaces",
            problems=[f"spaces per file: {sorted(space_counts)}"],
        )
    nspaces = space_counts.pop()

    ops = _client_table(clients, nspaces)
    ops, repeated = _drop_repeats(ops)
    noop_names = [name for name, _ in noop_logs]
    noops = _noop_table(noop_logs, nspaces)
    noops, repeated_noops, doubled = _drop_noop_repeats(noops, [log.group for _, log in noop_logs])
    if doubled:
        reasons.append(f"{doubled} noops committed twice by one replica")

    fifo, fifo_count = _check_fifo(ops, nspaces)
    if fifo_count:
        reasons.append(f"{fifo_count} FIFO violations")

    spaces = [_check_space(s, ops, noops, noop_names) for s in range(nspaces)]
    for st in spaces:
        if st.missing:
            reasons.append(f"gap in space {st.space}: {st.missing} numbers missing")
        if st.duplicated:
            reasons.append(f"duplicates in space {st.space}: {st.duplicated} extra")
        if st.invalid:
            reasons.append(f"space {st.space}: {st.invalid} ranges below 0")

    unanswered: dict[int, int] = {}
    summarized: set[int] = set()
    for p in run_files(run_dir, "*.summary.json"):
        try:
            s = read_summary(p)
        except DatFormatError as e:
            problems.append(str(e))
            reasons.append("unreadable summary")
            continue
        summarized.add(s.client_id)
        have = sum(len(log) for log in clients.get(s.client_id, []))
        if s.recorded >= 0 and have != s.recorded:
            # A lost or dropped record (the one owning the highest number, say) would
            # otherwise pass as a shorter run.
            problems.append(f"client {s.client_id}: {have} records, its summary says "
                            f"{s.recorded}")
            reasons.append(f"client {s.client_id} records incomplete")
        if s.unanswered:
            unanswered[s.client_id] = unanswered.get(s.client_id, 0) + s.unanswered
    if unanswered:
        total = sum(unanswered.values())
        reasons.append(f"{total} unanswered operations at {len(unanswered)} clients")
    unsummarized = sorted(set(clients) - summarized)
    if unsummarized:
        # Without its summary a client's unanswered operations are unknown: not proven.
        problems.append("no summary.json for clients " + ", ".join(map(str, unsummarized)))
        reasons.append(f"{len(unsummarized)} clients without a summary")

    return Verdict(
        ok=not reasons,
        reason="; ".join(reasons),
        nspaces=nspaces,
        clients=len(clients),
        operations=len(ops.rows),
        noops=len(noops.rows),
        repeated_answers=repeated,
        repeated_noops=repeated_noops,
        spaces=spaces,
        fifo_violations=fifo,
        fifo_violation_count=fifo_count,
        unanswered=unanswered,
        problems=problems,
    )


# ---------------------------------------------------------------------------------------------
# tables: one row per record, columns owner, key, counts..., lasts...


@dataclass
class _Table:
    """Records of one kind, as one int64 matrix: ``[owner, key, c0..cn-1, l0..ln-1]``.

    For operations owner = client id and key = reqid; for noops owner = index of the noops
    file and key = line index within it.
    """

    rows: IntArray
    nspaces: int

    @property
    def owner(self) -> IntArray:
        return self.rows[:, 0]

    @property
    def key(self) -> IntArray:
        return self.rows[:, 1]

    def counts(self, s: int) -> IntArray:
        return self.rows[:, 2 + s]

    def lasts(self, s: int) -> IntArray:
        return self.rows[:, 2 + self.nspaces + s]


def _client_table(clients: dict[int, list[RangeLog]], nspaces: int) -> _Table:
    logs = [(cid, log) for cid, group in clients.items() for log in group]
    # One preallocated matrix filled column-wise: runs hold millions of rows, so no
    # intermediate per-file stacks.
    rows = np.empty((sum(len(log) for _, log in logs), 2 + 2 * nspaces), dtype=np.int64)
    at = 0
    for cid, log in logs:
        assert log.reqid is not None
        end = at + len(log)
        rows[at:end, 0] = cid
        rows[at:end, 1] = log.reqid
        rows[at:end, 2 : 2 + nspaces] = log.counts
        rows[at:end, 2 + nspaces :] = log.lasts
        at = end
    return _Table(rows, nspaces)


def _noop_table(logs: list[tuple[str, RangeLog]], nspaces: int) -> _Table:
    rows = np.empty((sum(len(log) for _, log in logs), 2 + 2 * nspaces), dtype=np.int64)
    at = 0
    for i, (_, log) in enumerate(logs):
        end = at + len(log)
        rows[at:end, 0] = i
        rows[at:end, 1] = np.arange(len(log))
        rows[at:end, 2 : 2 + nspaces] = log.counts
        rows[at:end, 2 + nspaces :] = log.lasts
        at = end
    return _Table(rows, nspaces)


def _drop_noop_repeats(t: _Table, file_groups: list[int]) -> tuple[_Table, int, int]:
    """Keep one copy of each noop: the replicas of a group each record the group's noops.

    Identity is (group, ranges); files from before groups were recorded (group -1) fall
    back to the ranges alone. Identical lines from *different* files of one group are one
    noop seen twice (dropped, counted as repeats). Identical lines in *one* file are two
    commits of the same numbers by one replica, and the same ranges in two groups are two
    commits too: both are kept, so the space check sees their numbers twice. Returns the
    table, the repeats dropped and the double commits found within a file.
    """
    rows = t.rows
    if len(rows) == 0:
        return t, 0, 0
    groups = np.asarray(file_groups, dtype=np.int64)[rows[:, 0]]
    ident = np.column_stack([groups, rows[:, 2:]])
    order = np.lexsort(ident.T[::-1])  # lexsort's last key is the primary one
    rows, ident = rows[order], ident[order]
    same = np.concatenate([[False], (ident[1:] == ident[:-1]).all(axis=1)])
    same &= (rows[:, 2 : 2 + t.nspaces] > 0).any(axis=1)  # an empty noop repeats nothing
    # Runs of identical noops: a repeat from a file already in the run is a double commit.
    doubled = 0
    drop = np.zeros(len(rows), dtype=bool)
    seen_files: set[int] = set()
    for i in range(len(rows)):
        if not same[i]:
            seen_files = {int(rows[i, 0])}
            continue
        owner = int(rows[i, 0])
        if owner in seen_files:
            doubled += 1
        else:
            drop[i] = True
            seen_files.add(owner)
    return _Table(rows[~drop], t.nspaces), int(drop.sum()), doubled


def _drop_repeats(t: _Table) -> tuple[_Table, int]:
    """Sort by (owner, key, ranges) and drop rows identical to their predecessor.

    For operations the identity is (client, reqid, ranges): the arrival time differs between
    two deliveries of one answer, so it is not part of it. (Noops: `_drop_noop_repeats`.)
    """
    rows = t.rows
    if len(rows) == 0:
        return t, 0
    order = _order_by_owner_key(rows[:, 0], rows[:, 1])
    if not (order[1:] > order[:-1]).all():  # skip the copy when already in order
        rows = rows[order]
    same = np.zeros(len(rows), dtype=bool)
    twin = np.flatnonzero((rows[1:, 0] == rows[:-1, 0]) & (rows[1:, 1] == rows[:-1, 1]))
    if twin.size:
        # Rare: reqids recorded more than once. Order those rows by their ranges too, so
        # that identical answers sit side by side even when a different one came between.
        at = np.union1d(twin, twin + 1)
        sub = rows[at]
        rows[at] = sub[np.lexsort(sub.T[::-1])]
        same[at[1:]] = (rows[at[1:]] == rows[at[:-1]]).all(axis=1)
    return _Table(rows[~same], t.nspaces), int(same.sum())


def _order_by_owner_key(owner: IntArray, key: IntArray) -> IntArray:
    """Stable order by (owner, key). Each client's records arrive nearly sorted by reqid, so
    one stable sort of a packed key (merge sort on runs) beats a general lexsort by far."""
    if owner.min() >= 0 and key.min() >= 0:
        bits = int(key.max()).bit_length()
        if int(owner.max()).bit_length() + bits <= 62:
            return np.argsort((owner << bits) | key, kind="stable")
    return np.lexsort((key, owner))


def _check_fifo(ops: _Table, nspaces: int) -> tuple[list[FifoViolation], int]:
    """Per client, sorted by reqid (rows are already sorted by client, reqid, ranges)."""
    found: list[FifoViolation] = []
    rows = ops.rows
    if len(rows) < 2:
        return found, 0
    owner, key = ops.owner, ops.key
    # The same reqid answered with different numbers (identical repeats are already gone).
    twice = np.flatnonzero((owner[1:] == owner[:-1]) & (key[1:] == key[:-1]))
    total = int(twice.size)
    for i in twice[:MAX_REPORTED]:
        a, b = rows[i], rows[i + 1]
        found.append(
            FifoViolation(
                int(owner[i]),
                -1,
                int(key[i]),
                int(key[i]),
                f"reqid {int(key[i])} answered twice with different numbers: "
                f"{_ranges_text(a, nspaces)} and {_ranges_text(b, nspaces)}",
            )
        )
    for s in range(nspaces):
        has = np.flatnonzero(ops.counts(s) > 0)
        if has.size < 2:
            continue
        o, k = owner[has], key[has]
        last = ops.lasts(s)[has]
        first = last - ops.counts(s)[has] + 1
        bad = np.flatnonzero((o[1:] == o[:-1]) & (k[1:] != k[:-1]) & (first[1:] <= last[:-1]))
        total += int(bad.size)
        for j in bad[: max(0, MAX_REPORTED - len(found))]:
            found.append(
                FifoViolation(
                    int(o[j]),
                    s,
                    int(k[j]),
                    int(k[j + 1]),
                    f"space {s}: reqid {int(k[j])} got {_span(int(first[j]), int(last[j]))}"
                    f" but later reqid {int(k[j + 1])} got "
                    f"{_span(int(first[j + 1]), int(last[j + 1]))}",
                )
            )
    return found, total


def _check_space(s: int, ops: _Table, noops: _Table, noop_names: list[str]) -> SpaceStats:
    oc, ol = ops.counts(s), ops.lasts(s)
    nc, nl = noops.counts(s), noops.lasts(s)
    op_numbers, noop_numbers = int(oc.sum()), int(nc.sum())
    # Ranges of both kinds, whether each is a noop's, and the row index, for reports.
    om, nm = oc > 0, nc > 0
    first = np.concatenate([(ol - oc + 1)[om], (nl - nc + 1)[nm]])
    end = np.concatenate([ol[om], nl[nm]])
    is_noop = np.repeat([False, True], [int(om.sum()), int(nm.sum())])
    row = np.concatenate([np.flatnonzero(om), np.flatnonzero(nm)])

    invalid = first < 0
    n_invalid = int(invalid.sum())
    if n_invalid:
        first, end, is_noop, row = (
            first[~invalid], end[~invalid], is_noop[~invalid], row[~invalid]
        )
    if first.size == 0:
        return SpaceStats(s, -1, op_numbers, noop_numbers, 0, 0, 0, invalid=n_invalid)

    order = np.lexsort((end, first))
    first, end, is_noop, row = first[order], end[order], is_noop[order], row[order]
    covered = np.maximum.accumulate(end)  # highest number seen up to and including range i
    before = np.concatenate([[-1], covered[:-1]])  # ... up to range i-1
    # Numbers of range i not seen before it: from max(first, before+1) to end.
    fresh = np.maximum(0, end - np.maximum(first, before + 1) + 1)
    distinct = int(fresh.sum())
    top = int(covered[-1])
    total = int((end - first + 1).sum())

    gap_at = np.flatnonzero(first > before + 1)
    gaps = [(int(before[i]) + 1, int(first[i]) - 1) for i in gap_at[:MAX_REPORTED]]

    dup_at = np.flatnonzero(first <= before)
    dup_numbers = _first_duplicates(first[dup_at], np.minimum(end, before)[dup_at])
    duplicates = []
    for number in dup_numbers:
        hold = np.flatnonzero((first <= number) & (end >= number))
        holders = [
            _holder(bool(is_noop[h]), int(row[h]), ops, noops, noop_names) for h in hold[:4]
        ]
        if hold.size > 4:
            holders.append(f"{hold.size - 4} more")
        duplicates.append((number, holders))

    return SpaceStats(
        space=s,
        max=top,
        op_numbers=op_numbers,
        noop_numbers=noop_numbers,
        distinct=distinct,
        missing=top + 1 - distinct,
        duplicated=total - distinct,
        gaps=gaps,
        duplicates=duplicates,
        invalid=n_invalid,
    )


def _first_duplicates(lo: IntArray, hi: IntArray) -> list[int]:
    """The smallest <= 10 numbers inside the duplicate spans [lo, hi] (sorted by lo).

    Only the first 10 numbers of each span can be among the 10 smallest, and spans further
    down the list start later, so a bounded prefix of the list is enough.
    """
    lo, hi = lo[:10_000], hi[:10_000]
    if lo.size == 0:
        return []
    width = np.minimum(hi - lo + 1, MAX_REPORTED)
    numbers = np.repeat(lo, width) + (
        np.arange(int(width.sum())) - np.repeat(np.cumsum(width) - width, width)
    )
    return [int(x) for x in np.unique(numbers)[:MAX_REPORTED]]


def _holder(is_noop: bool, row: int, ops: _Table, noops: _Table, noop_names: list[str]) -> str:
    if is_noop:
        return f"noop #{int(noops.key[row]) + 1} in {noop_names[int(noops.owner[row])]}.noops"
    return f"client {int(ops.owner[row])} reqid {int(ops.key[row])}"


def _ranges_text(r: IntArray, nspaces: int) -> str:
    spans = []
    for s in range(nspaces):
        c, last = int(r[2 + s]), int(r[2 + nspaces + s])
        spans.append(_span(last - c + 1, last) if c else "-")
    # Parentheses, not brackets: the lines are printed through rich, which reads [..] as markup.
    return "(" + ", ".join(spans) + ")"


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}..{hi}"
