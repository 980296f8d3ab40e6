"""The entries of the chains one log-server process holds: write-once, fill, trim, seal.

I/O-free: `handle(request) -> LogReply`; the server carries the messages. What the original
got wrong and this store does instead (spec corfu.md 1.7, 5.4, 6.2-6.3):

* every position has an explicit state: unwritten, data, hole or trimmed; nothing reads
  uninitialised memory;
* write-once: a second write with *other* content is refused with LOG_WRITTEN and the
  existing kind and bytes; the *same* kind and bytes again answer LOG_OK, so a writer may
  re-drive a write after a failure. A fill is a write of kind ENTRY_HOLE and obeys the same
  rule;
* a slot beyond `capacity` is refused (LOG_BAD "full"), never wrapped onto old entries;
* the position must belong to the chain it is sent to (`chain_of`), else LOG_BAD;
* seal: every chain has an epoch; requests of an older epoch answer LOG_SEALED with the
  chain's current view (`members`), so a writer with a stale view adopts the new one.

Every refusal is decided before any state changes. LOG_BAD replies carry the reason as
text in `data`.

Prefill (read experiments): positions [0, prefill) of every held chain start as data,
`prefill_value(position)` = entry_value(-1, position, PREFILL_BYTES): client id -1 is no
real client, so the log checker never mistakes a prefilled entry for an append.

Counters: `writes` (LogWrite requests), `reads` (LogRead requests), `refused` (requests of
any type answered LOG_WRITTEN, LOG_TRIMMED, LOG_SEALED or LOG_BAD), `entries` (positions now
holding data or a hole).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from nodes import wire
from nodes.logserver.dump import (
    DATA,
    HOLE,
    NO_DIGEST,
    TRIMMED,
    ChainState,
    EntryDump,
    Held,
    write_dump,
)
from nodes.logserver.layout import chain_of, slot_of
from nodes.logserver.values import digest, entry_value

PREFILL_BYTES = 64
PREFILL_CLIENT = -1

LogRequest = wire.LogWrite | wire.LogRead | wire.LogTrim | wire.LogSeal
_REFUSALS = (wire.LOG_WRITTEN, wire.LOG_TRIMMED, wire.LOG_SEALED, wire.LOG_BAD)


def prefill_value(position: int) -> bytes:
    return entry_value(PREFILL_CLIENT, position, PREFILL_BYTES)


class _Chain:
    """One chain's replica: entries by position (not slot: the slot only bounds capacity)."""

    __slots__ = ("entries", "trimmed", "prefix", "epoch", "members", "tail")

    def __init__(self) -> None:
        self.entries: dict[int, tuple[int, bytes]] = {}  # position -> (kind, data)
        self.trimmed: set[int] = set()  # single trims at or above the prefix
        self.prefix = 0  # every position below is trimmed
        self.epoch = 0
        self.members: list[int] = []  # the view of the last seal; [] = the configured chain
        self.tail = -1  # highest position ever written here


