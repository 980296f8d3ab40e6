"""A replica's Raft state on disk, so that a killed replica comes back with its vote and log.

The Raft core (nodes/raft/) stays free of I/O: it writes into a ``MemoryStorage``, and this
module mirrors that object into one append-only file, ``<name>.raft``, after every
``ready()`` and before any of that ready's messages leave the process.

File format: a sequence of records, each framed as a 4-byte big-endian payload length, a
4-byte CRC-32 of the payload, and the payload (a tagged msgspec msgpack struct):

* ``HardState(term, voted_for)``: the current term and the vote cast in it (-1: none);
* ``EntriesFrom(first, entries)``: the log from index ``first`` on is ``entries``. Any
  entry at ``first`` or later written before is replaced (a truncation is implied);
* ``SnapshotFrom(snapshot)``: the log now starts after ``snapshot`` (a local compaction
  keeps the entries that agree, an installed snapshot replaces the whole log).

At start the file is replayed into a fresh ``MemoryStorage``. A torn or corrupt record
(a crash in the middle of a write, a bad CRC, a record that does not fit the log) ends the
replay: the file is cut there and the cut is logged, never raised. Whenever the snapshot
changes, the file is rewritten compactly (hard state, snapshot, the entries after it) into
a temporary file that is fsynced and renamed over the old one.

Durability modes (``ProxyConfig.durable``):

* ``always``: fsync before the ready's messages go out. A vote, an acknowledged entry or a
  term survives power loss: the textbook Raft guarantee.
* ``batch``: written before sending, fsynced by a worker thread, at most every
  ``BATCH_SYNC_S`` (group commit over every ready written meanwhile; the event loop never
  waits for the disk). A kill -9 of the process loses nothing (the kernel holds every
  write); a power loss or kernel crash may lose the last few ms of acknowledged writes,
  which Raft does not tolerate on more than a minority at once.
* ``off``: written, never fsynced. Survives kill -9 of the process, not power loss.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from pathlib import Path

import msgspec

from nodes.raft import Entry, MemoryStorage, Snapshot

log = logging.getLogger("mason.durable")

MODES = ("always", "batch", "off")
BATCH_SYNC_S = 0.005  # batch mode: the longest a written record waits for its fsync
HEADER = struct.Struct(">II")  # payload length, CRC-32 of the payload
MAX_RECORD = 1 << 30  # a length above this is garbage, not a record


class HardState(msgspec.Struct, array_like=True, tag="h"):
    term: int
    voted_for: int  # -1: no vote in this term


class EntriesFrom(msgspec.Struct, array_like=True, tag="e"):
    first: int
    entries: list[Entry]


class SnapshotFrom(msgspec.Struct, array_like=True, tag="s"):
    snapshot: Snapshot


Record = HardState | EntriesFrom | SnapshotFrom

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Record)


def frame(record: Record) -> bytes:
    payload = _encoder.encode(record)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BadRecord(ValueError):
    """A record that cannot be replayed onto the log as it stands."""


def apply_record(st: MemoryStorage, rec: Record) -> None:
    """Replay one record onto ``st``; raises BadRecord when it does not fit."""
    log_ = st.log
    if isinstance(rec, HardState):
        if rec.term < st.term or rec.voted_for < -1:
            raise BadRecord(f"hard state {rec} goes back from term {st.term}")
        st.term = rec.term
        st.voted_for = None if rec.voted_for < 0 else rec.voted_for
    elif isinstance(rec, SnapshotFrom):
        s = rec.snapshot
        if s.index < log_.offset or s.term < 0:
            raise BadRecord(f"snapshot at {s.index} is below the log's start {log_.offset}")
        if s.index <= log_.last_index and log_.term(s.index) == s.term:
            log_.compact(s.index)
        else:
            log_.reset(s.index, s.term)
        st.snapshot = s
    else:
        first = rec.first
        if not log_.offset < first <= log_.last_index + 1:
            raise BadRecord(f"entries from {first} do not fit the log "
                            f"[{log_.first_index}..{log_.last_index}]")
        if any(e.index != first + k for k, e in enumerate(rec.entries)):
            raise BadRecord(f"entries from {first} are not consecutive")
        if first <= log_.last_index:
            log_.truncate_from(first)
        log_.extend(rec.entries)


def replay(path: Path) -> tuple[MemoryStorage, int]:
    """The storage the file at ``path`` describes and the byte length of its valid prefix."""
    st = MemoryStorage()
    data = path.read_bytes() if path.exists() else b""
    at = 0
    while at < len(data):
        reason = ""
        if len(data) - at < HEADER.size:
            reason = "a torn record header"
        else:
            length, crc = HEADER.unpack_from(data, at)
            payload = data[at + HEADER.size : at + HEADER.size + length]
            if length > MAX_RECORD or len(payload) < length:
                reason = "a torn record"
            elif zlib.crc32(payload) != crc:
                reason = "a record with a bad checksum"
            else:
                try:
                    apply_record(st, _decoder.decode(payload))
                except (msgspec.DecodeError, msgspec.ValidationError, BadRecord) as exc:
                    reason = f"a record that does not replay ({exc})"
        if reason:
            log.warning("%s: %s at byte %d; cutting the last %d byte(s) off", path, reason,
                        at, len(data) - at)
            break
        at += HEADER.size + length
    st.log.stable = st.log.last_index
    return st, at


class RaftFile:
    """The append-only file behind one replica's ``MemoryStorage``."""

    def __init__(self, path: str | Path, mode: str = "off") -> None:
        if mode not in MODES:
            raise ValueError(f"durable mode {mode!r} is not one of {', '.join(MODES)}")
        self.path = Path(path)
        self.mode = mode
        self.storage, valid = replay(self.path)
        self.restarted = self.path.exists()
        if self.restarted and valid < self.path.stat().st_size:
            os.truncate(self.path, valid)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.hard = (self.storage.term, self.storage.voted_for)
        self.snapshot = self.storage.snapshot
        self.file_last = self.storage.log.last_index  # the last index the file holds
        self.unsynced = False
        self.last_sync = time.monotonic()
        self.writes = 0  # records written, for the status file
        self.syncs = 0

    def persist(self) -> None:
        """Write what changed in the storage since the last call; fsync as the mode says.
        Called after ``ready()`` and before its messages are sent."""
        st = self.storage
        if st.snapshot is not self.snapshot:
            self.rewrite()
            return
        out = []
        hard = (st.term, st.voted_for)
        if hard != self.hard:
            out.append(frame(HardState(st.term, -1 if st.voted_for is None else st.voted_for)))
            self.hard = hard
        log_ = st.log
        lo = max(log_.stable, log_.offset) + 1
        last = log_.last_index
        # A truncation with nothing after it still needs its (empty) record.
        if lo <= last or self.file_last >= lo:
            out.append(frame(EntriesFrom(lo, log_.slice(lo, last + 1))))
            log_.stable = self.file_last = last
        if not out:
            return
        # One write per ready: a kill -9 after it returns loses nothing, the kernel has it.
        write_all(self.fd, b"".join(out))
        self.writes += len(out)
        self.unsynced = self.mode != "off"
        if self.mode == "always":
            self.sync()

    def take_unsynced(self) -> int | None:
        """Batch mode: a duplicate of the file descriptor to fsync off the event loop (the
        caller closes it, see ``fsync_and_close``), covering everything written so far; None
        when there is nothing to sync."""
        if not self.unsynced:
            return None
        self.unsynced = False
        self.syncs += 1
        self.last_sync = time.monotonic()
        return os.dup(self.fd)

    def sync(self) -> None:
        """fsync what was written, here and now."""
        if self.unsynced and self.mode != "off":
            os.fsync(self.fd)
            self.syncs += 1
        self.unsynced = False
        self.last_sync = time.monotonic()

    def rewrite(self) -> None:
        """Replace the file by hard state + snapshot + the entries after it."""
        st = self.storage
        log_ = st.log
        records: list[Record] = [HardState(st.term, -1 if st.voted_for is None else st.voted_for),
                   SnapshotFrom(st.snapshot)]
        if log_.entries:
            records.append(EntriesFrom(log_.first_index, list(log_.entries)))
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, b"".join(frame(r) for r in records))
            if self.mode != "off":
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self.mode != "off":
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.hard = (st.term, st.voted_for)
        self.snapshot = st.snapshot
        log_.stable = self.file_last = log_.last_index
        self.writes += len(records)
        self.unsynced = False
        self.last_sync = time.monotonic()

    def close(self) -> None:
        self.sync()
        os.close(self.fd)
