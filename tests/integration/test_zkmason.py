"""ZK-Mason live: `masonctl serve --system zkmason` starts a sequencer, one proxy group of
three and 1, 2 or 4 shards of three replicas, and unmodified kazoo talks ZooKeeper's
protocol to the proxies.

The same checks as RSMKeeper's (tests/integration/test_rsmkeeper.py), run against every
shard count: the whole semantics suite, kazoo's recipes, ephemerals going with a closed
and with an expired session, one-shot watches, zkCli; then what only sharding has: every
shard replica executed every number of its space once, in order, with the others.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.integration.test_rsmkeeper as rsm
from analysis.zkshards import check_run
from benchmarks.serving import served
from nodes.zk import wire
from nodes.zk.codes import XID_SET_WATCHES, Err, EventType
from nodes.zk.shards import shard_of
from tests.conftest import our_processes, wait_for
from tests.zk_semantics import CASES, Case

pytest.importorskip("kazoo")

SHARDS = (1, 2, 4)


def serve_zkmason(root: Path, nshards: int) -> Iterator[rsm.Served]:
    with served("zkmason", root, "--nzk_servers", str(3 * nshards),
                timeout_s=rsm.START_S) as serving:
        assert rsm.CONNECT_LINE.match(serving.hosts), serving.hosts
        group = rsm.Served(serving.hosts, serving.run_dir, serving.proc, serving.output)
        group.nshards = nshards  # type: ignore[attr-defined]
        yield group
    assert serving.proc.returncode == 0, "".join(serving.output)
    assert not our_processes(str(serving.run_dir)), "serve left processes behind"
    # Stopped cleanly: every shard replica's record is complete. Every number of every
    # space went to exactly one operation or noop, in order, the same on every replica.
    verdict = check_run(serving.run_dir)
    assert verdict.ok and verdict.recorded, "\n".join(verdict.lines())


@pytest.fixture(scope="module", params=SHARDS, ids=[f"{n}shards" for n in SHARDS])
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[rsm.Served]:
    nshards = request.param
    yield from serve_zkmason(tmp_path_factory.mktemp(f"zkmason{nshards}"), nshards)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_zkmason_answers_the_semantics_suite(cluster: rsm.Served, case: Case) -> None:
    rsm.run_suite_case(cluster.hosts, case)


def test_every_proxy_replica_serves_one_tree(cluster: rsm.Served) -> None:
    rsm.test_every_replica_serves_and_all_see_one_tree(cluster)


def test_kazoo_recipes_work(cluster: rsm.Served) -> None:
    rsm.test_kazoo_recipes_work(cluster)


def test_ephemerals_go_with_a_closed_session(cluster: rsm.Served) -> None:
    rsm.test_ephemerals_go_with_a_closed_session(cluster)


def test_ephemerals_go_with_an_expired_session(cluster: rsm.Served) -> None:
    rsm.test_ephemerals_go_with_an_expired_session(cluster)


def test_a_watch_fires_once(cluster: rsm.Served) -> None:
    rsm.test_a_watch_fires_once(cluster)


@pytest.mark.skipif(not all((rsm.JAVA / j).exists() for j in rsm.ZKCLI_JARS),
                    reason="zkCli needs Debian's zookeeper package and java")
def test_zkcli_works(cluster: rsm.Served) -> None:
    rsm.test_zkcli_from_apache_zookeeper_works(cluster)


def test_operations_spanning_shards_are_atomic(cluster: rsm.Served) -> None:
    """A multi over nodes on different shards: all of it or none of it, seen alike from
    every proxy replica."""
    nshards = cluster.nshards  # type: ignore[attr-defined]
    names = [f"/span/n{i}" for i in range(16)]
    assert nshards == 1 or len({shard_of(n, nshards) for n in names}) > 1
    a = rsm.kazoo(cluster.hosts)
    try:
        a.create("/span")
        failing = a.transaction()
        for n in names:
            failing.create(n, b"x")
        failing.set_data("/span/missing", b"")  # fails: nothing of the multi may stay
        results = failing.commit()
        assert any(isinstance(r, Exception) for r in results)
        assert a.get_children("/span") == []
        ok = a.transaction()
        for n in names:
            ok.create(n, b"y")
        assert not any(isinstance(r, Exception) for r in ok.commit())
        for host, port in cluster.endpoints:
            other = rsm.kazoo(f"{host}:{port}")
            try:
                assert sorted(other.get_children("/span")) == sorted(n.rsplit("/", 1)[1]
                                                                   for n in names)
                assert all(other.get(n)[0] == b"y" for n in names)
            finally:
                other.stop()
                other.close()
    finally:
        a.stop()
        a.close()


def test_shard_records_are_written(cluster: rsm.Served) -> None:
    nshards = cluster.nshards  # type: ignore[attr-defined]
    records = sorted(Path(cluster.run_dir).glob("*.exec"))
    assert len(records) == 3 * nshards


# ---- a session that moves ----------------------------------------------------------------------


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[rsm.Served]:
    yield from serve_zkmason(tmp_path, 2)


def test_watches_move_with_their_session_to_another_replica(own_cluster: rsm.Served) -> None:
    """The client's replica dies (kill -9); the client re-attaches its session at another
    and sends setWatches with the last zxid it saw, as ZooKeeper's clients do. What changed
    while it was away fires at once, the rest is watched there: the next change fires each
    watch exactly once."""
    c = own_cluster
    wait_for(lambda: rsm._has_role(c, "leader"), 30, "a leader")
    leader = c.replica_of("leader")
    gone_replica = next(i for i in range(3) if i != leader)
    host, port = c.endpoints[leader]
    writer = rsm.kazoo(f"{host}:{port}")  # on a replica that stays
    watcher: rsm.RawSession | None = None
    try:
        for name in ("data", "kids", "changed", "gone"):
            writer.create(f"/moves/{name}", b"0", makepath=True)
        first = rsm.RawSession(c.endpoints[gone_replica], 20000)
        for request in (wire.GetDataRequest("/moves/data", True),
                        wire.GetChildrenRequest("/moves/kids", True),
                        wire.ExistsRequest("/moves/changed", True),
                        wire.GetDataRequest("/moves/gone", True),
                        wire.ExistsRequest("/moves/born", True),
                        wire.ExistsRequest("/moves/later", True)):
            assert first.call(request).err in (0, Err.NO_NODE)
        since = first.last_zxid
        os.kill(c.pid(gone_replica), signal.SIGKILL)
        with pytest.raises(ConnectionError):
            first.next_frame()  # the replica is gone: its connection closes
        first.close()
        # While the client is away.
        writer.set("/moves/changed", b"1")
        writer.delete("/moves/gone")
        writer.create("/moves/born")
        watcher = rsm.RawSession(c.endpoints[leader], 20000, first.session, first.passwd,
                                 since)
        assert watcher.session == first.session  # the same session, re-attached
        watched = wire.SetWatchesRequest(
            since, ("/moves/data", "/moves/changed", "/moves/gone"),
            ("/moves/born", "/moves/later"), ("/moves/kids",))
        assert watcher.call(watched, XID_SET_WATCHES).err == 0
        watcher.call(wire.GetDataRequest("/moves/data", False))  # the next reply
        assert sorted(watcher.events) == sorted([(EventType.NODE_DATA_CHANGED, "/moves/changed"),
                                                 (EventType.NODE_DELETED, "/moves/gone"),
                                                 (EventType.NODE_CREATED, "/moves/born")])
        # After the move: each watch kept fires once, however often its node changes.
        watcher.events.clear()
        for _ in range(2):
            writer.set("/moves/data", b"2")
            writer.create("/moves/kids/k", sequence=True)
        writer.create("/moves/later")
        for request in (wire.GetDataRequest("/moves/data", False),
                        wire.GetChildrenRequest("/moves/kids", False),
                        wire.ExistsRequest("/moves/later", False)):
            watcher.call(request)  # each answer waits for the events before it
        assert sorted(watcher.events) == sorted([
            (EventType.NODE_DATA_CHANGED, "/moves/data"),
            (EventType.NODE_CHILDREN_CHANGED, "/moves/kids"),
            (EventType.NODE_CREATED, "/moves/later")])
    finally:
        if watcher is not None:
            watcher.close()
        writer.stop()
        writer.close()


