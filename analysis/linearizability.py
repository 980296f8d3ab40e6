"""Linearizability of ZooKeeper register operations (setData, getData, check, create,
delete), checked on the histories clients record (nodes/zk/history.py).

Each znode is a versioned register: absent, or data plus a version that every effective
setData raises by one. A history is linearizable when every operation can be given one
instant between its invocation and its response such that the operations, applied to the
register in that order, answer what the clients saw. Znodes are independent, so each is
checked alone (linearizability is compositional, Herlihy & Wing) and a violation is named by
its path.

The search per znode is Wing & Gong's, with Lowe's memo as Porcupine implements it: the
history is one list of call and return entries in time order (a call sorts before a return
at the same instant, so touching operations count as concurrent); the search linearizes any
call that comes before the first return, lifts it and its return out of the list, and backs
up when the first entry left is a return. A memo of (set of linearized operations, register
state) cuts every branch that reaches a configuration seen before.

Outcomes:

* ok: took effect once, with the answer recorded;
* fail with a model error (no_node, bad_version, node_exists): took effect as an
  observation: the register must have been in a state that gives that error;
* fail with not_applied: no effect, no observation; left out;
* unknown (timeout, connection loss): may take effect at any instant after its invocation,
  or never; its response time is +infinity, as in Knossos and Porcupine. A read of unknown
  outcome says nothing and is left out.

Reductions keep the search from blowing up on unknown-outcome writes, the operations a
leader kill leaves behind, and on reads; each is sound because it only drops branches that
another one tried covers or that cannot succeed:

* an observer (a read, a check, a failure: it leaves the register as it is) that is valid
  where the search stands is placed there with no alternative tried: any linearization
  that places it later can place it here instead;
* an unknown write is only placed where it changes the register: one that would be a no-op
  there (a wrong expected version) is the same as one placed after the end;
* data that no read ever returned is replaced by one stand-in, so registers that differ
  only in unread data are one state;
* unknown writes with the same kind and arguments (after that replacement) are
  interchangeable once both are invoked, so only the earliest invoked unplaced one of
  each such class is tried;
* an unknown write of data that it alone wrote and that some read returned is only placed
  where it yields a version those reads saw;
* without deletes versions only rise, so no write is placed that raises the version past
  one an answered operation still waits for (a read of that version, a set answered
  with the next).

A search that exceeds ``max_steps`` candidate tries ends UNDECIDED: neither proven nor
refuted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from analysis.runfiles import run_files
from nodes.zk.history import (
    NOT_APPLIED,
    HistoryFormatError,
    Operation,
    Outcome,
    VersionedData,
    read_history,
    show_value,
)

__all__ = [
    "LINEARIZABLE",
    "UNDECIDED",
    "VIOLATION",
    "History",
    "KeyVerdict",
    "Verdict",
    "apply",
    "check_file",
    "check_key",
    "check_operations",
    "load_history",
]

StrPath = str | os.PathLike[str]

LINEARIZABLE, VIOLATION, UNDECIDED = "linearizable", "violation", "undecided"
DEFAULT_MAX_STEPS = 5_000_000
HISTORY_SUFFIX = ".history"
MAX_LISTED = 10

# The register: None (absent) or (data, version). Results are tuples compared to what the
# client recorded: ("ok",), ("ok", version) for set, ("ok", data, version) for get, or
# (error,).
State = tuple[object, int] | None
Result = tuple[object, ...]
# A linearized call on the search's stack: (entry, state before it, the phase that placed
# it, the calls below). Cons cells, so the deepest stack is kept for the verdict in O(1).
Cell = tuple[int, State, int, "Cell | None"]
# Search phases, one per role of an operation: observers (reads, checks and failures: they
# leave the register as it is) first, then answered writes, then writes of unknown outcome.
OBSERVER, WRITE, UNKNOWN_WRITE = 0, 1, 2


def apply(state: State, kind: str, value: object, version: int | None) -> tuple[Result, State]:
    """The sequential specification: what `kind` answers in `state`, and the state after.
    ``version`` -1 (or None) matches any version, as in ZooKeeper."""
    any_version = version is None or version == -1
    if kind == "create":
        if state is not None:
            return ("node_exists",), state
        return ("ok",), (value, 0)
    if state is None:
        return ("no_node",), state
    if kind == "get":
        return ("ok", state[0], state[1]), state
    if not any_version and version != state[1]:
        return ("bad_version",), state
    if kind == "set":
        return ("ok", state[1] + 1), (value, state[1] + 1)
    if kind == "check":
        return ("ok",), state
    if kind == "delete":
        return ("ok",), None
    raise ValueError(f"unknown operation kind {kind!r}")


# ---- verdicts ------------------------------------------------------------------------------


@dataclass
class KeyVerdict:
    """One znode's verdict.

    ``linearized`` is the order found, each operation with the znode after it: all of them
    when LINEARIZABLE (unknown-outcome writes that never took effect are left out), else the
    longest linearizable prefix the search reached. On a violation ``blocking`` is the
    operation that could not be placed after that prefix (the earliest response among
    the rest) and ``candidates`` the operations that could have gone next, answered ones
    first, each with what the register would have answered in its place; ``inert``
    counts the unknown-outcome writes left out of them because they would change nothing.
    """

    path: str
    status: str
    operations: int  # checked
    unknown: int  # of those, unknown outcome
    dropped: int  # left out: not_applied failures, reads of unknown outcome
    steps: int
    linearized: list[tuple[Operation, VersionedData | None]] = field(default_factory=list)
    blocking: Operation | None = None
    candidates: list[tuple[Operation, str]] = field(default_factory=list)
    inert: int = 0  # invoked unknown-outcome writes that would change nothing there

    @property
    def ok(self) -> bool:
        return self.status == LINEARIZABLE

    def lines(self) -> list[str]:
        extra = [f"{self.unknown} of unknown outcome"] if self.unknown else []
        if self.dropped:
            extra.append(f"{self.dropped} left out")
        head = (f"{self.path}: {self.operations} operations"
                + (f" ({', '.join(extra)})" if extra else ""))
        if self.status == LINEARIZABLE:
            return [f"{head}, linearizable ({self.steps} steps)"]
        if self.status == UNDECIDED:
            return [f"{head}, UNDECIDED: no verdict within {self.steps} steps"]
        out = [f"{head}, NOT linearizable"]
        placed = len(self.linearized)
        state = _show_state(self.linearized[-1][1]) if self.linearized else "the initial state"
        out.append(f"  longest linearizable prefix: {placed} operations, leaving {state}")
        for op, _ in self.linearized[-3:]:
            out.append(f"    ... {op.describe()}")
        if self.blocking is not None:
            out.append(f"  cannot place: {self.blocking.describe()}")
        for op, answer in self.candidates[:MAX_LISTED]:
            out.append(f"    candidate {op.describe()}; the register answers {answer}")
        if len(self.candidates) > MAX_LISTED:
            out.append(f"    and {len(self.candidates) - MAX_LISTED} more candidates")
        if self.inert:
            out.append(f"    ({self.inert} writes of unknown outcome would change nothing "
                       "there)")
        return out


@dataclass
class Verdict:
    keys: list[KeyVerdict]

    @property
    def ok(self) -> bool:
        return all(k.ok for k in self.keys)

    @property
    def undecided(self) -> bool:
        return any(k.status == UNDECIDED for k in self.keys) and not any(
            k.status == VIOLATION for k in self.keys)

    def lines(self) -> list[str]:
        out = [line for k in self.keys for line in k.lines()]
        bad = [k.path for k in self.keys if k.status == VIOLATION]
        open_ = [k.path for k in self.keys if k.status == UNDECIDED]
        total = sum(k.operations for k in self.keys)
        if bad:
            out.append(f"linearizability: FAILED on {', '.join(bad)}")
        elif open_:
            out.append(f"linearizability: UNDECIDED on {', '.join(open_)}")
        else:
            out.append(f"linearizability: OK ({len(self.keys)} znodes, {total} operations)")
        return out


def _show_state(state: VersionedData | None) -> str:
    if state is None:
        return "the znode absent"
    return f"data {show_value(state.value)} at version {state.version}"


def _show_result(result: Result) -> str:
    if result[0] != "ok":
        return str(result[0])
    if len(result) == 3:
        return f"({show_value(result[1])}, v{result[2]})"
    if len(result) == 2:
        return f"v{result[1]}"
    return "ok"


# ---- checking ------------------------------------------------------------------------------


def check_operations(operations: Iterable[Operation],
                     initial: Mapping[str, VersionedData | None] | None = None,
                     max_steps: int = DEFAULT_MAX_STEPS) -> Verdict:
    """Check every znode's operations on its own; znodes not in `initial` start absent."""
    by_path: dict[str, list[Operation]] = {}
    for op in operations:
        by_path.setdefault(op.path, []).append(op)
    initial = initial or {}
    return Verdict([check_key(path, ops, initial.get(path), max_steps)
                    for path, ops in sorted(by_path.items())])


