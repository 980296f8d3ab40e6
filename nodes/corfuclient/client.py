"""A closed-loop Corfu client: `concurrency` outstanding appends or reads, no proxies.

Append: take a position from the sequencer (one number of space 0; at-most-once per
request id, so a resent request gets the same position), write the entry to the position's
chain head to tail (nodes/logserver/chain.py), done when the tail acknowledged. A position
found taken at the head by other content is not ours: the client copies what is there down
the chain (so the position is complete everywhere) and appends again at a new position.
Read: a seeded-random position of [0, max_log_position), from its chain's tail.

Unlike the original, a failed log server or a silent sequencer is not fatal: the chain is
reconfigured to its survivors by the chain client, and a token request is resent.
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
from nodes.config import CorfuClientConfig
from nodes.logserver.chain import ChainClient
from nodes.logserver.values import entry_value
from nodes.metrics import SeqnumRecorder
from nodes.rpc import ConnectionLost, Peer

log = logging.getLogger("mason.corfuclient")

RETRY = 0.05  # seconds before an unavailable chain is tried again


class Tokens:
    """Positions from the sequencer, at most once per srid.

    The client is its own 'group' at the sequencer (group = client id, one term), so the
    sequencer's at-most-once table makes a resent request safe; `floor` (every srid up to
    it has been answered and will never be asked again) lets the sequencer prune it."""

    def __init__(self, conf: CorfuClientConfig) -> None:
        self.group = conf.client_id
        self.timeout = conf.timeout_ms / 1000
        self.peer = Peer(conf.sequencer.host, conf.sequencer.port, self.on_cast,
                         name="sequencer")
        self.next_srid = 1
        self.floor = 0
        self.answered: set[int] = set()
        self.resends = 0

    def on_cast(self, conn: Any, rid: int, msg: Any) -> None:
        conn.abort(f"unexpected {type(msg).__name__} from the sequencer")

    async def take(self) -> int:
        srid = self.next_srid
        self.next_srid += 1
        while True:
            # Rebuilt on every try: the floor may have moved meanwhile.
            req = wire.SeqRequest(self.group, 1, srid, [1], self.floor, 1)
            try:
                reply = await self.peer.call(req, timeout=self.timeout)
            except (ConnectionLost, TimeoutError):
                reply = None
            if (isinstance(reply, wire.SeqReply) and reply.status == wire.SEQ_OK
                    and reply.srid == srid and reply.counts == [1] and len(reply.lasts) == 1
                    and reply.lasts[0] >= 0):
                break
            self.resends += 1
            await asyncio.sleep(RETRY)
        self.settle(srid)
        return reply.lasts[0]

    def settle(self, srid: int) -> None:
        self.answered.add(srid)
        while self.floor + 1 in self.answered:
            self.floor += 1
            self.answered.discard(self.floor)


class CorfuClient:
    def __init__(self, conf: CorfuClientConfig) -> None:
        work = conf.workload
        if work.kind not in ("append", "read"):
            raise runtime.NodeError(f"a Corfu client appends or reads, not {work.kind!r}")
        if work.kind == "read" and work.max_log_position <= 0:
            raise runtime.NodeError("a read workload needs max_log_position > 0")
        if work.kind == "append" and not 0 < work.entry_size <= conf.log.max_entry_bytes:
            raise runtime.NodeError(f"entry_size must be 1..{conf.log.max_entry_bytes}")
        self.conf = conf
        self.appending = work.kind == "append"
        self.tokens = Tokens(conf)
        self.chain = ChainClient(conf.log, name=conf.name, timeout_s=conf.log.timeout_ms / 1000)
        self.measure = Measurement(conf)
        self.positions = random.Random(work.seed * 1_000_003 + conf.client_id)
        self.next_reqid = 0
        self.issuing = True
        self.outstanding = 0
        self.read_misses = 0
        self.adopted = 0  # positions found taken at the head
        self.failed = 0  # appends given up (their chain had no replica left)
        out = Path(conf.outdir)
        self.recorder = (SeqnumRecorder(out / f"{conf.name}.seqnums", conf.client_id, 1)
                         if conf.record_seqnums else None)

    async def append(self, reqid: int) -> int | None:
        """Append this reqid's entry; its position, or None if the log is unavailable."""
        data = entry_value(self.conf.client_id, reqid, self.conf.workload.entry_size)
        position = await self.tokens.take()
        while True:
            result = await self.chain.write(position, wire.ENTRY_DATA, data)
            if result.status == wire.LOG_OK:
                return position
            if result.status == wire.LOG_WRITTEN:
                # Someone else's content (a fill): complete it down the chain, then move on.
                self.adopted += 1
                await self.chain.adopt(position)
                position = await self.tokens.take()
            elif result.status == wire.LOG_UNAVAILABLE:
                if not self.issuing:
                    self.failed += 1
                    log.error("position %d: no replica of its chain answers; giving up",
                              position)
                    return None
                await asyncio.sleep(RETRY)
            else:  # refused for good (malformed, diverged replicas): retrying cannot help
                self.failed += 1
                log.error("position %d: the log refused the write with status %d",
                          position, result.status)
                return None

    async def slot(self) -> None:
        max_position = self.conf.workload.max_log_position
        while self.issuing:
            reqid = self.next_reqid
            self.next_reqid += 1
            first_ns = time.perf_counter_ns()
            self.outstanding += 1
            try:
                if self.appending:
                    position = await self.append(reqid)
                    now_ns = self.measure.done(first_ns)
                    if position is not None and self.recorder is not None:
                        self.recorder.record(reqid, now_ns // 1000, [1], [position])
                else:
                    result = await self.chain.read(self.positions.randrange(max_position))
                    if result.status != wire.LOG_OK:
                        self.read_misses += 1
                    self.measure.done(first_ns)
            finally:
                self.outstanding -= 1

    async def run(self, stop: runtime.Stop) -> None:
        conf = self.conf
        self.tokens.peer.start()
        self.chain.start()
        if not await self.tokens.peer.wait_up(30.0):
            raise runtime.NodeError("cannot reach the sequencer within 30 s")
        runtime.mark_ready(conf, f"corfu client {conf.client_id}")
        slots = [asyncio.get_running_loop().create_task(self.slot())
                 for _ in range(conf.concurrency)]
        await self.measure.timeline(stop)
        # Stop issuing and let every started operation finish, so each position handed
        # out to this client is written and on record.
        self.issuing = False
        done, late = await asyncio.wait(slots, timeout=conf.drain_s)
        for task in late:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if late:
            log.warning("%d operations unfinished after %.1f s", len(late), conf.drain_s)
        self.measure.write(retransmits=self.tokens.resends, redirects=self.adopted,
                           unanswered=len(late), read_misses=self.read_misses,
                           refused=self.failed,
                           recorded=self.recorder.lines if self.recorder is not None else -1)
        if self.recorder is not None:
            self.recorder.close()
        self.chain.close()
        self.tokens.peer.stop()


async def run(conf: CorfuClientConfig, stop: runtime.Stop) -> None:
    await CorfuClient(conf).run(stop)
