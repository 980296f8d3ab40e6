"""The log checker: Corfu's shared log, checked on what a finished run left behind.

Inputs in the run directory:

* `layout.json` (nodes/logserver/layout.py): the chains and their log-server processes;
* `<logserver>.entries` (nodes/logserver/dump.py), from every log server that stopped
  cleanly: what each replica held;
* `<client>.seqnums`: one line per acknowledged append, space 0 holding count 1 and the
  position as `last`; `<client>.summary.json` ties the file's name to its client id;
* `*.noops`: positions filled with holes (space 0 ranges).

Claims:

(a) every position 0..max (max = the highest position recorded by anyone or held by any
    replica) is present (data, hole, or trimmed) on every replica of its chain that left a
    dump, and those replicas agree on kind and digest. A chain's final view (the members
    sealed at the highest epoch any of its dumps knows) decides which replicas must hold
    the chain: a dumped replica that a reconfiguration dropped is reported, not required;
(b) every acknowledged append's position holds data whose digest is
    digest(entry_value(client_id, reqid, entry_size));
(c) every recorded noop position holds a hole;
(d) a position is owned by at most one acknowledged append or noop (identical records of
    one append, or of one noop position, count once);
(e) per client, acknowledged positions rise with reqid.

Trimmed positions are present but cannot be compared: they are counted, not failed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain, pairwise
from pathlib import Path

import numpy as np

from analysis.datfiles import DatFormatError, read_noops, read_seqnums, read_summary
from analysis.runfiles import run_files
from nodes.logserver.dump import DATA, HOLE, TRIMMED, DumpFormatError, EntryDump, read_dump
from nodes.logserver.layout import LAYOUT_FILE, LogLayout, chain_of, read_layout
from nodes.logserver.values import digest, entry_value

__all__ = ["Verdict", "check_log"]

StrPath = str | os.PathLike[str]

MAX_EXAMPLES = 5  # per kind of violation


@dataclass
class Verdict:
    ok: bool
    reason: str  # "" when ok
    positions: int = 0  # max + 1
    chains: int = 0
    dumps: int = 0  # chain replicas compared (a process holding 2 chains counts twice)
    dropped: int = 0  # chain replicas dumped but outside their chain's final view
    appends: int = 0  # distinct acknowledged appends
    noops: int = 0  # distinct noop positions
    repeated: int = 0  # identical records seen again (appends and noop positions)
    data: int = 0  # positions the replicas agree hold data
    holes: int = 0
    trimmed: int = 0
    missing: int = 0  # positions absent from at least one replica that must hold them
    disagreeing: int = 0  # positions whose replicas hold different kinds or bytes
    wrong_data: int = 0  # acknowledged appends whose position does not hold their bytes
    not_holes: int = 0  # recorded noops whose position does not hold a hole
    owned_twice: int = 0  # positions owned by more than one append or noop
    fifo_violations: int = 0
    examples: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"log: {self.positions} positions on {self.chains} chains, {self.dumps} chain"
            f" replicas compared ({self.dropped} dropped from their chain)",
            f"records: {self.appends} appends, {self.noops} noop positions"
            f" ({self.repeated} repeated records)",
            f"entries: {self.data} data, {self.holes} holes, {self.trimmed} trimmed",
        ]
        counts = [
            ("missing", self.missing), ("replicas disagree", self.disagreeing),
            ("appends without their bytes", self.wrong_data),
            ("noops without a hole", self.not_holes), ("owned twice", self.owned_twice),
            ("FIFO violations", self.fifo_violations),
        ]
        bad = [f"{n} {what}" for what, n in counts if n]
        out.append("violations: " + (", ".join(bad) if bad else "none"))
        out.extend(f"  {e}" for e in self.examples)
        out.extend(self.problems)
        out.append("log: OK" if self.ok else f"log: FAILED ({self.reason})")
        return out


@dataclass
class _Replica:
    name: str
    index: int  # in the chain's configured list
    dump: EntryDump


def check_log(run_dir: StrPath) -> Verdict:
    run = Path(run_dir)
    try:
        layout = read_layout(run / LAYOUT_FILE)
    except ValueError as exc:
        return Verdict(False, f"no usable {LAYOUT_FILE}", problems=[str(exc)])
    v = Verdict(True, "", chains=layout.nchains)
    reasons: list[str] = []

    replicas = _load_dumps(run, layout, v, reasons)
    if replicas is None:
        return _finish(v, reasons)
    records = _load_records(run, v, reasons)
    if records is None:
        return _finish(v, reasons)
    appends, noops = records

    # position -> who claims it and the (kind, digest) it must then hold
    owners: dict[int, list[tuple[str, tuple[str, str]]]] = defaultdict(list)
    for (cid, reqid, position) in appends:
        value = digest(entry_value(cid, reqid, layout.entry_size))
        owners[position].append((f"client {cid} reqid {reqid}", (DATA, value)))
    for position in noops:
        owners[position].append(("a noop", (HOLE, "-")))

    # The highest position claimed, held, or trimmed by a prefix (every position below a
    # prefix is trimmed). Every replica's dump holds its chain, so max() is never empty.
    dumped = [rep.dump for reps in replicas.values() for rep in reps]
    top = max(chain(owners, *(d.entries for d in dumped),
                    (st.prefix - 1 for d in dumped for st in d.chains.values())))
    v.positions = top + 1

    examples: dict[str, list[str]] = defaultdict(list)

    def example(kind: str, text: str) -> None:
        if len(examples[kind]) < MAX_EXAMPLES:
            examples[kind].append(text)

    for p in range(top + 1):
        c = chain_of(p, layout.nchains)
        held = [(rep.name, rep.dump.state_of(p, c)) for rep in replicas[c]]
        absent = [name for name, h in held if h is None]
        if absent:
            v.missing += 1
            example("missing", f"position {p}: missing on {', '.join(absent)}")
        values = {(h.kind, h.digest) for _, h in held if h is not None and h.kind != TRIMMED}
        if len(values) > 1:
            v.disagreeing += 1
            seen = "; ".join(f"{name} {h.kind} {h.digest}" for name, h in held if h is not None)
            example("disagree", f"position {p}: replicas disagree: {seen}")
        agreed = values.pop() if len(values) == 1 and not absent else None
        if agreed is None and not absent and held and all(
                h is not None and h.kind == TRIMMED for _, h in held):
            v.trimmed += 1
            agreed = (TRIMMED, "-")
        elif agreed is not None:
            v.data += agreed[0] == DATA
            v.holes += agreed[0] == HOLE
        claims = owners.get(p)
        if not claims:
            continue
        if len(claims) > 1:
            v.owned_twice += 1
            example("owned", f"position {p}: owned by {' and '.join(who for who, _ in claims)}")
        for who, want in claims:
            if agreed == want or agreed == (TRIMMED, "-"):
                continue
            found = "nothing agreed" if agreed is None else f"{agreed[0]} {agreed[1]}"
            if want[0] == DATA:
                v.wrong_data += 1
                example("data", f"position {p}: {who} appended {want[1]}, log holds {found}")
            else:
                v.not_holes += 1
                example("hole", f"position {p}: a noop, log holds {found}")

    v.fifo_violations = _check_fifo(appends, example)
    for kind in ("missing", "disagree", "data", "hole", "owned", "fifo"):
        v.examples.extend(examples[kind])
    for n, what in [
        (v.missing, "positions missing"), (v.disagreeing, "positions where replicas disagree"),
        (v.wrong_data, "appends not holding their bytes"),
        (v.not_holes, "noops not holding a hole"), (v.owned_twice, "positions owned twice"),
        (v.fifo_violations, "FIFO violations"),
    ]:
        if n:
            reasons.append(f"{n} {what}")
    return _finish(v, reasons)


def _finish(v: Verdict, reasons: list[str]) -> Verdict:
    v.ok = not reasons
    v.reason = "; ".join(reasons)
    return v


def _load_dumps(
    run: Path, layout: LogLayout, v: Verdict, reasons: list[str]
) -> dict[int, list[_Replica]] | None:
    """Per chain, the dumped replicas that must hold it (those of its final view)."""
    dumps: dict[str, EntryDump] = {}
    named = {name for names in layout.chains for name in names}
    for path in sorted(run.glob("*.entries")):
        name = path.name.removesuffix(".entries")
        if name not in named:
            reasons.append(f"{path.name} is from no log server of {LAYOUT_FILE}")
            continue
        try:
            dumps[name] = read_dump(path)
        except DumpFormatError as exc:
            v.problems.append(str(exc))
            reasons.append(f"unreadable dump {path.name}")
    if not dumps:
        reasons.append("no log server left a dump (*.entries)")
    if reasons:
        return None
    out: dict[int, list[_Replica]] = {}
    for c, names in enumerate(layout.chains):
        present = [_Replica(n, i, dumps[n]) for i, n in enumerate(names) if n in dumps]
        wrong = [r.name for r in present if c not in r.dump.chains]
        if wrong:
            reasons.append(f"chain {c}: dumps of {', '.join(wrong)} do not hold it")
            continue
        final = max((r.dump.chains[c] for r in present), key=lambda st: st.epoch, default=None)
        members = final.members if final is not None and final.members else range(len(names))
        required = [r for r in present if r.index in members]
        v.dropped += len(present) - len(required)
        v.dumps += len(required)
        if not required:
            reasons.append(f"chain {c}: no replica of its final view left a dump")
        out[c] = required
    return None if reasons else out


Append = tuple[int, int, int]  # client id, reqid, position


def _load_records(
    run: Path, v: Verdict, reasons: list[str]
) -> tuple[list[Append], set[int]] | None:
    ids: dict[str, int] = {}
    appends: set[Append] = set()
    noops: set[int] = set()
    try:
        for path in run_files(run, "*.summary.json"):
            s = read_summary(path)
            ids[s.name] = s.client_id
        for path in run_files(run, "*.seqnums"):
            cid, log = read_seqnums(path)
            name = path.name.removesuffix(".seqnums")
            if name in ids and ids[name] != cid:
                reasons.append(f"{path.name} says client {cid}, its summary {ids[name]}")
            assert log.reqid is not None
            rows = np.column_stack([log.reqid, log.counts[:, 0], log.lasts[:, 0]]).tolist()
            for reqid, count, last in rows:
                if count == 0:
                    continue  # no position: not an append
                if count != 1:
                    reasons.append(f"{path.name}: reqid {reqid} owns {count} positions")
                    continue
                record = (cid, reqid, last)
                if record in appends:
                    v.repeated += 1
                appends.add(record)
        for path in run_files(run, "*.noops"):
            log = read_noops(path)
            for count, last in np.column_stack([log.counts[:, 0], log.lasts[:, 0]]).tolist():
                for p in range(last - count + 1, last + 1):
                    if p in noops:
                        v.repeated += 1
                    noops.add(p)
    except DatFormatError as exc:
        v.problems.append(str(exc))
        reasons.append("unreadable records")
        return None
    negative = sorted(p for p in [*(a[2] for a in appends), *noops] if p < 0)
    if negative:
        reasons.append(f"{len(negative)} records of negative positions")
    v.appends, v.noops = len(appends), len(noops)
    if reasons:
        return None
    return sorted(appends), noops


def _check_fifo(appends: list[Append], example: Callable[[str, str], None]) -> int:
    """Appends sorted by (client, reqid, position): positions must rise with reqid, and one
    reqid owns one position."""
    bad = 0
    for (cid, reqid, pos), (cid2, reqid2, pos2) in pairwise(appends):
        if cid != cid2:
            continue
        if reqid == reqid2:
            bad += 1
            example("fifo", f"client {cid}: reqid {reqid} acknowledged at {pos} and {pos2}")
        elif pos2 <= pos:
            bad += 1
            example("fifo", f"client {cid}: reqid {reqid} at {pos} but later reqid {reqid2}"
                            f" at {pos2}")
    return bad
