"""The proxy process: one replica of one Raft group, the same host for every system.

Normal path on the leader: admit a client operation (validation by the group's service,
dedup, client-determined order) -> batch (closed by a timeout counted from the batch's
first operation, or by a size cap) -> one sequencer request per batch -> split the
returned ranges over the batch's operations -> one Raft entry per batch -> on commit, the
service says what the operation still owes (nothing for Mason; a chain write for
CorfuMason), the leader carries it out and answers the client. Followers apply the same
entries, so any of them can take over with the answers, the srid bookkeeping and what is
still owed.

Leadership has one source, Raft: a replica leads when Raft says so; it *serves* once it
has settled the term it won (applied every earlier entry and said hello to the sequencer).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodes import raft, runtime, status, wire
from nodes.config import ProxyConfig
from nodes.metrics import NoopRecorder
from nodes.proxy import entries
from nodes.proxy.batching import Admission, Batch, Op, split_ranges
from nodes.proxy.durable import BATCH_SYNC_S, RaftFile, fsync_and_close
from nodes.proxy.effects import EffectRunner, LogEffects
from nodes.proxy.failover import SequencerFailover
from nodes.proxy.gc_ring import GcRing
from nodes.proxy.group_state import GroupState
from nodes.proxy.sequencer_link import SequencerLink
from nodes.rpc import Conn, Peer
from nodes.services import Effect, LogWrite, Refused, Service, make_service
from nodes.services.zkmason import ZkCall

log = logging.getLogger("mason.proxy")

RAFT_MESSAGES = typing.get_args(raft.RaftMessage)
NOT_SERVING = -1  # Raft terms start at 0: no term equals this
RESTART_GRACE_S = 1.0  # least time a restarted replica waits for a leader before campaigning
PROGRESS_PERIOD = 0.2  # seconds between rewrites of <name>.progress.json
DRAIN_S = 5.0  # a clean stop waits this long at most for owed effects (ZK-Mason)
DRAIN_POLL_S = 0.01
EFFECT_RETRY = 0.05  # seconds before an unfinished effect (log unavailable) is tried again


def fresh_path(outdir: Path, name: str, suffix: str) -> Path:
    """`<name><suffix>`, or `<name>.<k><suffix>` with the first k not yet taken: a restarted
    process keeps what its earlier incarnations wrote."""
    path = outdir / f"{name}{suffix}"
    k = 1
    while path.exists():
        path = outdir / f"{name}.{k}{suffix}"
        k += 1
    return path


RUN_MISMATCH = "these operations were sent and committed as another run"


def refused(reqid: int, reason: str) -> wire.OpReply:
    return wire.OpReply(reqid, [], status=wire.OP_REFUSED, payload=reason.encode())


class Replica:
    def __init__(self, conf: ProxyConfig, service: Service | None = None) -> None:
        self.conf = conf
        self.group = conf.group
        self.nspaces = conf.nspaces
        self.loop = asyncio.get_running_loop()
        max_entry = conf.log.max_entry_bytes if conf.log is not None else 0
        self.service = service or make_service(conf.service, conf.nspaces, max_entry,
                                               conf.zk_tick_ms, conf.group)
        self.direct_kinds = self.service.direct_kinds
        self.runs = self.service.runs
        # A group whose operations need no numbers has no sequencer: a closed batch goes
        # straight into the log, and a new leader serves once its term is settled.
        self.unsequenced = conf.sequencer is None
        if self.unsequenced and conf.nspaces:
            raise ValueError(f"{conf.nspaces} sequence spaces but no sequencer to number them")
        seq = conf.sequencer
        self.state = GroupState(conf.nspaces, conf.epoch, seq.host if seq else "",
                                seq.port if seq else 0, conf.bitmap_block, self.service)
        # Raft's durable state: a replica killed earlier in this run resumes from its file.
        self.raft_file = RaftFile(Path(conf.outdir) / f"{conf.name}.raft", conf.durable)
        self.restarted = self.raft_file.restarted
        self.syncing = False  # batch mode: an fsync is under way in a worker thread
        self.raft = raft.RaftNode(
            raft.RaftConfig(
                node_id=conf.replica,
                peers=tuple(sorted([conf.replica, *(int(k) for k in conf.peers)])),
                election_ticks=conf.election_ticks,
                heartbeat_ticks=conf.heartbeat_ticks,
                seed=conf.group * 7919 + conf.replica * 104729 + time.time_ns() % 1000,
                # Followers that answer their own clients at apply time learn commits at
                # once (RSMKeeper's ZooKeeper port), not a heartbeat later.
                commit_notice=conf.zk_listen is not None,
            ),
            self.raft_file.storage,
        )
        self.won_term = 0  # the Raft term this replica won and is settling or serving
        self.serving_term = NOT_SERVING  # the term in which it serves
        self.term_start = 0  # last log index when it won: applied up to here = settled
        self.admission: Admission | None = None
        self.inflight: dict[tuple[int, int], Op] = {}
        # Committed operations whose owed effects are under way, by (client, reqid).
        self.owing: dict[tuple[int, int], Op] = {}
        self.log_refusals: dict[tuple[int, int], str] = {}  # committed, never written
        # Entries this replica proposed as leader, by log index: (term, entry).
        self.proposed: dict[int, tuple[int, entries.Entry]] = {}
        self.next_srid = 1
        self.acks: dict[int, int] = {}  # client acks to piggy-back on the next entry
        self.batch_timer: asyncio.TimerHandle | None = None
        self.ready_scheduled = False
        self.peers: dict[int, Peer] = {}
        # A restarted replica applies the group's noops again: into a file of its own, so the
        # checker counts them as the group's noops seen twice, not as double commits.
        self.noops = (
            NoopRecorder(fresh_path(Path(conf.outdir), conf.name, ".noops"), conf.nspaces,
                         conf.group)
            if conf.record_noops
            else None
        )
        if self.noops is not None:
            # The header now: even a replica killed at once leaves a valid file.
            self.noops.flush()
        self.ops_answered = 0
        self.settling = 0  # settle tasks under way: committed operations' effects
        self.effect_failures = 0
        self.snapshots_restored = 0
        self.batch_timeout = conf.batch_timeout_us / 1e6
        self.link = SequencerLink(
            conf, self.handle, serving=self.serving, leading=self.leading,
            term=lambda: self.raft.term, log_epoch=lambda: self.state.epoch,
            floor=lambda: self.state.srid_floor, on_answer=self.on_seq_answer,
        )
        self.failover = SequencerFailover(
            conf.group, conf.replica, conf.nspaces, self.link, state=lambda: self.state,
            leading=self.leading, settled=self.settled, leader_hint=self.leader_hint,
            propose=self.propose,
        )
        self.gc = GcRing(conf, lambda: self.state.bitmaps, self.serving)
        self.effects: EffectRunner | None = None
        if conf.log is not None:
            self.effects = LogEffects(conf.log, name=conf.name)
        elif conf.zk_shards:
            from nodes.zkserver.shard_client import ShardEffects

            self.effects = ShardEffects(conf.zk_shards, conf.name,
                                        conf.zk_shard_timeout_ms / 1000)
        # ZK-Mason's shard replicas send watch events here; its ZooKeeper port takes them.
        self.on_shard_events: Callable[[wire.ShardEvents], None] = lambda msg: None
        # Fault injection (SIGUSR1): die between a sequencer answer and its Raft entry, the
        # moment that leaves numbers owned by nobody.
        self.die_mid_batch = False

    # ---- leadership ----------------------------------------------------------------------
    def leading(self) -> bool:
        return self.raft.role == raft.Role.LEADER

    def serving(self) -> bool:
        # serving_term is set once a won term is settled and reset as soon as Raft reports
        # the loss (on_role_change): Raft's own view, read cheaply on the hot path.
        return self.serving_term == self.raft.term

    def settled(self) -> bool:
        return self.raft.applied_index >= self.term_start

    def role_name(self) -> str:
        if self.serving():
            return status.LEADER
        return status.GAINING if self.leading() else status.FOLLOWER

    def leader_hint(self) -> int:
        leader = self.raft.leader_id
        return -1 if leader is None else leader

    # ---- wiring ------------------------------------------------------------------------
    def start(self) -> None:
        for key, endpoint in self.conf.peers.items():
            peer_id = int(key)
            self.peers[peer_id] = Peer(
                endpoint.host, endpoint.port, self.handle, name=f"replica-{peer_id}"
            ).start()
        if not self.unsequenced:
            self.link.start(self.state.seq_host, self.state.seq_port)
        self.gc.start(self.handle)
        if self.effects is not None:
            self.effects.start()
        self.loop.create_task(self.ticker())
        self.loop.create_task(self.report_progress())
        if self.conf.designated_leader and not self.restarted:
            # A restarted replica rejoins as a follower: campaigning would only depose the
            # leader the group has now.
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

    def stop(self) -> None:
        for peer in self.peers.values():
            peer.stop()
        self.gc.stop()
        self.link.stop()
        if self.effects is not None:
            self.effects.stop()
        if self.noops is not None:
            self.noops.close()
        self.raft_file.close()

    def handle(self, conn: Conn, rid: int, msg: Any) -> None:
        if isinstance(msg, wire.OpRequest):
            self.on_op(conn, rid, msg)
        elif isinstance(msg, RAFT_MESSAGES):
            self.raft.step(msg)
            self.schedule_ready()
        elif isinstance(msg, wire.GcToken):
            self.gc.on_token(msg)
        elif isinstance(msg, wire.SwitchRequest):
            self.failover.on_switch(conn, rid, msg)
        elif isinstance(msg, wire.CollectRequest):
            self.failover.on_collect(conn, rid, msg)
        elif isinstance(msg, wire.FillRequest):
            self.failover.on_fill(conn, rid, msg)
        elif isinstance(msg, wire.ShardEvents):
            self.on_shard_events(msg)
            if rid:  # taken: the shard replica stops sending it again (zkshard/outbox.py)
                conn.reply(rid, wire.Ack())
        elif isinstance(msg, wire.Ack):
            pass
        else:
            conn.abort(f"unexpected {type(msg).__name__}")

    # ---- Raft driving ------------------------------------------------------------------
    async def ticker(self) -> None:
        period = self.conf.tick_ms / 1000
        # A restarted replica holds its election timer until it hears from a leader, or for
        # a grace period: the leader's connection to it is still backing off, and an early
        # campaign would only depose a healthy leader (its higher term wins the step-down
        # even though its vote request cannot win the election).
        grace = max(RESTART_GRACE_S, 3 * self.conf.election_ticks * period)
        hold_until = self.loop.time() + grace if self.restarted else 0.0
        while True:
            await asyncio.sleep(period)
            if hold_until and self.raft.leader_id is None and self.loop.time() < hold_until:
                continue
            hold_until = 0.0
            self.raft.tick()
            self.schedule_ready()

    async def report_progress(self) -> None:
        while True:
            node = self.raft
            status.write_progress(self.conf.outdir, status.ReplicaProgress(
                name=self.conf.name, restarted=self.restarted, role=self.role_name(),
                term=node.term, commit=node.commit_index, applied=node.applied_index,
                first_index=node.first_index, last_index=node.last_index,
                snapshots_restored=self.snapshots_restored))
            await asyncio.sleep(PROGRESS_PERIOD)

    def schedule_ready(self) -> None:
        if not self.ready_scheduled:
            self.ready_scheduled = True
            self.loop.call_soon(self.process_ready)

    def process_ready(self) -> None:
        self.ready_scheduled = False
        node = self.raft
        while node.has_ready():
            rd = node.ready()
            # Durable before any message that depends on it leaves (a vote, an ack).
            self.raft_file.persist()
            if self.raft_file.unsynced and not self.syncing:
                self.syncing = True
                self.loop.create_task(self.sync_raft_file())
            peers = self.peers
            for msg in rd.messages:
                peer = peers.get(msg.to)
                if peer is not None:
                    peer.cast(msg)
            if rd.snapshot is not None:
                self.state.restore(rd.snapshot.data)
                self.snapshots_restored += 1
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

    async def sync_raft_file(self) -> None:
        """Batch mode's group commit: one fsync, in a worker thread, for every ready written
        since the last one; at most one in flight and one every BATCH_SYNC_S."""
        try:
            while True:
                wait = self.raft_file.last_sync + BATCH_SYNC_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                fd = self.raft_file.take_unsynced()
                if fd is None:
                    return
                await self.loop.run_in_executor(None, fsync_and_close, fd)
        finally:
            self.syncing = False

    def apply(self, entry: entries.Entry) -> None:
        state = self.state
        committed = state.apply(entry)
        if isinstance(entry, entries.SwitchSequencer):
            self.failover.switched(entry)
            return
        if isinstance(entry, entries.FillProbe):
            self.failover.probed(entry.fill_id)
            return
        if entry.fill_id:
            self.failover.filled(entry.fill_id)
        owed = state.owed
        if entry.noop:
            if self.noops is not None:
                now_us = time.time_ns() // 1000
                for op in committed:
                    self.noops.record(now_us, op.counts, op.lasts)
                # Noops are rare and must survive a kill -9 of this replica right after.
                self.noops.flush()
            if owed is not None and self.serving():
                self.owe([(None, effects) for effects in owed if effects])
            return
        if not self.serving():
            return  # a new leader re-drives what is still owed once it serves
        inflight = self.inflight
        if owed is not None:
            pairs: list[tuple[Op | None, list[Effect]]] = []
            for rec, effects in zip(committed, owed, strict=True):
                waiting = inflight.pop((rec.client_id, rec.reqid), None)
                pairs.append((waiting or Op(rec.client_id, rec.reqid, rec.counts, None, 0),
                              effects))
            self.owe(pairs)
            return
        answered = 0
        for rec in committed:
            waiting = inflight.pop((rec.client_id, rec.reqid), None)
            if waiting is not None and waiting.conn is not None:
                waiting.conn.reply(waiting.rid, wire.OpReply(rec.reqid, rec.lasts, nops=rec.nops))
                answered += rec.nops
        self.ops_answered += answered

    # ---- what committed operations owe ---------------------------------------------------
    def owe(self, owed: list[tuple[Op | None, list[Effect]]]) -> None:
        """Carry out committed operations' effects, then answer them (if someone waits).

        One task per entry: the entry's effects run concurrently (different positions,
        often different chains) and its operations are answered together."""
        owing = self.owing
        for op, _ in owed:
            if op is not None:
                owing[(op.client_id, op.reqid)] = op
        self.settling += 1
        self.loop.create_task(self.settle(self.raft.term, owed))

    async def run_effects(self, effects: list[Effect], failed: set[int],
                          answers: dict[int, bytes]) -> list[Effect]:
        """Run effects once; returns those to try again (their log or shard was unavailable)
        and adds to `failed` the ids of those that can never succeed (a position holding
        other content): their operations are not answered as done. Where the runner's
        results are answers (ZK-Mason), they go to `answers` by effect id."""
        runner = self.effects
        assert runner is not None, "a service owes effects but the proxy has no runner"
        results = await asyncio.gather(*(runner.run(e) for e in effects))
        again = []
        for effect, result in zip(effects, results, strict=True):
            if not runner.finished(effect, result):
                again.append(effect)
                continue
            if runner.answers:
                answers[id(effect)] = result.data
            if runner.failed(result):
                self.effect_failures += 1
                failed.add(id(effect))
                log.error("%s at position %s: status %d", type(effect).__name__,
                          getattr(effect, "position", "?"), result.status)
            self.service.done(effect)
        return again

    async def settle(self, term: int, owed: list[tuple[Op | None, list[Effect]]]) -> None:
        try:
            await self._settle(term, owed)
        finally:
            self.settling -= 1

    async def _settle(self, term: int, owed: list[tuple[Op | None, list[Effect]]]) -> None:
        failed: set[int] = set()
        answers: dict[int, bytes] = {}
        todo = await self.run_effects([e for _, effects in owed for e in effects], failed,
                                      answers)
        while todo:
            if not (self.serving() and self.raft.term == term):
                return  # the next leader re-drives what is still owed
            await asyncio.sleep(EFFECT_RETRY)
            todo = await self.run_effects(todo, failed, answers)
        if not self.serving():
            return
        answer = self.state.answer
        for op, effects in owed:
            if op is None:
                continue
            self.owing.pop((op.client_id, op.reqid), None)
            found = answer(op.client_id, op.reqid)
            if op.conn is None or found is None:
                continue
            lasts = found[0]
            if failed and any(id(e) in failed for e in effects):
                # Leader-local: only a write outside the protocol can take a position.
                self.log_refusals[(op.client_id, op.reqid)] = "the log refused the write"
                op.conn.reply(op.rid, refused(op.reqid, "the log refused the write"))
            else:
                payload = b"".join(answers.get(id(e), b"") for e in effects)
                op.conn.reply(op.rid, wire.OpReply(op.reqid, lasts, payload=payload))
                self.ops_answered += 1

    def redrive(self) -> None:
        """A new leader finishes what earlier leaders committed but never reported done."""
        owed = self.service.pending()
        if not owed:
            return
        log.info("re-driving %d effect(s) committed by earlier leaders", len(owed))
        redriven: list[tuple[Op | None, list[Effect]]] = []
        for effect in owed:
            op = None
            if isinstance(effect, (LogWrite, ZkCall)) and effect.owner[0] != entries.NOOP_CLIENT:
                client_id, reqid = effect.owner
                op = Op(client_id, reqid, [], None, 0)
            redriven.append((op, [effect]))
        self.owe(redriven)

    def answer_again(self, conn: Conn, rid: int, req: wire.OpRequest) -> None:
        """A committed operation whose answer is an effect's result, asked again (its
        holder missed the answer): run its call again; the shards answer from what they
        kept."""
        call_of = getattr(self.service, "call_of", None)
        call = call_of(req.client_id, req.reqid) if call_of is not None else None
        if call is None:
            conn.reply(rid, refused(req.reqid, "the answer is no longer kept"))
            return
        op = Op(req.client_id, req.reqid, [], conn, rid)
        self.owe([(op, [call])])

    async def serve_direct(self, conn: Conn, rid: int, reqid: int, effect: Effect) -> None:
        assert self.effects is not None
        result = await self.effects.run(effect)
        conn.reply(rid, wire.OpReply(reqid, [], status=result.status, payload=result.data))

    async def drain(self, limit_s: float) -> None:
        """A clean stop of a group whose committed operations still owe effects: the leader
        carries on until nothing is admitted, waiting for the sequencer, unlogged or owed;
        a follower stays (the leader needs its votes) until the leader has gone. Both give
        up after `limit_s`."""
        deadline = self.loop.time() + limit_s
        while self.loop.time() < deadline:
            if self.serving():
                admission = self.admission
                if not (self.inflight or self.settling or self.link.pending
                        or (admission is not None and admission.open.ops)):
                    return
            else:
                leader = self.raft.leader_id
                peer = self.peers.get(leader) if leader is not None else None
                if peer is None or not peer.up:
                    return
            await asyncio.sleep(DRAIN_POLL_S)

    # ---- leadership changes -------------------------------------------------------------
    def write_role(self) -> None:
        status.write_role(self.conf.outdir, self.conf.name, self.role_name(), self.raft.term)

    def on_role_change(self) -> None:
        term = self.raft.term
        if self.leading():
            if self.won_term != term:
                self.won_term = term
                self.term_start = self.raft.last_index
                log.info("won term %d; settling the log before serving", term)
                self.loop.create_task(self.gain_leadership(term))
        elif self.won_term:
            log.info("lost leadership (term %d, leader %s)", term, self.raft.leader_id)
            self.step_down()
        self.write_role()

    def step_down(self) -> None:
        self.won_term = 0
        self.serving_term = NOT_SERVING
        if self.batch_timer is not None:
            self.batch_timer.cancel()
            self.batch_timer = None
        hint = self.leader_hint()
        for op in [*self.inflight.values(), *self.owing.values()]:
            if op.conn is not None:
                op.conn.reply(op.rid, wire.OpReply(op.reqid, None, hint))
        self.inflight.clear()
        self.owing.clear()
        self.link.clear()
        self.proposed.clear()
        self.failover.step_down()
        self.admission = None
        self.acks.clear()

    def still_gaining(self, term: int) -> bool:
        return self.won_term == term and self.raft.term == term and self.leading()

    async def gain_leadership(self, term: int) -> None:
        # 1. Everything earlier terms logged must be applied here first: the empty entry of
        #    this term commits only once all earlier entries do.
        while self.still_gaining(term) and not self.settled():
            await asyncio.sleep(self.conf.tick_ms / 1000)
        # 2. Hello to the sequencer: fences older leaders of the group and tells us the
        #    highest srid the group ever used.
        seq_max = 0 if self.unsequenced else None
        while self.still_gaining(term) and seq_max is None:
            reply = await self.link.call(self.link.request(term, 0, [0] * self.nspaces))
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
        # The admission's own copy: a batch is sequenced here before it commits, and if
        # this term ends first, the committed state must not keep the mark (a later term
        # would drop the client's retransmission as a duplicate).
        self.admission = Admission(self.nspaces, dict(self.state.sequenced),
                                   self.state.next_batch_id, self.conf.batch_max_ops)
        self.serving_term = term
        self.write_role()
        missing = self.state.unsettled_srids(upto)
        if missing:
            log.info("probing %d unsettled srids: %s", len(missing), missing[:10])
        for srid in missing:
            probe = Batch(self.admission.next_batch_id, self.nspaces)
            self.admission.next_batch_id += 1
            probe.srid = srid
            probe.probe = True
            self.link.send(probe)
        self.redrive()
        log.info("leading group %d in term %d from srid %d", self.conf.group, term, upto + 1)

    # ---- clients ------------------------------------------------------------------------
    def on_op(self, conn: Conn, rid: int, req: wire.OpRequest) -> None:
        # Signs of ids, acks and counts were checked by the decoder (nodes/wire.py).
        if req.group != self.group:
            conn.reply(rid, refused(req.reqid, f"group {req.group} is not this group"))
            return
        if req.kind in self.direct_kinds:
            self.on_direct(conn, rid, req)
            return
        if self.serving_term != self.raft.term:  # serving(), inline on the hot path
            conn.reply(rid, wire.OpReply(req.reqid, None, self.leader_hint()))
            return
        state = self.state
        client_id = req.client_id
        reqid = req.reqid
        nops = req.nops
        ack = req.ack
        acked = state.acked.get(client_id, -1)
        if ack > acked and ack > self.acks.get(client_id, -1):
            # Never beyond what the group has committed for this client: a forged or
            # corrupt ack would otherwise make every later request look like a duplicate.
            ack = min(ack, state.sequenced.get(client_id, -1))
            if ack > acked:
                self.acks[client_id] = ack  # piggy-backed on the next entry
        if reqid + nops - 1 <= acked:
            return  # the client already has these answers: a late duplicate
        key = (client_id, reqid)
        if reqid <= state.sequenced.get(client_id, -1):
            self.answer_committed(conn, rid, req, key)
            return
        if nops > 1 and not self.runs:
            conn.reply(rid, refused(reqid, f"{self.service.name} takes one operation per "
                                           "request"))
            return
        op = self.inflight.get(key)
        if op is not None:
            if op.nops != nops:
                conn.reply(rid, refused(reqid, RUN_MISMATCH))
            else:
                op.conn, op.rid = conn, rid  # a retransmission: answer the newest request
            return
        try:
            counts = self.service.admit(req)
        except Refused as exc:
            conn.reply(rid, refused(reqid, str(exc)))
            return
        op = Op(client_id, reqid, counts, conn, rid, req.payload, nops)
        self.inflight[key] = op
        assert self.admission is not None
        if self.admission.admit(op):
            self.batch_grew()

    def answer_committed(self, conn: Conn, rid: int, req: wire.OpRequest,
                         key: tuple[int, int]) -> None:
        """A request whose first operation is committed: a retransmission after a lost
        answer or a failover, answered from the committed state."""
        found = self.state.answer(req.client_id, req.reqid)
        if found is None or found[1] != req.nops:
            # Committed runs are answered as they were sent (an answer is kept until all of
            # its run is acked): another grouping of committed reqids is no request this
            # group's clients make.
            conn.reply(rid, refused(req.reqid, RUN_MISMATCH))
            return
        lasts, nops = found
        owing = self.owing.get(key)
        if self.log_refusals and key in self.log_refusals:
            conn.reply(rid, refused(req.reqid, self.log_refusals[key]))
        elif owing is not None:
            owing.conn, owing.rid = conn, rid  # answered once its effects are done
        elif self.effects is not None and self.effects.answers:
            self.answer_again(conn, rid, req)
        else:
            conn.reply(rid, wire.OpReply(req.reqid, lasts, nops=nops))

    def on_direct(self, conn: Conn, rid: int, req: wire.OpRequest) -> None:
        """An operation served without the log (a read), by policy on any replica."""
        if self.conf.read_policy != "any" and not self.serving():
            conn.reply(rid, wire.OpReply(req.reqid, None, self.leader_hint()))
            return
        try:
            effect = self.service.direct(req)
        except Refused as exc:
            conn.reply(rid, refused(req.reqid, str(exc)))
            return
        if effect is not None:
            self.loop.create_task(self.serve_direct(conn, rid, req.reqid, effect))

    def batch_grew(self) -> None:
        assert self.admission is not None
        batch = self.admission.open
        if batch.nops >= self.conf.batch_max_ops:
            self.close_batch()
        elif self.batch_timer is None:
            # With no batch waiting for the sequencer, waiting helps nobody: close at the end
            # of this loop turn (every operation that arrived in the same read joins).
            # Otherwise the timeout, counted from the batch's first operation, lets the
            # batch grow while the sequencer answers.
            delay = self.batch_timeout if self.link.pending else 0.0
            self.batch_timer = self.loop.call_later(delay, self.close_batch)

    def close_batch(self) -> None:
        if self.batch_timer is not None:
            self.batch_timer.cancel()
            self.batch_timer = None
        if not self.serving() or self.admission is None:
            return
        self.admission.release()
        if not self.admission.open.ops:
            return
        batch = self.admission.close()
        if self.unsequenced:
            split_ranges(batch, [])  # no spaces: every operation's lasts is []
            self.log_batch(batch)  # srid 0: no sequencer request to settle
            return
        batch.srid = self.next_srid
        self.next_srid += 1
        self.link.send(batch)

    # ---- sequencer answers ---------------------------------------------------------------
    def on_seq_answer(self, term: int, batch: Batch, reply: wire.SeqReply) -> None:
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
        self.log_batch(batch)

    def log_batch(self, batch: Batch) -> None:
        """One Raft entry for a batch whose operations have their numbers (if they need any)."""
        admission = self.admission
        assert admission is not None
        records = []
        sequenced = admission.sequenced
        for op in batch.ops:
            if op.top > sequenced.get(op.client_id, -1):
                sequenced[op.client_id] = op.top
            assert op.lasts is not None
            records.append(entries.OpRecord(op.client_id, op.reqid, op.counts, op.lasts,
                                            op.payload, op.nops))
        self.propose(entries.BatchEntry(batch.srid, batch.batch_id, records, self.take_acks()))
        if admission.release():
            self.batch_grew()

    def take_acks(self) -> list[tuple[int, int]]:
        acks = list(self.acks.items())
        self.acks.clear()
        return acks

    def propose(self, entry: entries.Entry) -> None:
        if isinstance(entry, entries.BatchEntry):
            entry.gc_bases = self.state.bases()
            entry.notes = self.service.take_notes()
        index = self.raft.propose(entries.encode(entry))
        if index is None:
            log.info("proposal dropped: no longer leader")
        else:
            # Applying our own entry needs no decode; the term tells it is still ours.
            self.proposed[index] = (self.raft.term, entry)
        self.schedule_ready()

    # ---- the final word ------------------------------------------------------------------
    def summary(self) -> status.NodeSummary:
        state = self.state
        return status.NodeSummary(
            name=self.conf.name, role="proxy", group=self.conf.group, replica=self.conf.replica,
            final_role=self.role_name(), term=self.raft.term, ops_committed=state.ops_committed,
            noops_committed=state.noops_committed, noop_numbers=list(state.noop_numbers),
            bitmap_bases=state.bases(),
            numbers_committed_twice=sum(b.duplicates for b in state.bitmaps),
            epoch=state.epoch,
        )


async def run(conf: ProxyConfig, stop: runtime.Stop) -> None:
    try:
        replica = Replica(conf)
    except ValueError as exc:
        raise runtime.NodeError(str(exc)) from None
    except OSError as exc:
        raise runtime.NodeError(f"cannot open the Raft file in {conf.outdir}: "
                                f"{exc.strerror}") from None
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: setattr(replica, "die_mid_batch", True))
    server = await runtime.listen(conf, replica.handle)
    replica.start()
    replica.write_role()
    zk = None
    if conf.zk_listen is not None:
        from nodes.zkserver.listener import ZkListener

        try:
            zk = ZkListener(replica, conf)
            await zk.start()
        except (ValueError, OSError) as exc:
            where = f"{conf.zk_listen.host}:{conf.zk_listen.port}"
            raise runtime.NodeError(f"cannot serve ZooKeeper clients on {where}: {exc}") from None
    runtime.mark_ready(conf, f"group {conf.group} replica {conf.replica}")
    log.info("group %d replica %d serving (%s)%s", conf.group, conf.replica, conf.service,
             f"; restarted at term {replica.raft.term}, log {replica.raft.first_index}.."
             f"{replica.raft.last_index}" if replica.restarted else "")
    last_ops = last_batches = 0
    while not stop.requested:
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
        ops, batches = replica.ops_answered, replica.link.batches_sent
        if replica.serving() and ops != last_ops:
            per_batch = (ops - last_ops) / max(1, batches - last_batches)
            log.info("stats: %d ops/s, %d batches/s, %.1f ops/batch, log %d..%d, "
                     "bitmap bases %s", ops - last_ops, batches - last_batches, per_batch,
                     replica.raft.first_index, replica.raft.last_index,
                     replica.state.bases())
        last_ops, last_batches = ops, batches
    if zk is not None:
        zk.quiesce()
    if replica.effects is not None and replica.effects.answers:
        await replica.drain(DRAIN_S)
    final = replica.summary()
    status.write_summary(conf.outdir, final)
    log.info("final: %s in term %d, %d ops and %d noop batches committed, noop numbers %s, "
             "bitmap bases %s, numbers committed twice %d", final.final_role, final.term,
             final.ops_committed, final.noops_committed, final.noop_numbers,
             final.bitmap_bases, final.numbers_committed_twice)
    server.close()
    if zk is not None:
        zk.stop()
    replica.stop()
