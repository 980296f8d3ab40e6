"""Determinism and snapshots: replicas fed the same log hold byte-identical snapshots; a
restored snapshot continues exactly like the original; a bad snapshot is refused with a
SnapshotError before any state is built."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.zk import paths
from nodes.zk import requests as rq
from nodes.zk.codes import AddWatchMode, CreateMode
from nodes.zk.machine import ZkStateMachine
from nodes.zk.results import SessionResult
from nodes.zk.snapshot import Snapshot, SnapshotError, restore, take
from nodes.zk.watches import WatchTable

PATHS = ["/a", "/a/b", "/a/b/c", "/b", "/b/x", "/a/", "/q", "/q/", "/q/n0000000001"]
MODES = [CreateMode.PERSISTENT, CreateMode.EPHEMERAL, CreateMode.PERSISTENT_SEQUENTIAL,
         CreateMode.EPHEMERAL_SEQUENTIAL]

path = st.sampled_from(PATHS)
version = st.sampled_from([-1, 0, 1, 2])
data = st.binary(max_size=4)
write_op = st.one_of(
    st.builds(lambda p, d, m: rq.Create(p, d, mode=m), path, data, st.sampled_from(MODES)),
    st.builds(rq.Delete, path, version),
    st.builds(rq.SetData, path, data, version),
    st.builds(rq.Check, path, version),
)
request = st.one_of(
    write_op,
    st.builds(rq.Multi, st.lists(write_op, max_size=4)),
    st.builds(rq.GetData, path, st.booleans()),
    st.builds(rq.Exists, path, st.booleans()),
    st.builds(rq.GetChildren, path, st.booleans()),
    st.builds(rq.AddWatch, path, st.sampled_from(list(AddWatchMode))),
    st.builds(rq.MultiRead, st.lists(st.builds(rq.GetData, path) | st.builds(rq.GetChildren, path),
                                     max_size=3)),
    st.builds(rq.GetEphemerals, path), st.builds(rq.GetAllChildrenNumber, path),
    st.just(rq.Ping()), st.just(rq.CloseSession()), st.just(rq.Tick()),
    st.builds(rq.CreateSession, st.integers(0, 60_000)),
)
# (which session speaks: 0 the system, k the k-th session opened; time step; request)
program = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 8000), request), max_size=40)


def run(program: list[tuple[int, int, Any]]) -> tuple[ZkStateMachine, list[rq.Txn], list[Any]]:
    """Apply a program to a fresh machine, checking the tree's invariants after each entry."""
    m, w = ZkStateMachine(tick_ms=1000), WatchTable()
    opened: list[int] = []
    log, outputs, now = [], [], 0
    for who, step, req in program:
        now += step
        session = opened[who - 1] if 0 < who <= len(opened) else 0
        txn = rq.Txn(session, now, req)
        applied = m.apply(txn)
        if isinstance(applied.result, SessionResult):
            opened.append(applied.result.session)
        log.append(txn)
        outputs.append((applied, w.after_apply(txn, applied)))
        check_invariants(m)
    return m, log, outputs


def check_invariants(m: ZkStateMachine) -> None:
    nodes = dict(m.tree.items())
    for p, node in nodes.items():
        kids = {paths.name(q) for q in nodes if q != "/" and paths.parent(q) == p}
        assert node.children == kids, p
        if node.ephemeral_owner:
            assert node.ephemeral_owner in m.sessions, p
            assert not node.children, p
            assert p in m.tree.ephemerals_of(node.ephemeral_owner)
        assert max(node.czxid, node.mzxid, node.pzxid) <= m.last_zxid
    indexed = {p for owner in m.tree.ephemerals for p in m.tree.ephemerals_of(owner)}
    assert indexed == {p for p, n in nodes.items() if n.ephemeral_owner}


@settings(max_examples=150, deadline=None)
@given(program)
def test_replicas_fed_the_same_log_agree_byte_for_byte(prog):
    first, log, outputs = run(prog)
    second, w = ZkStateMachine(tick_ms=1000), WatchTable()
    for txn, (applied, notes) in zip(log, outputs, strict=True):
        again = second.apply(txn)
        assert again == applied
        assert w.after_apply(txn, again) == notes
    assert take(first) == take(second)