def check_key(path: str, operations: Iterable[Operation], initial: VersionedData | None = None,
              max_steps: int = DEFAULT_MAX_STEPS) -> KeyVerdict:
    """Wing & Gong's search with Lowe's memo over one znode's operations."""
    ops: list[Operation] = []
    dropped = 0
    for op in operations:
        if op.path != path:
            raise ValueError(f"{op.describe()} is not on {path}")
        if (op.outcome is Outcome.FAIL and op.error == NOT_APPLIED) or (
                op.outcome is Outcome.UNKNOWN and op.kind in ("get", "check")):
            dropped += 1
        else:
            ops.append(op)
    search = _Search(ops, initial, max_steps)
    found = search.run()
    unknown = sum(op.outcome is Outcome.UNKNOWN for op in ops)
    verdict = KeyVerdict(path, found, len(ops), unknown, dropped, search.steps)
    order = [ops[i] for i in search.best_order]
    verdict.linearized = list(zip(order, _replay(order, initial), strict=True))
    if found == VIOLATION:
        verdict.blocking, verdict.candidates, verdict.inert = _stuck_at(
            ops, search.best_order, verdict.linearized, initial)
    return verdict


def _replay(order: list[Operation], initial: VersionedData | None) -> list[VersionedData | None]:
    """The znode after each operation of a linearization, in the clients' own data."""
    states: list[VersionedData | None] = []
    state: State = initial
    for op in order:
        _, state = apply(state, op.kind, op.value, op.version)
        states.append(None if state is None else VersionedData(_as_bytes(state[0]), state[1]))
    return states


