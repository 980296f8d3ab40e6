"""The sequencer process: serves SeqRequests and heartbeats over the RPC layer."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from nodes import runtime, status, wire
from nodes.config import SequencerConfig
from nodes.rpc import Conn
from nodes.sequencer.counters import Counters
from nodes.sequencer.fill_carrier import FillCarrier
from nodes.sequencer.recovery import Superseded, take_over

log = logging.getLogger("mason.sequencer")


async def run(conf: SequencerConfig, stop: runtime.Stop) -> None:
    counters = Counters(conf.nspaces, conf.epoch)
    answered = 0
    serving = not conf.standby
    takeover: asyncio.Task[None] | None = None

    superseded = False
    # Which group may hold this epoch's fill: kept across attempts of the takeover.
    carrier = FillCarrier(len(conf.groups)) if conf.groups else None

    async def recover() -> None:
        nonlocal serving, takeover, superseded
        try:
            counters.next = await take_over(conf, conf.nspaces, carrier)
        except Superseded as exc:
            # A later standby took over while this one recovered: it never serves.
            log.warning("not taking over: %s", exc)
            superseded = True
            return
        except Exception:  # a bug must not leave the standby silently stuck
            log.exception("takeover failed; the next TakeOver retries it")
            takeover = None
            return
        serving = True

    def handle(conn: Conn, rid: int, msg: object) -> None:
        nonlocal answered, takeover
        if isinstance(msg, wire.TakeOver):
            # Any older epoch: when the standby in between is dead too, the groups ask
            # this one (the switch fences every epoch below it).
            if conf.standby and takeover is None and not superseded and \
                    msg.dead_epoch < conf.epoch:
                log.warning("group %d reports epoch %d dead: taking over as epoch %d",
                            msg.group, msg.dead_epoch, conf.epoch)
                takeover = asyncio.get_running_loop().create_task(recover())
            if rid:
                conn.reply(rid, wire.Ack())
            return
        if isinstance(msg, wire.SeqRequest):
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
        elif isinstance(msg, wire.Heartbeat):
            conn.reply(rid, wire.HeartbeatReply(counters.epoch, list(counters.next)))
            answered += 1
        else:
            conn.abort(f"unexpected {type(msg).__name__}")

    server = await runtime.listen(conf, handle)
    runtime.mark_ready(conf, f"epoch {conf.epoch}")
    log.info("serving %d spaces (epoch %d%s)", conf.nspaces, conf.epoch,
             ", standby" if conf.standby else "")
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
