"""Received-number bitmaps: which numbers of one space a group has committed.

Every replica keeps one per space and sets the bits of every committed range. The union
over all groups tells a backup sequencer which numbers are owned; the zero bits below the
highest set bit are the holes it must turn into noops. Bitmaps grow by whole blocks and
are truncated block by block once the garbage-collection ring has proved a block complete
(every number in it committed by some group), so their size stays bounded by how far the
slowest group lags, not by the length of the run.

Bit order: number x is bit (x - base) of the little-endian integer of `bits`, i.e. byte
(x - base) // 8, bit (x - base) % 8.
"""

from __future__ import annotations

import logging

log = logging.getLogger("mason.bitmap")


class Bitmap:
    __slots__ = ("block", "block_bytes", "base", "bits", "duplicates")

    def __init__(self, block: int) -> None:
        if block <= 0 or block % 8:
            raise ValueError(f"block size must be a positive multiple of 8, not {block}")
        self.block = block
        self.block_bytes = block // 8
        self.base = 0
        self.bits = bytearray(self.block_bytes)
        self.duplicates = 0  # numbers committed twice: must stay 0

    def set_range(self, first: int, last: int) -> None:
        """Mark [first, last] committed; numbers below the base are already accounted for."""
        if last < first:
            return
        first = max(first, self.base)
        if last < first:
            return
        lo, hi = first - self.base, last - self.base
        need = hi // 8 + 1
        if need > len(self.bits):
            blocks = -(-need // self.block_bytes)
            self.bits.extend(bytes(blocks * self.block_bytes - len(self.bits)))
        bits = self.bits
        lo_byte, hi_byte = lo // 8, hi // 8
        # Build the mask of the affected bytes as one integer and check for overlap first.
        width = hi_byte - lo_byte + 1
        mask = ((1 << (hi - lo + 1)) - 1) << (lo - lo_byte * 8)
        current = int.from_bytes(bits[lo_byte : hi_byte + 1], "little")
        overlap = current & mask
        if overlap:
            self.duplicates += overlap.bit_count()
            log.error("numbers in [%d, %d] committed twice (%d)", first, last, overlap.bit_count())
        bits[lo_byte : hi_byte + 1] = (current | mask).to_bytes(width, "little")

    def head_count(self) -> int:
        """Committed numbers in the head block [base, base + block)."""
        return int.from_bytes(self.bits[: self.block_bytes], "little").bit_count()

    def truncate(self) -> None:
        """Drop the head block: every number in it is known to be committed somewhere."""
        del self.bits[: self.block_bytes]
        if not self.bits:
            self.bits = bytearray(self.block_bytes)
        self.base += self.block

    def truncate_to(self, base: int) -> None:
        while self.base < base:
            self.truncate()

    def as_int(self) -> int:
        return int.from_bytes(self.bits, "little")

    def highest(self) -> int:
        """The highest committed number, or base - 1 when none above the base."""
        return self.base + self.as_int().bit_length() - 1


def union(parts: list[tuple[int, bytes]]) -> tuple[int, int]:
    """OR of several (base, bits) bitmaps, aligned at the highest base.

    Below the highest base every number is committed (a base only advances over complete
    blocks), so bits under it carry no information. Returns (base, bits as an int).
    """
    base = max(b for b, _ in parts)
    merged = 0
    for b, raw in parts:
        value = int.from_bytes(raw, "little")
        shift = base - b
        merged |= value >> shift
    return base, merged


def zero_runs(value: int, length: int) -> list[tuple[int, int]]:
    """Inclusive (first, last) bit positions of the runs of zeros in value[0:length]."""
    holes = ~value & ((1 << length) - 1)
    runs = []
    while holes:
        low = (holes & -holes).bit_length() - 1
        shifted = holes >> low
        run = (~shifted & (shifted + 1)).bit_length() - 1
        runs.append((low, low + run - 1))
        holes &= ~(((1 << run) - 1) << low)
    return runs
