"""A shard's partial tree and the coordinator of multi-shard operations, piece by piece (the
whole is checked against one ZkStateMachine in test_sharded_equivalence.py)."""

from __future__ import annotations

import msgspec
import pytest

from nodes.zk import requests as rq
from nodes.zk import results as rs
from nodes.zk.codes import CreateMode, Err
from nodes.zk.coordinate import TxnRun
from nodes.zk.shard_machine import (
    Decision,
    NodeState,
    NodeView,
    Put,
    Remove,
    ShardMachine,
    ViewReply,
    ViewRequest,
)
from nodes.zk.shards import plan, shard_of
from nodes.zk.tree import DataTree
from tests.unit.zk.sharded_sim import ShardedSim, tree_nodes

E = CreateMode.EPHEMERAL


def test_shards_start_with_the_fresh_tree_split_by_owner() -> None:
    for n in (1, 2, 3, 5):
        sim = ShardedSim(n)
        assert sim.nodes() == tree_nodes(DataTree())


def test_execute_refuses_an_operation_that_is_not_this_shards_alone() -> None:
    n = 4
    far = next(p for p in (f"/n{i}" for i in range(50)) if shard_of(p, n) != shard_of("/", n))
    shard = ShardMachine(shard_of(far, n), n)
    with pytest.raises(ValueError, match="touches shards"):
        shard.execute(rq.Txn(0, 1, rq.Create(far), 1))  # its parent lives elsewhere
    with pytest.raises(ValueError, match="touches shards"):
        shard.execute(rq.Txn(0, 1, rq.Ping(), 1))
    with pytest.raises(ValueError, match="not one of"):
        ShardMachine(4, 4)


def test_a_closed_session_creates_no_ephemerals_locally() -> None:
    shard = ShardMachine(0, 1)
    shard.decide(Decision([], [], [7]))
    assert shard.views(ViewRequest([], [7, 8], session=9)).closed == [7]
    refused = shard.execute(rq.Txn(7, 1, rq.Create("/e", mode=E), 1))
    assert refused.result == rs.ErrorResult(Err.SESSION_EXPIRED)
    multi = rq.Multi([rq.Create("/p"), rq.Create("/p/e", mode=E)])
    assert shard.execute(rq.Txn(7, 2, multi, 2)).result == rs.ErrorResult(Err.SESSION_EXPIRED)
    assert "/p" not in shard.tree
    done = shard.execute(rq.Txn(7, 3, rq.Create("/e"), 3))  # a persistent node is fine
    assert isinstance(done.result, rs.CreateResult)


def _drive(sim: ShardedSim, run: TxnRun) -> None:
    while wanted := run.wanted():
        for k, ask in wanted.items():
            run.feed(k, sim.shards[k].views(ask))


def test_a_closed_session_creates_no_ephemerals_through_a_coordinator() -> None:
    n = 3
    sim = ShardedSim(n)
    path = next(p for p in (f"/e{i}" for i in range(50)) if shard_of(p, n) != shard_of("/", n))
    for shard in sim.shards:
        shard.decide(Decision([], [], [7]))
    run = TxnRun(rq.Txn(7, 1, rq.Create(path, mode=E), 1), n)
    _drive(sim, run)
    outcome = run.outcome()
    assert outcome.result == rs.ErrorResult(Err.SESSION_EXPIRED)
    assert sorted(outcome.decisions) == list(plan(rq.Create(path), n).shards)
    assert all(not d.writes and not d.changes for d in outcome.decisions.values())


def test_views_show_owned_nodes_ephemerals_counts_and_closed_sessions() -> None:
    shard = ShardMachine(0, 1)
    for i, request in enumerate([rq.Create("/a"), rq.Create("/a/b"), rq.Create("/a/b/c"),
                                 rq.Create("/a/e", mode=E)], start=1):
        shard.execute(rq.Txn(5, i, request, i))
    reply = shard.views(ViewRequest(["/a", "/nope", "/a"], [5], "/a", 5))
    assert [v.path for v in reply.nodes] == ["/a", "/nope"]
    a = reply.nodes[0].node
    assert a is not None and a.children == ["b", "e"] and a.cversion == 2
    assert reply.nodes[1].node is None
    assert reply.ephemerals == ["/a/e"] and reply.count == 3 and reply.closed == []
    assert shard.views(ViewRequest([], count_under="/")).count == 3 + 4  # /zookeeper +2, mine
    assert shard.ephemerals_of(5) == ["/a/e"]


