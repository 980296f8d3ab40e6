"""The proxy process: drives one Raft replica of one group from its event loop.

Normal path on the leader: admit a client operation (dedup, client-determined order) ->
batch (closed by a timeout counted from the batch's first operation, or by a size cap) ->
one sequencer request per batch -> split the returned ranges over the batch's operations
-> one Raft entry per batch -> on commit, answer each client. Followers apply the same
entries, so any of them can take over with the answers and the srid bookkeeping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import typing
from pathlib import Path
from typing import Any

from nodes import raft, runtime, wire
from nodes.config import ProxyConfig
from nodes.metrics import NoopRecorder
from nodes.proxy import entries
from nodes.proxy.batching import Admission, Batch, Op, split_ranges
from nodes.proxy.failover import FOLLOWING, GAINING, LEADING, FailoverMixin
from nodes.proxy.gc_ring import GcRing
from nodes.proxy.group_state import GroupState
from nodes.rpc import Conn, ConnectionLost, Peer

log = logging.getLogger("mason.proxy")

RAFT_MESSAGES = typing.get_args(raft.RaftMessage)
NOT_READY_RETRY = 0.02  # seconds between asks to a backup sequencer that is still recovering


class Replica(FailoverMixin):
    def __init__(self, conf: ProxyConfig) -> None:
        self.conf = conf
        self.nspaces = conf.nspaces
        self.loop = asyncio.get_running_loop()
        self.state = GroupState(
            conf.nspaces, conf.epoch, conf.sequencer.host, conf.sequencer.port, conf.bitmap_block
        )
        self.raft = raft.RaftNode(
            raft.RaftConfig(
                node_id=conf.replica,
                peers=tuple(sorted([conf.replica, *(int(k) for k in conf.peers)])),
                election_ticks=conf.election_ticks,
                heartbeat_ticks=conf.heartbeat_ticks,
                seed=conf.group * 7919 + conf.replica * 104729 + time.time_ns() % 1000,
            )
        )
        self.mode = FOLLOWING
        self.term_start = 0
        self.admission: Admission | None = None
        self.inflight: dict[tuple[int, int], Op] = {}
        # Entries this replica proposed as leader, by log index: (term, entry).
        self.proposed: dict[int, tuple[int, entries.BatchEntry | entries.SwitchSequencer]] = {}
        self.pending: dict[int, Batch] = {}  # srid -> batch waiting for the sequencer
        self.next_srid = 1
        self.acks: dict[int, int] = {}  # client acks to piggy-back on the next entry
        self.batch_timer: asyncio.TimerHandle | None = None
        self.ready_scheduled = False
        self.peers: dict[int, Peer] = {}
        self.sequencer: Peer | None = None
        self.noops = (
            NoopRecorder(Path(conf.outdir) / f"{conf.name}.noops", conf.nspaces)
            if conf.record_noops
            else None
        )
        if self.noops is not None:
            # The header now: even a replica killed at once leaves a valid file.
            self.noops.flush()
        self.batches_sent = 0
        self.ops_answered = 0
        self.batch_timeout = conf.batch_timeout_us / 1e6
        # Sequencer failover.
        self.accept_epoch = conf.epoch  # answers from older epochs are ignored
        self.last_heard = 0.0  # loop time of the sequencer's last answer
        self.switch_waiters: list[tuple[int, Conn, int]] = []  # (epoch, conn, rid)
        self.fill_waiters: dict[int, tuple[Conn, int]] = {}
        self.backups: list[Peer] = []
        self.gc = GcRing(conf, lambda: self.state.bitmaps, lambda: self.mode == LEADING)
        # Fault injection (SIGUSR1): die between a sequencer answer and its Raft entry, the
        # moment that leaves numbers owned by nobody.
        self.die_mid_batch = False

    # ---- wiring ------------------------------------------------------------------------
    def start(self) -> None:
        for key, endpoint in self.conf.peers.items():
            peer_id = int(key)
            self.peers[peer_id] = Peer(
                endpoint.host, endpoint.port, self.handle, name=f"replica-{peer_id}"
            ).start()
        self.connect_sequencer(self.state.seq_host, self.state.seq_port)
        for k, b in enumerate(self.conf.backups):
            self.backups.append(
                Peer(b.host, b.port, self.handle, name=f"standby sequencer epoch {k + 2}").start()
            )
        self.gc.start(self.handle)
        self.loop.create_task(self.ticker())
        self.loop.create_task(self.resender())
        self.loop.create_task(self.heartbeats())
        if self.conf.designated_leader:
            self.loop.create_task(self.campaign_when_connected())

    async def campaign_when_connected(self) -> None:
        """The designated replica stands for election once a peer can hear its votes.

        Campaigning before any connection is up would only waste a term, and another
        replica's timer might win instead; after this, leadership is plain Raft."""
        deadline = self.loop.time() + 10 * self.conf.election_ticks * self.conf.tick_ms / 1000
        while self.loop.time() < deadline and not any(p.up for p in self.peers.values()):
            await asyncio.sleep(self.conf.tick_ms / 1000)
        if self.raft.role != raft.Role.LEADER and self.raft.leader_id is None:
            self.raft.campaign()
            self.schedule_ready()

    def connect_sequencer(self, host: str, port: int) -> None:
        if self.sequencer is not None:
            self.sequencer.stop()
        self.sequencer = Peer(host, port, self.handle, name=f"sequencer {host}:{port}",
                              on_connect=self.sequencer_connected).start()

    def sequencer_connected(self, conn: Conn) -> None:
        """A (new or restarted) sequencer connection: re-ask for every waiting batch now."""
        if self.mode == LEADING:
            for batch in list(self.pending.values()):
                self.send_batch(batch)

    def stop(self) -> None:
        for peer in [*self.peers.values(), *self.backups]:
            peer.stop()
        self.gc.stop()
        if self.sequencer is not None:
            self.sequencer.stop()
        if self.noops is not None:
            self.noops.close()

    def handle(self, conn: Conn, rid: int, msg: Any) -> None:
        if isinstance(msg, wire.OpRequest):
            self.on_op(conn, rid, msg)
        elif isinstance(msg, RAFT_MESSAGES):
            self.raft.step(msg)
            self.schedule_ready()
        elif isinstance(msg, wire.GcToken):
            self.gc.on_token(msg)
        elif isinstance(msg, wire.SwitchRequest):
            self.on_switch(conn, rid, msg)
        elif isinstance(msg, wire.CollectRequest):
            self.on_collect(conn, rid, msg)
        elif isinstance(msg, wire.FillRequest):
            self.on_fill(conn, rid, msg)
        elif isinstance(msg, wire.Ack):
            pass
        else:
            conn.abort(f"unexpected {type(msg).__name__}")

    # ---- Raft driving ------------------------------------------------------------------
    async def ticker(self) -> None:
        period = self.conf.tick_ms / 1000
        while True:
            await asyncio.sleep(period)
            self.raft.tick()
            self.schedule_ready()

    def schedule_ready(self) -> None:
        if not self.ready_scheduled:
            self.ready_scheduled = True
            self.loop.call_soon(self.process_ready)

    def process_ready(self) -> None:
        self.ready_scheduled = False
        node = self.raft
        while node.has_ready():
            rd = node.ready()
            peers = self.peers
            for msg in rd.messages:
                peer = peers.get(msg.to)
                if peer is not None:
                    peer.cast(msg)
            if rd.snapshot is not None:
                self.state.restore(rd.snapshot.data)
            proposed = self.proposed
            for entry in rd.committed:
                mine = proposed.pop(entry.index, None)
                if mine is not None and mine[0] == entry.term:
                    self.apply(mine[1])
                elif entry.data:
                    self.apply(entries.decode(entry.data))
            if rd.role_changed:
                self.on_role_change()
        if node.applied_index - node.first_index > self.conf.max_log_entries:
            node.compact(node.applied_index, self.state.snapshot())

    def apply(self, entry: entries.BatchEntry | entries.SwitchSequencer) -> None:
        committed = self.state.apply(entry)
        if isinstance(entry, entries.SwitchSequencer):
            self.switched(entry)
            return
        if entry.fill_id:
            waiter = self.fill_waiters.pop(entry.fill_id, None)
            if waiter is not None:
                waiter[0].reply(waiter[1], wire.GroupReply(self.conf.group, True))
        if entry.noop:
            if self.noops is not None:
                now_us = time.time_ns() // 1000
                for op in committed:
                    self.noops.record(now_us, op.counts, op.lasts)
                # Noops are rare and must survive a kill -9 of this replica right after.
                self.noops.flush()
            return
        if self.mode == FOLLOWING:
            return
        inflight = self.inflight
        for rec in committed:
            waiting = inflight.pop((rec.client_id, rec.reqid), None)
            if waiting is not None and waiting.conn is not None:
                waiting.conn.reply(waiting.rid, wire.OpReply(rec.reqid, rec.lasts))
                self.ops_answered += 1

    # ---- leadership --------------------------------------------------------------------
    def write_role(self) -> None:
        path = Path(self.conf.outdir) / f"{self.conf.name}.role"
        tmp = path.with_suffix(".role.tmp")
        tmp.write_text(f"{self.mode} {self.raft.term}\n")
        tmp.replace(path)

    def on_role_change(self) -> None:
        is_leader = self.raft.role == raft.Role.LEADER
        if is_leader and self.mode == FOLLOWING:
            self.mode = GAINING
            self.term_start = self.raft.last_index
            log.info("won term %d; settling the log before serving", self.raft.term)
            self.write_role()
            self.loop.create_task(self.gain_leadership(self.raft.term))
        elif not is_leader and self.mode != FOLLOWING:
            log.info("lost leadership (term %d, leader %s)", self.raft.term, self.raft.leader_id)
            self.step_down()
        else:
            self.write_role()  # a new term or leader seen from a follower

    def step_down(self) -> None:
        self.mode = FOLLOWING
        if self.batch_timer is not None:
            self.batch_timer.cancel()
            self.batch_timer = None
        hint = self.leader_hint()
        for op in self.inflight.values():
            if op.conn is not None:
                op.conn.reply(op.rid, wire.OpReply(op.reqid, None, hint))
        self.inflight.clear()
        self.pending.clear()
        self.proposed.clear()
        for _, conn, rid in self.switch_waiters:
            conn.reply(rid, wire.GroupReply(self.conf.group, False, hint))
        self.switch_waiters.clear()
        for conn, rid in self.fill_waiters.values():
            conn.reply(rid, wire.GroupReply(self.conf.group, False, hint))
        self.fill_waiters.clear()
        self.admission = None
        self.acks.clear()
        self.write_role()

    def leader_hint(self) -> int:
        leader = self.raft.leader_id
        return -1 if leader is None else leader

    def still_gaining(self, term: int) -> bool:
        return self.mode == GAINING and self.raft.term == term

    async def gain_leadership(self, term: int) -> None:
        # 1. Everything earlier terms logged must be applied here first: the empty entry of
        #    this term commits only once all earlier entries do.
        while self.still_gaining(term) and self.raft.applied_index < self.term_start:
            await asyncio.sleep(self.conf.tick_ms / 1000)
        # 2. Hello to the sequencer: fences older leaders of the group and tells us the
        #    highest srid the group ever used.
        seq_max = None
        while self.still_gaining(term) and seq_max is None:
            reply = await self.seq_call(wire.SeqRequest(
                self.conf.group, term, 0, [0] * self.nspaces, self.state.srid_floor,
                self.accept_epoch,
            ))
            if reply is not None and reply.status == wire.SEQ_OK:
                seq_max = reply.max_srid
            elif reply is not None and reply.status == wire.SEQ_STALE_TERM:
                log.info("the sequencer knows a newer leader; waiting to step down")
                return
            else:
                await asyncio.sleep(self.conf.tick_ms / 1000)
        if not self.still_gaining(term) or seq_max is None:
            return
        # 3. Serve. Srids the old leader obtained but never logged are probed with zero
        #    counts: the sequencer returns their ranges (or seals them empty) and each
        #    becomes a noop batch, so no number stays without an owner.
        upto = max(seq_max, self.state.max_srid)
        self.next_srid = upto + 1
        self.admission = Admission(self.nspaces, self.state.sequenced, self.state.next_batch_id)
        self.mode = LEADING
        self.write_role()
        missing = self.state.unsettled_srids(upto)
        if missing:
            log.info("probing %d unsettled srids: %s", len(missing), missing[:10])
        for srid in missing:
            probe = Batch(self.admission.next_batch_id, self.nspaces)
            self.admission.next_batch_id += 1
            probe.srid = srid
            probe.probe = True
            self.send_batch(probe)
        log.info("leading group %d in term %d from srid %d", self.conf.group, term, upto + 1)

    # ---- clients ------------------------------------------------------------------------
    def on_op(self, conn: Conn, rid: int, req: wire.OpRequest) -> None:
        if self.mode != LEADING:
            conn.reply(rid, wire.OpReply(req.reqid, None, self.leader_hint()))
            return
        state = self.state
        client_id = req.client_id
        if req.ack > state.acked.get(client_id, -1) and req.ack > self.acks.get(client_id, -1):
            self.acks[client_id] = req.ack
        if state.already_acked(client_id, req.reqid):
            return  # the client already has this answer: a late duplicate
        answer = state.answer(client_id, req.reqid)
        if answer is not None:
            conn.reply(rid, wire.OpReply(req.reqid, answer))
            return
        key = (client_id, req.reqid)
        op = self.inflight.get(key)
        if op is not None:
            op.conn, op.rid = conn, rid  # a retransmission: answer the newest request
            return
        if len(req.counts) != self.nspaces:
            conn.abort(f"client {client_id} asks for {len(req.counts)} spaces, not {self.nspaces}")
            return
        op = Op(client_id, req.reqid, req.counts, conn, rid)
        self.inflight[key] = op
        assert self.admission is not None
        if self.admission.admit(op):
            self.batch_grew()

    def batch_grew(self) -> None:
        assert self.admission is not None
        batch = self.admission.open
        if len(batch.ops) >= self.conf.batch_max_ops:
            self.close_batch()
        elif self.batch_timer is None:
            # With no batch waiting for the sequencer, waiting helps nobody: close at the end
            # of this loop turn (every operation that arrived in the same read joins).
            # Otherwise the timeout, counted from the batch's first operation, lets the
            # batch grow while the sequencer answers.
            delay = self.batch_timeout if self.pending else 0.0
            self.batch_timer = self.loop.call_later(delay, self.close_batch)

    def close_batch(self) -> None:
        if self.batch_timer is not None:
            self.batch_timer.cancel()
            self.batch_timer = None
        if self.mode != LEADING or self.admission is None:
            return
        self.admission.release()
        if not self.admission.open.ops:
            return
        batch = self.admission.close()
        batch.srid = self.next_srid
        self.next_srid += 1
        self.send_batch(batch)

    # ---- sequencer ----------------------------------------------------------------------
    async def seq_call(self, req: wire.SeqRequest) -> wire.SeqReply | None:
        seq = self.sequencer
        if seq is None or not seq.up:
            return None
        try:
            reply = await seq.call(req, timeout=self.conf.seq_timeout_ms / 1000)
        except (ConnectionLost, TimeoutError):
            return None
        if not self.heard(reply) or reply.status == wire.SEQ_NOT_READY:
            return None
        return reply

    def heard(self, reply: Any) -> bool:
        """Whether reply is a sequencer answer of an epoch this group accepts; if so, it is
        also a sign of life for failure detection."""
        if not isinstance(reply, wire.SeqReply) or reply.epoch < self.accept_epoch:
            return False
        self.last_heard = self.loop.time()
        return True

    def send_batch(self, batch: Batch) -> None:
        self.pending[batch.srid] = batch
        batch.sent_at = self.loop.time()
        self.batches_sent += 1
        counts = [0] * self.nspaces if batch.probe else batch.totals
        req = wire.SeqRequest(
            self.conf.group, self.raft.term, batch.srid, counts, self.state.srid_floor,
            self.accept_epoch,
        )
        seq = self.sequencer
        if seq is not None:
            term = self.raft.term
            seq.call_cb(req, lambda reply: self.on_seq_reply(term, batch, reply))

    async def resender(self) -> None:
        """Re-send sequencer requests that got no answer (lost connection, restart)."""
        period = self.conf.seq_timeout_ms / 1000
        while True:
            await asyncio.sleep(period)
            if self.mode != LEADING:
                continue
            now = self.loop.time()
            for batch in list(self.pending.values()):
                if now - batch.sent_at >= period:
                    self.send_batch(batch)  # at-most-once at the sequencer makes this safe

    def resend_if_pending(self, term: int, batch: Batch) -> None:
        if self.mode == LEADING and self.raft.term == term and \
                self.pending.get(batch.srid) is batch:
            self.send_batch(batch)

    def on_seq_reply(self, term: int, batch: Batch, reply: Any) -> None:
        if not self.heard(reply):
            return  # a lost connection (the resender tries again) or a sequencer switched from
        if self.mode != LEADING or self.raft.term != term:
            return
        if reply.status == wire.SEQ_NOT_READY:
            # A backup still recovering: ask again soon, not after a whole resend period.
            self.loop.call_later(NOT_READY_RETRY, self.resend_if_pending, term, batch)
            return
        if self.pending.get(batch.srid) is not batch:
            return  # already handled (a duplicate answer to a re-sent request)
        if reply.status != wire.SEQ_OK:
            if reply.status == wire.SEQ_STALE_TERM:
                log.info("sequencer refused term %d: a newer leader exists", term)
            elif reply.status == wire.SEQ_PRUNED:
                del self.pending[batch.srid]
            return
        del self.pending[batch.srid]
        admission = self.admission
        assert admission is not None
        if batch.probe or reply.retx:
            # The ranges belong to an srid an earlier leader used and never logged: they
            # become one noop. Client operations of this batch get a fresh srid.
            if not batch.probe and batch.ops:
                admission.requeue_front(batch.ops)
                self.batch_grew()
            self.propose(entries.BatchEntry(
                batch.srid, batch.batch_id,
                [entries.OpRecord(entries.NOOP_CLIENT, 0, reply.counts, reply.lasts)],
                self.take_acks(), noop=True,
            ))
            return
        if self.die_mid_batch:
            log.warning("fault injection: exiting with srid %d answered but not logged",
                        batch.srid)
            logging.shutdown()
            os._exit(137)
        split_ranges(batch, reply.lasts)
        records = []
        note = self.state.note_sequenced
        for op in batch.ops:
            note(op.client_id, op.reqid)
            assert op.lasts is not None
            records.append(entries.OpRecord(op.client_id, op.reqid, op.counts, op.lasts))
        self.propose(entries.BatchEntry(batch.srid, batch.batch_id, records, self.take_acks()))
        if admission.release():
            self.batch_grew()

    def take_acks(self) -> list[tuple[int, int]]:
        acks = list(self.acks.items())
        self.acks.clear()
        return acks

    def propose(self, entry: entries.BatchEntry | entries.SwitchSequencer) -> None:
        if isinstance(entry, entries.BatchEntry):
            entry.gc_bases = self.state.bases()
        index = self.raft.propose(entries.encode(entry))
        if index is None:
            log.info("proposal dropped: no longer leader")
        else:
            # Applying our own entry needs no decode; the term tells it is still ours.
            self.proposed[index] = (self.raft.term, entry)
        self.schedule_ready()


