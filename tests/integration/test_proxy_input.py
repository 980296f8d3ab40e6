"""A live CorfuMason proxy against bad operations: each refused with a reason, none applied.

A real sequencer, two real log servers (one chain of two) and a proxy group of one replica
(so it leads alone); requests go over real sockets.
"""

from __future__ import annotations

from nodes import wire
from nodes.status import parse_role
from tests.conftest import free_port_block, wait_for
from tests.integration.test_live_fuzz import send_garbage
from tests.line import Line, call_once

SEQUENCER = """
name = "sequencer-0"
outdir = "{outdir}"
nspaces = 1
[listen]
host = "127.0.0.1"
port = {port}
"""

LOGSERVER = """
name = "server-{i}"
outdir = "{outdir}"
nspaces = 1
chains = [0]
nchains = 1
max_entry_bytes = 32
[listen]
host = "127.0.0.1"
port = {port}
"""

PROXY = """
name = "proxy-0"
outdir = "{outdir}"
nspaces = 1
service = "corfumason"
group = 0
replica = 0
peers = {{}}
election_ticks = 4
[log]
chains = [[{{ host = "127.0.0.1", port = {ls0} }}, {{ host = "127.0.0.1", port = {ls1} }}]]
max_entry_bytes = 32
[listen]
host = "127.0.0.1"
port = {port}
[sequencer]
host = "127.0.0.1"
port = {seq}
"""


def squat(port: int, position: int) -> None:
    write = wire.LogWrite(0, 0, position, wire.ENTRY_DATA, b"squatter")
    assert call_once(port, write).status == wire.LOG_OK


def append(reqid: int, data: bytes, counts=(1,), client=3, group=0, ack=-1):
    return wire.OpRequest(client, reqid, group, ack, list(counts), wire.OP_APPEND, data)


def read(reqid: int, position: int, client=4):
    payload = position.to_bytes(8, "little", signed=True)
    return wire.OpRequest(client, reqid, 0, -1, [], wire.OP_READ, payload)


def start_group(nodes, tmp_path):
    """Sequencer, a chain of two log servers, a CorfuMason group of one that leads."""
    base = free_port_block(4)
    nodes.start("sequencer", "sequencer-0", SEQUENCER.format(outdir=tmp_path, port=base))
    for i in (0, 1):
        nodes.start("logserver", f"server-{i}",
                    LOGSERVER.format(i=i, outdir=tmp_path, port=base + 1 + i))
    proc = nodes.start("proxy", "proxy-0", PROXY.format(
        outdir=tmp_path, port=base + 3, seq=base, ls0=base + 1, ls1=base + 2))
    role = tmp_path / "proxy-0.role"
    wait_for(lambda: role.exists() and (parse_role(role.read_text()) or ("",))[0] == "leader",
             30, "the proxy to lead its group of one")
    return base, proc


def test_a_forged_acknowledgement_cannot_starve_a_client(nodes, tmp_path):
    base, _ = start_group(nodes, tmp_path)
    client = Line(base + 3)
    assert client.call(append(0, b"zero")).lasts == [0]
    # Another connection claims client 3 has every answer up to 10^12. An ack never goes
    # beyond what the group has answered that client, so client 3 goes on being served.
    forger = Line(base + 3)
    forger.call(append(0, b"zero", ack=10**12))  # a duplicate of reqid 0: same answer
    assert client.call(append(1, b"one", ack=0)).lasts == [1]
    assert client.call(append(2, b"two", ack=1)).lasts == [2]


def test_bad_operations_are_refused_and_leave_the_log_untouched(nodes, tmp_path):
    base, proc = start_group(nodes, tmp_path)
    client = Line(base + 3)
    bad = {
        "too large": append(0, b"x" * 33),
        "empty": append(0, b""),
        "two positions": append(0, b"x", counts=(2,)),
        "other group": append(0, b"x", group=9),
        "sequencing kind": wire.OpRequest(3, 0, 0, -1, [1], wire.OP_SEQUENCE, b""),
        "unknown kind": wire.OpRequest(3, 0, 0, -1, [1], 99, b"x"),
        "negative position": read(0, -1),
        "short position": wire.OpRequest(4, 0, 0, -1, [], wire.OP_READ, b"\x01"),
    }
    for what, req in bad.items():
        reply = client.call(req)
        assert reply.status == wire.OP_REFUSED, what
        assert reply.payload, f"{what}: a refusal says why"
    # Negative ids, acks or counts, and garbage: the decoder refuses the frame and the
    # connection is closed; the proxy serves on.
    negative = [append(-1, b"x"), append(0, b"x", client=-5), append(0, b"x", ack=-7),
                append(0, b"x", counts=(-1,))]
    for payload in (b"\xff" * 12, (5).to_bytes(4, "big") + b"\xc1\xc1\xc1\xc1\xc1",
                    *(wire.encode_frame([(wire.CALL, 1, req)]) for req in negative)):
        send_garbage(base + 3, payload)
        assert proc.poll() is None, "the proxy died on a bad frame"
    # Nothing refused took a position: the first good append gets position 0 and reads back.
    ok = client.call(append(0, b"first entry"))
    assert ok.status == wire.OP_OK and ok.lasts == [0]
    again = client.call(append(0, b"first entry"))  # a retransmission: the same answer
    assert again.lasts == [0]
    back = client.call(read(0, 0))
    assert (back.status, back.payload) == (wire.LOG_OK, b"first entry")
    assert client.call(read(1, 1)).status == wire.LOG_UNWRITTEN
    # A position taken outside the protocol: the append that gets it is refused, not
    # answered as written (also when retransmitted), and the next append goes on.
    for port in (base + 1, base + 2):
        squat(port, 1)
    taken = client.call(append(1, b"second entry"))
    assert taken.status == wire.OP_REFUSED and b"refused the write" in taken.payload
    assert client.call(append(1, b"second entry")).status == wire.OP_REFUSED
    assert client.call(append(2, b"third entry")).lasts == [2]
    assert client.call(read(2, 1)).payload == b"squatter"
    assert "closing connection" in (tmp_path / "proxy-0.log").read_text()


