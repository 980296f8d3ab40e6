"""The closed-loop client: `concurrency` outstanding operations against one group.

Each answered operation is replaced by a new one (a fresh reqid). Operations issued in the
same event-loop turn (the answers of one read) go out as one run: consecutive reqids with
the same counts in one request (nodes/wire.py OpRequest.nops), answered together, so the
group's work is per run, not per operation. Operations that carry a payload (log appends
and reads) go one per request. A `not_leader` answer redirects to the replica the proxy
names; a run with no answer for `timeout_ms` is retransmitted, as the same run, to the next
replica. The cumulative ack tells the proxies which answers they may forget. Latency is
measured from an operation's first transmission to its answer, in microseconds, over the
whole measured window.
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


class Run:
    """Outstanding operations sent together: reqids `reqid`..`reqid + nops - 1`."""

    __slots__ = ("reqid", "nops", "first_ns", "last_ns", "replica", "rid", "payload")

    def __init__(self, reqid: int, nops: int, replica: int, payload: bytes = b"") -> None:
        self.reqid = reqid
        self.nops = nops
        self.payload = payload
        self.first_ns = self.last_ns = time.perf_counter_ns()
        self.replica = replica
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
        # Only pure sequencing operations share a request; the others carry a payload each.
        self.max_run = wire.MAX_RUN if self.kind == wire.OP_SEQUENCE else 1
        self.positions = random.Random(work.seed * 1_000_003 + conf.client_id)
        self.read_misses = 0  # reads answered with anything but an entry
        self.refused = 0
        self.replicas: list[Peer] = []
        self.leader = 0
        self.next_reqid = 0
        self.ack = -1
        self.done_above: dict[int, int] = {}  # answered runs above the ack: first -> top
        self.by_reqid: dict[int, Run] = {}  # outstanding runs by first reqid
        self.to_issue = 0  # operations answered this loop turn, to be replaced at its end
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
    def replace(self, nops: int) -> None:
        """`nops` operations were answered: issue as many at the end of this loop turn, so
        the answers of one read are replaced by one run."""
        if not self.to_issue:
            asyncio.get_running_loop().call_soon(self.issue_pending)
        self.to_issue += nops

    def issue_pending(self) -> None:
        n, self.to_issue = self.to_issue, 0
        if self.issuing:
            self.issue(n)

    def issue(self, n: int) -> None:
        """Send `n` new operations, as runs of at most `max_run`."""
        while n > 0:
            nops = min(n, self.max_run)
            n -= nops
            reqid = self.next_reqid
            self.next_reqid = reqid + nops
            payload = b""
            if self.kind == wire.OP_APPEND:
                payload = entry_value(self.conf.client_id, reqid, self.conf.workload.entry_size)
            elif self.kind == wire.OP_READ:
                position = self.positions.randrange(self.conf.workload.max_log_position)
                payload = position.to_bytes(8, "little")
            run = Run(reqid, nops, self.leader, payload)
            self.by_reqid[reqid] = run
            self.transmit(run)

    def transmit(self, run: Run) -> None:
        run.last_ns = time.perf_counter_ns()
        req = wire.OpRequest(
            self.conf.client_id, run.reqid, self.conf.group, self.ack, self.counts,
            self.kind, run.payload, run.nops,
        )
        reqid = run.reqid
        peer = self.replicas[run.replica]
        run.rid = peer.call_cb(req, lambda reply: self.on_reply(reqid, reply))

    # ---- answers ------------------------------------------------------------------------
    def on_reply(self, reqid: int, reply: Any) -> None:
        run = self.by_reqid.get(reqid)
        if run is None:
            return  # a stale duplicate of an answer already taken
        if isinstance(reply, ConnectionLost):
            return  # the timeout scan moves the run to another replica
        if not isinstance(reply, wire.OpReply) or reply.reqid != reqid:
            log.warning("ignoring malformed answer for reqid %d", reqid)
            return
        if reply.lasts is None:
            self.redirect(run, reply.leader)
            return
        if reply.status == wire.OP_REFUSED:
            self.refused += run.nops
            if self.refused == run.nops:
                log.error("operation %d refused: %s", reqid,
                          reply.payload.decode(errors="replace"))
            lasts = None
        elif reply.nops != run.nops or len(reply.lasts) != len(self.counts):
            log.warning("ignoring malformed answer for reqid %d", reqid)
            return
        elif self.kind == wire.OP_READ:
            if reply.status != wire.LOG_OK:
                self.read_misses += 1
            lasts = None
        else:
            lasts = reply.lasts
        del self.by_reqid[reqid]
        self.complete(run, lasts)
        if self.issuing:
            self.replace(run.nops)
        elif not self.by_reqid:
            self.idle.set()

    def redirect(self, run: Run, hint: int) -> None:
        self.redirects += 1
        nreplicas = len(self.replicas)
        if 0 <= hint < nreplicas and hint != run.replica:
            self.leader = run.replica = hint
            self.transmit(run)
            return
        if hint != run.replica:
            # Nobody knows the leader (an election is running): try the next replica.
            self.leader = (run.replica + 1) % nreplicas
        # Either way wait a moment rather than spin while the group settles.
        asyncio.get_running_loop().call_later(0.02, self.retry, run)

    def retry(self, run: Run) -> None:
        if self.by_reqid.get(run.reqid) is run:
            run.replica = self.leader
            self.transmit(run)

    def complete(self, run: Run, lasts: list[int] | None) -> None:
        reqid, nops = run.reqid, run.nops
        now_ns = self.measure.done(run.first_ns, nops)
        if self.recorder is not None and lasts is not None:
            self.recorder.record_run(reqid, now_ns // 1000, self.counts, lasts, nops)
        top = reqid + nops - 1
        if reqid == self.ack + 1:
            done = self.done_above
            while top + 1 in done:
                top = done.pop(top + 1)
            self.ack = top
        else:
            self.done_above[reqid] = top

    def unanswered(self) -> int:
        return sum(run.nops for run in self.by_reqid.values())

    # ---- failure detection ------------------------------------------------------------------
    async def timeouts(self) -> None:
        timeout_ns = self.conf.timeout_ms * 1_000_000
        period = max(0.005, self.conf.timeout_ms / 4000)
        while True:
            await asyncio.sleep(period)
            now = time.perf_counter_ns()
            moved = False
            for run in list(self.by_reqid.values()):
                if now - run.last_ns >= timeout_ns:
                    if not moved:
                        # Rotate once per scan: every late run follows to the same replica.
                        self.leader = (run.replica + 1) % len(self.replicas)
                        moved = True
                    old = self.replicas[run.replica].conn
                    if old is not None:
                        old.forget(run.rid)
                    run.replica = self.leader
                    self.retransmits += 1
                    self.transmit(run)

    # ---- the run ----------------------------------------------------------------------------
    async def run(self, stop: runtime.Stop) -> None:
        conf = self.conf
        self.start()
        up = await self.replicas[0].wait_up(30.0)
        if not up:
            raise runtime.NodeError("cannot reach replica 0 of the group within 30 s")
        runtime.mark_ready(conf, f"client {conf.client_id}")
        watcher = asyncio.get_running_loop().create_task(self.timeouts())
        self.issue(conf.concurrency)
        await self.measure.timeline(stop)
        # Stop issuing and wait for every outstanding answer, so every number handed out
        # to this client is on record.
        self.issuing = False
        if self.by_reqid:
            self.idle.clear()
            try:
                await asyncio.wait_for(self.idle.wait(), conf.drain_s)
            except asyncio.TimeoutError:
                log.warning("%d operations unanswered after %.1f s", self.unanswered(),
                            conf.drain_s)
        watcher.cancel()
        self.measure.write(retransmits=self.retransmits, redirects=self.redirects,
                           unanswered=self.unanswered(), read_misses=self.read_misses,
                           refused=self.refused,
                           recorded=self.recorder.lines if self.recorder is not None else -1)
        if self.recorder is not None:
            self.recorder.close()
        for peer in self.replicas:
            peer.stop()


async def run(conf: ClientConfig, stop: runtime.Stop) -> None:
    await Client(conf).run(stop)