async def run(conf: ProxyConfig, stop: runtime.Stop) -> None:
    replica = Replica(conf)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: setattr(replica, "die_mid_batch", True))
    server = await runtime.listen(conf, replica.handle)
    replica.start()
    replica.write_role()
    runtime.mark_ready(conf, f"group {conf.group} replica {conf.replica}")
    log.info("group %d replica %d serving", conf.group, conf.replica)
    last_ops = last_batches = 0
    while not stop.requested:
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
        ops, batches = replica.ops_answered, replica.batches_sent
        if replica.mode == LEADING and ops != last_ops:
            per_batch = (ops - last_ops) / max(1, batches - last_batches)
            log.info("stats: %d ops/s, %d batches/s, %.1f ops/batch, log %d..%d, "
                     "bitmap bases %s", ops - last_ops, batches - last_batches, per_batch,
                     replica.raft.first_index, replica.raft.last_index,
                     replica.state.bases())
        last_ops, last_batches = ops, batches
    state = replica.state
    log.info("final: %s in term %d, %d ops and %d noop batches committed, noop numbers %s, "
             "bitmap bases %s, numbers committed twice %d", replica.mode, replica.raft.term,
             state.ops_committed, state.noops_committed, state.noop_numbers, state.bases(),
             sum(b.duplicates for b in state.bitmaps))
    server.close()
    replica.stop()
