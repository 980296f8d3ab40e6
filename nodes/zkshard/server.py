"""The shard-replica process: answers ShardCalls from proxy leaders with the ordered engine
(engine.py) and sends watch events to the proxy replicas that hold the watching sessions,
each until that replica acknowledged it (outbox.py).

Any message other than a ShardCall closes the connection that sent it (with a logged
reason). A stats line goes to the log every second; `<name>.exec` is flushed then too and
at a clean stop, which also writes `<name>.node.json`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec

from nodes import runtime, status, wire
from nodes.config import ZkShardConfig
from nodes.rpc import Conn
from nodes.zk.machine import Change
from nodes.zk.shard_machine import ShardMachine
from nodes.zkshard.engine import Engine
from nodes.zkshard.execlog import ExecWriter
from nodes.zkshard.outbox import EventOutbox

log = logging.getLogger("mason.zkshard")

STATS_INTERVAL_S = 1.0
_changes_encoder = msgspec.msgpack.Encoder()


def exec_path(outdir: str | Path, name: str) -> Path:
    return Path(outdir) / f"{name}.exec"


async def run(conf: ZkShardConfig, stop: runtime.Stop) -> None:
    if not 0 <= conf.shard < conf.nspaces:
        raise runtime.NodeError(f"shard {conf.shard} is not one of the {conf.nspaces} shards")
    # Connections to every proxy replica, opened now so the first events find them up.
    outboxes = [EventOutbox(p, f"{conf.name}->proxy{i}").start()
                for i, p in enumerate(conf.proxies)]

    def send_event(origin: int, number: int, changes: list[Change]) -> None:
        outboxes[origin].send(wire.ShardEvents(conf.shard, number,
                                               _changes_encoder.encode(changes)))

    record = ExecWriter(exec_path(conf.outdir, conf.name)) if conf.record_exec else None
    engine = Engine(ShardMachine(conf.shard, conf.nspaces), nproxies=len(conf.proxies),
                    cache_size=conf.result_cache, send_event=send_event, record=record)

    def handle(conn: Conn, rid: int, msg: object) -> None:
        if not isinstance(msg, wire.ShardCall):
            conn.abort(f"unexpected {type(msg).__name__}")
            return
        def reply(answer: wire.ShardReply) -> None:
            if rid:
                conn.reply(rid, answer)

        engine.receive(msg, reply)

    server = await runtime.listen(conf, handle)
    runtime.mark_ready(conf, f"shard {conf.shard} of {conf.nspaces}")
    log.info("replica %d of shard %d (of %d); %d proxies", conf.replica, conf.shard,
             conf.nspaces, len(conf.proxies))
    ops, noops = 0, 0
    async for span in runtime.every(stop, STATS_INTERVAL_S):
        log.info("stats: %.0f ops/s %.0f noops/s, next %d, received up to %d, %s, "
                 "%d refused, %d znodes, %d events unacknowledged",
                 (engine.executed_ops - ops) / span, (engine.executed_noops - noops) / span,
                 engine.cursor, engine.max_received,
                 f"held at {engine.held.first}" if engine.held else "not held",
                 engine.refused, len(engine.machine.tree),
                 sum(len(outbox.pending) for outbox in outboxes))
        ops, noops = engine.executed_ops, engine.executed_noops
        if record is not None:
            record.flush()
    server.close()
    for outbox in outboxes:
        outbox.stop()
    if record is not None:
        record.close()
    status.write_summary(conf.outdir, status.NodeSummary(
        name=conf.name, role="zkshard", group=conf.shard, replica=conf.replica,
        ops_committed=engine.executed_ops, noops_committed=engine.executed_noops,
        refused=engine.refused, entries=len(engine.machine.tree),
    ))
