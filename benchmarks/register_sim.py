"""A correct ZooKeeper register, simulated: concurrent clients whose operations take effect
at a random instant inside their interval, for histories that must be linearizable.

Seeded and replayable. Every set writes data no other operation writes, so a corrupted
answer can be made that no linearization explains (see `corrupt_*`).
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from dataclasses import dataclass

from analysis.linearizability import apply
from nodes.zk.history import Operation, Outcome, VersionedData

INITIAL = VersionedData(b"initial", 0)
NEVER_WRITTEN = b"never-written"


@dataclass
class Outage:
    """A leader kill: operations in flight at `start` or invoked before `end` get no answer;
    each takes effect with probability `applied`, at some instant up to `late` ns after
    the outage, or never."""

    start: int
    end: int
    applied: float = 0.5
    late: int = 50_000


@dataclass
class _Pending:
    process: int
    op: int
    kind: str
    path: str
    invoke_ns: int
    value: bytes | None
    version: int | None
    response_ns: int
    unknown: bool
    applies: bool


def simulate(seed: int, nops: int, nclients: int = 4, paths: tuple[str, ...] = ("/k0",),
             *, outstanding: int = 2, unknown_rate: float = 0.0,
             outage: Outage | None = None, get_rate: float = 0.45, check_rate: float = 0.1,
             conditional_rate: float = 0.3) -> list[Operation]:
    """`nops` operations from `nclients` clients with `outstanding` operations each."""
    rng = random.Random(seed)
    state: dict[str, tuple[object, int] | None] = {p: INITIAL for p in paths}
    ops: list[Operation] = []
    # Events: (time, order, what, payload); what: 0 invoke, 1 take effect, 2 respond.
    events: list[tuple[int, int, int, object]] = []
    order = 0
    issued = 0
    results: dict[tuple[int, int], tuple[tuple[object, ...], tuple[object, int] | None]] = {}

    def push(t: int, what: int, payload: object) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (t, order, what, payload))

    for process in range(nclients):
        for _ in range(outstanding):
            push(rng.randrange(1000), 0, process)
    counter = 0
    while events:
        t, _, what, payload = heapq.heappop(events)
        if what == 0:
            assert isinstance(payload, int)
            client = payload
            if issued >= nops:
                continue
            issued += 1
            counter += 1
            path = rng.choice(paths)
            cur = state[path]
            r = rng.random()
            value: bytes | None = None
            version: int | None = None
            if r < get_rate:
                kind = "get"
            elif r < get_rate + check_rate:
                kind = "check"
                version = (cur[1] if cur else 0) + rng.choice((0, 0, -1, 1))
            else:
                kind = "set"
                value = f"p{client}-{counter}".encode()
                conditional = rng.random() < conditional_rate
                version = (cur[1] if cur else 0) + rng.choice((0, 0, -1)) if conditional else -1
                version = max(version, -1)
            duration = rng.randrange(1, 5000)
            effect = t + rng.randrange(0, duration + 1)
            unknown = rng.random() < unknown_rate
            applies = True
            if outage is not None and t <= outage.end and t + duration >= outage.start:
                unknown = True
            if unknown:
                applies = rng.random() < (outage.applied if outage else 0.5)
                late = outage.late if outage else 10 * duration
                effect = max(t, outage.end if outage else t) + rng.randrange(0, late)
            pending = _Pending(client, counter, kind, path, t, value, version, t + duration,
                               unknown, applies)
            if applies:
                push(effect, 1, pending)
            push(t + duration, 2, pending)
        elif what == 1:
            assert isinstance(payload, _Pending)
            p = payload
            result, after = apply(state[p.path], p.kind, p.value, p.version)
            results[(p.process, p.op)] = (result, after)
            state[p.path] = after
        else:
            assert isinstance(payload, _Pending)
            p = payload
            push(p.response_ns + rng.randrange(0, 500), 0, p.process)
            if p.unknown:
                ops.append(Operation(p.process, p.op, p.kind, p.path, p.invoke_ns, None,
                                     Outcome.UNKNOWN, p.value, p.version))
                continue
            result, after = results.pop((p.process, p.op))
            ops.append(_answered(p, result, after))
    return ops


def _answered(p: _Pending, result: tuple[object, ...],
              after: tuple[object, int] | None) -> Operation:
    common = (p.process, p.op, p.kind, p.path, p.invoke_ns, p.response_ns)
    if result[0] != "ok":
        return Operation(*common, Outcome.FAIL, p.value, p.version, error=str(result[0]))
    znode = None
    if p.kind in ("get", "set"):
        assert after is not None and isinstance(after[0], bytes)
        znode = VersionedData(after[0], after[1])
    return Operation(*common, Outcome.OK, p.value, p.version, result=znode)


# ---- corruptions that no linearization can explain ------------------------------------------


def ok_gets(ops: list[Operation]) -> list[int]:
    return [i for i, op in enumerate(ops) if op.kind == "get" and op.outcome is Outcome.OK]


def pairable_gets(ops: list[Operation]) -> list[int]:
    """Reads of data whose version is fixed: the initial data, or data of an ok set."""
    fixed = {INITIAL.value} | {o.value for o in ops
                               if o.kind == "set" and o.outcome is Outcome.OK}
    return [i for i in ok_gets(ops) if ops[i].result.value in fixed]  # type: ignore[union-attr]


def corrupt_value(ops: list[Operation], i: int) -> list[Operation]:
    """Read i returns data that nothing ever wrote."""
    op = ops[i]
    assert op.kind == "get" and op.result is not None
    return _replace(ops, i, result=VersionedData(NEVER_WRITTEN, op.result.version))


def corrupt_version_skip(ops: list[Operation], i: int) -> list[Operation]:
    """Answer i (an ok get or set) names a version beyond every write that could have
    happened on its znode."""
    op = ops[i]
    assert op.result is not None
    writes = sum(o.kind == "set" and o.path == op.path and o.outcome is not Outcome.FAIL
                 for o in ops)
    return _replace(ops, i, result=VersionedData(op.result.value, INITIAL.version + writes + 1))


def corrupt_pairing(ops: list[Operation], i: int) -> list[Operation]:
    """Read i returns data with a version it never had: the data was written once, by a set
    whose answer (or the initial state) fixes its version."""
    op = ops[i]
    assert op.kind == "get" and op.result is not None
    return _replace(ops, i, result=VersionedData(op.result.value, op.result.version + 1))


def _replace(ops: list[Operation], i: int, **changes: object) -> list[Operation]:
    out = list(ops)
    out[i] = dataclasses.replace(ops[i], **changes)  # type: ignore[arg-type]
    return out
