"""The log-server process: a replica of some chains, serving LogWrite/LogRead/LogTrim/LogSeal.

Every request is answered with a LogReply from the I/O-free LogStore. Any other message
closes the connection that sent it (with a logged reason); everyone else is still served.
A stats line goes to the log every second. On a clean stop it writes `<name>.node.json`
(nodes/status.py) and, with `dump_entries`, `<name>.entries` (nodes/logserver/dump.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nodes import runtime, status, wire
from nodes.config import LogServerConfig
from nodes.logserver.store import LogStore
from nodes.rpc import Conn

log = logging.getLogger("mason.logserver")

STATS_INTERVAL_S = 1.0
_REQUESTS = (wire.LogWrite, wire.LogRead, wire.LogTrim, wire.LogSeal)


def entries_path(outdir: str | Path, name: str) -> Path:
    return Path(outdir) / f"{name}.entries"


async def run(conf: LogServerConfig, stop: runtime.Stop) -> None:
    try:
        store = LogStore(conf.chains, conf.nchains, max_entry_bytes=conf.max_entry_bytes,
                         capacity=conf.capacity, prefill=conf.prefill)
    except ValueError as exc:
        raise runtime.NodeError(str(exc)) from None

    def handle(conn: Conn, rid: int, msg: object) -> None:
        if not isinstance(msg, _REQUESTS):
            conn.abort(f"unexpected {type(msg).__name__}")
            return
        reply = store.handle(msg)
        if rid:
            conn.reply(rid, reply)

    server = await runtime.listen(conf, handle)
    runtime.mark_ready(conf, "chains " + ",".join(map(str, conf.chains)))
    log.info("holding chains %s of %d (capacity %d, prefill %d)",
             conf.chains, conf.nchains, conf.capacity, conf.prefill)
    writes, reads = 0, 0
    async for span in runtime.every(stop, STATS_INTERVAL_S):
        log.info("stats: %.0f writes/s %.0f reads/s, %d refused, %d entries",
                 (store.writes - writes) / span, (store.reads - reads) / span,
                 store.refused, store.entries)
        writes, reads = store.writes, store.reads
    server.close()
    if conf.dump_entries:
        store.dump(entries_path(conf.outdir, conf.name), conf.name)
    status.write_summary(conf.outdir, status.NodeSummary(
        name=conf.name, role="logserver", writes=store.writes, reads=store.reads,
        refused=store.refused, entries=store.entries,
        epoch=max(ch.epoch for ch in store.chains.values()),
    ))
