"""A group leader's conversation with the sequencer: requests, resends, liveness.

Given only the callables it needs (like `GcRing`): whether this replica serves, the
current term, the log's sequencer epoch, and where answers go. It owns the connection to
the current sequencer and to the standbys, the batches waiting for an answer, and the
failure detector: a leader that hears nothing for a heartbeat period sends a heartbeat,
and after `heartbeat_misses` silent periods asks the standby of the next epoch to take
over (idempotent at the standby).

Answers of an epoch older than `accept_epoch` are ignored: once a standby asked this group
to switch, no number of the dead sequencer may enter the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nodes import wire
from nodes.config import ProxyConfig
from nodes.proxy.batching import Batch
from nodes.rpc import ConnectionLost, Handler, Peer

log = logging.getLogger("mason.proxy")

NOT_READY_RETRY = 0.02  # seconds between asks to a backup sequencer that is still recovering


class SequencerLink:
    def __init__(
        self,
        conf: ProxyConfig,
        handler: Handler,
        *,
        serving: Callable[[], bool],
        leading: Callable[[], bool],
        term: Callable[[], int],
        log_epoch: Callable[[], int],
        floor: Callable[[], int],
        on_answer: Callable[[int, Batch, wire.SeqReply], None],
    ) -> None:
        self.conf = conf
        self.group = conf.group
        self.nspaces = conf.nspaces
        self.handler = handler
        self.serving = serving  # a leader that serves clients
        self.leading = leading  # Raft leader, serving or still settling its term
        self.term = term
        self.log_epoch = log_epoch  # the sequencer epoch the applied log has switched to
        self.floor = floor  # the group's settled-srid floor
        self.on_answer = on_answer
        self.loop = asyncio.get_running_loop()
        self.peer: Peer | None = None
        # Every sequencer of the run, by index: epoch e belongs to sequencers[(e-1) % n]
        # (round-robin, nodes/sequencer/epochs.py), so a killed and restarted sequencer
        # is asked again when its next epoch comes.
        self.sequencers: list[Peer] = []
        self.pending: dict[int, Batch] = {}  # srid -> batch waiting for an answer
        self.accept_epoch = conf.epoch
        # Silence is counted from now: a replica that wins its election before the first
        # heartbeat period must not take the sequencer for dead at once.
        self.last_heard = self.loop.time()
        self.batches_sent = 0
        self.timeout = conf.seq_timeout_ms / 1000

    # ---- connections ---------------------------------------------------------------------
    def start(self, host: str, port: int) -> None:
        first = self.conf.sequencer
        assert first is not None, "only a group that needs numbers talks to sequencers"
        self.connect(host, port)
        for k, b in enumerate([first, *self.conf.backups]):
            self.sequencers.append(Peer(b.host, b.port, self.handler,
                                        name=f"standby sequencer {k}").start())
        self.loop.create_task(self.resender())
        self.loop.create_task(self.heartbeats())

    def connect(self, host: str, port: int) -> None:
        if self.peer is not None:
            self.peer.stop()
        self.peer = Peer(host, port, self.handler, name=f"sequencer {host}:{port}",
                         on_connect=self.connected).start()

    def connected(self, _conn: Any) -> None:
        """A (new or restarted) sequencer connection: re-ask for every waiting batch now."""
        if self.serving():
            for batch in list(self.pending.values()):
                self.send(batch)

    def switched(self, epoch: int, host: str, port: int) -> None:
        self.accept_epoch = max(self.accept_epoch, epoch)
        self.connect(host, port)
        self.last_heard = self.loop.time()

    def stop(self) -> None:
        for peer in self.sequencers:
            peer.stop()
        if self.peer is not None:
            self.peer.stop()

    def clear(self) -> None:
        """Leadership lost: nothing waits for the sequencer any more."""
        self.pending.clear()

    # ---- requests --------------------------------------------------------------------------
    def heard(self, reply: Any) -> bool:
        """Whether reply is an answer of an epoch this group accepts; if so, it is also a
        sign of life for failure detection."""
        if not isinstance(reply, wire.SeqReply) or reply.epoch < self.accept_epoch:
            return False
        self.last_heard = self.loop.time()
        return True

    def request(self, term: int, srid: int, counts: list[int]) -> wire.SeqRequest:
        return wire.SeqRequest(self.group, term, srid, counts, self.floor(), self.accept_epoch)

    async def call(self, req: wire.SeqRequest) -> wire.SeqReply | None:
        """One request, awaited: None when no accepted answer came in time."""
        peer = self.peer
        if peer is None or not peer.up:
            return None
        try:
            reply = await peer.call(req, timeout=self.timeout)
        except (ConnectionLost, TimeoutError):
            return None
        if not self.heard(reply) or reply.status == wire.SEQ_NOT_READY:
            return None
        return reply

    def send(self, batch: Batch) -> None:
        """Ask for the batch's ranges; the answer goes to `on_answer` unless superseded."""
        self.pending[batch.srid] = batch
        batch.sent_at = self.loop.time()
        self.batches_sent += 1
        counts = [0] * self.nspaces if batch.probe else batch.totals
        term = self.term()
        req = self.request(term, batch.srid, counts)
        peer = self.peer
        if peer is not None:
            peer.call_cb(req, lambda reply: self.answered(term, batch, reply))

    def answered(self, term: int, batch: Batch, reply: Any) -> None:
        if not self.heard(reply):
            return  # a lost connection (the resender tries again) or a switched-from epoch
        if not self.serving() or self.term() != term:
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
        self.on_answer(term, batch, reply)

    def resend_if_pending(self, term: int, batch: Batch) -> None:
        if self.serving() and self.term() == term and self.pending.get(batch.srid) is batch:
            self.send(batch)

    async def resender(self) -> None:
        """Re-send requests that got no answer (lost connection, restarted sequencer)."""
        period = self.timeout
        while True:
            await asyncio.sleep(period)
            if not self.serving():
                continue
            now = self.loop.time()
            for batch in list(self.pending.values()):
                if now - batch.sent_at >= period:
                    self.send(batch)  # at-most-once at the sequencer makes this safe

    # ---- failure detection ------------------------------------------------------------------
    async def heartbeats(self) -> None:
        period = self.conf.heartbeat_ms / 1000
        while True:
            await asyncio.sleep(period)
            if not self.leading():
                self.last_heard = self.loop.time()
                continue
            silent = self.loop.time() - self.last_heard
            if silent < period:
                continue
            peer = self.peer
            if peer is not None and peer.up:
                peer.call_cb(wire.Heartbeat(self.accept_epoch), self.on_heartbeat_reply)
            patience = period * self.conf.heartbeat_misses
            if silent >= patience and self.log_epoch() == self.accept_epoch:
                standby = self.standby_to_ask(int((silent - patience) // patience))
                if standby is not None:
                    epoch, peer = standby
                    log.warning("sequencer epoch %d silent for %.0f ms: asking the standby "
                                "of epoch %d", self.accept_epoch, silent * 1000, epoch)
                    peer.cast(wire.TakeOver(self.group, self.accept_epoch))

    def standby_to_ask(self, stage: int) -> tuple[int, Peer] | None:
        """Which standby to ask after `stage` more silent periods: the owner of the next
        epoch first, then, while silence goes on, the owner of the one after it, and so on
        round the other sequencers. Only connected standbys count: a dead one is skipped
        at once (else a standby that died unnoticed, or with the sequencer, would stall
        every group for good)."""
        peers = self.sequencers
        n = len(peers)
        later = [(e, peers[(e - 1) % n]) for e in range(self.accept_epoch + 1,
                                                         self.accept_epoch + n)]
        later = [(e, peer) for e, peer in later if peer.up]
        return later[min(stage, len(later) - 1)] if later else None

    def on_heartbeat_reply(self, reply: Any) -> None:
        if isinstance(reply, wire.HeartbeatReply) and reply.epoch >= self.accept_epoch:
            self.last_heard = self.loop.time()