@settings(max_examples=100, deadline=None)
@given(program, program)
def test_a_restored_snapshot_continues_like_the_original(head, tail):
    original, log, _ = run(head)
    copy = restore(take(original))
    assert take(copy) == take(original)
    assert dict((p, n.stat()) for p, n in copy.tree.items()) == dict(
        (p, n.stat()) for p, n in original.tree.items())
    t = original.now_ms
    for who, step, req in tail:
        t += step
        sessions = sorted(original.sessions.sessions)
        session = sessions[who - 1] if 0 < who <= len(sessions) else 0
        txn = rq.Txn(session, t, req)
        assert copy.apply(txn) == original.apply(txn)
    assert take(copy) == take(original)


def test_the_same_tree_gives_the_same_bytes_whatever_the_insertion_order():
    a, b = ZkStateMachine(), ZkStateMachine()
    for name in ("/x", "/y", "/z"):
        a.apply(rq.Txn(0, 1, rq.Create(name)))
    for name in ("/z", "/y", "/x"):
        b.apply(rq.Txn(0, 1, rq.Create(name)))
    for m in (a, b):  # make the stats equal: delete and recreate in one order
        for name in ("/x", "/y", "/z"):
            m.apply(rq.Txn(0, 1, rq.Delete(name)))
        for name in ("/x", "/y", "/z"):
            m.apply(rq.Txn(0, 1, rq.Create(name)))
    assert take(a) == take(b)


def good_snapshot() -> Snapshot:
    m = ZkStateMachine()
    opened = m.apply(rq.Txn(0, 10, rq.CreateSession(5000))).result
    assert isinstance(opened, SessionResult)
    m.apply(rq.Txn(0, 11, rq.Create("/p", b"data")))
    m.apply(rq.Txn(opened.session, 12, rq.Create("/p/e", mode=CreateMode.EPHEMERAL)))
    return msgspec.msgpack.decode(take(m), type=Snapshot)


def corrupt(**changes: Any) -> bytes:
    return msgspec.msgpack.encode(msgspec.structs.replace(good_snapshot(), **changes))


def test_a_good_snapshot_restores_sessions_ephemerals_and_limits():
    m = restore(msgspec.msgpack.encode(good_snapshot()))
    (sid,) = m.sessions.sessions
    assert m.tree.ephemerals_of(sid) == ["/p/e"]
    assert m.tree.get("/p").data == b"data"
    assert m.last_zxid == 3 and m.now_ms == 12
    m.apply(rq.Txn(sid, 13, rq.CloseSession()))
    assert "/p/e" not in m.tree and m.stat("/p").pzxid == 4


def _nodes(**by_path: dict[str, Any]) -> list[Any]:
    out = []
    for n in good_snapshot().nodes:
        out.append(msgspec.structs.replace(n, **by_path.get(n.path, {})))
    return out


@pytest.mark.parametrize("blob", [
    b"", b"\x00", b"garbage", msgspec.msgpack.encode([1, 2, 3]),
    msgspec.msgpack.encode({"format": 1}),
])
def test_unreadable_snapshots_are_refused(blob):
    with pytest.raises(SnapshotError):
        restore(blob)


def test_snapshots_that_break_the_tree_invariants_are_refused():
    snap = good_snapshot()
    sid = snap.sessions[0].id
    bad = [
        corrupt(format=2),
        corrupt(tick_ms=0),
        corrupt(sessions=[]),  # /p/e owned by an unknown session
        corrupt(sessions=snap.sessions * 2),
        corrupt(nodes=list(reversed(snap.nodes))),
        corrupt(nodes=[n for n in snap.nodes if n.path != "/p"]),  # /p/e has no parent
        corrupt(nodes=[n for n in snap.nodes if n.path != "/zookeeper"]),
        corrupt(nodes=_nodes(**{"/p": {"ephemeral_owner": sid}})),  # ephemeral parent
        corrupt(nodes=_nodes(**{"/p": {"path": "/p/"}})),
        corrupt(nodes=_nodes(**{"/p": {"mzxid": 99}})),
        corrupt(max_data_bytes=2),
        corrupt(sessions=[msgspec.structs.replace(snap.sessions[0], password=b"short")]),
    ]
    for i, blob in enumerate(bad):
        with pytest.raises(SnapshotError):
            restore(blob)
            pytest.fail(f"corruption {i} restored")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_restore_into_a_broken_tree(blob):
    try:
        m = restore(blob)
    except SnapshotError:
        return
    check_invariants(m)
