"""ZK-Mason: ZooKeeper's tree sharded over shard servers, every operation ordered by Mason.

The group holds no tree. It keeps the sessions (a ZkStateMachine whose tree stays empty:
CreateSession and Ping go through the log and need no numbers) and orders everything
else: an operation takes one number in the space of every shard it touches
(nodes/zk/shards.py), Tick and CloseSession one in every space (closing a session deletes
its ephemerals wherever they live). After commit the leader owes each operation a `ZkCall`
(the transaction, stamped with its zxid and the entry's time, and its number per shard),
which the effect runner (nodes/zkserver/shard_client.py) carries to the shards; its
answer is the operation's ZooKeeper result. A noop's numbers, and those of an operation
whose session is gone when it commits, are owed to their shards as noops, so no shard
waits for a number nobody will send.

What is owed is replicated: every replica keeps its committed calls until the leader
reports them done (in a later entry's notes) and the client acknowledged the answer, so a
new leader re-drives what is not done and can ask the shards again for an answer a client
missed (shards keep recent answers). Time comes from the leader's clock in the notes, as
in RSMKeeper, so every replica expires the same sessions at the same log position.

zxid of an operation: how many numbers the sequencer had handed out, in all spaces, up to
and including the operation's own (the sum of its lasts + 1): a total order that agrees
with every space's order, so every shard sees zxids rise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from nodes import wire
from nodes.proxy.entries import NOOP_CLIENT, OpRecord
from nodes.services import Effect, Refused
from nodes.services.rsmkeeper import AppliedListener, wall_clock_ms
from nodes.zk import snapshot as zk_snapshot
from nodes.zk.codes import Err
from nodes.zk.machine import Applied, ZkStateMachine
from nodes.zk.requests import CloseSession, CreateSession, Ping, Tick, Txn
from nodes.zk.results import ErrorResult, OkResult, Result, SessionResult
from nodes.zk.shards import counts, plan

# Requests the group answers itself, from its log, without numbers or shards.
GROUP_LOCAL = (CreateSession, Ping)
_GROUP_BITS = 7  # session ids carry the group, so two groups never open the same id


class ZkMasonOp(msgspec.Struct, array_like=True, frozen=True):
    """An operation's payload: the transaction and the proxy replica holding its session
    (where the shards send the watch events its reads leave)."""

    txn: Txn
    origin: int = -1


_op_encoder = msgspec.msgpack.Encoder()
_op_decoder = msgspec.msgpack.Decoder(ZkMasonOp)
_result_encoder = msgspec.msgpack.Encoder()


def encode_op(txn: Txn, origin: int) -> bytes:
    return _op_encoder.encode(ZkMasonOp(txn, origin))


def decode_op(payload: bytes) -> ZkMasonOp:
    try:
        return _op_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Refused(f"not a ZooKeeper transaction: {exc}") from None


class Answer(msgspec.Struct, array_like=True, frozen=True):
    """What the leader sends back to the replica holding the session: the result, the zxid
    for the reply header, and, per shard touched, the highest watch-event number the shard
    had sent to that replica when it answered (the answer waits for those events)."""

    result: Result
    zxid: int
    floors: list[tuple[int, int]] = []


def encode_answer(answer: Answer) -> bytes:
    return _result_encoder.encode(answer)


_answer_decoder = msgspec.msgpack.Decoder(Answer)


def decode_answer(data: bytes) -> Answer:
    return _answer_decoder.decode(data)


Key = tuple[int, int, int]  # (client id, reqid, -1) for an operation; (-1, first, space) noops


@dataclass(frozen=True, slots=True)
class ZkCall:
    """Carry `txn` to the shards at `numbers` ((shard, number) pairs). `local`: one shard runs
    it whole; otherwise it is a multi-shard transaction. `noops`: (space, first, last) runs
    to deliver instead. `settled`: the answer is already known (an expired session's
    operation, whose numbers go as noops)."""

    key: Key
    txn: Txn | None
    numbers: tuple[tuple[int, int], ...]
    local: bool
    origin: int
    noops: tuple[tuple[int, int, int], ...] = ()
    settled: bytes = b""

    @property
    def owner(self) -> tuple[int, int]:
        """(client id, reqid) of the operation; NOOP_CLIENT first for a noop's."""
        return self.key[0], self.key[1]


class Notes(msgspec.Struct, array_like=True):
    time_ms: int
    done: list[tuple[int, int, int]] = []


_notes_encoder = msgspec.msgpack.Encoder()
_notes_decoder = msgspec.msgpack.Decoder(Notes)


