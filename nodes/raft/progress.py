"""The leader's view of one follower: how much of its log matches, what to send next, and
how many appends are unanswered.

A follower is in one of three states:

* PROBE: the leader does not know where the logs agree. It sends one append at a time
  and waits for the answer (or the next heartbeat) before sending another, walking
  ``next`` back on every reject.
* REPLICATE: the logs agree up to ``match``; appends are pipelined, ``next`` advances
  optimistically as they are sent, and at most ``max_inflight`` of them may be
  unanswered. ``inflight`` holds the last index of each, oldest first, so an answer for
  index i frees every append ending at or before i.
* SNAPSHOT: the entries the follower needs are compacted away; a snapshot is on its way
  and appends are held back until the follower reports an index at or past it.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


PROBE = ProgressState.PROBE
REPLICATE = ProgressState.REPLICATE
SNAPSHOT = ProgressState.SNAPSHOT


class Progress:
    __slots__ = (
        "match",
        "next",
        "state",
        "inflight",
        "paused",
        "active",
        "pending_snapshot",
        "snapshot_elapsed",
        "heartbeat_match",
    )

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = PROBE
        self.inflight: deque[int] = deque()
        # PROBE only: an append is out and unanswered.
        self.paused = False
        # Heard from since the last check-quorum round.
        self.active = False
        self.pending_snapshot = 0
        # Heartbeats since the snapshot went out; it is re-sent when this gets large.
        self.snapshot_elapsed = 0
        # ``match`` as of the previous heartbeat: if it has not moved while entries are
        # outstanding, an append (or its answer) may have been lost.
        self.heartbeat_match = 0

    def become_probe(self) -> None:
        self.state = PROBE
        self.paused = False
        self.inflight.clear()
        if self.next <= self.match:
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self.state = REPLICATE
        self.paused = False
        self.inflight.clear()
        self.next = self.match + 1

    def become_snapshot(self, index: int) -> None:
        self.state = SNAPSHOT
        self.paused = False
        self.inflight.clear()
        self.pending_snapshot = index
        self.snapshot_elapsed = 0

    def free_to(self, index: int) -> None:
        inflight = self.inflight
        while inflight and inflight[0] <= index:
            inflight.popleft()

    def __repr__(self) -> str:
        return (
            f"Progress({self.state.name} match={self.match} next={self.next} "
            f"inflight={len(self.inflight)} paused={self.paused})"
        )
