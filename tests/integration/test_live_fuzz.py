"""Fuzzed frames against a live node: every bad connection is closed, the node keeps serving."""

from __future__ import annotations

import socket

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes import wire
from tests.conftest import free_port
from tests.line import call_once

SEQUENCER = """
name = "sequencer-0"
outdir = "{outdir}"
nspaces = 2
[listen]
host = "127.0.0.1"
port = {port}
"""


def ask(port: int, srid: int) -> wire.SeqReply:
    reply = call_once(port, wire.SeqRequest(0, 1, srid, [1, 1], 0, 1))
    assert isinstance(reply, wire.SeqReply)
    return reply


def send_garbage(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(2)
            while sock.recv(65536):
                pass
        except OSError:
            pass  # the node closing on us is the expected outcome


garbage = st.one_of(
    st.binary(min_size=1, max_size=300),
    # A correct length prefix around random bytes.
    st.binary(max_size=300).map(lambda b: len(b).to_bytes(4, "big") + b),
    # Well-formed msgpack of the wrong shape.
    st.lists(st.one_of(st.integers(-(2**63), 2**63), st.text(max_size=5), st.none()),
             max_size=6).map(
        lambda v: (lambda b: len(b).to_bytes(4, "big") + b)(msgspec.msgpack.encode([v]))
    ),
    # A valid envelope with a message of the wrong field types.
    st.integers(-(2**63), 2**63).map(lambda n: (lambda b: len(b).to_bytes(4, "big") + b)(
        msgspec.msgpack.encode([[0, 1, ["sq", "x", n, None, [], 0, 1]]]))),
    st.just((wire.MAX_FRAME + 10).to_bytes(4, "big") + b"x"),
)


def test_sequencer_survives_fuzzed_frames(nodes, tmp_path):
    port = free_port()
    proc = nodes.start("sequencer", "sequencer-0",
                       SEQUENCER.format(outdir=tmp_path, port=port))
    assert ask(port, 1).lasts == [0, 0]

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(garbage)
    def fuzz(payload: bytes) -> None:
        send_garbage(port, payload)
        assert proc.poll() is None, "the sequencer died on a bad frame"

    fuzz()
    # Still serving, with its state intact: the next srid gets the next numbers.
    assert ask(port, 2).lasts == [1, 1]
    log = (tmp_path / "sequencer-0.log").read_text()
    assert "closing connection" in log
