"""Sequencer failover, as a proxy group leader takes part in it.

Detection: a leader that hears nothing from its sequencer for a heartbeat period sends a
heartbeat; after `heartbeat_misses` silent periods it tells the standby of the next epoch
to take over (idempotent at the standby). The standby then drives three requests that any
group leader answers: switch (log `SwitchSequencer`; from the moment the request arrives,
answers of older epochs are ignored, so none of their numbers can enter the log after the
switch), collect (the group's bitmaps, once every earlier commit is applied) and fill
(commit the holes as noops, at most once per fill id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nodes import raft, wire
from nodes.config import ProxyConfig
from nodes.proxy import entries
from nodes.proxy.group_state import GroupState
from nodes.rpc import Conn, Peer

log = logging.getLogger("mason.proxy")

# A replica's part in its group (also what its .role file says).
FOLLOWING, GAINING, LEADING = "follower", "gaining", "leader"


class FailoverMixin:
    """The failover half of `Replica`; it uses the replica's state declared below."""

    conf: ProxyConfig
    nspaces: int
    loop: asyncio.AbstractEventLoop
    raft: raft.RaftNode
    state: GroupState
    mode: str
    term_start: int
    sequencer: Peer | None
    backups: list[Peer]
    accept_epoch: int
    last_heard: float
    switch_waiters: list[tuple[int, Conn, int]]
    fill_waiters: dict[int, tuple[Conn, int]]
    leader_hint: Callable[[], int]
    propose: Callable[[entries.BatchEntry | entries.SwitchSequencer], None]
    connect_sequencer: Callable[[str, int], None]

    def is_raft_leader(self) -> bool:
        return self.mode != FOLLOWING and self.raft.role == raft.Role.LEADER

    async def heartbeats(self) -> None:
        """Detect a silent sequencer and ask the backup to take over."""
        period = self.conf.heartbeat_ms / 1000
        while True:
            await asyncio.sleep(period)
            if not self.is_raft_leader():
                self.last_heard = self.loop.time()
                continue
            silent = self.loop.time() - self.last_heard
            if silent < period:
                continue
            seq = self.sequencer
            if seq is not None and seq.up:
                seq.call_cb(wire.Heartbeat(self.accept_epoch), self.on_heartbeat_reply)
            standby = self.standby_for(self.accept_epoch)
            if silent >= period * self.conf.heartbeat_misses and standby is not None:
                if standby.up and self.state.epoch == self.accept_epoch:
                    log.warning("sequencer epoch %d silent for %.0f ms: asking the standby",
                                self.accept_epoch, silent * 1000)
                    standby.cast(wire.TakeOver(self.conf.group, self.accept_epoch))

    def standby_for(self, dead_epoch: int) -> Peer | None:
        """The standby that serves the epoch after dead_epoch, if one is configured."""
        index = dead_epoch - 1
        return self.backups[index] if 0 <= index < len(self.backups) else None

    def on_heartbeat_reply(self, reply: Any) -> None:
        if isinstance(reply, wire.HeartbeatReply) and reply.epoch >= self.accept_epoch:
            self.last_heard = self.loop.time()

    def not_leader(self, conn: Conn, rid: int) -> None:
        conn.reply(rid, wire.GroupReply(self.conf.group, False, self.leader_hint()))

    def on_switch(self, conn: Conn, rid: int, req: wire.SwitchRequest) -> None:
        if self.state.epoch >= req.epoch:
            conn.reply(rid, wire.GroupReply(self.conf.group, True))
            return
        if not self.is_raft_leader():
            self.not_leader(conn, rid)
            return
        # From now on no answer of an older sequencer may enter the log: the backup will
        # hand out every number the log does not hold once all groups have switched.
        self.accept_epoch = max(self.accept_epoch, req.epoch)
        self.switch_waiters.append((req.epoch, conn, rid))
        self.propose(entries.SwitchSequencer(req.epoch, req.host, req.port))

    def switched(self, entry: entries.SwitchSequencer) -> None:
        if entry.epoch < self.state.epoch:
            return
        self.accept_epoch = max(self.accept_epoch, entry.epoch)
        self.connect_sequencer(entry.host, entry.port)
        self.last_heard = self.loop.time()
        waiting, self.switch_waiters = self.switch_waiters, []
        for epoch, conn, rid in waiting:
            if epoch <= self.state.epoch:
                conn.reply(rid, wire.GroupReply(self.conf.group, True))
            else:
                self.switch_waiters.append((epoch, conn, rid))
        log.info("switched to sequencer epoch %d at %s:%d", entry.epoch, entry.host, entry.port)

    def on_collect(self, conn: Conn, rid: int, req: wire.CollectRequest) -> None:
        # A new leader answers only once everything committed before its term is applied
        # here, or its bitmaps could miss numbers that earlier leaders committed.
        settled = self.raft.applied_index >= self.term_start
        if not self.is_raft_leader() or self.state.epoch < req.epoch or not settled:
            self.not_leader(conn, rid)
            return
        bitmaps = self.state.bitmaps
        conn.reply(rid, wire.CollectReply(
            self.conf.group, True, self.conf.replica, [b.base for b in bitmaps],
            [bytes(b.bits) for b in bitmaps],
        ))

    def on_fill(self, conn: Conn, rid: int, req: wire.FillRequest) -> None:
        if req.fill_id in self.state.fills:
            conn.reply(rid, wire.GroupReply(self.conf.group, True))
            return
        if not self.is_raft_leader():
            self.not_leader(conn, rid)
            return
        if req.fill_id in self.fill_waiters:
            self.fill_waiters[req.fill_id] = (conn, rid)
            return
        ops = entries.fill_records(req.holes, self.nspaces)
        self.fill_waiters[req.fill_id] = (conn, rid)
        log.info("committing %d hole range(s) as noops for the backup sequencer", len(ops))
        self.propose(entries.BatchEntry(0, self.state.next_batch_id, ops, [], noop=True,
                                        fill_id=req.fill_id))

