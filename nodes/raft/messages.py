"""Wire structs of the Raft core.

Every message is an ``array_like`` msgspec Struct with a short tag starting with ``r`` so
that a host can place them in a larger tagged union next to its own message types (all
structs of such a union use msgspec's default tag field). Every message starts with the
same three fields, ``frm``, ``to`` and ``term``.

The structs are created with ``gc=False``: they hold only ints, bytes and lists of
entries, never references back to themselves, so the cyclic garbage collector has
nothing to find in them and skipping it keeps the hot path cheaper.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec


class Entry(msgspec.Struct, array_like=True, gc=False):
    """One log entry. ``data == b""`` marks the empty entry a leader appends when its term
    starts; hosts skip it when applying."""

    term: int
    index: int
    data: bytes


class Snapshot(msgspec.Struct, array_like=True, gc=False):
    """The host's state machine image as of log index ``index`` (whose term was ``term``)."""

    index: int
    term: int
    data: bytes


class VoteRequest(msgspec.Struct, array_like=True, gc=False, tag="rv"):
    frm: int
    to: int
    term: int
    last_log_index: int
    last_log_term: int


class VoteResponse(msgspec.Struct, array_like=True, gc=False, tag="rvr"):
    frm: int
    to: int
    term: int
    granted: bool


class AppendRequest(msgspec.Struct, array_like=True, gc=False, tag="ra"):
    """Entries following ``prev_index``; an empty ``entries`` list is a heartbeat.

    ``commit`` is the leader's commit index; a follower only trusts it up to the last
    index this very message proved to match (``prev_index + len(entries)``).
    """

    frm: int
    to: int
    term: int
    prev_index: int
    prev_term: int
    entries: list[Entry]
    commit: int


class AppendResponse(msgspec.Struct, array_like=True, gc=False, tag="rar"):
    """Answer to an AppendRequest.

    On success ``index`` is the highest index the follower now knows to match the
    leader's log. On reject ``index`` is the rejected ``prev_index`` (so the leader can
    recognise stale rejections) and ``hint_index``/``hint_term`` tell the leader where the
    follower's log may start to agree, which lets it skip a whole term per round trip
    instead of one entry.
    """

    frm: int
    to: int
    term: int
    index: int
    reject: bool
    hint_index: int = 0
    hint_term: int = 0


class SnapshotRequest(msgspec.Struct, array_like=True, gc=False, tag="rs"):
    frm: int
    to: int
    term: int
    snapshot: Snapshot


class SnapshotResponse(msgspec.Struct, array_like=True, gc=False, tag="rsr"):
    """``index``: the follower's commit index after handling the snapshot."""

    frm: int
    to: int
    term: int
    index: int


RaftMessage: TypeAlias = (
    VoteRequest | VoteResponse | AppendRequest | AppendResponse | SnapshotRequest | SnapshotResponse
)

MESSAGE_TYPES: tuple[type[msgspec.Struct], ...] = (
    VoteRequest,
    VoteResponse,
    AppendRequest,
    AppendResponse,
    SnapshotRequest,
    SnapshotResponse,
)
