"""A group leader's part in a standby sequencer's takeover (detection is in SequencerLink).

The standby drives three requests that any group leader answers: switch (log
`SwitchSequencer`; from the moment the request arrives, answers of older epochs are
ignored, so none of their numbers can enter the log after the switch), collect (the
group's bitmaps, once every earlier commit is applied) and fill (commit the holes as
noops, at most once per fill id). A replica that does not lead answers "not the leader"
with its hint, and a leader that steps down answers every request it still holds so.

Any group may carry the fill (nodes/sequencer/fill_carrier.py says which): the standby
first probes a group (its leader commits a `FillProbe`, which owns no number) and sends
the fill only to a group that just showed it can commit. A refusal that proposed nothing
says so (`untouched`), which lets the standby carry the fill through another group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from nodes import wire
from nodes.proxy import entries
from nodes.proxy.group_state import GroupState
from nodes.proxy.sequencer_link import SequencerLink
from nodes.rpc import Conn

log = logging.getLogger("mason.proxy")


class SequencerFailover:
    def __init__(
        self,
        group: int,
        replica: int,
        nspaces: int,
        link: SequencerLink,
        *,
        state: Callable[[], GroupState],
        leading: Callable[[], bool],
        settled: Callable[[], bool],
        leader_hint: Callable[[], int],
        propose: Callable[[entries.Entry], None],
    ) -> None:
        self.group = group
        self.replica = replica
        self.nspaces = nspaces
        self.link = link
        self.state = state
        self.leading = leading  # Raft leader (serving or still settling its term)
        self.settled = settled  # everything committed before this term is applied here
        self.leader_hint = leader_hint
        self.propose = propose
        self.switch_waiters: list[tuple[int, Conn, int]] = []  # (epoch, conn, rid)
        self.fill_waiters: dict[int, tuple[Conn, int]] = {}
        self.probe_waiters: dict[int, tuple[Conn, int]] = {}

    def not_leader(self, conn: Conn, rid: int, *, untouched: bool = True) -> None:
        """`untouched`: nothing was proposed for this request (False for the requests a
        leader still held when it stepped down: their entries may yet commit)."""
        conn.reply(rid, wire.GroupReply(self.group, False, self.leader_hint(),
                                        untouched=untouched))

    def superseded(self, conn: Conn, rid: int, epoch: int) -> bool:
        """Answer `stale` to a standby of an epoch older than the one this group follows
        (or has promised to follow): it was superseded while it recovered, and its collect
        or fill could count numbers of the newer epoch as holes."""
        if epoch >= max(self.state().epoch, self.link.accept_epoch):
            return False
        conn.reply(rid, wire.GroupReply(self.group, False, self.leader_hint(), stale=True))
        return True

    def on_switch(self, conn: Conn, rid: int, req: wire.SwitchRequest) -> None:
        if self.superseded(conn, rid, req.epoch):
            return
        if self.state().epoch >= req.epoch:
            conn.reply(rid, wire.GroupReply(self.group, True))
            return
        if not self.leading():
            self.not_leader(conn, rid)
            return
        # From now on no answer of an older sequencer may enter the log: the backup will
        # hand out every number the log does not hold once all groups have switched.
        self.link.accept_epoch = max(self.link.accept_epoch, req.epoch)
        self.switch_waiters.append((req.epoch, conn, rid))
        self.propose(entries.SwitchSequencer(req.epoch, req.host, req.port))

    def switched(self, entry: entries.SwitchSequencer) -> None:
        """A SwitchSequencer entry was applied (on every replica)."""
        epoch = self.state().epoch
        if entry.epoch < epoch:
            return
        self.link.switched(entry.epoch, entry.host, entry.port)
        waiting, self.switch_waiters = self.switch_waiters, []
        for want, conn, rid in waiting:
            if want <= epoch:
                conn.reply(rid, wire.GroupReply(self.group, True))
            else:
                self.switch_waiters.append((want, conn, rid))
        log.info("switched to sequencer epoch %d at %s:%d", entry.epoch, entry.host, entry.port)

    def on_collect(self, conn: Conn, rid: int, req: wire.CollectRequest) -> None:
        # A new leader answers only once everything committed before its term is applied
        # here, or its bitmaps could miss numbers that earlier leaders committed.
        state = self.state()
        if self.superseded(conn, rid, req.epoch):
            return
        if not self.leading() or state.epoch < req.epoch or not self.settled():
            self.not_leader(conn, rid)
            return
        bitmaps = state.bitmaps
        conn.reply(rid, wire.CollectReply(
            self.group, True, self.replica, [b.base for b in bitmaps],
            [bytes(b.bits) for b in bitmaps],
        ))

    def on_fill(self, conn: Conn, rid: int, req: wire.FillRequest) -> None:
        state = self.state()
        # A fill's id is its standby's epoch.
        if req.fill_id not in state.fills and self.superseded(conn, rid, req.fill_id):
            return
        if req.fill_id in state.fills:
            conn.reply(rid, wire.GroupReply(self.group, True))
            return
        if not self.leading():
            self.not_leader(conn, rid)
            return
        if len(req.holes) != self.nspaces or any(
            first < 0 or last < first for ranges in req.holes for first, last in ranges
        ):
            conn.abort(f"malformed fill {req.fill_id}: holes must be ordered, non-negative "
                       f"ranges for {self.nspaces} spaces")
            return
        if req.probe:
            # Answered once the marker is applied: the group can commit right now.
            fresh = req.fill_id not in self.probe_waiters
            self.probe_waiters[req.fill_id] = (conn, rid)
            if fresh:
                self.propose(entries.FillProbe(req.fill_id))
            return
        if req.fill_id in self.fill_waiters:
            self.fill_waiters[req.fill_id] = (conn, rid)
            return
        ops = entries.fill_records(req.holes, self.nspaces)
        self.fill_waiters[req.fill_id] = (conn, rid)
        log.info("committing %d hole range(s) as noops for the backup sequencer", len(ops))
        self.propose(entries.BatchEntry(0, state.next_batch_id, ops, [], noop=True,
                                        fill_id=req.fill_id))

    def probed(self, fill_id: int) -> None:
        """A FillProbe entry was applied (on every replica)."""
        waiter = self.probe_waiters.pop(fill_id, None)
        if waiter is not None:
            waiter[0].reply(waiter[1], wire.GroupReply(self.group, True))

    def filled(self, fill_id: int) -> None:
        waiter = self.fill_waiters.pop(fill_id, None)
        if waiter is not None:
            waiter[0].reply(waiter[1], wire.GroupReply(self.group, True))

    def step_down(self) -> None:
        for _, conn, rid in self.switch_waiters:
            self.not_leader(conn, rid, untouched=False)
        self.switch_waiters.clear()
        for conn, rid in self.fill_waiters.values():
            self.not_leader(conn, rid, untouched=False)
        self.fill_waiters.clear()
        for conn, rid in self.probe_waiters.values():
            self.not_leader(conn, rid)  # a probe's marker owns no number
        self.probe_waiters.clear()
