"""The ZooKeeper load generator (nodes/zkclient) against a real Apache ZooKeeper 3.8 server:
every operation kind answered, its files read by analysis/, its history linearizable, a
connection cut mid-run survived by re-attaching the session, and bad configs refused in
one line.

Needs java and Debian's ZooKeeper jars (scripts/system-deps.sh installs `zookeeper`); without
them the module skips, except in CI, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from analysis.aggregate import summarize_run
from analysis.datfiles import read_hist, read_summary
from analysis.linearizability import check_file
from benchmarks import apache_zk
from nodes.zkclient.counts import read_counts
from tests.conftest import free_port, wait_for

if apache_zk.missing():
    reason = f"the load generator's tests need {', '.join(apache_zk.missing())}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI cannot run them: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

ALL_KINDS = {"create": 10, "rename": 10, "setData": 20, "getData": 20, "delete": 5,
             "exists": 20, "getChildren": 15}
FLAGS = {"create": "create_percent", "rename": "rename_percent", "setData": "write_percent",
         "getData": "read_percent", "delete": "delete_percent", "exists": "exists_percent",
         "getChildren": "get_children_percent"}
# What the data model may answer this workload: deletes leave keys missing, and a resent
# create may find its node.
MODEL_ERRORS = {"NO_NODE", "NODE_EXISTS"}


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One standalone Apache ZooKeeper server; its client port."""
    with apache_zk.Ensemble(1, tmp_path_factory.mktemp("zookeeper"), heap_mb=256) as zk:
        yield zk.client_ports[0]


def config(outdir: Path, port: int, name: str = "client-0-0", client_id: int = 0, *,
           mix: Mapping[str, float] | None = None, duration: float = 2.0,
           connections: int = 2, extra: str = "", workload: str = "") -> Path:
    shares = "\n".join(f"{FLAGS[k]} = {v}" for k, v in (mix or ALL_KINDS).items())
    path = outdir / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\noutdir = "{outdir}"\nnspaces = 0\nclient_id = {client_id}\n'
        f'servers = [{{ host = "127.0.0.1", port = {port} }}]\nconnections = {connections}\n'
        f"concurrency = 8\nwarmup_s = 0.5\nduration_s = {duration}\ncooldown_s = 0.2\n"
        f"timeout_ms = 5000\n{extra}\n[workload]\n{shares}\nnkeys = 32\n"
        f'prefix = "/{outdir.name}"\n{workload}\n')
    return path


