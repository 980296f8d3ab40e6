"""RSMKeeper: a ZooKeeper tree (nodes/zk/machine.py) as the state machine of one Raft group.

An operation is one ZooKeeper transaction: its payload is an encoded `Txn` (session and
request; the replica that took it from the client sets both). It needs no numbers, so the
group runs without a sequencer (nspaces 0) and batches go straight into the log.

Time comes from the log, never from the applying replica: the leader stamps every entry
with its clock in the entry's notes (`take_notes`), and every replica applies the entry's
transactions at that time. So every replica expires the same sessions at the same log
position and gives nodes the same ctime/mtime.

Answers do not travel back through the group's reply: each replica tells its own
listeners (`listen`) what every committed transaction did, in log order, and the replica
that holds the client's connection answers it from there, after the watch notifications
the same entry fired. The group's reply to the op only says "committed".
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from nodes import wire
from nodes.proxy.entries import OpRecord
from nodes.services import Effect, Refused
from nodes.zk import snapshot
from nodes.zk.machine import Applied, ZkStateMachine
from nodes.zk.requests import Txn

_txn_decoder = msgspec.msgpack.Decoder(Txn)
_txn_encoder = msgspec.msgpack.Encoder()
_TIME_BYTES = 8

# (op record, its transaction as applied, what it did): called on every replica, per op.
AppliedListener = Callable[[OpRecord, Txn, Applied], None]


def encode_txn(txn: Txn) -> bytes:
    return _txn_encoder.encode(txn)


def decode_txn(payload: bytes) -> Txn:
    """The op's transaction; Refused (one line) when the payload is not one."""
    try:
        return _txn_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Refused(f"not a ZooKeeper transaction: {exc}") from None


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class RsmKeeperService:
    name = "rsmkeeper"
    direct_kinds: frozenset[int] = frozenset()
    runs = False

    def __init__(self, tick_ms: int = 2000, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.tick_ms = tick_ms
        self.machine = ZkStateMachine(tick_ms=tick_ms)
        self.clock = clock  # the leader's, read only in take_notes
        self.entry_time_ms = 0  # the time of the entry being applied
        self.listeners: list[AppliedListener] = []
        self.restored: list[Callable[[], None]] = []

    def listen(self, applied: AppliedListener, restored: Callable[[], None]) -> None:
        self.listeners.append(applied)
        self.restored.append(restored)

    def admit(self, req: wire.OpRequest) -> list[int]:
        if req.kind != wire.OP_ZK:
            raise Refused(f"rsmkeeper serves ZooKeeper transactions only, not kind {req.kind}")
        if req.counts:
            raise Refused("a ZooKeeper transaction needs no numbers")
        decode_txn(req.payload)
        return []

    def direct(self, req: wire.OpRequest) -> Effect | None:
        return None

    def apply(self, ops: list[OpRecord], noop: bool) -> list[list[Effect]] | None:
        machine = self.machine
        for op in ops:
            try:
                txn = decode_txn(op.payload)
            except Refused:
                continue  # admitted ops always decode; every replica skips the same bytes
            txn = msgspec.structs.replace(txn, time_ms=self.entry_time_ms)
            applied = machine.apply(txn)
            for listener in self.listeners:
                listener(op, txn, applied)
        return None

    def done(self, effect: Effect) -> None:
        pass

    def take_notes(self) -> bytes:
        # Never behind an earlier entry: the machine's clock only moves forward anyway.
        now = max(self.clock(), self.machine.now_ms)
        return now.to_bytes(_TIME_BYTES, "big", signed=True)

    def apply_notes(self, notes: bytes) -> None:
        if len(notes) == _TIME_BYTES:
            self.entry_time_ms = int.from_bytes(notes, "big", signed=True)

    def acked(self, client_id: int, ack: int) -> None:
        pass

    def pending(self) -> list[Effect]:
        return []

    def snapshot(self) -> bytes:
        return snapshot.take(self.machine)

    def restore(self, data: bytes) -> None:
        self.machine = snapshot.restore(data) if data else ZkStateMachine(tick_ms=self.tick_ms)
        for restored in self.restored:
            restored()
