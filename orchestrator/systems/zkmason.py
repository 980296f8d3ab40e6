"""ZK-Mason: a sharded ZooKeeper whose operations are ordered by Mason. Its profile is
here; its nodes are not, so every run is refused in one line."""

from __future__ import annotations

from orchestrator.systems.base import Counts, NotYetAvailable


class ZKMason(NotYetAvailable):
    name = "zkmason"
    title = "ZK-Mason (ZooKeeper atop Mason)"
    description = "A sharded ZooKeeper whose operations are ordered by Mason."
    largest = Counts(2, 48, 16, 24)
    # (Its shard servers' count comes with its nodes.)
    machine_counts = {"sequencer": "nsequencers", "proxy": "nproxies", "client": "nclients"}


SYSTEM = ZKMason()
