"""A standby superseded while it recovered is told so by every group, and never serves.

The groups' part runs in SequencerFailover (nodes/proxy/failover.py); its answers go to a
connection, here one that keeps them.
"""

from __future__ import annotations

import asyncio

from nodes import wire
from nodes.config import Endpoint, ProxyConfig
from nodes.proxy.replica import Replica


class Kept:
    """A connection that keeps what is answered on it."""

    def __init__(self) -> None:
        self.replies: list[object] = []

    def reply(self, rid: int, msg: object) -> None:
        self.replies.append(msg)

    def abort(self, reason: str) -> None:
        self.replies.append(reason)


def test_requests_of_a_superseded_epoch_are_answered_stale(tmp_path):
    async def scenario() -> tuple[list[object], list[object], int]:
        conf = ProxyConfig(name="p", outdir=str(tmp_path), nspaces=1, group=4, replica=0, peers={},
                           sequencer=Endpoint("127.0.0.1", 3))
        replica = Replica(conf)
        replica.raft.campaign()  # a group of one leads at once
        replica.won_term = replica.serving_term = replica.raft.term
        failover = replica.failover
        newer, older = Kept(), Kept()
        # The standby of epoch 3 switches the group (the entry commits in this loop turn).
        failover.on_switch(newer, 1, wire.SwitchRequest(3, "127.0.0.1", 9))  # type: ignore[arg-type]
        for _ in range(5):
            await asyncio.sleep(0)
        # Epoch 2's standby, late: every request of its recovery is answered stale.
        failover.on_switch(older, 2, wire.SwitchRequest(2, "127.0.0.1", 8))  # type: ignore[arg-type]
        failover.on_collect(older, 3, wire.CollectRequest(2))  # type: ignore[arg-type]
        failover.on_fill(older, 4, wire.FillRequest(2, [[(0, 4)]]))  # type: ignore[arg-type]
        failover.on_collect(newer, 5, wire.CollectRequest(3))  # type: ignore[arg-type]
        return newer.replies, older.replies, replica.state.epoch

    newer, older, epoch = asyncio.run(scenario())
    assert epoch == 3
    assert len(older) == 3 and all(isinstance(r, wire.GroupReply) and r.stale and not r.ok
                                   for r in older)
    switched, collected = newer
    assert isinstance(switched, wire.GroupReply) and switched.ok and not switched.stale
    assert isinstance(collected, wire.CollectReply) and collected.ok and not collected.stale
