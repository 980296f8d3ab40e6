"""The batch of output a host collects from a node with ``RaftNode.ready()``."""

from __future__ import annotations

import msgspec

from .messages import Entry, RaftMessage, Snapshot


class Ready(msgspec.Struct):
    """Everything a node produced since the previous ``ready()``.

    A host handles the fields in this order: ``snapshot`` (restore the state machine from
    ``snapshot.data``), then ``committed`` (apply in order, skipping entries whose data is
    ``b""``), and sends ``messages`` to their ``to`` ids. ``MemoryStorage`` is already
    up to date when ``ready()`` returns, so the messages may go out at once.
    """

    messages: list[RaftMessage]
    committed: list[Entry]
    snapshot: Snapshot | None
    role_changed: bool
