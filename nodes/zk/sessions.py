"""ZooKeeper sessions as replicated state: ids and passwords derived from the log entry that
opened them, negotiated timeouts, last-heard times advanced by log entries, and expiry decided
by the time a log entry carries, never by a replica's own clock."""

from __future__ import annotations

import hashlib
import hmac

import msgspec

DEFAULT_TICK_MS = 2000  # ZooKeeper's default tickTime
_ID_MASK = 2**63 - 1


class Session(msgspec.Struct, array_like=True):
    id: int
    password: bytes
    timeout_ms: int
    last_heard_ms: int


def password_for(session_id: int) -> bytes:
    """16 bytes every replica derives alike (ZooKeeper seeds a PRNG with the id and a fixed
    secret; this is no weaker and needs no shared randomness)."""
    return hashlib.blake2b(session_id.to_bytes(8, "big"), key=b"mason-zk-session",
                           digest_size=16).digest()


class SessionTable:
    def __init__(self, tick_ms: int = DEFAULT_TICK_MS) -> None:
        if tick_ms <= 0:
            raise ValueError(f"tick_ms must be positive, not {tick_ms}")
        self.tick_ms = tick_ms
        self.sessions: dict[int, Session] = {}

    def __contains__(self, session_id: int) -> bool:
        return session_id in self.sessions

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, session_id: int) -> Session | None:
        return self.sessions.get(session_id)

    def negotiate(self, requested_ms: int) -> int:
        """ZooKeeper's clamp: [2, 20] x tickTime."""
        return min(max(requested_ms, 2 * self.tick_ms), 20 * self.tick_ms)

    def open(self, requested_ms: int, zxid: int, now_ms: int) -> Session:
        # Time in the high bits and the zxid in the low ones keep ids apart across restarts
        # of an emptied ensemble as ZooKeeper's do; a collision just moves on to the next id.
        sid = (((now_ms & 0xFF_FFFF_FFFF) << 23) | (zxid & 0x7F_FFFF)) & _ID_MASK
        while sid == 0 or sid in self.sessions:
            sid = (sid + 1) & _ID_MASK
        session = Session(sid, password_for(sid), self.negotiate(requested_ms), now_ms)
        self.sessions[sid] = session
        return session

    def close(self, session_id: int) -> bool:
        return self.sessions.pop(session_id, None) is not None

    def touch(self, session_id: int, now_ms: int) -> bool:
        session = self.sessions.get(session_id)
        if session is None:
            return False
        session.last_heard_ms = max(session.last_heard_ms, now_ms)
        return True

    def expired(self, now_ms: int) -> list[int]:
        """Sessions silent for longer than their timeout at `now_ms`, ascending."""
        return sorted(s.id for s in self.sessions.values()
                      if now_ms - s.last_heard_ms > s.timeout_ms)

    def verify(self, session_id: int, password: bytes) -> bool:
        """Whether a reconnecting client may re-attach to the session."""
        session = self.sessions.get(session_id)
        return session is not None and hmac.compare_digest(session.password, password)