MASON_PROXY = """
name = "proxy-m"
outdir = "{outdir}"
nspaces = 2
group = 0
replica = 0
peers = {{}}
election_ticks = 4
[listen]
host = "127.0.0.1"
port = {port}
[sequencer]
host = "127.0.0.1"
port = {seq}
"""


def start_mason_group(nodes, tmp_path) -> int:
    """A sequencer of two spaces and a mason group of one that leads; returns the base port
    (the proxy listens on base + 1)."""
    base = free_port_block(2)
    nodes.start("sequencer", "sequencer-0",
                SEQUENCER.format(outdir=tmp_path, port=base).replace("nspaces = 1",
                                                                    "nspaces = 2"))
    nodes.start("proxy", "proxy-m", MASON_PROXY.format(outdir=tmp_path, port=base + 1,
                                                       seq=base))
    role = tmp_path / "proxy-m.role"
    wait_for(lambda: role.exists() and (parse_role(role.read_text()) or ("",))[0] == "leader",
             30, "the proxy to lead its group of one")
    return base


def test_negative_counts_in_one_frame_take_no_number_and_stop_nothing(nodes, tmp_path):
    # The original's leader passed [1, -1] to the sequencer, which moved space 0 and then
    # refused; the leader resent it without end, and two such requests in one frame gave
    # one number to two operations. Such a frame is refused at the decoder now.
    base = start_mason_group(nodes, tmp_path)
    forged = [wire.OpRequest(9, r, 0, -1, [1, -1]) for r in (0, 1)]
    send_garbage(base + 1, wire.encode_frame([(wire.CALL, r + 1, f)
                                              for r, f in enumerate(forged)]))
    client = Line(base + 1)
    for reqid in range(3):
        reply = client.call(wire.OpRequest(3, reqid, 0, reqid - 1, [1, 1]))
        assert reply.lasts == [reqid, reqid]  # nothing was taken by the forged requests
    assert "closing connection" in (tmp_path / "proxy-m.log").read_text()


def test_a_run_is_answered_whole_again_on_retransmission_and_never_regrouped(nodes, tmp_path):
    base = start_mason_group(nodes, tmp_path)
    client = Line(base + 1)
    first = client.call(wire.OpRequest(3, 0, 0, -1, [1, 2], nops=5))
    assert (first.lasts, first.nops) == ([4, 9], 5)  # reqids 0..4 own 0..4 and 0..9
    single = client.call(wire.OpRequest(3, 5, 0, -1, [1, 2]))
    assert (single.lasts, single.nops) == ([5, 11], 1)
    # The same run again (its answer was lost): the same numbers, nothing new taken.
    again = client.call(wire.OpRequest(3, 0, 0, -1, [1, 2], nops=5))
    assert (again.lasts, again.nops) == ([4, 9], 5)
    # Committed operations asked for as another grouping: refused, never numbered twice.
    for reqid, nops in ((0, 2), (2, 3)):
        regrouped = client.call(wire.OpRequest(3, reqid, 0, -1, [1, 2], nops=nops))
        assert regrouped.status == wire.OP_REFUSED and regrouped.payload
    nxt = client.call(wire.OpRequest(3, 6, 0, 5, [1, 2], nops=3))
    assert (nxt.lasts, nxt.nops) == ([8, 17], 3)
    # Once acked, a late duplicate of the run is ignored: the next run still follows on.
    later = client.call(wire.OpRequest(3, 9, 0, 8, [1, 2], nops=2))
    assert later.lasts == [10, 21]


def test_a_system_whose_operations_carry_payloads_refuses_runs(nodes, tmp_path):
    base, _ = start_group(nodes, tmp_path)
    client = Line(base + 3)
    reply = client.call(wire.OpRequest(3, 0, 0, -1, [1], wire.OP_APPEND, b"x", nops=2))
    assert reply.status == wire.OP_REFUSED and b"one operation per request" in reply.payload
    assert client.call(append(0, b"x")).lasts == [0]  # the refused run took no position
