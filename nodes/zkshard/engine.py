"""One shard replica's ordered execution: sub-operations run strictly in the order of the
numbers of the shard's sequence space, each number exactly once, and a noop advances the
order like an operation, so a hole filled by a noop never stalls the shard.

A call may arrive before its number is reached (it waits), again after a leader changed (a
duplicate: it joins the waiting call, or is answered from what was kept), or for a number
the replica holds. A multi-shard transaction HOLDs the replica at its number: nothing after
it runs until its decision, which may arrive before the replica gets there (then it is
applied on arrival at the number, without holding).

Watch interest: a read that leaves a watch, or addWatch, makes its path "interesting" to
the proxy replica that holds the session (the call's origin); a change to such a path is
sent there as an event. The proxy's own watch table decides which session hears what;
interest here only routes events, so one more event than needed is harmless and one fewer
is not: one-shot interest is dropped only on an event of a kind that fires it.

I/O-free: replies and events leave through the callables the server hands in.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from nodes import wire
from nodes.zk import paths
from nodes.zk.codes import AddWatchMode, EventType
from nodes.zk.coordinate import TxnOutcome
from nodes.zk.machine import Change
from nodes.zk.requests import AddWatch, Exists, GetChildren, GetData, Txn
from nodes.zk.results import Result
from nodes.zk.shard_machine import ShardMachine, ViewRequest
from nodes.zk.shards import shard_of
from nodes.zkshard.execlog import ExecWriter

log = logging.getLogger("mason.zkshard")

Reply = Callable[[wire.ShardReply], None]
# (origin, number, changes): the events of one operation for one proxy replica.
EventSink = Callable[[int, int, list[Change]], None]

_DATA_EVENTS = frozenset((EventType.NODE_CREATED, EventType.NODE_DATA_CHANGED,
                          EventType.NODE_DELETED))
_CHILD_EVENTS = frozenset((EventType.NODE_CHILDREN_CHANGED, EventType.NODE_DELETED))

_txn_decoder = msgspec.msgpack.Decoder(Txn)
_view_decoder = msgspec.msgpack.Decoder(ViewRequest)
_outcome_decoder = msgspec.msgpack.Decoder(TxnOutcome)
_encoder = msgspec.msgpack.Encoder()


def encode_result(result: Result) -> bytes:
    return _encoder.encode(result)


class Slot:
    """Everything known about one number (or noop run) not yet executed."""

    __slots__ = ("first", "last", "noop", "client_id", "reqid", "origin", "txn", "local",
                 "replies", "views", "outcome")

    def __init__(self, call: wire.ShardCall) -> None:
        self.first = call.number
        self.last = call.last
        self.noop = call.kind == wire.SHARD_NOOP
        self.client_id = call.client_id
        self.reqid = call.reqid
        self.origin = call.origin
        self.txn: Txn | None = None
        self.local = call.kind == wire.SHARD_EXEC
        self.replies: list[Reply] = []  # answered when the number is executed or decided
        self.views: list[tuple[ViewRequest, Reply]] = []  # answered when held
        self.outcome: TxnOutcome | None = None

    def same_owner(self, call: wire.ShardCall) -> bool:
        return (call.number == self.first and call.last == self.last
                and (call.kind == wire.SHARD_NOOP) == self.noop
                and (self.noop or (call.client_id, call.reqid) == (self.client_id, self.reqid)))


class Bad(Exception):
    """A call this replica must refuse; the message is its one-line reason."""


class Engine:
    def __init__(self, machine: ShardMachine, *, nproxies: int, cache_size: int,
                 send_event: EventSink, record: ExecWriter | None = None) -> None:
        self.machine = machine
        self.shard = machine.shard
        self.nproxies = nproxies
        self.cache_size = max(1, cache_size)
        self.send_event = send_event
        self.record = record
        self.cursor = 0  # the next number to execute
        self.waiting: dict[int, Slot] = {}  # first number -> the call(s) for it
        self.held: Slot | None = None
        # Answers of executed numbers, for leaders that ask again: number -> (status, body,
        # event floor).
        self.kept: OrderedDict[int, tuple[int, bytes, int]] = OrderedDict()
        self.floor: dict[int, int] = {}  # origin -> highest number of an event sent to it
        self.data_interest: dict[str, set[int]] = {}
        self.child_interest: dict[str, set[int]] = {}
        self.persistent: dict[str, set[int]] = {}
        self.recursive: dict[str, set[int]] = {}
        self.executed_ops = 0
        self.executed_noops = 0
        self.refused = 0
        self.max_received = -1

    # ---- calls in -------------------------------------------------------------------------

    def receive(self, call: wire.ShardCall, reply: Reply) -> None:
        try:
            self._receive(call, reply)
        except Bad as exc:
            self.refused += 1
            log.warning("refused %s at %d: %s", _KIND_NAMES[call.kind], call.number, exc)
            reply(wire.ShardReply(wire.SHARD_BAD, str(exc).encode()))

    def _receive(self, call: wire.ShardCall, reply: Reply) -> None:
        self._check(call)
        self.max_received = max(self.max_received, call.last)
        held = self.held
        if held is not None and call.number == held.first:
            self._at_hold(held, call, reply)
            return
        if call.last < self.cursor:
            self._past(call, reply)
            return
        if call.number < self.cursor:
            raise Bad(f"run {call.number}..{call.last} straddles executed number {self.cursor}")
        slot = self.waiting.get(call.number)
        if slot is None:
            slot = Slot(call)
            if call.kind in (wire.SHARD_EXEC, wire.SHARD_HOLD):
                slot.txn = _decode(_txn_decoder, call.body, "transaction")
            self.waiting[call.number] = slot
        elif not slot.same_owner(call):
            raise Bad(f"number {call.number} already belongs to "
                      f"{'a noop' if slot.noop else (slot.client_id, slot.reqid)}")
        self._join(slot, call, reply)
        self._advance()

    def _check(self, call: wire.ShardCall) -> None:
        if call.shard != self.shard:
            raise Bad(f"shard {call.shard} is not this replica's ({self.shard})")
        if call.last < call.number or call.last - call.number >= wire.MAX_NOOP_RUN:
            raise Bad(f"bad range {call.number}..{call.last}")
        if call.kind != wire.SHARD_NOOP and call.last != call.number:
            raise Bad("only a noop covers more than one number")
        if call.origin >= self.nproxies:
            raise Bad(f"origin {call.origin} is not one of the {self.nproxies} proxies")

    def _join(self, slot: Slot, call: wire.ShardCall, reply: Reply) -> None:
        kind = call.kind
        if kind == wire.SHARD_NOOP or kind == wire.SHARD_EXEC:
            if slot.txn is None and kind == wire.SHARD_EXEC:
                slot.txn = _decode(_txn_decoder, call.body, "transaction")
            slot.replies.append(reply)
        elif kind == wire.SHARD_HOLD or kind == wire.SHARD_READ:
            if slot.txn is None and kind == wire.SHARD_HOLD:
                slot.txn = _decode(_txn_decoder, call.body, "transaction")
            slot.views.append((_decode(_view_decoder, call.view, "view request"), reply))
        else:  # DECIDE before this replica reached the number
            slot.outcome = self._outcome(call)
            slot.replies.append(reply)

    def _outcome(self, call: wire.ShardCall) -> TxnOutcome:
        outcome = _decode(_outcome_decoder, call.body, "outcome")
        if self.shard not in outcome.decisions:
            raise Bad(f"the outcome has no decision for shard {self.shard}")
        return outcome

    def _at_hold(self, held: Slot, call: wire.ShardCall, reply: Reply) -> None:
        if call.kind == wire.SHARD_DECIDE:
            held.outcome = self._outcome(call)
            held.replies.append(reply)
            self._decide(held)
            self._advance()
        elif call.kind in (wire.SHARD_HOLD, wire.SHARD_READ):
            request = _decode(_view_decoder, call.view, "view request")
            reply(self._views(request))
        else:
            raise Bad(f"number {call.number} is held for a transaction")

    def _past(self, call: wire.ShardCall, reply: Reply) -> None:
        """A call for numbers already executed: a duplicate from a re-driving leader."""
        if call.kind == wire.SHARD_NOOP or call.kind == wire.SHARD_DECIDE:
            reply(wire.ShardReply(wire.SHARD_OK))
            return
        kept = self.kept.get(call.number)
        if kept is None:
            reply(wire.ShardReply(wire.SHARD_FORGOTTEN))
            return
        status, body, floor = kept
        reply(wire.ShardReply(status, body, floor if call.origin >= 0 else -1))

    # ---- execution ------------------------------------------------------------------------

    def _advance(self) -> None:
        waiting = self.waiting
        while self.held is None:
            slot = waiting.get(self.cursor)
            if slot is None:
                return
            if slot.noop:
                del waiting[self.cursor]
                self._noop(slot)
            elif slot.outcome is not None:
                # Decided before this replica got here (its views came from another one).
                del waiting[self.cursor]
                self.held = slot
                if slot.txn is not None:
                    self._register(slot.txn, slot.origin)
                self._decide(slot)
            elif slot.txn is None:
                return  # only views or a decision wait here: the operation has not arrived
            elif slot.local:
                del waiting[self.cursor]
                self._execute(slot)
            else:
                del waiting[self.cursor]
                self._hold(slot)

    def _noop(self, slot: Slot) -> None:
        self.cursor = slot.last + 1
        self.executed_noops += slot.last - slot.first + 1
        if self.record is not None:
            self.record.noop_run(slot.first, slot.last)
        for reply in slot.replies:
            reply(wire.ShardReply(wire.SHARD_OK))

    def _execute(self, slot: Slot) -> None:
        txn = slot.txn
        assert txn is not None
        number = slot.first
        self._register(txn, slot.origin)
        done = self.machine.execute(txn)
        self._fire(number, done.changes)
        body = encode_result(done.result)
        self._finish(slot, wire.SHARD_OK, body)

    def _hold(self, slot: Slot) -> None:
        txn = slot.txn
        assert txn is not None
        self.held = slot
        self._register(txn, slot.origin)
        for request, reply in slot.views:
            reply(self._views(request))
        slot.views = []

    def _decide(self, slot: Slot) -> None:
        outcome = slot.outcome
        assert outcome is not None and self.held is slot
        decision = outcome.decisions[self.shard]
        self.machine.decide(decision)
        self._fire(slot.first, decision.changes)
        body = _encoder.encode(outcome)
        for _, reply in slot.views:
            reply(wire.ShardReply(wire.SHARD_DECIDED, body))
        slot.views = []
        self.held = None
        self._finish(slot, wire.SHARD_DECIDED, body)

    def _finish(self, slot: Slot, status: int, body: bytes) -> None:
        number = slot.first
        floor = self.floor.get(slot.origin, -1) if slot.origin >= 0 else -1
        kept = self.kept
        kept[number] = (status, body, floor)
        while len(kept) > self.cache_size:
            kept.popitem(last=False)
        self.cursor = number + 1
        self.executed_ops += 1
        if self.record is not None:
            self.record.op(number, slot.client_id, slot.reqid)
        answer = wire.ShardReply(status, body, floor)
        for reply in slot.replies:
            reply(answer)

    def _views(self, request: ViewRequest) -> wire.ShardReply:
        return wire.ShardReply(wire.SHARD_OK, _encoder.encode(self.machine.views(request)))

    # ---- watch interest -------------------------------------------------------------------

    def _register(self, txn: Txn, origin: int) -> None:
        if origin < 0:
            return
        request = txn.request
        shard, nshards = self.shard, self.machine.nshards

        def owns(path: str) -> bool:
            return shard_of(path, nshards) == shard

        if isinstance(request, (GetData, Exists)) and request.watch and owns(request.path):
            self.data_interest.setdefault(request.path, set()).add(origin)
        elif isinstance(request, GetChildren) and request.watch and owns(request.path):
            self.child_interest.setdefault(request.path, set()).add(origin)
        elif isinstance(request, AddWatch):
            if request.mode == AddWatchMode.PERSISTENT_RECURSIVE:
                self.recursive.setdefault(request.path, set()).add(origin)
            elif owns(request.path):
                self.persistent.setdefault(request.path, set()).add(origin)

    def _fire(self, number: int, changes: list[Change]) -> None:
        if not changes:
            return
        by_origin: dict[int, list[Change]] = {}
        for change in changes:
            for origin in self._interested(change):
                by_origin.setdefault(origin, []).append(change)
        for origin, mine in sorted(by_origin.items()):
            self.floor[origin] = number
            self.send_event(origin, number, mine)

    def _interested(self, change: Change) -> set[int]:
        path, kind = change.path, change.type
        origins: set[int] = set()
        if kind in _DATA_EVENTS:
            origins |= self.data_interest.pop(path, set())
        if kind in _CHILD_EVENTS:
            origins |= self.child_interest.pop(path, set())
        origins |= self.persistent.get(path, set())
        if self.recursive:
            for prefix in [path, *paths.ancestors(path)]:
                origins |= self.recursive.get(prefix, set())
        return origins


_KIND_NAMES = {wire.SHARD_NOOP: "noop", wire.SHARD_EXEC: "exec", wire.SHARD_HOLD: "hold",
               wire.SHARD_READ: "read", wire.SHARD_DECIDE: "decide"}


def _decode(decoder: msgspec.msgpack.Decoder, data: bytes, what: str):  # type: ignore[no-untyped-def]
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Bad(f"not a {what}: {exc}") from None
