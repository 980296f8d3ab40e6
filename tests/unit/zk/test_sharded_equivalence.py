"""Sharding changes nothing a client can see: the same log entries (same zxids, same times)
give the same results, Stats included, and the same tree on N shards as on one
ZkStateMachine; every change fires at the shard owning its path."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes.zk import requests as rq
from nodes.zk import results as rs
from nodes.zk.codes import AddWatchMode, CreateMode, Err
from nodes.zk.machine import Applied, ZkStateMachine
from nodes.zk.shards import shard_of
from nodes.zk.stat import Stat
from tests.unit.zk.sharded_sim import ShardedSim, tree_nodes
from tests.unit.zk.tree_driver import TreeDriver
from tests.zk_semantics import CASES, Case, run_case

SHARD_COUNTS = [1, 2, 3, 4]


class Lockstep:
    """One ZkStateMachine and one ShardedSim fed the same entries, compared after each."""

    def __init__(self, nshards: int) -> None:
        self.single = ZkStateMachine()
        self.sim = ShardedSim(nshards)
        self.zxid = 0
        self.clock = 1_000_000

    def entry(self, session: int, request: rq.Request, *, advance_ms: int = 1) -> Applied:
        self.clock += advance_ms
        self.zxid += 1
        txn = rq.Txn(session, self.clock, request, self.zxid)
        one = self.single.apply(txn)
        many = self.sim.apply(txn)
        assert many.result == one.result, f"{request!r}: {many.result!r} != {one.result!r}"
        assert Counter(many.changes) == Counter(one.changes), request
        assert many.closed_sessions == one.closed_sessions, request
        return many

    def check_state(self) -> None:
        assert self.sim.nodes() == tree_nodes(self.single.tree)
        assert self.sim.ephemerals() == self.single.tree.ephemerals
        for k, fired in enumerate(self.sim.fired):
            assert all(shard_of(c.path, self.sim.nshards) == k for c in fired)


class LockstepDriver(TreeDriver):
    """The semantics suite's driver over the lockstep pair: each case's expectations are
    checked against the sharded service, which must also agree with the single machine."""

    def __init__(self, nshards: int) -> None:
        super().__init__()
        self.pair = Lockstep(nshards)

    def entry(self, session: int, request: rq.Request) -> rs.Result:
        applied = self.pair.entry(session, request)
        txn = rq.Txn(session, self.pair.clock, request, self.pair.zxid)
        for n in self.watches.after_apply(txn, applied):
            self.inbox[n.session].append((n.type, n.path))
        return applied.result


@pytest.mark.parametrize("nshards", SHARD_COUNTS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_semantics_cases_agree_with_one_machine(case: Case, nshards: int) -> None:
    driver = LockstepDriver(nshards)
    run_case(driver, case.steps)
    driver.pair.check_state()
    if nshards > 1 and driver.pair.sim.coordinated == 0:
        pytest.skip("every op of this case ran at one shard")


# ----- random logs over a few paths, so that parents, children and names collide

NAMES = ["a", "b", "s"]
PATHS = ["/a", "/b", "/a/b", "/a/s", "/b/a", "/a/b/s", "/s", "/a/s0000000000",
         "/a/s0000000001", "/s/a", "/a/", "/a//b", "a", "/a/."]
MODES = list(CreateMode)[:4]
SESSIONS = ["x", "y", "z"]

paths_ = st.sampled_from(PATHS)
versions = st.sampled_from([-1, 0, 1, 2])
data = st.sampled_from([b"", b"d", b"data"])
creates = st.builds(lambda p, d, m: rq.Create(p, d, mode=m), paths_, data, st.sampled_from(MODES))
deletes = st.builds(rq.Delete, paths_, versions)
sets = st.builds(rq.SetData, paths_, data, versions)
checks = st.builds(rq.Check, paths_, versions)
multi_ops = st.one_of(creates, deletes, sets, checks)
multis = st.builds(rq.Multi, st.lists(multi_ops, max_size=4))
reads = st.one_of(
    st.builds(rq.GetData, paths_), st.builds(rq.Exists, paths_),
    st.builds(rq.GetChildren, paths_), st.builds(rq.GetAcl, paths_),
    st.builds(rq.GetAllChildrenNumber, st.sampled_from(["/", "/a", "/b", "/nope", "/a/"])),
    st.builds(rq.GetEphemerals, st.sampled_from(["/", "/a", "/s"])),
    checks, st.builds(rq.Sync, paths_),
    st.builds(rq.AddWatch, paths_, st.sampled_from(list(AddWatchMode))),
    st.builds(rq.MultiRead, st.lists(st.one_of(st.builds(rq.GetData, paths_),
                                               st.builds(rq.GetChildren, paths_)),
                                     max_size=3)),
)
set_acls = st.builds(rq.SetAcl, paths_, st.just(list(rq.OPEN_ACL_UNSAFE)), versions)
# Weighted by hand (one_of would flatten `reads` into many branches and mostly read).
tree_ops = st.sampled_from([creates] * 5 + [deletes] * 2 + [sets] * 2 + [multis] * 3
                           + [reads, set_acls]).flatmap(lambda ops: ops)
kinds = st.sampled_from(["op"] * 8 + ["close", "expire", "tick"])  # mostly tree ops: the tree grows
steps = st.tuples(kinds, st.sampled_from(SESSIONS), tree_ops)


def run_log(nshards: int, log: Sequence[tuple[str, str, Any]]) -> None:
    pair = Lockstep(nshards)
    ids: dict[str, int] = {}

    def session(name: str) -> int:
        if name not in ids:
            opened = pair.entry(0, rq.CreateSession(4000)).result
            assert isinstance(opened, rs.SessionResult)
            ids[name] = opened.session
        return ids[name]

    for top in ("/a", "/b", "/s"):  # a few parents to start from (hypothesis may delete them)
        pair.entry(0, rq.Create(top))
    for kind, name, request in log:
        if kind == "op":
            pair.entry(session(name), request)
        elif kind == "tick":
            pair.entry(0, rq.Tick())  # nobody silent long enough: expires nobody
        elif kind == "close":
            pair.entry(session(name), rq.CloseSession())
            ids.pop(name)
        else:
            # Everyone else speaks, then the clock jumps past the timeout: `name` alone
            # expires at the tick (through every shard, as a close does).
            session(name)
            for other in SESSIONS:
                if other != name and other in ids:
                    pair.entry(ids[other], rq.Ping())
            pair.entry(0, rq.Tick(), advance_ms=4002 - len(ids))
            ids = {n: s for n, s in ids.items() if s in pair.sim.sessions}
        pair.check_state()


@pytest.mark.parametrize("nshards", SHARD_COUNTS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=st.lists(steps, max_size=40))
def test_random_logs_agree_with_one_machine(nshards: int, log: list) -> None:
    run_log(nshards, log)


def _apart(nshards: int) -> str:
    """A parent whose sequential children live on another shard than it."""
    return next(p for p in (f"/p{i}" for i in range(100))
                if shard_of(p, nshards) != shard_of(p + "/s0000000000", nshards))


@pytest.mark.parametrize("nshards", [2, 3, 4])
def test_a_sequential_name_collides_with_a_child_on_another_shard(nshards: int) -> None:
    # The name is fixed by the parent's cversion at the coordinator; only the parent's
    # children set says that it is taken.
    parent = _apart(nshards)
    pair = Lockstep(nshards)
    pair.entry(0, rq.Create(parent))
    pair.entry(0, rq.Create(parent + "/s0000000001"))
    made = pair.entry(0, rq.Create(parent + "/s", mode=CreateMode.PERSISTENT_SEQUENTIAL))
    assert made.result == rs.ErrorResult(Err.NODE_EXISTS)
    multi = rq.Multi([rq.Create(parent + "/x"),
                      rq.Create(parent + "/s", mode=CreateMode.PERSISTENT_SEQUENTIAL)])
    assert pair.entry(0, multi).result == rs.MultiResult([rs.CreateResult(
        parent + "/x", made_stat(pair, parent + "/x")), rs.CreateResult(
        parent + "/s0000000002", made_stat(pair, parent + "/s0000000002"))])
    assert pair.sim.coordinated >= 3
    pair.check_state()


def made_stat(pair: Lockstep, path: str) -> Stat:
    stat = pair.single.stat(path)
    assert stat is not None
    return stat
