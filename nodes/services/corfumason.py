"""CorfuMason: appends to Corfu's shared log, ordered by a Mason group.

An append needs one number (its log position). The group logs the append's bytes with the
position, so after commit any replica could finish it; the leader writes the entry down
its chain (head to tail) and the client is answered after the tail acknowledged. A noop's
numbers are filled with hole markers, so no position below the frontier stays empty.

What is owed is replicated: every replica keeps committed writes in `unwritten` until the
leader reports them finished in a later entry's notes. A new leader re-drives whatever is
still there (writes are idempotent: the same bytes at the same position are accepted
again), so a leader that died between commit and chain write leaves no hole.

Reads need no number and no log: any replica (or only the leader, by read policy) reads
the position from its chain's tail.
"""

from __future__ import annotations

import msgspec

from nodes import wire
from nodes.proxy.entries import NOOP_CLIENT, OpRecord
from nodes.services import Effect, LogRead, LogWrite, Refused

_notes_encoder = msgspec.msgpack.Encoder()
_notes_decoder = msgspec.msgpack.Decoder(list[int])


class Owed(msgspec.Struct, array_like=True):
    position: int
    kind: int
    data: bytes
    client_id: int
    reqid: int


_owed_encoder = msgspec.msgpack.Encoder()
_owed_decoder = msgspec.msgpack.Decoder(list[Owed])

def read_position(payload: bytes) -> int:
    if len(payload) != 8:
        raise Refused(f"a read names its position in 8 bytes, not {len(payload)}")
    position = int.from_bytes(payload, "little", signed=True)
    if position < 0:
        raise Refused(f"position {position} is negative")
    return position


class CorfuMasonService:
    name = "corfumason"
    direct_kinds = frozenset({wire.OP_READ})
    runs = False

    def __init__(self, nspaces: int, max_entry_bytes: int) -> None:
        if nspaces != 1:
            raise ValueError("corfumason orders one log: nspaces must be 1")
        self.max_entry_bytes = max_entry_bytes
        self.unwritten: dict[int, LogWrite] = {}
        self.finished: list[int] = []  # leader: positions written since the last entry

    def admit(self, req: wire.OpRequest) -> list[int]:
        if req.kind != wire.OP_APPEND:
            raise Refused(f"corfumason sequences appends only, not kind {req.kind}")
        if req.counts != [1]:
            raise Refused("an append takes exactly one position")
        size = len(req.payload)
        if not 0 < size <= self.max_entry_bytes:
            raise Refused(f"an entry has 1 to {self.max_entry_bytes} bytes, not {size}")
        return req.counts

    def direct(self, req: wire.OpRequest) -> Effect | None:
        if req.kind != wire.OP_READ:
            return None
        return LogRead(read_position(req.payload))

    def apply(self, ops: list[OpRecord], noop: bool) -> list[list[Effect]] | None:
        owed: list[list[Effect]] = []
        unwritten = self.unwritten
        for op in ops:
            effects: list[Effect] = []
            count, last = op.counts[0], op.lasts[0]
            if noop or op.client_id == NOOP_CLIENT:
                # Every position of the noop: a capped fill would leave the rest as holes.
                # (A noop is as large as a batch or the holes a standby found, both bounded
                # by what was in flight.)
                for position in range(last - count + 1, last + 1):
                    effect = LogWrite(position, wire.ENTRY_HOLE, b"", (NOOP_CLIENT, 0))
                    unwritten[position] = effect
                    effects.append(effect)
            elif count == 1:
                effect = LogWrite(last, wire.ENTRY_DATA, op.payload, (op.client_id, op.reqid))
                unwritten[last] = effect
                effects.append(effect)
            owed.append(effects)
        return owed

    def done(self, effect: Effect) -> None:
        if isinstance(effect, LogWrite):
            self.finished.append(effect.position)

    def take_notes(self) -> bytes:
        if not self.finished:
            return b""
        finished, self.finished = self.finished, []
        return _notes_encoder.encode(finished)

    def apply_notes(self, notes: bytes) -> None:
        unwritten = self.unwritten
        for position in _notes_decoder.decode(notes):
            unwritten.pop(position, None)

    def acked(self, client_id: int, ack: int) -> None:
        pass

    def pending(self) -> list[Effect]:
        return [self.unwritten[p] for p in sorted(self.unwritten)]

    def snapshot(self) -> bytes:
        return _owed_encoder.encode([
            Owed(w.position, w.kind, w.data, w.owner[0], w.owner[1])
            for w in self.unwritten.values()
        ])

    def restore(self, data: bytes) -> None:
        self.unwritten = {
            o.position: LogWrite(o.position, o.kind, o.data, (o.client_id, o.reqid))
            for o in (_owed_decoder.decode(data) if data else [])
        }
