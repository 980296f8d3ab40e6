"""An I/O-free Raft core in the style of etcd's raft package.

The host (a proxy process) owns the sockets and the clock and drives a ``RaftNode``:

* call ``tick()`` at a fixed period (election timeouts and heartbeats count ticks);
* pass every incoming Raft message to ``step()``;
* call ``propose(data)`` on the leader;
* after any of these, while ``has_ready()``, take ``ready()`` and handle it in this order:
  restore from ``snapshot`` if set, apply ``committed`` (skipping ``data == b""``), send
  ``messages``.

See ``nodes.raft.node`` for durability and restart semantics.
"""

from .config import RaftConfig, Role
from .log import RaftLog
from .messages import (
    MESSAGE_TYPES,
    AppendRequest,
    AppendResponse,
    Entry,
    RaftMessage,
    Snapshot,
    SnapshotRequest,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from .node import RaftNode
from .progress import Progress, ProgressState
from .ready import Ready
from .storage import MemoryStorage

__all__ = [
    "MESSAGE_TYPES",
    "AppendRequest",
    "AppendResponse",
    "Entry",
    "MemoryStorage",
    "Progress",
    "ProgressState",
    "RaftConfig",
    "RaftLog",
    "RaftMessage",
    "RaftNode",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotRequest",
    "SnapshotResponse",
    "VoteRequest",
    "VoteResponse",
]