def _as_bytes(value: object) -> bytes:
    assert isinstance(value, bytes)
    return value


def _stuck_at(ops: list[Operation], placed: list[int],
              linearized: list[tuple[Operation, VersionedData | None]],
              initial: VersionedData | None,
              ) -> tuple[Operation | None, list[tuple[Operation, str]], int]:
    """Where the longest prefix ends: the first response not yet linearized, and what each
    operation invoked by then would have answered instead."""
    done = set(placed)
    rest = [i for i in range(len(ops)) if i not in done]
    finite = [i for i in rest if ops[i].response_ns is not None]
    if not finite:
        return None, [], 0
    first = min(finite, key=lambda i: (_resp(ops[i]), i))
    deadline = _resp(ops[first])
    state: State = initial if not linearized else linearized[-1][1]
    if state is not None:
        state = (state[0], state[1])
    # Without deletes a write past a version that an answered operation still needs
    # strands that operation: name it, since it is often the one at fault.
    deletes = any(op.kind == "delete" and op.outcome is not Outcome.FAIL for op in ops)
    waiting = sorted((ops[i] for i in rest if not deletes and _needed_version(ops[i]) >= 0),
                     key=_needed_version)
    candidates = []
    inert = 0
    # Answered operations first: the one at fault is usually among them.
    for i in sorted(rest, key=lambda i: (ops[i].outcome is Outcome.UNKNOWN, ops[i].invoke_ns)):
        op = ops[i]
        if op.invoke_ns > deadline:
            continue
        result, after = apply(state, op.kind, op.value, op.version)
        if op.outcome is Outcome.UNKNOWN and after == state:
            inert += 1  # it could take effect later, or never; not here
            continue
        answer = _show_result(result)
        needs = next((w for w in waiting if w is not op), None)
        if needs is not None and after is not None and after[1] > _needed_version(needs):
            answer += (f", but then nothing could answer {needs.describe()}"
                       f" (it needs version {_needed_version(needs)})")
        candidates.append((op, answer))
    return ops[first], candidates, inert