def start(conf: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "nodes.zkclient", "--config", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run(conf: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodes.zkclient", "--config", str(conf)],
                          capture_output=True, text=True, timeout=timeout)


def test_every_operation_kind_is_answered_and_the_files_parse(zookeeper: int,
                                                             tmp_path: Path) -> None:
    done = run(config(tmp_path, zookeeper))
    assert done.returncode == 0, done.stdout + done.stderr
    counts = read_counts(tmp_path / "client-0-0.zkops.json")
    for kind in ALL_KINDS:
        answers = counts.kinds.get(kind)
        assert answers is not None and answers.ok > 0, f"{kind}: {answers}"
        assert set(answers.errors) <= MODEL_ERRORS, f"{kind}: {answers.errors}"
    assert counts.setup_ops >= 1 + 32 + 32  # the prefix, the parents, the keys
    assert counts.reconnects == 0 and counts.sessions_expired == 0
    assert counts.sessions_opened == 2

    hist = read_hist(tmp_path / "client-0-0.hist")
    summary = read_summary(tmp_path / "client-0-0.summary.json")
    assert hist.count > 0 and hist.percentile(0.5) > 0 and summary.retransmits == 0
    assert summary.ops_measured > 0 and summary.unanswered == 0
    assert summary.refused == sum(sum(k.errors.values()) for k in counts.kinds.values())
    answered = sum(k.answered for k in counts.kinds.values())
    assert answered == summary.ops_total
    run_summary = summarize_run(tmp_path)
    assert run_summary.clients == 1 and run_summary.throughput_ops > 0
    assert run_summary.samples == summary.ops_measured


def test_the_history_of_two_clients_is_linearizable(zookeeper: int, tmp_path: Path) -> None:
    mix = {"create": 10, "setData": 40, "getData": 40, "delete": 10}
    procs = [start(config(tmp_path, zookeeper, f"client-0-{i}", i, mix=mix, duration=1.0,
                          extra="record_history = true")) for i in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=90)
        assert p.returncode == 0, out
    verdict = check_file(tmp_path)
    assert verdict.ok, "\n".join(verdict.lines())
    assert sum(k.operations for k in verdict.keys) > 100


def test_a_rename_cannot_be_recorded(zookeeper: int, tmp_path: Path) -> None:
    done = run(config(tmp_path, zookeeper, extra="record_history = true"))
    assert done.returncode == 2
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == ("error: client-0-0: record_history cannot record renames: set "
                         "rename_percent to 0")


def test_sequential_creates_number_each_parents_children_without_gaps(
        zookeeper: int, tmp_path: Path) -> None:
    done = run(config(tmp_path, zookeeper, mix={"create": 100, "setData": 0}, duration=1.0,
                      workload="sequential = true"))
    assert done.returncode == 0, done.stdout + done.stderr
    created = read_counts(tmp_path / "client-0-0.zkops.json").kinds["create"]
    assert created.ok > 0 and created.errors == {}
    client = KazooClient(hosts=f"127.0.0.1:{zookeeper}", timeout=10)
    client.start(timeout=10)
    try:
        numbered = 0
        for i in range(32):
            children = client.get_children(f"/{tmp_path.name}/c0-{i}")
            assert "k" in children  # the key is not replaced by what was created
            numbers = sorted(int(c.removeprefix("n")) for c in children if c != "k")
            # The key's own creation took number 0 of its parent.
            assert numbers == list(range(1, len(numbers) + 1)), numbers
            numbered += len(numbers)
    finally:
        client.stop()
        client.close()
    assert numbered == created.ok


def test_a_sequential_create_cannot_be_recorded(zookeeper: int, tmp_path: Path) -> None:
    done = run(config(tmp_path, zookeeper, mix={"create": 100, "setData": 0},
                      extra="record_history = true", workload="sequential = true"))
    assert done.returncode == 2
    assert done.stdout.strip().splitlines()[-1] == (
        "error: client-0-0: record_history cannot record sequential creates (the server "
        "names the znode): set sequential to false")


class CuttableProxy:
    """A TCP forwarder in a thread whose connections the test can cut at once."""

    def __init__(self, target: int) -> None:
        self.port = free_port()
        self.target = target
        self.forwarded = 0
        self.accepted = 0
        self.transports: list[asyncio.StreamWriter] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stopped: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    self.forwarded += len(data)
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.transport.abort()

        async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.accepted += 1
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target)
            self.transports += [w, uw]
            await asyncio.gather(pump(r, uw), pump(ur, w))

        async def main() -> None:
            self.stopped = asyncio.Event()
            server = await asyncio.start_server(serve, "127.0.0.1", self.port)
            self.ready.set()
            await self.stopped.wait()
            server.close()

        self.loop.run_until_complete(main())

    def cut(self) -> None:
        def abort() -> None:
            for w in self.transports:
                w.transport.abort()
            self.transports.clear()
        self.loop.call_soon_threadsafe(abort)

    def close(self) -> None:
        self.cut()
        if self.stopped is not None:
            self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)


def test_a_cut_connection_reattaches_its_session_and_resends(zookeeper: int,
                                                             tmp_path: Path) -> None:
    proxy = CuttableProxy(zookeeper)
    try:
        mix = {"setData": 50, "getData": 50}
        proc = start(config(tmp_path, proxy.port, mix=mix, duration=3.0))
        wait_for(lambda: (tmp_path / "client-0-0.ready").exists() or proc.poll() is not None,
                 60, "the load generator's set-up")
        seen = proxy.forwarded
        wait_for(lambda: proxy.forwarded > seen + 100_000, 30, "load through the proxy")
        proxy.cut()
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, out
    finally:
        proxy.close()
    counts = read_counts(tmp_path / "client-0-0.zkops.json")
    summary = read_summary(tmp_path / "client-0-0.summary.json")
    assert counts.reconnects == 2  # both sessions, once each
    assert counts.sessions_expired == 0
    assert counts.sessions_opened == 2  # re-attached with their id and password
    assert proxy.accepted == 4
    assert summary.retransmits > 0 and summary.unanswered == 0
    for kind in mix:
        assert counts.kinds[kind].errors == {}, counts.kinds[kind]


@pytest.mark.parametrize(("mix", "connections", "extra", "expected"), [
    ({"setData": 40, "getData": 50}, 2, "", "error: client-0-0: workload percentages must "
     "each lie in [0, 100] and sum to 100, not 90"),
    (None, 2, "flavour = 1", "error: "),
    (None, 0, "", "error: client-0-0: connections and concurrency must be positive"),
], ids=["shares-sum-to-90", "unknown-key", "no-connections"])
def test_a_bad_config_is_one_line(tmp_path: Path, mix: dict[str, float] | None,
                                  connections: int, extra: str, expected: str) -> None:
    done = run(config(tmp_path, 1, mix=mix, connections=connections, extra=extra),
               timeout=30)
    assert done.returncode == 2
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(expected), done.stdout + done.stderr
    assert extra.split(" ")[0] in lines[0]
    assert "Traceback" not in done.stdout + done.stderr
