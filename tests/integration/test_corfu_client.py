"""The plain Corfu client against real processes: a position taken at the head is adopted.

A real sequencer, a chain of two real log servers, and one Corfu client process. Before the
client starts, position 0 is written on the head only (as a writer that died halfway would
leave it). The client's first token is 0: it must complete what is there down the chain
and append its own entry at a fresh position.
"""

from __future__ import annotations

from analysis.datfiles import read_seqnums, read_summary
from nodes import wire
from tests.conftest import free_port_block
from tests.integration.test_proxy_input import LOGSERVER, SEQUENCER
from tests.line import call_once

CLIENT = """
name = "client-0"
outdir = "{outdir}"
nspaces = 1
client_id = 5
concurrency = 1
warmup_s = 0.2
duration_s = 0.5
cooldown_s = 0.1
record_seqnums = true
[sequencer]
host = "127.0.0.1"
port = {seq}
[log]
chains = [[{{ host = "127.0.0.1", port = {ls0} }}, {{ host = "127.0.0.1", port = {ls1} }}]]
max_entry_bytes = 32
[workload]
kind = "append"
entry_size = 32
"""


def test_a_position_taken_at_the_head_is_completed_and_the_append_moves_on(nodes, tmp_path):
    base = free_port_block(3)
    nodes.start("sequencer", "sequencer-0", SEQUENCER.format(outdir=tmp_path, port=base))
    for i in (0, 1):
        nodes.start("logserver", f"server-{i}",
                    LOGSERVER.format(i=i, outdir=tmp_path, port=base + 1 + i).replace(
                        "nspaces = 1", "nspaces = 1\ndump_entries = true"))
    left = b"left by a writer that died"
    assert call_once(base + 1, wire.LogWrite(0, 0, 0, wire.ENTRY_DATA, left)).status == wire.LOG_OK
    assert call_once(base + 2, wire.LogRead(0, 0, 0)).status == wire.LOG_UNWRITTEN
    client = nodes.start("corfuclient", "client-0", CLIENT.format(
        outdir=tmp_path, seq=base, ls0=base + 1, ls1=base + 2))
    assert client.wait(timeout=60) == 0, (tmp_path / "client-0.log").read_text()
    summary = read_summary(tmp_path / "client-0.summary.json")
    assert summary.redirects == 1 and summary.refused == 0  # one position adopted
    _, log = read_seqnums(tmp_path / "client-0.seqnums")
    positions = [int(p) for p in log.lasts[:, 0]]
    assert positions and 0 not in positions and positions[0] == 1
    # The tail now holds what the head held: position 0 is complete on the whole chain.
    tail = call_once(base + 2, wire.LogRead(0, 0, 0))
    assert (tail.status, tail.data) == (wire.LOG_OK, left)
