"""ZK-Mason live: `masonctl serve --system zkmason` starts a sequencer, one proxy group of
three and 1, 2 or 4 shards of three replicas, and unmodified kazoo talks ZooKeeper's
protocol to the proxies.

The same checks as RSMKeeper's (tests/integration/test_rsmkeeper.py), run against every
shard count: the whole semantics suite, kazoo's recipes, ephemerals going with a closed
and with an expired session, one-shot watches, zkCli; then what only sharding has: every
shard replica executed every number of its space once, in order, with the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.integration.test_rsmkeeper as rsm
from analysis.zkshards import check_run
from benchmarks.serving import served
from nodes.zk.shards import shard_of
from tests.conftest import our_processes
from tests.zk_semantics import CASES, Case

pytest.importorskip("kazoo")

SHARDS = (1, 2, 4)


@pytest.fixture(scope="module", params=SHARDS, ids=[f"{n}shards" for n in SHARDS])
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[rsm.Served]:
    nshards = request.param
    root = tmp_path_factory.mktemp(f"zkmason{nshards}")
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
