"""The sequencer's state, free of I/O: counters and the at-most-once table.

All spaces advance together for one request, so if batch A precedes batch B in one space
it precedes it in every space both use: the multi-sequence numbers are consistent.

At-most-once: a (group, srid) that was assigned once gets the same ranges forever, so a
retransmission or a new leader's probe never moves a counter twice. The table is pruned:
each request carries the group's `floor` (every srid up to it is settled in the group's
log and will never be asked again); entries at or below the floor are dropped, and a
late request below the floor is refused rather than given fresh numbers.

Terms fence deposed leaders: once a group's leader of term T has spoken, requests from
terms below T are refused, so an old leader cannot obtain numbers it could never log.
"""

from __future__ import annotations

from nodes.wire import (
    MAX_BATCH_COUNT,
    SEQ_OK,
    SEQ_PRUNED,
    SEQ_STALE_TERM,
    SeqReply,
    SeqRequest,
)


class GroupRecord:
    __slots__ = ("term", "floor", "max_srid", "assigned", "swept_floor")

    def __init__(self) -> None:
        self.term = 0
        self.floor = 0
        self.max_srid = 0
        self.assigned: dict[int, tuple[list[int], list[int]]] = {}
        self.swept_floor = 0


class Counters:
    def __init__(self, nspaces: int, epoch: int) -> None:
        self.nspaces = nspaces
        self.epoch = epoch
        self.next = [0] * nspaces  # a standby's takeover replaces these with the recovered ones
        self.groups: dict[int, GroupRecord] = {}

    def table_size(self) -> int:
        return sum(len(g.assigned) for g in self.groups.values())

    def _prune(self, state: GroupRecord, floor: int) -> None:
        state.floor = floor
        # Sweeping costs O(table); doing it only when the floor moved well past the last
        # sweep keeps it amortised O(1) per request.
        if floor - state.swept_floor >= 64 or len(state.assigned) > 4096:
            state.assigned = {s: v for s, v in state.assigned.items() if s > floor}
            state.swept_floor = floor

    def handle(self, req: SeqRequest) -> SeqReply:
        state = self.groups.get(req.group)
        if state is None:
            state = self.groups[req.group] = GroupRecord()
        if req.term < state.term:
            return self._reply(req, state, SEQ_STALE_TERM, req.counts, [], False)
        state.term = req.term
        if req.floor > state.floor:
            self._prune(state, req.floor)
        if req.srid == 0:  # hello: fence older terms and report the highest srid seen
            return self._reply(req, state, SEQ_OK, [0] * self.nspaces, self._lasts(), False)
        if req.srid <= state.floor:
            return self._reply(req, state, SEQ_PRUNED, req.counts, [], False)
        done = state.assigned.get(req.srid)
        if done is not None:
            return self._reply(req, state, SEQ_OK, done[0], done[1], True)
        # Validate the whole request before any counter moves: a refused request must
        # leave no gap behind it.
        if len(req.counts) != self.nspaces:
            raise ValueError(f"request has {len(req.counts)} spaces, sequencer has {self.nspaces}")
        if any(c < 0 or c > MAX_BATCH_COUNT for c in req.counts):
            raise ValueError(f"a count outside 0..{MAX_BATCH_COUNT}")
        nxt = self.next
        lasts = []
        for i, count in enumerate(req.counts):
            nxt[i] += count
            lasts.append(nxt[i] - 1)
        state.assigned[req.srid] = (req.counts, lasts)
        state.max_srid = max(state.max_srid, req.srid)
        return self._reply(req, state, SEQ_OK, req.counts, lasts, False)

    def _lasts(self) -> list[int]:
        return [n - 1 for n in self.next]

    def _reply(
        self,
        req: SeqRequest,
        state: GroupRecord,
        status: int,
        counts: list[int],
        lasts: list[int],
        retx: bool,
    ) -> SeqReply:
        return SeqReply(
            group=req.group,
            srid=req.srid,
            status=status,
            counts=counts,
            lasts=lasts,
            retx=retx,
            max_srid=state.max_srid,
            epoch=self.epoch,
        )
