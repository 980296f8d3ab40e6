"""RSMKeeper live: `masonctl serve --system rsmkeeper` starts three real proxy processes,
and unmodified kazoo talks ZooKeeper's protocol to them.

The whole semantics suite (tests/zk_semantics.py, the cases Apache ZooKeeper answers in
test_zk_reference.py) runs through kazoo against the group; then kazoo's recipes, session
life (close, expiry, kill -9 of the leader), watches, four-letter words and fuzzed frames.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.serving import Serving, served
from nodes.status import parse_role
from nodes.zk import wire
from nodes.zk.codes import XID_NOTIFICATION, CreateMode
from tests.conftest import our_processes, wait_for
from tests.zk_semantics import CASES, Case, run_case

pytest.importorskip("kazoo")

from kazoo.client import KazooClient, KazooState  # noqa: E402
from kazoo.recipe.barrier import Barrier  # noqa: E402
from kazoo.recipe.counter import Counter  # noqa: E402
from kazoo.recipe.election import Election  # noqa: E402
from kazoo.recipe.lock import Lock  # noqa: E402
from kazoo.recipe.queue import Queue  # noqa: E402

from tests.zk_kazoo_driver import KazooDriver, empty_tree  # noqa: E402

CONNECT_LINE = re.compile(r"^(127\.0\.0\.1:\d+,){2}127\.0\.0\.1:\d+$")
START_S = 90.0


class Served(Serving):
    """A served group, and where its replicas stand."""

    def replica_of(self, role: str) -> int:
        """The index (in the connect string) of a replica in `role` now."""
        for i in range(3):
            path = self.run_dir / f"proxy-{i}-0.role"
            parsed = parse_role(path.read_text()) if path.exists() else None
            if parsed is not None and parsed[0] == role:
                return i
        raise LookupError(role)

    def pid(self, replica: int) -> int:
        return int((self.run_dir / f"proxy-{replica}-0.pid").read_text())


def serve(root: Path, *extra: str) -> Iterator[Served]:
    with served("rsmkeeper", root, *extra, timeout_s=START_S) as serving:
        assert CONNECT_LINE.match(serving.hosts), serving.hosts  # three local replicas
        yield Served(serving.hosts, serving.run_dir, serving.proc, serving.output)
    output = "".join(serving.output)
    assert serving.proc.returncode == 0, output
    assert not our_processes(str(serving.run_dir)), "serve left processes behind"


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("rsmkeeper"))


def kazoo(hosts: str, timeout: float = 10.0, **kwargs: object) -> KazooClient:
    client = KazooClient(hosts=hosts, timeout=timeout, **kwargs)
    client.start(timeout=30)
    return client


# ---- the semantics suite -------------------------------------------------------------------


def run_suite_case(hosts: str, case: Case) -> None:
    empty_tree(hosts)
    driver = KazooDriver(hosts, raw_paths=case.raw_paths)
    try:
        run_case(driver, case.steps)
    finally:
        driver.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rsmkeeper_answers_the_semantics_suite(group: Served, case: Case) -> None:
    run_suite_case(group.hosts, case)


def test_every_replica_serves_and_all_see_one_tree(group: Served) -> None:
    clients = [kazoo(f"{h}:{p}") for h, p in group.endpoints]
    try:
        for i, c in enumerate(clients):
            c.create(f"/replica-{i}", str(i).encode())
        for c in clients:
            # A linearizable read on any replica sees every write acknowledged before it.
            assert sorted(x for x in c.get_children("/") if x.startswith("replica-")) == [
                "replica-0", "replica-1", "replica-2"]
            assert c.get("/replica-2")[0] == b"2"
    finally:
        for c in clients:
            c.stop()
            c.close()


# ---- recipes --------------------------------------------------------------------------------


def test_kazoo_recipes_work(group: Served) -> None:
    a, b = kazoo(group.hosts), kazoo(group.hosts)
    try:
        lock_a, lock_b = Lock(a, "/recipes/lock", "a"), Lock(b, "/recipes/lock", "b")
        assert lock_a.acquire(timeout=10)
        assert not lock_b.acquire(blocking=False)
        assert lock_b.contenders() == ["a"]
        lock_a.release()
        assert lock_b.acquire(timeout=10)
        lock_b.release()

        elected, resign = threading.Event(), threading.Event()

        def lead() -> None:  # leads until told to resign
            elected.set()
            resign.wait(10)

        runner = threading.Thread(target=Election(a, "/recipes/election", "a").run,
                                  args=(lead,), daemon=True)
        runner.start()
        assert elected.wait(10)
        assert Election(b, "/recipes/election").contenders() == ["a"]
        resign.set()
        runner.join(10)
        assert Election(b, "/recipes/election").contenders() == []

        queue = Queue(a, "/recipes/queue")
        for item in (b"one", b"two", b"three"):
            queue.put(item)
        other = Queue(b, "/recipes/queue")
        assert [other.get(), other.get(), other.get(), other.get()] == [
            b"one", b"two", b"three", None]

        counter_a, counter_b = Counter(a, "/recipes/counter"), Counter(b, "/recipes/counter")
        for _ in range(5):
            counter_a += 1
            counter_b += 2
        assert Counter(a, "/recipes/counter").value == 15

        barrier = Barrier(a, "/recipes/barrier")
        barrier.create()
        passed = threading.Event()
        waiter = threading.Thread(target=lambda: Barrier(b, "/recipes/barrier").wait(10)
                                  and passed.set(), daemon=True)
        waiter.start()
        assert not passed.wait(0.3)  # (the barrier is up: nobody passes)
        barrier.remove()
        assert passed.wait(10)
    finally:
        a.stop()
        b.stop()
        a.close()
        b.close()


# ---- sessions ---------------------------------------------------------------------------------


def test_ephemerals_go_with_a_closed_session(group: Served) -> None:
    owner, observer = kazoo(group.hosts), kazoo(group.hosts)
    try:
        owner.create("/eph-closed", ephemeral=True)
        assert observer.exists("/eph-closed") is not None
        owner.stop()
        assert observer.exists("/eph-closed") is None  # closeSession went through the log
    finally:
        observer.stop()
        owner.close()
        observer.close()


class RawSession:
    """A ZooKeeper client on a bare socket: it sends only what it is told to (so it can
    fall silent without closing, which kazoo never does), and it can re-attach a session
    and send setWatches (which kazoo never sends)."""

    def __init__(self, endpoint: tuple[str, int], timeout_ms: int, session: int = 0,
                 passwd: bytes = bytes(16), last_zxid: int = 0) -> None:
        self.sock = socket.create_connection(endpoint, timeout=10)
        self.splitter = wire.FrameSplitter()
        self.frames: list[bytes] = []
        req = wire.ConnectRequest(0, last_zxid, timeout_ms, session, passwd, False).pack()
        self.sock.sendall(struct.pack("!i", len(req)) + req)
        answer = wire.decode_connect_response(self.next_frame())
        assert answer.timeout > 0
        self.session = answer.session_id
        self.passwd = answer.passwd
        self.xid = 0
        self.last_zxid = last_zxid
        self.events: list[tuple[int, str]] = []  # watch notifications: (type, path)

    def next_frame(self) -> bytes:
        while not self.frames:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.frames += self.splitter.feed(data)
        return self.frames.pop(0)

    def call(self, body: wire.Record, xid: int | None = None) -> wire.ReplyHeader:
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.sock.sendall(wire.encode_request(xid, body))
        while True:
            header, reader = wire.decode_reply_header(self.next_frame())
            if header.xid == XID_NOTIFICATION:
                event_type, _state = reader.read_int(), reader.read_int()
                self.events.append((event_type, reader.read_ustring()))
                continue
            if header.zxid > 0:
                self.last_zxid = max(self.last_zxid, header.zxid)
            if header.xid == xid:
                return header

    def close(self) -> None:
        self.sock.close()


def test_ephemerals_go_with_an_expired_session(group: Served) -> None:
    silent = RawSession(group.endpoints[1], timeout_ms=4000)  # the least ZooKeeper allows
    observer = kazoo(group.hosts)
    try:
        header = silent.call(wire.CreateRequest("/eph-expired", b"", wire.OPEN_ACL_UNSAFE,
                                                CreateMode.EPHEMERAL))
        assert header.err == 0
        assert observer.exists("/eph-expired") is not None
        # Silent, not closed: only the leader's ticks in the log can expire it.
        wait_for(lambda: observer.exists("/eph-expired") is None, 20,
                 "the silent session to expire and its ephemeral to go")
        # Re-attaching is refused now: the session is gone on every replica.
        again = socket.create_connection(group.endpoints[2], timeout=10)
        req = wire.ConnectRequest(0, 0, 4000, silent.session, bytes(16), False).pack()
        again.sendall(struct.pack("!i", len(req)) + req)
        splitter, frames = wire.FrameSplitter(), []
        while not frames:
            data = again.recv(4096)
            assert data, "closed without an answer"
            frames = splitter.feed(data)
        assert wire.decode_connect_response(frames[0]).timeout <= 0
        again.close()
    finally:
        silent.close()
        observer.stop()
        observer.close()


def test_a_watch_fires_once(group: Served) -> None:
    watcher, writer = kazoo(group.hosts), kazoo(group.hosts)
    fired: list[object] = []
    try:
        writer.create("/watched", b"0")
        watcher.get("/watched", watch=fired.append)
        writer.set("/watched", b"1")
        writer.set("/watched", b"2")
        watcher.sync("/")
        watcher.get("/watched")  # everything sent before this reply has been handled
        wait_for(lambda: len(fired) >= 1, 10, "the watch to fire")
        writer.set("/watched", b"3")
        watcher.sync("/")
        watcher.get("/watched")
        assert len(fired) == 1, fired
    finally:
        watcher.stop()
        writer.stop()
        watcher.close()
        writer.close()


def test_four_letter_words(group: Served) -> None:
    for host, port in group.endpoints:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"ruok")
            assert s.recv(4) == b"imok"
    c = kazoo(group.hosts)
    try:
        assert c.server_version() == (3, 8, 4)
    finally:
        c.stop()
        c.close()


# ---- bad input ----------------------------------------------------------------------------------


def test_fuzzed_frames_close_only_their_connection(group: Served) -> None:
    target = group.endpoints[0]
    bystander = kazoo(f"{target[0]}:{target[1]}")
    rng = random.Random(20261130)
    try:
        bystander.create("/fuzz", b"")
        for i in range(150):
            with socket.create_connection(target, timeout=5) as s:
                kind = i % 3
                if kind == 0:  # garbage from the first byte
                    s.sendall(rng.randbytes(rng.randint(1, 300)))
                elif kind == 1:  # a frame over jute.maxbuffer or below zero
                    s.sendall(struct.pack("!i", rng.choice([-5, 0xFFFFF + 1, 2**31 - 1])))
                else:  # a good handshake, then random request frames
                    raw = RawSession(target, 4000)
                    for _ in range(5):
                        body = rng.randbytes(rng.randint(0, 60))
                        frame = struct.pack("!ii", rng.randint(1, 100), rng.randint(-12, 110))
                        frame += body
                        raw.sock.sendall(struct.pack("!i", len(frame)) + frame)
                    raw.close()
                if i % 25 == 0:
                    bystander.set("/fuzz", str(i).encode())
                    assert bystander.get("/fuzz")[0] == str(i).encode()
        assert bystander.state == KazooState.CONNECTED
        assert bystander.get("/fuzz")[0] == b"125"
        with socket.create_connection(target, timeout=5) as s:
            s.sendall(b"ruok")
            assert s.recv(4) == b"imok"
    finally:
        bystander.stop()
        bystander.close()


# ---- leader failure --------------------------------------------------------------------------


@pytest.fixture
def own_group(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path)


def test_a_session_survives_kill_9_of_the_leader(own_group: Served) -> None:
    served = own_group
    wait_for(lambda: _has_role(served, "leader"), 30, "a leader")
    leader = served.replica_of("leader")
    # The leader's port first, so the session starts there and must move.
    order = [leader] + [i for i in range(3) if i != leader]
    hosts = ",".join(served.hosts.split(",")[i] for i in order)
    client = kazoo(hosts, timeout=10.0, randomize_hosts=False)
    observer_hosts = ",".join(served.hosts.split(",")[i] for i in order[1:])
    try:
        session = client.client_id
        client.create("/survivor", b"x", ephemeral=True)
        client.create("/counter", b"0")
        lost = threading.Event()
        client.add_listener(lambda state: lost.set() if state != KazooState.CONNECTED
                            else None)
        os.kill(served.pid(leader), signal.SIGKILL)
        wait_for(lost.is_set, 20, "kazoo to notice its server died")
        wait_for(lambda: client.state == KazooState.CONNECTED, 30,
                 "kazoo to reconnect to another replica")
        assert client.client_id == session  # the same session, re-attached
        client.set("/counter", b"1")  # writes go through the new leader
        observer = kazoo(observer_hosts)
        try:
            stat = observer.exists("/survivor")
            assert stat is not None and stat.ephemeralOwner == session[0]
            assert observer.get("/counter")[0] == b"1"
        finally:
            observer.stop()
            observer.close()
    finally:
        client.stop()
        client.close()


def _has_role(served: Served, role: str) -> bool:
    try:
        served.replica_of(role)
    except LookupError:
        return False
    return True


# ---- local reads -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_reads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("rsmkeeper-local"), "--zk-local-reads")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_with_local_reads_a_session_still_answers_the_semantics_suite(
        local_reads: Served, case: Case) -> None:
    # A replica serves a read after every earlier request of the connection is applied
    # there, so with every session on one replica the suite holds unchanged. (Sessions on
    # different replicas may see each other's writes late: sequential consistency.)
    host, port = local_reads.endpoints[2]
    run_suite_case(f"{host}:{port}", case)


# ---- zkCli -------------------------------------------------------------------------------------

JAVA = Path("/usr/share/java")
ZKCLI_JARS = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-nop.jar",
              "commons-cli.jar"]


def zkcli(endpoint: tuple[str, int], *command: str) -> str:
    done = subprocess.run(
        ["java", "-cp", ":".join(str(JAVA / j) for j in ZKCLI_JARS),
         "org.apache.zookeeper.ZooKeeperMain", "-server", f"{endpoint[0]}:{endpoint[1]}",
         "-waitforconnection", *command],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.skipif(not all((JAVA / j).exists() for j in ZKCLI_JARS),
                    reason="zkCli needs Debian's zookeeper package and java")
def test_zkcli_from_apache_zookeeper_works(group: Served) -> None:
    a, b, c = group.endpoints
    assert "Created /zkcli" in zkcli(a, "create", "/zkcli", "hello")
    created = zkcli(b, "create", "-s", "-e", "/zkcli/e-", "x")
    assert "Created /zkcli/e-0000000000" in created
    got = zkcli(c, "get", "-s", "/zkcli")
    assert "hello" in got and "dataVersion = 0" in got and "numChildren = 1" in got
    zkcli(a, "set", "/zkcli", "world")
    stat = zkcli(b, "stat", "/zkcli")
    assert "dataVersion = 1" in stat and "dataLength = 5" in stat
    listed = zkcli(c, "ls", "-s", "/zkcli")
    assert "[e-0000000000]" in listed and "numChildren = 1" in listed
    zkcli(a, "create", "/zkcli/p", "")
    zkcli(a, "create", "/zkcli/p/q", "")
    zkcli(b, "delete", "/zkcli/p/q")
    observer = kazoo(group.hosts)
    try:
        # zkCli with a command exits without closeSession: its ephemeral stays until expiry.
        stat_e = observer.exists("/zkcli/e-0000000000")
        assert stat_e is not None and stat_e.ephemeralOwner != 0
        assert observer.get_children("/zkcli/p") == []
        zkcli(c, "deleteall", "/zkcli")
        assert observer.exists("/zkcli") is None
    finally:
        observer.stop()
        observer.close()


def test_serve_refuses_a_system_it_cannot_serve(tmp_path: Path) -> None:
    from tests.conftest import masonctl

    done = masonctl("serve", "--system", "mason", "--results", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["error: --system mason cannot be served for clients of your own"], lines
    assert list(tmp_path.iterdir()) == []
