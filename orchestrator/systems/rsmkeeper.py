"""RSMKeeper: ZooKeeper operations executed by one Raft-replicated proxy group. Its
profile is here; its nodes are not, so every run is refused in one line."""

from __future__ import annotations

from orchestrator.systems.base import Counts, NotYetAvailable


class RSMKeeper(NotYetAvailable):
    name = "rsmkeeper"
    title = "RSMKeeper (ZooKeeper over Raft)"
    description = "ZooKeeper operations executed by one Raft-replicated proxy group."
    largest = Counts(0, 3, 1, 0)
    machine_counts = {"proxy": "nproxies", "client": "nclients"}


SYSTEM = RSMKeeper()
