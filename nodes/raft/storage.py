"""What a Raft node must keep across a restart: the hard state (current term and the vote
cast in it), the log, and the snapshot that the log's compaction offset refers to.

``MemoryStorage`` keeps all of it in ordinary Python objects. It stands for durable
storage: a restarted node is a new ``RaftNode`` built on the same ``MemoryStorage``
object, and the node writes into it synchronously before it hands out any message that
depends on the write, so whatever the object holds at the moment of a crash is exactly
what a disk would hold had every write been fsynced before sending.

A host that keeps it on disk (the proxy: nodes/proxy/durable.py) mirrors it after every
``ready()`` and before sending that ready's messages: the hard state and snapshot by
comparison, the log from ``RaftLog.stable + 1`` on (a truncation lowers ``stable``).
"""

from __future__ import annotations

from .log import RaftLog
from .messages import Snapshot

EMPTY_SNAPSHOT = Snapshot(0, 0, b"")


class MemoryStorage:
    __slots__ = ("term", "voted_for", "log", "snapshot")

    def __init__(self) -> None:
        self.term = 0
        self.voted_for: int | None = None
        self.log = RaftLog()
        # Invariant: snapshot.index == log.offset and snapshot.term == log.snap_term.
        self.snapshot: Snapshot = EMPTY_SNAPSHOT

    def __repr__(self) -> str:
        log = self.log
        return (
            f"MemoryStorage(term={self.term}, voted_for={self.voted_for}, "
            f"log=[{log.first_index}..{log.last_index}], snapshot={self.snapshot.index})"
        )
