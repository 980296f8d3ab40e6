"""A group leader's open batch and its client-determined-order admission, free of I/O.

Guarantee: each client's numbers rise with its request ids in every space, although a
client has many requests outstanding and they may arrive in any order. Rule: operation r
of client c joins the open batch only if every earlier reqid of c is already sequenced or
earlier in this same batch; otherwise it is parked until that becomes true. Hence a client
has at most one batch waiting for the sequencer, the sequencer's counters are monotone,
and a batch's range is split over its operations in the order they joined.

An `Op` is a run of `nops` operations with consecutive reqids and the same counts
(nodes/wire.py OpRequest): it joins, parks and is split as one unit, and owns one
consecutive sub-range per space of `nops * counts[i]` numbers.
"""

from __future__ import annotations

import heapq
from typing import Any

from nodes.wire import MAX_BATCH_OPS


class Op:
    """A run of operations known to the leader and not yet answered: reqids
    `reqid`..`top`."""

    __slots__ = ("client_id", "reqid", "counts", "lasts", "conn", "rid", "payload", "nops",
                 "top")

    def __init__(self, client_id: int, reqid: int, counts: list[int], conn: Any, rid: int,
                 payload: bytes = b"", nops: int = 1):
        self.client_id = client_id
        self.reqid = reqid
        self.counts = counts
        self.payload = payload
        self.nops = nops
        self.top = reqid + nops - 1
        self.lasts: list[int] | None = None
        self.conn = conn  # where to answer (the latest request for this op), or None
        self.rid = rid


class Batch:
    __slots__ = ("batch_id", "srid", "ops", "nops", "totals", "top", "probe", "sent_at")

    def __init__(self, batch_id: int, nspaces: int) -> None:
        self.batch_id = batch_id
        self.srid = 0
        self.ops: list[Op] = []
        self.nops = 0  # operations, counting every operation of every run
        self.totals = [0] * nspaces
        self.top: dict[int, int] = {}  # client -> highest reqid placed in this batch
        self.probe = False  # a new leader's zero-count request for an unsettled srid
        self.sent_at = 0.0

    def add(self, op: Op) -> None:
        self.ops.append(op)
        nops = op.nops
        self.nops += nops
        totals = self.totals
        for i, count in enumerate(op.counts):
            totals[i] += count * nops
        if op.top > self.top.get(op.client_id, -1):
            self.top[op.client_id] = op.top


def split_ranges(batch: Batch, lasts: list[int]) -> None:
    """Give each run the next consecutive sub-range of the batch's range, in order; a run's
    `lasts` are the highest numbers of its sub-ranges."""
    cursors = [last - total for last, total in zip(lasts, batch.totals, strict=True)]
    for op in batch.ops:
        nops = op.nops
        mine = []
        for i, count in enumerate(op.counts):
            cursors[i] += count * nops
            mine.append(cursors[i])
        op.lasts = mine


class Admission:
    """Open batch + parked operations of one leader term."""

    def __init__(self, nspaces: int, sequenced: dict[int, int], first_batch_id: int,
                 max_ops: int = MAX_BATCH_OPS) -> None:
        self.nspaces = nspaces
        # Parked runs released into one batch stop here, so a batch's numbers stay within
        # what one sequencer request may carry however many runs a client parked.
        self.max_ops = max_ops
        # Highest sequenced reqid per client: the committed state's at the start of the term,
        # then raised as this leader's batches are answered (before they commit).
        self.sequenced = sequenced
        self.next_batch_id = first_batch_id
        self.open = self._new_batch()
        self.parked: dict[int, list[tuple[int, Op]]] = {}
        self.parked_count = 0

    def _new_batch(self) -> Batch:
        batch = Batch(self.next_batch_id, self.nspaces)
        self.next_batch_id += 1
        return batch

    def _fits(self, op: Op) -> bool:
        top = self.open.top.get(op.client_id)
        if top is None:
            top = self.sequenced.get(op.client_id, -1)
        return op.reqid == top + 1

    def admit(self, op: Op) -> bool:
        """Place op in the open batch (True) or park it (False)."""
        if self._fits(op):
            self.open.add(op)
            return True
        heapq.heappush(self.parked.setdefault(op.client_id, []), (op.reqid, op))
        self.parked_count += 1
        return False

    def release(self) -> int:
        """Move every parked operation that now fits into the open batch, in reqid order."""
        if not self.parked_count:
            return 0
        moved = 0
        for client_id in list(self.parked):
            queue = self.parked[client_id]
            while queue and self.open.nops < self.max_ops and self._fits(queue[0][1]):
                self.open.add(heapq.heappop(queue)[1])
                moved += 1
            # Anything at or below the sequenced mark is a duplicate already handled (a run
            # that starts there is a retransmission the committed state answers).
            done = self.sequenced.get(client_id, -1)
            while queue and queue[0][0] <= done:
                heapq.heappop(queue)
                moved += 1
            if not queue:
                del self.parked[client_id]
        self.parked_count -= moved
        return moved

    def close(self) -> Batch:
        """Take the open batch for sending and open a fresh one."""
        batch, self.open = self.open, self._new_batch()
        return batch

    def requeue_front(self, ops: list[Op]) -> None:
        """Put operations back at the head of the open batch (their srid was lost)."""
        old = self.open
        fresh = Batch(old.batch_id, self.nspaces)
        for op in ops + old.ops:
            fresh.add(op)
        self.open = fresh