def test_decide_refuses_a_bad_decision_before_writing_anything() -> None:
    n = 3
    shard = ShardMachine(0, n)
    mine = next(p for p in (f"/m{i}" for i in range(50)) if shard_of(p, n) == 0)
    other = next(p for p in (f"/m{i}" for i in range(50)) if shard_of(p, n) != 0)
    node = NodeState(b"", list(rq.OPEN_ACL_UNSAFE), 1, 1, 1, 1, 0, 0, 0, 0, 1, [])
    before = tree_nodes(shard.tree)
    bad: list[tuple[list[Put | Remove], str]] = [
        ([Put(mine, node), Put(other, node)], "belongs to shard"),
        ([Put(mine, node), Remove(mine)], "twice"),
        ([Put(mine, msgspec.structs.replace(node, children=["b", "a"]))], "sorted"),
        ([Put(mine, msgspec.structs.replace(node, children=["a/b"]))], "plain names"),
        ([Put(mine, msgspec.structs.replace(node, ephemeral_owner=3, children=["a"]))],
         "ephemeral"),
    ]
    for writes, why in bad:
        with pytest.raises(ValueError, match=why):
            shard.decide(Decision(writes, [], [9]))
        assert tree_nodes(shard.tree) == before and not shard.closed
    shard.decide(Decision([Put(mine, msgspec.structs.replace(node, ephemeral_owner=3))],
                          [], [], 4))
    assert shard.ephemerals_of(3) == [mine] and shard.last_zxid == 4
    shard.decide(Decision([Remove(mine)], [], []))
    assert shard.ephemerals_of(3) == [] and mine not in shard.tree


def test_the_coordinator_checks_what_it_is_fed() -> None:
    n = 4
    txn = rq.Txn(0, 1, rq.Multi([rq.Create("/a"), rq.Create("/b"), rq.Create("/c")]), 1)
    run = TxnRun(txn, n)
    wanted = run.wanted()
    assert sorted(wanted) == list(plan(txn.request, n).shards)
    with pytest.raises(RuntimeError, match="views still wanted"):
        run.outcome()
    absent = next(k for k in range(n) if k not in wanted) if len(wanted) < n else None
    if absent is not None:
        with pytest.raises(ValueError, match="no view is awaited"):
            run.feed(absent, ViewReply([], [], 0, []))
    k = next(iter(wanted))
    asked = [NodeView(p, None) for p in wanted[k].paths]
    with pytest.raises(ValueError, match="not the nodes asked"):
        run.feed(k, ViewReply([*asked, NodeView("/elsewhere", None)], [], 0, []))
    if asked:
        with pytest.raises(ValueError, match="not the nodes asked"):
            run.feed(k, ViewReply(asked[1:], [], 0, []))
    foreign = next(p for p in (f"/f{i}" for i in range(50)) if shard_of(p, n) != k)
    with pytest.raises(ValueError, match="ephemerals it does not hold"):
        run.feed(k, ViewReply(asked, [foreign], 0, []))
    run.feed(k, ViewReply(asked, [], 0, []))
    assert k not in run.wanted()
    with pytest.raises(ValueError, match="needs its zxid"):
        TxnRun(rq.Txn(0, 1, rq.Create("/a")), n)
    with pytest.raises(ValueError, match="touches no shard"):
        TxnRun(rq.Txn(0, 1, rq.Ping(), 1), n)


def test_a_failed_multi_writes_nothing_but_releases_every_shard() -> None:
    n = 4
    sim = ShardedSim(n)
    txn = rq.Txn(0, 1, rq.Multi([rq.Create("/a"), rq.Create("/b"), rq.Delete("/nope")]), 1)
    run = TxnRun(txn, n)
    _drive(sim, run)
    outcome = run.outcome()
    assert isinstance(outcome.result, rs.MultiResult) and outcome.result.failed
    assert sorted(outcome.decisions) == list(plan(txn.request, n).shards)
    assert all(not d.writes and not d.changes for d in outcome.decisions.values())


def test_messages_are_validated_where_they_are_decoded() -> None:
    good = Decision([Remove("/a")], [], [3], 5)
    blob = msgspec.msgpack.encode(good)
    assert msgspec.msgpack.decode(blob, type=Decision) == good
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(msgspec.msgpack.encode(Decision([], [], [-1])), type=Decision)
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(msgspec.msgpack.encode(ViewReply([], [], -1, [])),
                               type=ViewReply)
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(msgspec.msgpack.encode(ViewRequest(["/a"], [-5])),
                               type=ViewRequest)
