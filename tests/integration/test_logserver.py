"""Real log-server processes over real sockets: statuses, bad frames, chains, failures."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest

from analysis.logcheck import check_log
from nodes import wire
from nodes.config import ChainConfig, Endpoint
from nodes.logserver.chain import ChainClient, View
from nodes.logserver.dump import read_dump
from nodes.logserver.layout import LAYOUT_FILE, LogLayout, write_layout
from nodes.logserver.values import digest, entry_value
from nodes.metrics import ClientSummary, SeqnumRecorder, write_summary
from nodes.status import read_summary, summary_path
from tests.conftest import REPO, NodeProcs, free_port_block, wait_for
from tests.line import Line

LOGSERVER = """
name = "{name}"
outdir = "{outdir}"
nspaces = 1
chains = {chains}
nchains = {nchains}
capacity = 1000
max_entry_bytes = 128
dump_entries = true
[listen]
host = "127.0.0.1"
port = {port}
"""

SIZE = 64
TIMEOUT_S = 1.0  # a killed log server is declared failed after this long


def closed_after(port: int, payload: bytes) -> bool:
    """Send payload; True when the server closes the connection on us."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(payload)
            return sock.recv(65536) == b""
        except ConnectionResetError:
            return True


def start_servers(
    nodes: NodeProcs, n: int, chains: list[int], nchains: int
) -> tuple[list[subprocess.Popen[bytes]], list[Endpoint]]:
    base = free_port_block(n)
    procs, eps = [], []
    for i in range(n):
        conf = LOGSERVER.format(name=f"ls-{i}", outdir=nodes.tmp, chains=chains,
                                nchains=nchains, port=base + i)
        procs.append(nodes.start("logserver", f"ls-{i}", conf))
        eps.append(Endpoint("127.0.0.1", base + i))
    return procs, eps


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


def with_chain(eps: list[Endpoint], nchains: int,
               body: Callable[[ChainClient], Awaitable[None]]) -> None:
    """Run body with a connected ChainClient whose every chain is `eps`, head first."""

    async def main() -> None:
        client = ChainClient(ChainConfig([list(eps)] * nchains), name="test",
                             timeout_s=TIMEOUT_S).start()
        try:
            assert await client.connect(10)
            await body(client)
        finally:
            client.close()

    asyncio.run(main())


def value(p: int) -> bytes:
    return entry_value(7, p, SIZE)


# ---- one server over a raw connection ----------------------------------------------------


def test_statuses_bad_frames_and_the_final_files(nodes, tmp_path):
    (proc,), (ep,) = start_servers(nodes, 1, chains=[0, 1], nchains=2)
    line = Line(ep.port)
    assert line.call(wire.LogWrite(0, 0, 4, wire.ENTRY_DATA, b"four")).status == wire.LOG_OK
    r = line.call(wire.LogWrite(0, 0, 4, wire.ENTRY_DATA, b"other"))
    assert (r.status, r.kind, r.data) == (wire.LOG_WRITTEN, wire.ENTRY_DATA, b"four")
    assert line.call(wire.LogWrite(0, 0, 4, wire.ENTRY_DATA, b"four")).status == wire.LOG_OK
    assert line.call(wire.LogWrite(0, 0, 6, wire.ENTRY_HOLE, b"")).status == wire.LOG_OK
    r = line.call(wire.LogWrite(0, 0, 6, wire.ENTRY_DATA, b"late"))
    assert (r.status, r.kind) == (wire.LOG_WRITTEN, wire.ENTRY_HOLE)
    assert line.call(wire.LogRead(0, 0, 8)).status == wire.LOG_UNWRITTEN
    assert line.call(wire.LogTrim(0, 0, 4, False)).status == wire.LOG_OK
    assert line.call(wire.LogRead(0, 0, 4)).status == wire.LOG_TRIMMED
    r = line.call(wire.LogWrite(0, 0, 3, wire.ENTRY_DATA, b"x"))
    assert (r.status, r.data) == (wire.LOG_BAD, b"position 3 belongs to chain 1")
    # Seal chain 1; an older epoch is refused with the new view.
    line.call(wire.LogWrite(1, 0, 5, wire.ENTRY_DATA, b"five"))
    r = line.call(wire.LogSeal(1, 2, [0]))
    assert (r.status, r.epoch, r.members, r.tail) == (wire.LOG_OK, 2, [0], 5)
    r = line.call(wire.LogWrite(1, 1, 7, wire.ENTRY_DATA, b"seven"))
    assert (r.status, r.epoch, r.members) == (wire.LOG_SEALED, 2, [0])
    assert line.call(wire.LogWrite(1, 2, 7, wire.ENTRY_DATA, b"seven")).status == wire.LOG_OK

    # Garbage, and a well-formed message that is no log request: that connection closes...
    assert closed_after(ep.port, b"\x00\x00\x00\x05garbage")
    assert closed_after(ep.port, wire.encode_frame([(wire.CALL, 1, wire.Heartbeat(1))]))
    assert proc.poll() is None
    # ... the open one and new ones are still served, with the state intact.
    assert line.call(wire.LogRead(1, 2, 5)).data == b"five"
    fresh = Line(ep.port)
    assert fresh.call(wire.LogRead(1, 2, 7)).data == b"seven"
    line.close()
    fresh.close()
    assert "closing connection" in (tmp_path / "ls-0.log").read_text()

    stop(proc)
    s = read_summary(summary_path(tmp_path, "ls-0"))
    assert (s.role, s.writes, s.reads, s.entries) == ("logserver", 9, 4, 3)  # 4 trimmed
    assert s.refused == 5  # 2 LOG_WRITTEN, 1 LOG_TRIMMED, 1 LOG_BAD, 1 LOG_SEALED
    d = read_dump(tmp_path / "ls-0.entries")
    assert {p: (h.kind, h.digest) for p, h in d.entries.items()} == {
        4: ("trimmed", "-"), 6: ("hole", "-"), 5: ("data", digest(b"five")),
        7: ("data", digest(b"seven")),
    }
    assert (d.chains[1].epoch, d.chains[1].members) == (2, [0])


