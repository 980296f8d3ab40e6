"""Port blocks for local runs come from below the ephemeral range and are bindable."""

import socket

from orchestrator.ports import bindable, ephemeral_range, free_port_block


def test_a_block_is_free_and_clear_of_the_ephemeral_range():
    low, _ = ephemeral_range()
    for n in (1, 32, 256):
        base = free_port_block(n)
        assert base + n <= low or base > ephemeral_range()[1]
        assert all(bindable(p) for p in range(base, base + n))


def test_a_taken_port_is_not_bindable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port_block(1)))
        s.listen()
        assert not bindable(s.getsockname()[1])