def _resp(op: Operation) -> int:
    assert op.response_ns is not None
    return op.response_ns


class _Unread:
    """Stands in for any data no read returned: such data can never be told apart. Verdicts
    never show it: they replay the clients' own data."""


UNREAD = _Unread()


class _Search:
    """The search state of one znode; `run` returns the status and leaves `best_order`."""

    def __init__(self, ops: list[Operation], initial: VersionedData | None, max_steps: int) -> None:
        self.ops = ops
        self.max_steps = max_steps
        self.steps = 0
        self.best_order: list[int] = []
        read = {op.result.value for op in ops
                if op.kind == "get" and op.outcome is Outcome.OK and op.result is not None}

        def canon(value: bytes | None) -> object:
            return value if value is None or value in read else UNREAD

        self.initial: State = None if initial is None else (canon(initial.value),
                                                             initial.version)
        self.kind = [op.kind for op in ops]
        self.value = [canon(op.value) for op in ops]
        self.version = [op.version for op in ops]
        self.expected: list[Result | None] = [_expected(op, canon) for op in ops]
        self.role = [OBSERVER if op.kind in ("get", "check") or op.outcome is Outcome.FAIL
                     else UNKNOWN_WRITE if op.outcome is Outcome.UNKNOWN else WRITE
                     for op in ops]
        # Unknown writes of data that only they wrote and that was read: they can only
        # take effect at a version the reads saw (any other leaves the reads unexplained).
        writers: dict[object, int] = {self.initial[0]: 1} if self.initial else {}
        for i, op in enumerate(ops):
            if op.kind in ("set", "create") and op.outcome is not Outcome.FAIL:
                writers[self.value[i]] = writers.get(self.value[i], 0) + 1
        seen: dict[object, set[int]] = {}
        for op in ops:
            if op.kind == "get" and op.outcome is Outcome.OK and op.result is not None:
                seen.setdefault(op.result.value, set()).add(op.result.version)
        self.pin: list[frozenset[int] | None] = [
            frozenset(seen[self.value[i]])
            if self.expected[i] is None and self.value[i] in seen
            and writers[self.value[i]] == 1 else None
            for i in range(len(ops))]
        # The version the register must hold where an answered operation takes effect. With
        # no delete, versions only rise: once past it, that operation can never be placed.
        deletes = any(op.kind == "delete" and op.outcome is not Outcome.FAIL for op in ops)
        need = [-1 if deletes else _needed_version(op) for op in ops]
        self.levels = sorted({v for v in need if v >= 0})
        rank = {v: k for k, v in enumerate(self.levels)}
        self.need = [rank[v] if v >= 0 else -1 for v in need]
        # Classes of interchangeable unknown writes, members in invocation order.
        self.cls = [-1] * len(ops)
        self.members: list[list[int]] = []
        index: dict[tuple[object, ...], int] = {}
        for i in sorted(range(len(ops)), key=lambda i: (ops[i].invoke_ns, i)):
            if self.expected[i] is None:
                key = (self.kind[i], self.value[i], self.version[i])
                if key not in index:
                    index[key] = len(self.members)
                    self.members.append([])
                self.cls[i] = index[key]
                self.members[index[key]].append(i)

    def run(self) -> str:
        ops = self.ops
        events: list[tuple[int, int, int]] = []
        for i, op in enumerate(ops):
            events.append((op.invoke_ns, 0, i))
            if op.response_ns is not None:
                events.append((op.response_ns, 1, i))
        events.sort()
        n = len(events)
        head = n  # the list's sentinel
        nxt = [*range(1, n), -1, 0 if n else -1]
        prv = [head, *range(0, n - 1), -1]
        entry_op = [i for _, _, i in events]
        is_call = [kind == 0 for _, kind, _ in events]
        ret = [-1] * len(ops)
        for e, (_, kind, i) in enumerate(events):
            if kind == 1:
                ret[i] = e

        kinds, values, versions, expected = self.kind, self.value, self.version, self.expected
        role, cls, members, pins = self.role, self.cls, self.members, self.pin
        placed = [0] * len(members)
        levels, need = self.levels, self.need
        waiting = [0] * len(levels)  # unplaced answered operations per needed version
        for k in need:
            if k >= 0:
                waiting[k] += 1
        low = 0  # no version below levels[low] is waiting (advanced lazily)
        remaining = finite = sum(op.response_ns is not None for op in ops)
        best = -1
        state = self.initial
        linearized = 0
        cache: set[tuple[int, State]] = set()
        top: Cell | None = None  # the stack of linearized calls
        best_top = top
        entry = nxt[head]
        phase = OBSERVER
        steps, max_steps = 0, self.max_steps
        status = LINEARIZABLE
        while remaining:
            backtrack = False
            if not is_call[entry]:
                # Every candidate of this phase tried; the next phase, or back up.
                if phase != UNKNOWN_WRITE:
                    phase += 1
                    entry = nxt[head]
                    continue
                backtrack = True
            else:
                i = entry_op[entry]
                c = cls[i]
                if role[i] != phase or (c >= 0 and members[c][placed[c]] != i):
                    entry = nxt[entry]
                    continue
                steps += 1
                if steps > max_steps:
                    status = UNDECIDED
                    break
                result, new_state = apply(state, kinds[i], values[i], versions[i])
                want = expected[i]
                if want is not None:
                    valid = result == want
                else:
                    pin = pins[i]
                    valid = new_state != state and (
                        pin is None or (new_state is not None and new_state[1] in pin))
                k = need[i]
                if valid and phase != OBSERVER and new_state is not None:
                    # A write must not raise the version past one still waited for.
                    if k >= 0:
                        waiting[k] -= 1
                    while low < len(levels) and waiting[low] == 0:
                        low += 1
                    if k >= 0:
                        waiting[k] += 1
                    valid = low == len(levels) or levels[low] >= new_state[1]
                if valid:
                    new_linearized = linearized | (1 << i)
                    memo = (new_linearized, new_state)
                    if memo not in cache:
                        cache.add(memo)
                        top = (entry, state, phase, top)
                        state, linearized = new_state, new_linearized
                        if k >= 0:
                            waiting[k] -= 1
                        # Lift the call and its return out of the list.
                        p, q = prv[entry], nxt[entry]
                        nxt[p] = q
                        if q != -1:
                            prv[q] = p
                        r = ret[i]
                        if r >= 0:
                            p, q = prv[r], nxt[r]
                            nxt[p] = q
                            if q != -1:
                                prv[q] = p
                            remaining -= 1
                        else:
                            placed[c] += 1
                        if finite - remaining > best:
                            best, best_top = finite - remaining, top
                        entry = nxt[head]
                        phase = OBSERVER
                        continue
                    # Seen and dead; for an observer that makes this configuration dead.
                    backtrack = phase == OBSERVER
                if not backtrack:
                    entry = nxt[entry]
                    continue
            # Back up past the last write placed: an observer valid where it was placed
            # could always go first, so no alternative to it needs trying.
            while top is not None:
                entry, state, phase, top = top
                i = entry_op[entry]
                linearized ^= 1 << i
                k = need[i]
                if k >= 0:
                    waiting[k] += 1
                    low = min(low, k)
                r = ret[i]
                if r >= 0:
                    nxt[prv[r]] = r
                    if nxt[r] != -1:
                        prv[nxt[r]] = r
                    remaining += 1
                else:
                    placed[cls[i]] -= 1
                nxt[prv[entry]] = entry
                if nxt[entry] != -1:
                    prv[nxt[entry]] = entry
                if phase != OBSERVER:
                    break
            else:
                status = VIOLATION
                break
            entry = nxt[entry]
        self.steps = steps
        chain = top if status == LINEARIZABLE else best_top
        order: list[int] = []
        while chain is not None:
            order.append(entry_op[chain[0]])
            chain = chain[3]
        order.reverse()
        self.best_order = order
        return status