# ---- chains through ChainClient --------------------------------------------------------


def test_chain_of_three_writes_everywhere_and_reads_the_tail(nodes):
    _, eps = start_servers(nodes, 3, chains=[0, 1], nchains=2)
    lines = [Line(ep.port) for ep in eps]

    async def body(client: ChainClient) -> None:
        results = await asyncio.gather(
            *(client.write(p, wire.ENTRY_DATA, value(p)) for p in range(40)))
        assert all(r.ok for r in results)
        for line in lines:  # every replica holds every entry
            for p in range(40):
                assert line.call(wire.LogRead(p % 2, 0, p)).data == value(p)
        for p in range(40):
            assert (await client.read(p)).data == value(p)

        # Reads come from the tail: an entry only the tail holds is read, one only the head
        # holds is not.
        lines[2].call(wire.LogWrite(0, 0, 40, wire.ENTRY_DATA, b"tail only"))
        lines[0].call(wire.LogWrite(1, 0, 41, wire.ENTRY_DATA, b"head only"))
        assert (await client.read(40)).data == b"tail only"
        assert (await client.read(41)).status == wire.LOG_UNWRITTEN

        # Another entry at the head wins: the writer gets it and can copy it down the chain.
        r = await client.write(41, wire.ENTRY_DATA, b"mine")
        assert (r.status, r.data) == (wire.LOG_WRITTEN, b"head only")
        r = await client.fill(41)
        assert (r.status, r.data) == (wire.LOG_WRITTEN, b"head only")
        r = await client.adopt(41)
        assert (r.status, r.data) == (wire.LOG_OK, b"head only")
        assert (await client.read(41)).data == b"head only"
        # A replica after the head holding other content is a broken chain, not a retry.
        lines[1].call(wire.LogWrite(0, 0, 42, wire.ENTRY_DATA, b"middle"))
        assert (await client.write(42, wire.ENTRY_DATA, b"x")).status == wire.LOG_DIVERGED

        # Holes and trims reach every member.
        assert (await client.fill(43)).ok
        assert (await client.read(43)).kind == wire.ENTRY_HOLE
        assert (await client.trim(2)).ok
        assert (await client.trim(10, prefix=True)).ok
        for line in lines:
            assert line.call(wire.LogRead(0, 0, 2)).status == wire.LOG_TRIMMED
            assert line.call(wire.LogRead(1, 0, 9)).status == wire.LOG_TRIMMED
            assert line.call(wire.LogRead(0, 0, 10)).data == value(10)
            assert line.call(wire.LogRead(1, 0, 43)).kind == wire.ENTRY_HOLE
        assert (await client.read(5)).status == wire.LOG_TRIMMED
        assert client.reconfigurations == 0

    with_chain(eps, 2, body)


