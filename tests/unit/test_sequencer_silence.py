"""Failure detection of the sequencer (nodes/proxy/sequencer_link.py), over real sockets.

A replica that won its election before its first heartbeat period took the sequencer for
dead at once (its silence was counted from the clock's zero) and called the standby at
start-up: a takeover with no failure, before any client ran.
"""

from __future__ import annotations

import asyncio

from nodes import rpc, wire
from nodes.config import Endpoint, ProxyConfig
from nodes.proxy.sequencer_link import SequencerLink
from tests.conftest import free_port

PERIOD_MS = 50
MISSES = 3


def test_a_leader_from_the_start_calls_the_standby_only_after_the_misses(tmp_path):
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        asked: list[float] = []

        def standby(conn: rpc.Conn, rid: int, msg: object) -> None:
            if isinstance(msg, wire.TakeOver):
                asked.append(loop.time())

        standby_port, silent_port = free_port(), free_port()  # nothing listens on the latter
        server = await rpc.serve("127.0.0.1", standby_port, standby)
        conf = ProxyConfig(name="p", outdir=str(tmp_path), nspaces=1, group=0, replica=0, peers={},
                           sequencer=Endpoint("127.0.0.1", silent_port),
                           backups=[Endpoint("127.0.0.1", standby_port)],
                           heartbeat_ms=PERIOD_MS, heartbeat_misses=MISSES)
        link = SequencerLink(conf, lambda c, r, m: None, serving=lambda: True,
                             leading=lambda: True, term=lambda: 1, log_epoch=lambda: 1,
                             floor=lambda: 0, on_answer=lambda t, b, r: None)
        started = loop.time()
        link.start(conf.sequencer.host, conf.sequencer.port)
        try:
            deadline = started + 5
            while not asked and loop.time() < deadline:
                await asyncio.sleep(PERIOD_MS / 1000 / 5)
        finally:
            link.stop()
            server.close()
        assert asked, "the standby was never asked although the sequencer is silent"
        return asked[0] - started

    # Asked once the sequencer stayed silent for the misses, not at the first period.
    assert asyncio.run(scenario()) >= MISSES * PERIOD_MS / 1000
