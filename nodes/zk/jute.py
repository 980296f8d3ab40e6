"""Jute, the binary record encoding of ZooKeeper's client protocol (BinaryInputArchive /
BinaryOutputArchive): big-endian int (4 bytes) and long (8), bool (1 byte), buffer and
ustring as an int length then the bytes (-1 = null), vector as an int count (-1 = null)
then the items.

Bytes from a client are untrusted: every read checks its bounds and every length, so a
truncated or malformed record raises `JuteError` with the reason, never IndexError or
struct.error. Null strings and vectors read as empty ones: kazoo sends "" as length -1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

INT = struct.Struct("!i")
LONG = struct.Struct("!q")
BOOL = struct.Struct("!?")
INT_INT = struct.Struct("!ii")

_unpack_int = INT.unpack_from
_unpack_long = LONG.unpack_from
_INT_SIZE = 4
_LONG_SIZE = 8
_NULL = INT.pack(-1)
_EMPTY_VECTOR = INT.pack(0)


class JuteError(ValueError):
    """A truncated or malformed jute record."""


class Reader:
    """Reads jute fields from `buf[pos:end]`, in order, checking every bound."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _short(self, what: str, need: int) -> JuteError:
        return JuteError(f"truncated record: {what} needs {need} bytes at offset {self.pos}, "
                         f"{self.end - self.pos} left")

    def read_int(self) -> int:
        pos = self.pos
        if pos + _INT_SIZE > self.end:
            raise self._short("int", _INT_SIZE)
        self.pos = pos + _INT_SIZE
        return _unpack_int(self.buf, pos)[0]

    def read_long(self) -> int:
        pos = self.pos
        if pos + _LONG_SIZE > self.end:
            raise self._short("long", _LONG_SIZE)
        self.pos = pos + _LONG_SIZE
        return _unpack_long(self.buf, pos)[0]

    def read_bool(self) -> bool:
        # Java's DataInput.readBoolean: any non-zero byte is true.
        pos = self.pos
        if pos >= self.end:
            raise self._short("bool", 1)
        self.pos = pos + 1
        return self.buf[pos] != 0

    def _length(self, what: str) -> int:
        """A buffer or string length, -1 (null) or 0..remaining bytes; self.pos moves past
        the length only. Inlined by hand: strings are on every request's path."""
        pos = self.pos
        end = self.end
        if pos + _INT_SIZE > end:
            raise self._short(f"{what} length", _INT_SIZE)
        n: int = _unpack_int(self.buf, pos)[0]
        pos += _INT_SIZE
        self.pos = pos
        if n > end - pos:
            raise JuteError(f"{what} length {n} exceeds the {end - pos} bytes left")
        if n < -1:
            raise JuteError(f"negative {what} length {n}")
        return n

    def read_buffer(self) -> bytes | None:
        n = self._length("buffer")
        if n < 0:
            return None
        pos = self.pos
        self.pos = pos + n
        return bytes(self.buf[pos:pos + n])

    def read_ustring(self) -> str:
        """A ustring where one is required: null reads as ""."""
        n = self._length("string")
        if n <= 0:
            return ""
        pos = self.pos
        self.pos = pos + n
        try:
            return self.buf[pos:pos + n].decode()
        except UnicodeDecodeError as e:
            raise JuteError(f"string at offset {pos} is not UTF-8: {e.reason}") from None

    def read_count(self, what: str, min_item_size: int) -> int:
        """A vector's item count (null = 0), no more than the bytes left could hold."""
        n = self.read_int()
        if n == -1:
            return 0
        if n < 0:
            raise JuteError(f"negative {what} count {n}")
        if n * min_item_size > self.end - self.pos:
            raise JuteError(f"{what} count {n} cannot fit in the {self.end - self.pos} "
                            f"bytes left")
        return n

    def read_ustring_vector(self) -> list[str]:
        read = self.read_ustring
        return [read() for _ in range(self.read_count("string vector", _INT_SIZE))]


# ---- writing: each returns the field's bytes; records are their concatenation ----------


def pack_buffer(data: bytes | None) -> bytes:
    if data is None:
        return _NULL
    return INT.pack(len(data)) + data


def pack_ustring(text: str | None) -> bytes:
    if text is None:
        return _NULL
    raw = text.encode()
    return INT.pack(len(raw)) + raw


def pack_bool(flag: bool) -> bytes:
    return b"\x01" if flag else b"\x00"


def pack_ustring_vector(items: Iterable[str]) -> bytes:
    parts = [pack_ustring(s) for s in items]
    if not parts:
        return _EMPTY_VECTOR
    return INT.pack(len(parts)) + b"".join(parts)
