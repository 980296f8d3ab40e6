"""The in-memory Raft log: a Python list of entries behind a compaction offset.

``entries[k]`` holds log index ``offset + 1 + k``. Index ``offset`` is the last index
covered by the most recent snapshot; its term is kept in ``snap_term`` because a
follower's consistency check and the leader's snapshot both need it after the entry
itself is gone. Indices below ``offset`` have an unknown term (``term()`` answers None).

A list with an offset makes append O(1), lookup by index O(1) and compaction one
``del entries[:k]``; terms never decrease along a log, so searches by term bisect.

``stable`` is for a host that keeps the log on disk: the last index it has persisted. The
log never raises it (the host does, after writing); a truncation or a reset lowers it to
below the first index that changed, so the entries from ``stable + 1`` on are exactly
what the host still has to write (an entries record from there implies the truncation).
"""

from __future__ import annotations

from bisect import bisect_right

from .messages import Entry


def _entry_term(e: Entry) -> int:
    return e.term


class RaftLog:
    __slots__ = ("entries", "offset", "snap_term", "stable")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.offset = 0
        self.snap_term = 0
        self.stable = 0

    @property
    def first_index(self) -> int:
        return self.offset + 1

    @property
    def last_index(self) -> int:
        return self.offset + len(self.entries)

    @property
    def last_term(self) -> int:
        if self.entries:
            return self.entries[-1].term
        return self.snap_term

    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``, or None when it is compacted away or not yet
        written."""
        off = self.offset
        if index > off:
            k = index - off - 1
            if k < len(self.entries):
                return self.entries[k].term
            return None
        if index == off:
            return self.snap_term
        return None

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.offset - 1]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries with ``lo <= index < hi`` (the caller keeps the range inside the log)."""
        off = self.offset + 1
        return self.entries[lo - off : hi - off]

    def slice_bytes(self, lo: int, max_bytes: int) -> list[Entry]:
        """Entries from ``lo`` onwards whose data adds up to at most ``max_bytes``, but
        always at least one entry when there is one, so an oversized entry still moves."""
        entries = self.entries
        start = lo - self.offset - 1
        end = len(entries)
        if start >= end:
            return []
        total = 0
        k = start
        while k < end:
            total += len(entries[k].data)
            if total > max_bytes and k > start:
                break
            k += 1
        return entries[start:k]

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)

    def extend(self, entries: list[Entry]) -> None:
        self.entries.extend(entries)

    def truncate_from(self, index: int) -> None:
        """Drop the entries at ``index`` and after."""
        del self.entries[index - self.offset - 1 :]
        if self.stable >= index:
            self.stable = index - 1

    def compact(self, index: int) -> None:
        """Forget the entries up to and including ``index`` (which must be in the log)."""
        if index <= self.offset:
            return
        term = self.term(index)
        if term is None:
            raise ValueError(
                f"cannot compact to {index}: not in log [{self.offset}, {self.last_index}]"
            )
        del self.entries[: index - self.offset]
        self.offset = index
        self.snap_term = term

    def reset(self, index: int, term: int) -> None:
        """Replace the whole log by a snapshot boundary at (index, term)."""
        self.entries = []
        self.offset = index
        self.snap_term = term
        if self.stable > index:
            self.stable = index

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """The largest ``i <= index`` whose term is ``<= term``.

        Used for the fast back-off after a rejected append: entries of a later term than
        the other side's cannot match it, so the whole run of them is skipped at once.
        Answers ``index`` itself when it lies below the compaction point and
        ``offset - 1`` when every known entry up to ``index`` is too new; either way the
        caller ends up at an index with an unknown term, i.e. needs a snapshot.
        """
        off = self.offset
        if index < off:
            return index
        hi = min(index, self.last_index) - off
        k = bisect_right(self.entries, term, 0, hi, key=_entry_term)
        if k > 0:
            return off + k
        if self.snap_term <= term:
            return off
        return off - 1
