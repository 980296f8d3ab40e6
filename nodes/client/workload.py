"""The closed-loop client: `concurrency` outstanding operations against one group.

Each slot sends an operation, waits for its answer and sends the next (a fresh reqid).
A `not_leader` answer redirects to the replica the proxy names; a slot with no answer for
`timeout_ms` retransmits the same reqid to the next replica. The cumulative ack tells the
proxies which answers they may forget. Latency is measured from an operation's first
transmission to its answer, in microseconds, over the whole measured window.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from pathlib import Path
from typing import Any

from nodes import runtime, wire
from nodes.client.measure import Measurement
from nodes.config import ClientConfig
from nodes.logserver.values import entry_value
from nodes.metrics import SeqnumRecorder
from nodes.rpc import ConnectionLost, Peer

log = logging.getLogger("mason.client")


class Outstanding:
    __slots__ = ("reqid", "first_ns", "last_ns", "replica", "rid", "payload")

    def __init__(self) -> None:
        self.payload = b""
        self.reqid = -1
        self.first_ns = 0
        self.last_ns = 0
        self.replica = 0
        self.rid = 0


class Client:
    def __init__(self, conf: ClientConfig) -> None:
        self.conf = conf
        self.counts = list(conf.counts) or [1] * conf.nspaces
        if len(self.counts) != conf.nspaces:
            raise runtime.NodeError(
                f"counts has {len(self.counts)} entries for {conf.nspaces} spaces"
            )
        work = conf.workload
        kinds = {"sequence": wire.OP_SEQUENCE, "append": wire.OP_APPEND, "read": wire.OP_READ}
        if work.kind not in kinds:
            raise runtime.NodeError(f"unknown workload {work.kind!r}")
        self.kind = kinds[work.kind]
        if self.kind != wire.OP_SEQUENCE and self.counts != [1]:
            raise runtime.NodeError("log workloads need exactly one space")
        if self.kind == wire.OP_READ:
            if work.max_log_position <= 0:
                raise runtime.NodeError("a read workload needs max_log_position > 0")
            self.counts = []
        if self.kind == wire.OP_APPEND and work.entry_size <= 0:
            raise runtime.NodeError("entry_size must be positive")
        self.positions = random.Random(work.seed * 1_000_003 + conf.client_id)
        self.read_misses = 0  # reads answered with anything but an entry
        self.refused = 0
        self.replicas: list[Peer] = []
        self.leader = 0
        self.next_reqid = 0
        self.ack = -1
        self.done_above: set[int] = set()  # answered reqids above the cumulative ack
        self.slots = [Outstanding() for _ in range(conf.concurrency)]
        self.by_reqid: dict[int, Outstanding] = {}
        self.measure = Measurement(conf)
        self.issuing = True
        self.retransmits = 0
        self.redirects = 0
        self.idle = asyncio.Event()
        out = Path(conf.outdir)
        self.recorder = (
            SeqnumRecorder(out / f"{conf.name}.seqnums", conf.client_id, conf.nspaces)
            if conf.record_seqnums
            else None
        )

    def start(self) -> None:
        for i, endpoint in enumerate(self.conf.replicas):
            self.replicas.append(
                Peer(endpoint.host, endpoint.port, self.on_cast, name=f"replica-{i}").start()
            )

    def on_cast(self, conn: Any, rid: int, msg: Any) -> None:
        conn.abort(f"unexpected {type(msg).__name__} from a proxy")

    # ---- sending --------------------------------------------------------------------------
    def issue(self, slot: Outstanding) -> None:
        slot.reqid = self.next_reqid
        self.next_reqid += 1
        self.by_reqid[slot.reqid] = slot
        slot.first_ns = time.perf_counter_ns()
        slot.replica = self.leader
        if self.kind == wire.OP_APPEND:
            slot.payload = entry_value(self.conf.client_id, slot.reqid,
                                       self.conf.workload.entry_size)
        elif self.kind == wire.OP_READ:
            position = self.positions.randrange(self.conf.workload.max_log_position)
            slot.payload = position.to_bytes(8, "little")
        self.transmit(slot)

    def transmit(self, slot: Outstanding) -> None:
        slot.last_ns = time.perf_counter_ns()
        req = wire.OpRequest(
            self.conf.client_id, slot.reqid, self.conf.group, self.ack, self.counts,
            self.kind, slot.payload,
        )
        reqid = slot.reqid
        peer = self.replicas[slot.replica]
        slot.rid = peer.call_cb(req, lambda reply: self.on_reply(reqid, reply))

    # ---- answers ------------------------------------------------------------------------
    def on_reply(self, reqid: int, reply: Any) -> None:
        slot = self.by_reqid.get(reqid)
        if slot is None or slot.reqid != reqid:
            return  # a stale duplicate of an answer already taken
        if isinstance(reply, ConnectionLost):
            return  # the timeout scan moves the slot to another replica
        if not isinstance(reply, wire.OpReply) or reply.reqid != reqid:
            log.warning("ignoring malformed answer for reqid %d", reqid)
            return
        if reply.lasts is None:
            self.redirect(slot, reply.leader)
            return
        del self.by_reqid[reqid]
        if reply.status == wire.OP_REFUSED:
            self.refused += 1
            if self.refused == 1:
                log.error("operation %d refused: %s", reqid,
                          reply.payload.decode(errors="replace"))
            self.complete(reqid, None, slot)
        elif self.kind == wire.OP_READ:
            if reply.status != wire.LOG_OK:
                self.read_misses += 1
            self.complete(reqid, None, slot)
        else:
            self.complete(reqid, reply.lasts, slot)
        if self.issuing:
            self.issue(slot)
        elif not self.by_reqid:
            self.idle.set()

    def redirect(self, slot: Outstanding, hint: int) -> None:
        self.redirects += 1
        nreplicas = len(self.replicas)
        if 0 <= hint < nreplicas and hint != slot.replica:
            self.leader = slot.replica = hint
            self.transmit(slot)
            return
        if hint != slot.replica:
            # Nobody knows the leader (an election is running): try the next replica.
            self.leader = (slot.replica + 1) % nreplicas
        # Either way wait a moment rather than spin while the group settles.
        asyncio.get_running_loop().call_later(0.02, self.retry, slot, slot.reqid)

    def retry(self, slot: Outstanding, reqid: int) -> None:
        if slot.reqid == reqid and reqid in self.by_reqid:
            slot.replica = self.leader
            self.transmit(slot)

    def complete(self, reqid: int, lasts: list[int] | None, slot: Outstanding) -> None:
        now_ns = self.measure.done(slot.first_ns)
        if self.recorder is not None and lasts is not None:
            self.recorder.record(reqid, now_ns // 1000, self.counts, lasts)
        if reqid == self.ack + 1:
            ack = reqid
            done = self.done_above
            while ack + 1 in done:
                ack += 1
                done.discard(ack)
            self.ack = ack
        else:
            self.done_above.add(reqid)

    # ---- failure detection ------------------------------------------------------------------
    async def timeouts(self) -> None:
        timeout_ns = self.conf.timeout_ms * 1_000_000
        period = max(0.005, self.conf.timeout_ms / 4000)
        while True:
            await asyncio.sleep(period)
            now = time.perf_counter_ns()
            moved = False
            for slot in list(self.by_reqid.values()):
                if now - slot.last_ns >= timeout_ns:
                    if not moved:
                        # Rotate once per scan: every late slot follows to the same replica.
                        self.leader = (slot.replica + 1) % len(self.replicas)
                        moved = True
                    old = self.replicas[slot.replica].conn
                    if old is not None:
                        old.forget(slot.rid)
                    slot.replica = self.leader
                    self.retransmits += 1
                    self.transmit(slot)

    # ---- the run ----------------------------------------------------------------------------
    async def run(self, stop: runtime.Stop) -> None:
        conf = self.conf
        self.start()
        up = await self.replicas[0].wait_up(30.0)
        if not up:
            raise runtime.NodeError("cannot reach replica 0 of the group within 30 s")
        runtime.mark_ready(conf, f"client {conf.client_id}")
        watcher = asyncio.get_running_loop().create_task(self.timeouts())
        for slot in self.slots:
            self.issue(slot)
        await self.measure.timeline(stop)
        # Stop issuing and wait for every outstanding answer, so every number handed out
        # to this client is on record.
        self.issuing = False
        if self.by_reqid:
            self.idle.clear()
            try:
                await asyncio.wait_for(self.idle.wait(), conf.drain_s)
            except asyncio.TimeoutError:
                log.warning("%d operations unanswered after %.1f s", len(self.by_reqid),
                            conf.drain_s)
        watcher.cancel()
        self.measure.write(retransmits=self.retransmits, redirects=self.redirects,
                           unanswered=len(self.by_reqid), read_misses=self.read_misses,
                           refused=self.refused,
                           recorded=self.recorder.lines if self.recorder is not None else -1)
        if self.recorder is not None:
            self.recorder.close()
        for peer in self.replicas:
            peer.stop()


async def run(conf: ClientConfig, stop: runtime.Stop) -> None:
    await Client(conf).run(stop)
