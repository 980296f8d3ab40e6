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

    @staticmethod
    def _sweep(state: GroupRecord, floor: int) -> None:
        state.assigned = {s: v for s, v in state.assigned.items() if s > floor}
        state.swept_floor = floor

    def handle(self, req: SeqRequest) -> SeqReply:
        # The hot path of the sequencer, once per request: locals, positional Structs and
        # one pass of checks (see `benchmarks/sequencer.py` for what it costs).
        group = req.group
        srid = req.srid
        state = self.groups.get(group)
        if state is None:
            state = self.groups[group] = GroupRecord()
        if req.term < state.term:
            return SeqReply(group, srid, SEQ_STALE_TERM, req.counts, [], False,
                            state.max_srid, self.epoch)
        state.term = req.term
        floor = req.floor
        if floor > state.floor:
            state.floor = floor
            # Sweeping costs O(table); doing it only when the floor moved well past the
            # last sweep keeps it amortised O(1) per request.
            if floor - state.swept_floor >= 64 or len(state.assigned) > 4096:
                self._sweep(state, floor)
        if srid == 0:  # hello: fence older terms and report the highest srid seen
            return SeqReply(group, 0, SEQ_OK, [0] * self.nspaces, self._lasts(), False,
                            state.max_srid, self.epoch)
        if srid <= state.floor:
            return SeqReply(group, srid, SEQ_PRUNED, req.counts, [], False, state.max_srid,
                            self.epoch)
        done = state.assigned.get(srid)
        if done is not None:
            return SeqReply(group, srid, SEQ_OK, done[0], done[1], True, state.max_srid,
                            self.epoch)
        # Validate the whole request before any counter moves: a refused request must
        # leave no gap behind it.
        counts = req.counts
        nspaces = self.nspaces
        if len(counts) != nspaces:
            raise ValueError(f"request has {len(counts)} spaces, sequencer has {nspaces}")
        nxt = self.next
        if nspaces == 1:  # the common case, one space: no loop
            count = counts[0]
            if count < 0 or count > MAX_BATCH_COUNT:
                raise ValueError(f"a count outside 0..{MAX_BATCH_COUNT}")
            last = nxt[0] + count
            nxt[0] = last
            lasts = [last - 1]
        else:
            if counts and (min(counts) < 0 or max(counts) > MAX_BATCH_COUNT):
                raise ValueError(f"a count outside 0..{MAX_BATCH_COUNT}")
            lasts = []
            for i, count in enumerate(counts):
                nxt[i] += count
                lasts.append(nxt[i] - 1)
        state.assigned[srid] = (counts, lasts)
        if srid > state.max_srid:
            state.max_srid = srid
        return SeqReply(group, srid, SEQ_OK, counts, lasts, False, state.max_srid, self.epoch)

    def _lasts(self) -> list[int]:
        return [n - 1 for n in self.next]