class LogStore:
    def __init__(
        self,
        chains: Iterable[int],
        nchains: int,
        *,
        max_entry_bytes: int = 4096,
        capacity: int = 1 << 24,
        prefill: int = 0,
    ) -> None:
        if nchains <= 0 or capacity <= 0 or max_entry_bytes < 0 or prefill < 0:
            raise ValueError("nchains and capacity must be positive, sizes not negative")
        self.nchains = nchains
        self.max_entry_bytes = max_entry_bytes
        self.capacity = capacity
        self.chains: dict[int, _Chain] = {}
        for c in chains:
            if not 0 <= c < nchains:
                raise ValueError(f"chain {c} is not one of the log's {nchains} chains")
            self.chains[c] = _Chain()
        if not self.chains:
            raise ValueError("a log server holds at least one chain")
        if prefill and slot_of(prefill - 1, nchains) >= capacity:
            raise ValueError(f"prefill {prefill} exceeds the capacity of {capacity} per chain")
        if prefill and PREFILL_BYTES > max_entry_bytes:
            raise ValueError(f"prefilled entries of {PREFILL_BYTES} bytes exceed the limit")
        for c, ch in self.chains.items():
            for p in range(c, prefill, nchains):
                ch.entries[p] = (wire.ENTRY_DATA, prefill_value(p))
                ch.tail = p
        self.writes = 0
        self.reads = 0
        self.refused = 0

    @property
    def entries(self) -> int:
        return sum(len(ch.entries) for ch in self.chains.values())

    def handle(self, msg: LogRequest) -> wire.LogReply:
        if isinstance(msg, wire.LogWrite):
            self.writes += 1
            reply = self._write(msg)
        elif isinstance(msg, wire.LogRead):
            self.reads += 1
            reply = self._read(msg)
        elif isinstance(msg, wire.LogTrim):
            reply = self._trim(msg)
        elif isinstance(msg, wire.LogSeal):
            reply = self._seal(msg)
        else:
            raise TypeError(f"not a log request: {type(msg).__name__}")
        if reply.status in _REFUSALS:
            self.refused += 1
        return reply

    # ---- requests ---------------------------------------------------------------------

    def _write(self, msg: wire.LogWrite) -> wire.LogReply:
        p = msg.position
        ch = self._admit(msg.chain, msg.epoch, p, single=True)
        if isinstance(ch, wire.LogReply):
            return ch
        if msg.kind not in (wire.ENTRY_DATA, wire.ENTRY_HOLE):
            return self._bad(p, ch, f"entry kind {msg.kind} is neither data nor hole")
        if len(msg.data) > self.max_entry_bytes:
            return self._bad(p, ch, f"entry of {len(msg.data)} bytes exceeds"
                                    f" {self.max_entry_bytes}")
        refused = self._current(ch, msg.epoch, p)
        if refused is not None:
            return refused
        held = ch.entries.get(p)
        if held is not None:
            if held == (msg.kind, msg.data):
                return wire.LogReply(wire.LOG_OK, p, ch.epoch)
            return wire.LogReply(wire.LOG_WRITTEN, p, ch.epoch, held[0], held[1])
        ch.entries[p] = (msg.kind, msg.data)
        ch.tail = max(ch.tail, p)
        return wire.LogReply(wire.LOG_OK, p, ch.epoch)

    def _read(self, msg: wire.LogRead) -> wire.LogReply:
        p = msg.position
        ch = self._admit(msg.chain, msg.epoch, p, single=True)
        if isinstance(ch, wire.LogReply):
            return ch
        refused = self._current(ch, msg.epoch, p)
        if refused is not None:
            return refused
        held = ch.entries.get(p)
        if held is None:
            return wire.LogReply(wire.LOG_UNWRITTEN, p, ch.epoch)
        return wire.LogReply(wire.LOG_OK, p, ch.epoch, held[0], held[1])

    def _trim(self, msg: wire.LogTrim) -> wire.LogReply:
        # A prefix trim names a bound for the whole log, not a position of this chain.
        p = msg.position
        ch = self._admit(msg.chain, msg.epoch, p, single=not msg.prefix)
        if isinstance(ch, wire.LogReply):
            return ch
        if msg.epoch < ch.epoch:
            return self._sealed(ch, p)
        if not msg.prefix:
            if p >= ch.prefix:
                ch.entries.pop(p, None)
                ch.trimmed.add(p)
        elif p > ch.prefix:
            span = range(ch.prefix + (msg.chain - ch.prefix) % self.nchains, p, self.nchains)
            if len(span) <= len(ch.entries):
                for q in span:
                    ch.entries.pop(q, None)
            else:
                ch.entries = {q: e for q, e in ch.entries.items() if q >= p}
            ch.trimmed = {q for q in ch.trimmed if q >= p}
            ch.prefix = p
        return wire.LogReply(wire.LOG_OK, p, ch.epoch)

    def _seal(self, msg: wire.LogSeal) -> wire.LogReply:
        ch = self.chains.get(msg.chain)
        if ch is None:
            return self._bad(-1, None, f"chain {msg.chain} is not held here")
        if msg.epoch < 0:
            return self._bad(-1, ch, f"negative epoch {msg.epoch}")
        if any(m < 0 for m in msg.members) or len(set(msg.members)) != len(msg.members):
            return self._bad(-1, ch, f"members {msg.members} are not distinct replica indices")
        if msg.epoch < ch.epoch or (msg.epoch == ch.epoch and msg.members != ch.members):
            reply = self._sealed(ch, -1)
            reply.tail = ch.tail
            return reply
        ch.epoch = msg.epoch
        ch.members = list(msg.members)
        return wire.LogReply(wire.LOG_OK, -1, ch.epoch, members=list(ch.members), tail=ch.tail)

    # ---- validation -------------------------------------------------------------------

    def _admit(self, chain: int, epoch: int, position: int, single: bool) -> _Chain | wire.LogReply:
        """The chain when the request is well formed, else the LOG_BAD reply to send.

        `single`: the position must be an addressable position of this chain.
        """
        ch = self.chains.get(chain)
        if ch is None:
            return self._bad(position, None, f"chain {chain} is not held here")
        if epoch < 0:
            return self._bad(position, ch, f"negative epoch {epoch}")
        if position < 0:
            return self._bad(position, ch, f"negative position {position}")
        if single:
            if chain_of(position, self.nchains) != chain:
                return self._bad(position, ch, f"position {position} belongs to chain"
                                               f" {chain_of(position, self.nchains)}")
            slot = slot_of(position, self.nchains)
            if slot >= self.capacity:
                return self._bad(position, ch, f"full: slot {slot} is beyond the capacity"
                                               f" of {self.capacity}")
        return ch

    def _current(self, ch: _Chain, epoch: int, position: int) -> wire.LogReply | None:
        """The refusal of a well-formed read or write at `position`, or None to go ahead."""
        if epoch < ch.epoch:
            return self._sealed(ch, position)
        if position < ch.prefix or position in ch.trimmed:
            return wire.LogReply(wire.LOG_TRIMMED, position, ch.epoch)
        return None

    @staticmethod
    def _sealed(ch: _Chain, position: int) -> wire.LogReply:
        return wire.LogReply(wire.LOG_SEALED, position, ch.epoch, members=list(ch.members))

    @staticmethod
    def _bad(position: int, ch: _Chain | None, reason: str) -> wire.LogReply:
        return wire.LogReply(wire.LOG_BAD, position, ch.epoch if ch else 0,
                             data=reason.encode())

    # ---- the checker's view -----------------------------------------------------------

    def dump(self, path: str | os.PathLike[str], name: str = "") -> None:
        """Write `<name>.entries` (format in nodes/logserver/dump.py); name defaults to the
        file's name without `.entries`."""
        write_dump(path, self.snapshot(name or Path(path).name.removesuffix(".entries")))

    def snapshot(self, name: str) -> EntryDump:
        """Every held position with its digest, for `dump.write_dump`."""
        dump = EntryDump(name)
        for c, ch in self.chains.items():
            dump.chains[c] = ChainState(ch.epoch, list(ch.members), ch.prefix)
            for p, (kind, data) in ch.entries.items():
                if kind == wire.ENTRY_DATA:
                    dump.entries[p] = Held(c, DATA, digest(data))
                else:
                    dump.entries[p] = Held(c, HOLE, NO_DIGEST)
            for p in ch.trimmed:
                dump.entries[p] = Held(c, TRIMMED, NO_DIGEST)
        return dump