def _needed_version(op: Operation) -> int:
    """The version the register must hold for `op`'s answer; -1 when none is implied."""
    if op.outcome is not Outcome.OK:
        return -1
    if op.kind == "get" and op.result is not None:
        return op.result.version
    if op.kind == "set" and op.result is not None:
        return op.result.version - 1
    if op.kind == "check" and op.version is not None and op.version >= 0:
        return op.version
    return -1


def _expected(op: Operation, canon: Callable[[bytes | None], object]) -> Result | None:
    """What the register must answer for `op`; None when anything goes (unknown outcome)."""
    if op.outcome is Outcome.UNKNOWN:
        return None
    if op.outcome is Outcome.FAIL:
        return (op.error,)
    if op.kind == "get":
        assert op.result is not None
        return ("ok", canon(op.result.value), op.result.version)
    if op.kind == "set":
        assert op.result is not None
        return ("ok", op.result.version)
    return ("ok",)


# ---- files ---------------------------------------------------------------------------------


@dataclass
class History:
    operations: list[Operation]
    initial: dict[str, VersionedData]
    files: int


def load_history(path: StrPath) -> History:
    """One history file, or every ``*.history`` in a run directory, as one history.
    Raises HistoryFormatError when a file is malformed or the files cannot be combined."""
    path = Path(path)
    if path.is_dir():
        files = run_files(path, f"*{HISTORY_SUFFIX}")
        if not files:
            raise HistoryFormatError(f"{path}: no *{HISTORY_SUFFIX} files")
    elif path.is_file():
        files = [path]
    else:
        raise HistoryFormatError(f"{path}: no such file or directory")
    operations: list[Operation] = []
    initial: dict[str, VersionedData] = {}
    clocks: dict[str, Path] = {}
    processes: dict[int, Path] = {}
    for f in files:
        history = read_history(f)
        clocks.setdefault(history.clock, f)
        if len(clocks) > 1:
            a, b = list(clocks.items())[:2]
            raise HistoryFormatError(f"{b[1]}: clock {b[0]!r}, but {a[1]} has {a[0]!r}; "
                                     "times from different clocks cannot be ordered")
        if history.process in processes:
            raise HistoryFormatError(f"{f}: process {history.process} also wrote "
                                     f"{processes[history.process]}")
        processes[history.process] = f
        for znode, state in history.initial.items():
            if initial.setdefault(znode, state) != state:
                raise HistoryFormatError(f"{f}: initial state of {znode} disagrees with "
                                         "another file's")
        operations.extend(history.operations)
    return History(operations, initial, len(files))


def check_file(path: StrPath, max_steps: int = DEFAULT_MAX_STEPS) -> Verdict:
    """load_history + check_operations."""
    history = load_history(path)
    return check_operations(history.operations, history.initial, max_steps)
