"""Mason: an operation is its multi-sequence numbers; nothing is owed after commit."""

from __future__ import annotations

from nodes import wire
from nodes.proxy.entries import OpRecord
from nodes.services import Effect, Refused


class MasonService:
    name = "mason"
    direct_kinds: frozenset[int] = frozenset()
    runs = True

    def __init__(self, nspaces: int) -> None:
        self.nspaces = nspaces

    def admit(self, req: wire.OpRequest) -> list[int]:
        counts = req.counts
        # Counts are non-negative by the wire's own check.
        if req.kind or req.payload or len(counts) != self.nspaces:
            raise Refused(self.why(req))
        return counts

    def why(self, req: wire.OpRequest) -> str:
        if req.kind != wire.OP_SEQUENCE:
            return f"mason serves sequencing operations only, not kind {req.kind}"
        if req.payload:
            return "mason operations carry no payload"
        return f"{len(req.counts)} counts for {self.nspaces} spaces"

    def direct(self, req: wire.OpRequest) -> Effect | None:
        return None

    def apply(self, ops: list[OpRecord], noop: bool) -> list[list[Effect]] | None:
        return None

    def done(self, effect: Effect) -> None:
        pass

    def take_notes(self) -> bytes:
        return b""

    def apply_notes(self, notes: bytes) -> None:
        pass

    def acked(self, client_id: int, ack: int) -> None:
        pass

    def pending(self) -> list[Effect]:
        return []

    def snapshot(self) -> bytes:
        return b""

    def restore(self, data: bytes) -> None:
        pass
