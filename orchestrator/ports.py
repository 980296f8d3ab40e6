"""Free port blocks for local runs, benchmarks and tests, outside the ephemeral range.

A block picked inside the kernel's ephemeral range (where `bind(0)` answers) races with the
outgoing connections of the very processes the block is for: every reconnecting peer takes
an ephemeral port, and a node that then cannot listen fails the run. Blocks are therefore
drawn below that range, at random, and each port is checked bindable.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10_000


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(v) for v in
                     Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def bindable(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(n: int, host: str = "127.0.0.1") -> int:
    """A base port with n free ports after it, all below the ephemeral range (checked, not
    reserved: another program may still take one)."""
    low, high = ephemeral_range()
    top = low - n if low - n > LOWEST else 65000 - n
    start = LOWEST if low - n > LOWEST else high + 1
    for _ in range(200):
        base = random.randrange(start, top)
        if all(bindable(p, host) for p in range(base, base + n)):
            return base
    raise RuntimeError(f"no block of {n} free ports on {host}")
