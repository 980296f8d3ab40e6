"""Static configuration of one Raft node and the role enum."""

from __future__ import annotations

import enum

import msgspec


class Role(enum.IntEnum):
    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2


class RaftConfig(msgspec.Struct, frozen=True):
    """Membership is static: ``peers`` lists every member id, ``node_id`` included.

    Timing is counted in host ticks. A follower or candidate that hears nothing for its
    election timeout, drawn uniformly from ``[election_ticks, 2 * election_ticks)``,
    starts an election; a leader sends heartbeats every ``heartbeat_ticks``.
    """

    node_id: int
    peers: tuple[int, ...]
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    max_inflight: int = 64
    max_append_bytes: int = 1 << 20
    check_quorum: bool = True
    seed: int = 0
    # A leader whose commit index advances tells every follower at once (an empty append)
    # rather than with its next entries or heartbeat: for hosts whose followers answer
    # clients at apply time (RSMKeeper), this saves up to a heartbeat per operation.
    commit_notice: bool = False

    def __post_init__(self) -> None:
        if self.node_id not in self.peers:
            raise ValueError(f"node_id {self.node_id} is not among peers {self.peers}")
        if len(set(self.peers)) != len(self.peers):
            raise ValueError(f"duplicate ids in peers {self.peers}")
        if self.heartbeat_ticks < 1:
            raise ValueError("heartbeat_ticks must be >= 1")
        # Followers must hear several heartbeats per election timeout, or a healthy
        # leader gets deposed by its own followers.
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks")
        if self.max_inflight < 1:
            raise ValueError("max_inflight must be >= 1")
        if self.max_append_bytes < 0:
            raise ValueError("max_append_bytes must be >= 0")