class Kept(msgspec.Struct, array_like=True):
    """A committed call, as a snapshot keeps it."""

    key: tuple[int, int, int]
    txn: Txn | None
    numbers: list[tuple[int, int]]
    local: bool
    origin: int
    noops: list[tuple[int, int, int]]
    settled: bytes
    done: bool


_kept_encoder = msgspec.msgpack.Encoder()
_kept_decoder = msgspec.msgpack.Decoder(tuple[bytes, list[Kept], dict[int, int]])


def zxid_of(lasts: list[int]) -> int:
    return sum(last + 1 for last in lasts)


class ZkMasonService:
    name = "zkmason"
    direct_kinds: frozenset[int] = frozenset()
    runs = False

    def __init__(self, nspaces: int, group: int = 0, tick_ms: int = 2000,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        if nspaces < 1:
            raise ValueError("zkmason needs one sequence space per shard: nspaces >= 1")
        if not 0 <= group < 1 << _GROUP_BITS:
            raise ValueError(f"zkmason groups are numbered 0..{(1 << _GROUP_BITS) - 1}")
        self.nshards = nspaces
        self.group = group
        self.tick_ms = tick_ms
        self.machine = ZkStateMachine(tick_ms=tick_ms)  # sessions only: its tree stays empty
        self.clock = clock
        self.entry_time_ms = 0
        self.opened = 0
        self.calls: dict[Key, ZkCall] = {}  # committed, until done and acknowledged
        self.undone: set[Key] = set()
        self.finished: list[Key] = []  # leader: done since the last entry
        self.acked_upto: dict[int, int] = {}  # client -> every answer up to here received
        self.listeners: list[AppliedListener] = []
        self.restored: list[Callable[[], None]] = []
        self.closed_listeners: list[Callable[[list[int]], None]] = []

    def listen(self, applied: AppliedListener, restored: Callable[[], None],
               closed: Callable[[list[int]], None] | None = None) -> None:
        self.listeners.append(applied)
        self.restored.append(restored)
        if closed is not None:
            self.closed_listeners.append(closed)

    # ---- admission ------------------------------------------------------------------------

    def admit(self, req: wire.OpRequest) -> list[int]:
        if req.kind != wire.OP_ZK:
            raise Refused(f"zkmason serves ZooKeeper transactions only, not kind {req.kind}")
        op = decode_op(req.payload)
        request = op.txn.request
        if isinstance(request, GROUP_LOCAL):
            return [0] * self.nshards
        if isinstance(request, (Tick, CloseSession)):
            return [1] * self.nshards
        return counts(plan(request, self.nshards), self.nshards)

    def direct(self, req: wire.OpRequest) -> Effect | None:
        return None

    # ---- apply ----------------------------------------------------------------------------

    def apply(self, ops: list[OpRecord], noop: bool) -> list[list[Effect]] | None:
        owed: list[list[Effect]] = []
        for op in ops:
            if noop or op.client_id == NOOP_CLIENT:
                owed.append(self._noops(op))
                continue
            try:
                zop = decode_op(op.payload)
            except Refused:
                owed.append([])  # admitted ops always decode; every replica skips alike
                continue
            owed.append(self._apply_op(op, zop))
        return owed

    def _noops(self, op: OpRecord) -> list[Effect]:
        runs = tuple((space, last - count + 1, last)
                     for space, (count, last) in enumerate(zip(op.counts, op.lasts,
                                                               strict=True)) if count)
        if not runs:
            return []
        space, first, _ = runs[0]
        call = ZkCall((NOOP_CLIENT, first, space), None, (), False, -1, runs)
        return [self._owe(call)]

    def _apply_op(self, op: OpRecord, zop: ZkMasonOp) -> list[Effect]:
        machine = self.machine
        now = max(machine.now_ms, self.entry_time_ms)
        machine.now_ms = now
        txn = msgspec.structs.replace(zop.txn, time_ms=now)
        request = txn.request
        key: Key = (op.client_id, op.reqid, -1)
        if isinstance(request, CreateSession):
            # The id's low bits carry the group, so no two groups ever open the same id.
            self.opened += 1
            tag = ((self.opened << _GROUP_BITS) | self.group) & 0x7F_FFFF
            opened = machine.sessions.open(request.timeout_ms, tag, now)
            result = SessionResult(opened.id, opened.timeout_ms, opened.password)
            self._tell(op, txn, Applied(result, [], [], machine.last_zxid))
            return []
        if isinstance(request, Ping):
            self._tell(op, txn, machine.apply(txn))
            return []
        numbers = tuple((space, last) for space, (count, last)
                        in enumerate(zip(op.counts, op.lasts, strict=True)) if count)
        txn = msgspec.structs.replace(txn, zxid=zxid_of(op.lasts))
        if isinstance(request, Tick):
            expired = machine.sessions.expired(now)
            if not expired:
                # Nothing to delete anywhere: its numbers pass as noops, holding no shard.
                return [self._owe_as_noops(key, zop.origin, numbers, OkResult(), txn.zxid)]
            for sid in expired:
                machine.sessions.close(sid)
            self._closed(expired)
            txn = msgspec.structs.replace(txn, request=Tick(sessions=expired))
        elif txn.session and not machine.sessions.touch(txn.session, now):
            return [self._owe_as_noops(key, zop.origin, numbers,
                                       ErrorResult(Err.SESSION_EXPIRED), txn.zxid)]
        elif isinstance(request, CloseSession):
            machine.sessions.close(txn.session)
            self._closed([txn.session])
        local = len(numbers) == 1
        return [self._owe(ZkCall(key, txn, numbers, local, zop.origin))]

    def _tell(self, op: OpRecord, txn: Txn, applied: Applied) -> None:
        for listener in self.listeners:
            listener(op, txn, applied)

    def _closed(self, sessions: list[int]) -> None:
        if sessions:
            for listener in self.closed_listeners:
                listener(sessions)

    def _owe_as_noops(self, key: Key, origin: int, numbers: tuple[tuple[int, int], ...],
                      result: Result, zxid: int) -> ZkCall:
        """An operation whose answer is known without the shards: its numbers still reach
        them, as noops."""
        noops = tuple((space, number, number) for space, number in numbers)
        answer = encode_answer(Answer(result, zxid))
        return self._owe(ZkCall(key, None, (), False, origin, noops, answer))

    def _owe(self, call: ZkCall) -> ZkCall:
        self.calls[call.key] = call
        self.undone.add(call.key)
        return call

    # ---- what is owed ---------------------------------------------------------------------

    def done(self, effect: Effect) -> None:
        if isinstance(effect, ZkCall):
            self.finished.append(effect.key)

    def take_notes(self) -> bytes:
        now = max(self.clock(), self.machine.now_ms)
        finished, self.finished = self.finished, []
        return _notes_encoder.encode(Notes(now, finished))

    def apply_notes(self, notes: bytes) -> None:
        decoded = _notes_decoder.decode(notes)
        self.entry_time_ms = decoded.time_ms
        calls = self.calls
        acked = self.acked_upto
        for raw in decoded.done:
            key = (raw[0], raw[1], raw[2])
            self.undone.discard(key)
            # Nobody will ask for a noop's answer, nor for one its client already has.
            if key[0] == NOOP_CLIENT or key[1] <= acked.get(key[0], -1):
                calls.pop(key, None)

    def acked(self, client_id: int, ack: int) -> None:
        """The client has every answer up to `ack`: its done calls are no longer needed
        (those still undone go when they are reported done)."""
        if ack > self.acked_upto.get(client_id, -1):
            self.acked_upto[client_id] = ack
        for key in [k for k in self.calls if k[0] == client_id and k[1] <= ack
                    and k not in self.undone]:
            del self.calls[key]

    def pending(self) -> list[Effect]:
        return [self.calls[k] for k in sorted(self.undone) if k in self.calls]

    def call_of(self, client_id: int, reqid: int) -> ZkCall | None:
        """A committed operation's call, to ask the shards again for its answer."""
        return self.calls.get((client_id, reqid, -1))

    # ---- snapshot -------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        kept = [Kept(c.key, c.txn, list(c.numbers), c.local, c.origin, list(c.noops),
                     c.settled, c.key not in self.undone) for c in self.calls.values()]
        return _kept_encoder.encode((zk_snapshot.take(self.machine), kept, self.acked_upto))

    def restore(self, data: bytes) -> None:
        self.calls, self.undone, self.acked_upto = {}, set(), {}
        if not data:
            self.machine = ZkStateMachine(tick_ms=self.tick_ms)
        else:
            machine_bytes, kept, self.acked_upto = _kept_decoder.decode(data)
            self.machine = zk_snapshot.restore(machine_bytes)
            for k in kept:
                key = (k.key[0], k.key[1], k.key[2])
                self.calls[key] = ZkCall(key, k.txn, tuple(k.numbers), k.local, k.origin,
                                         tuple(k.noops), k.settled)
                if not k.done:
                    self.undone.add(key)
        for restored in self.restored:
            restored()