def test_killing_the_head_then_the_middle_loses_no_acknowledged_entry(nodes, tmp_path):
    """Two writers (two ChainClients, as two Corfu clients), four appends in flight each."""
    procs, eps = start_servers(nodes, 3, chains=[0, 1], nchains=2)
    acked: list[int] = []

    async def main() -> None:
        clients = [ChainClient(ChainConfig([list(eps)] * 2), name=f"writer-{i}",
                               timeout_s=TIMEOUT_S).start() for i in range(2)]
        try:
            assert all(await asyncio.gather(*(c.connect(10) for c in clients)))
            await kill_while_writing(clients)
        finally:
            for c in clients:
                c.close()

    async def kill_while_writing(clients: list[ChainClient]) -> None:
        next_position = 0
        stopping = False

        async def writer(client: ChainClient) -> None:
            nonlocal next_position
            while not stopping:
                p, next_position = next_position, next_position + 1
                r = await client.write(p, wire.ENTRY_DATA, value(p))
                assert r.ok, r
                acked.append(p)

        tasks = [asyncio.create_task(writer(c)) for c in clients for _ in range(4)]
        await until(lambda: len(acked) >= 150, 20, "150 appends")
        procs[0].send_signal(signal.SIGKILL)  # the head
        await until(lambda: len(acked) >= 300, 20, "appends after the head died")
        procs[1].send_signal(signal.SIGKILL)  # the middle, now the head
        await until(lambda: len(acked) >= 450, 20, "appends after the middle died")
        stopping = True
        await asyncio.gather(*tasks)
        for c in clients:
            assert c.views == [View(2, (2,))] * 2
        assert sorted(acked) == list(range(len(acked)))  # every position taken was acked
        reads = await asyncio.gather(*(clients[0].read(p) for p in acked))
        assert [r.data for r in reads] == [value(p) for p in acked]

    asyncio.run(main())
    stop(procs[2])

    # The log checker agrees: the survivor holds every position, with the appended bytes.
    write_layout(tmp_path / LAYOUT_FILE, LogLayout(
        nchains=2, replication=3, chains=[["ls-0", "ls-1", "ls-2"]] * 2, entry_size=SIZE))
    with SeqnumRecorder(tmp_path / "client-0-0.seqnums", 7, 1) as rec:
        for p in sorted(acked):
            rec.record(p, 0, [1], [p])
    write_summary(tmp_path / "client-0-0.summary.json",
                  ClientSummary("client-0-0", 7, len(acked), len(acked), 0, 1, 0, 0, 0))
    verdict = check_log(tmp_path)
    assert verdict.ok, "\n".join(verdict.lines())
    # Two chains, each compared on its one surviving replica.
    assert (verdict.dumps, verdict.appends, verdict.positions) == (2, len(acked), len(acked))


def test_a_silent_replica_is_dropped_and_stale_writers_adopt_the_new_view(nodes):
    procs, eps = start_servers(nodes, 3, chains=[0], nchains=1)
    lines = [Line(ep.port) for ep in eps]

    async def body(client: ChainClient) -> None:
        assert (await client.write(0, wire.ENTRY_DATA, value(0))).ok
        procs[1].send_signal(signal.SIGSTOP)  # alive, but silent
        try:
            assert (await client.write(1, wire.ENTRY_DATA, value(1))).ok
        finally:
            procs[1].send_signal(signal.SIGCONT)
        assert client.views == [View(1, (0, 2))]
        # The dropped replica learns the new view too, and refuses the old epoch.
        wait_for(lambda: lines[1].call(wire.LogRead(0, 0, 0)).status == wire.LOG_SEALED, 5,
                 "the dropped replica to be sealed")
        r = lines[1].call(wire.LogRead(0, 0, 0))
        assert (r.epoch, r.members) == (1, [0, 2])
        # (The write sent to it before it was dropped may have landed late: harmless, no
        # reader of epoch 1 asks it.)
        assert lines[1].call(wire.LogWrite(0, 0, 9, wire.ENTRY_DATA, b"x")).status == \
            wire.LOG_SEALED

        # A writer that still has the first view is refused and adopts the new one.
        stale = ChainClient(ChainConfig([list(eps)]), name="stale", timeout_s=TIMEOUT_S).start()
        try:
            assert await stale.connect(10)
            assert (await stale.write(2, wire.ENTRY_DATA, value(2))).ok
            assert stale.views == [View(1, (0, 2))] and stale.reconfigurations == 0
            assert (await stale.read(1)).data == value(1)
        finally:
            stale.close()
        assert [line.call(wire.LogRead(0, 1, 2)).status for line in lines] == [
            wire.LOG_OK, wire.LOG_UNWRITTEN, wire.LOG_OK]

    with_chain(eps, 1, body)


@pytest.mark.parametrize("replication", [1, 2])
def test_short_chains(nodes, replication):
    procs, eps = start_servers(nodes, replication, chains=[0], nchains=1)

    async def body(client: ChainClient) -> None:
        for p in range(20):
            assert (await client.write(p, wire.ENTRY_DATA, value(p))).ok
        procs[0].send_signal(signal.SIGKILL)  # the head (and, alone, the tail)
        r = await client.write(20, wire.ENTRY_DATA, value(20))
        if replication == 1:
            assert r.status == wire.LOG_UNAVAILABLE
            assert (await client.read(0)).status == wire.LOG_UNAVAILABLE
            return
        assert r.ok and client.views == [View(1, (1,))]
        for p in range(21, 30):
            assert (await client.write(p, wire.ENTRY_DATA, value(p))).ok
        reads = await asyncio.gather(*(client.read(p) for p in range(30)))
        assert [r.data for r in reads] == [value(p) for p in range(30)]

    with_chain(eps, 1, body)
    wait_for(lambda: procs[0].poll() is not None, 5, "the killed server to exit")


def test_a_bad_config_exits_with_one_line(tmp_path):
    conf = LOGSERVER.format(name="ls-bad", outdir=tmp_path, chains=[3], nchains=2,
                            port=free_port_block(1))
    cfg = tmp_path / "ls-bad.toml"
    cfg.write_text(conf)
    done = subprocess.run([sys.executable, "-m", "nodes.logserver", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=30, cwd=REPO)
    assert done.returncode == 2
    assert "chain 3 is not one of the log's 2 chains" in done.stdout
