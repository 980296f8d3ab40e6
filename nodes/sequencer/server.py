"""The sequencer process: serves SeqRequests and heartbeats over the RPC layer."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from pathlib import Path

from nodes import runtime, status, wire
from nodes.config import SequencerConfig
from nodes.rpc import Conn
from nodes.sequencer.counters import Counters
from nodes.sequencer.epochs import EpochRecord, next_owned
from nodes.sequencer.fill_carrier import FillCarrier
from nodes.sequencer.recovery import Superseded, take_over

log = logging.getLogger("mason.sequencer")

GC_YOUNG_THRESHOLD = 20_000  # allocations between young-generation collections (default 700)


async def run(conf: SequencerConfig, stop: runtime.Stop) -> None:
    try:
        record = EpochRecord(Path(conf.outdir) / f"{conf.name}.epoch")
        next_owned(conf.epoch, conf.sequencers, 0)
    except (OSError, ValueError) as exc:
        raise runtime.NodeError(str(exc)) from None
    standby = conf.standby or record.restarted
    if record.restarted:
        log.warning("restarted after serving up to epoch %d: standing by for a later one",
                    record.highest)
    if not standby:
        record.claim(conf.epoch)
    # A standby answers with epoch 0 until it claims one: no group takes that for a sign of
    # life of the epoch it follows (a restarted sequencer must not look like its old self).
    counters = Counters(conf.nspaces, 0 if standby else conf.epoch)
    answered = 0
    serving = not standby
    takeover: asyncio.Task[None] | None = None

    # The epoch this incarnation claimed and recovers, with the carrier of its fill: a
    # failed attempt is retried as the same epoch (never served, so nothing was lost, and
    # the carrier keeps the fill to one group), a superseded one is given up.
    pending: tuple[int, FillCarrier | None] | None = None

    async def recover(epoch: int, carrier: FillCarrier | None) -> None:
        nonlocal serving, takeover, pending
        try:
            counters.next = await take_over(conf, epoch, carrier)
        except Superseded as exc:
            # A later standby took over while this one recovered: it does not serve this
            # epoch; a later TakeOver may make it claim a later one.
            log.warning("not taking over as epoch %d: %s", epoch, exc)
            counters.epoch = 0
            pending = None
            takeover = None
            return
        except Exception:  # a bug must not leave the standby silently stuck
            log.exception("takeover failed; the next TakeOver retries it")
            takeover = None
            return
        serving = True
        write_role()

    def write_role() -> None:
        # Which sequencer serves, for the orchestrator's faults (the highest epoch that
        # leads is the one the groups use); a standby is a follower until it took over.
        status.write_role(conf.outdir, conf.name,
                          status.LEADER if serving else status.FOLLOWER, counters.epoch)

    def start_takeover(msg: wire.TakeOver) -> asyncio.Task[None] | None:
        nonlocal pending
        if pending is not None and msg.dead_epoch >= pending[0]:
            pending = None  # the groups are past the epoch this one was recovering
        if pending is None:
            epoch = next_owned(conf.epoch, conf.sequencers, max(msg.dead_epoch, record.highest))
            try:
                record.claim(epoch)
            except OSError as exc:
                log.error("cannot record epoch %d, not taking over: %s", epoch, exc)
                return None
            pending = (epoch, FillCarrier(len(conf.groups)) if conf.groups else None)
            counters.epoch = epoch
        epoch, carrier = pending
        log.warning("group %d reports epoch %d dead: taking over as epoch %d",
                    msg.group, msg.dead_epoch, epoch)
        return asyncio.get_running_loop().create_task(recover(epoch, carrier))

    def handle(conn: Conn, rid: int, msg: object) -> None:
        nonlocal answered, takeover
        # SeqRequests first: nearly every message is one (benchmarks/sequencer.py).
        if type(msg) is wire.SeqRequest:
            if not serving:
                conn.reply(rid, wire.SeqReply(msg.group, msg.srid, wire.SEQ_NOT_READY,
                                              msg.counts, [], False, 0, counters.epoch))
                return
            if msg.epoch != counters.epoch:
                conn.reply(
                    rid,
                    wire.SeqReply(
                        msg.group, msg.srid, wire.SEQ_WRONG_EPOCH, msg.counts, [], False, 0,
                        counters.epoch,
                    ),
                )
                return
            try:
                reply = counters.handle(msg)
            except ValueError as exc:
                conn.abort(f"bad request from group {msg.group}: {exc}")
                return
            conn.reply(rid, reply)
            answered += 1
        elif isinstance(msg, wire.TakeOver):
            # Any older epoch: when the standby in between is dead too, the groups ask
            # this one (the switch fences every epoch below it).
            if not serving and takeover is None:
                takeover = start_takeover(msg)
            if rid:
                conn.reply(rid, wire.Ack())
        elif isinstance(msg, wire.Heartbeat):
            conn.reply(rid, wire.HeartbeatReply(counters.epoch, list(counters.next)))
            answered += 1
        else:
            conn.abort(f"unexpected {type(msg).__name__}")

    server = await runtime.listen(conf, handle)
    # Every request allocates a handful of short-lived containers (the decoded request,
    # its reply, their envelopes); at the default threshold of 700 the young generation is
    # collected every few dozen requests, mostly scanning replies still waiting for the end
    # of the loop turn. A larger one lets them die first; what survives is the small
    # at-most-once table. Everything built at start-up is frozen out of the collections.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    write_role()
    runtime.mark_ready(conf, f"epoch {conf.epoch}")
    log.info("serving %d spaces (epoch %d%s)", conf.nspaces, conf.epoch,
             ", standby" if standby else "")
    stats = Path(conf.outdir) / f"{conf.name}.stats"
    with stats.open("a") as out:
        out.write("# unix_s mrps table_size counters\n")
        last = time.monotonic()
        while not stop.requested:
            try:
                await asyncio.wait_for(stop.wait(), conf.stats_interval_s)
            except asyncio.TimeoutError:
                pass
            now = time.monotonic()
            mrps = answered / (now - last) / 1e6
            answered, last = 0, now
            nexts = " ".join(str(n) for n in counters.next)
            out.write(f"{time.time():.3f} {mrps:.6f} {counters.table_size()} {nexts}\n")
            out.flush()
    status.write_summary(conf.outdir, status.NodeSummary(
        name=conf.name, role="sequencer", epoch=counters.epoch, counters=list(counters.next)))
    server.close()
