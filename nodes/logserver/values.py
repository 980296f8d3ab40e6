"""The bytes a benchmark client appends, and the digest the log checker compares.

An appended entry is derived from (client id, reqid), so the checker can tell, from a
client's record of acknowledged positions alone, which bytes each position must hold.
The first 8 bytes are the reqid (little-endian), as in the original; the rest is a
pattern of the client id and reqid rather than uninitialised memory.
"""

from __future__ import annotations

import hashlib


def entry_value(client_id: int, reqid: int, size: int) -> bytes:
    head = reqid.to_bytes(8, "little", signed=True) + client_id.to_bytes(8, "little",
                                                                         signed=True)
    if size <= len(head):
        return head[:size]
    seed = hashlib.blake2b(head, digest_size=16).digest()
    body = (seed * (size // len(seed) + 1))[: size - len(head)]
    return head + body


def digest(data: bytes) -> str:
    """A short, stable fingerprint of an entry's bytes (hex), for dumps and checks."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()
