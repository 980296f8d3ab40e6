"""The state machine's own rules: zxids and times from the log, the full Stat, sessions and
their expiry, the data limit, and what a multi does to the Stat of staged nodes."""

import msgspec
import pytest

from nodes.zk import requests as rq
from nodes.zk.codes import CreateMode, Err, EventType
from nodes.zk.machine import MAX_DATA_BYTES, Change, ZkStateMachine
from nodes.zk.results import (
    AclResult,
    ChildrenResult,
    CountResult,
    CreateResult,
    DataResult,
    MultiReadResult,
    MultiResult,
    OkResult,
    PathsResult,
    SessionResult,
    StatResult,
    TickResult,
    error_of,
)
from nodes.zk.stat import Stat


def open_session(m: ZkStateMachine, time_ms: int, timeout_ms: int = 10_000) -> int:
    r = m.apply(rq.Txn(0, time_ms, rq.CreateSession(timeout_ms))).result
    assert isinstance(r, SessionResult)
    return r.session


def stat(m: ZkStateMachine, path: str) -> Stat:
    s = m.stat(path)
    assert s is not None
    return s


def test_a_fresh_tree_looks_like_a_fresh_zookeeper_3_8():
    m = ZkStateMachine()
    # Born with children but no creates: ZooKeeper reports cversion 2 x 0 - children.
    assert stat(m, "/") == Stat(0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0)
    assert stat(m, "/zookeeper") == Stat(0, 0, 0, 0, 0, -2, 0, 0, 0, 2, 0)
    assert stat(m, "/zookeeper/quota") == Stat(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert stat(m, "/zookeeper/config") == Stat(0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0)
    assert sorted(m.tree.get("/zookeeper").children) == ["config", "quota"]
    assert m.last_zxid == 0


def test_create_fills_every_stat_field_from_the_entry():
    m = ZkStateMachine()
    s = open_session(m, 100)  # zxid 1
    applied = m.apply(rq.Txn(s, 5000, rq.Create("/a", b"abc", mode=CreateMode.EPHEMERAL)))
    assert applied.zxid == 2
    assert isinstance(applied.result, CreateResult)
    assert applied.result.stat == Stat(czxid=2, mzxid=2, ctime=5000, mtime=5000, version=0,
                                       cversion=0, aversion=0, ephemeralOwner=s, dataLength=3,
                                       numChildren=0, pzxid=2)
    root = stat(m, "/")
    assert (root.cversion, root.pzxid, root.numChildren) == (0, 2, 2)
    assert applied.changes == [Change(EventType.NODE_CREATED, "/a"),
                               Change(EventType.NODE_CHILDREN_CHANGED, "/")]


def test_set_data_moves_mzxid_and_mtime_but_not_czxid_or_ctime():
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 10, rq.Create("/a", b"x")))
    r = m.apply(rq.Txn(0, 20, rq.SetData("/a", b"yy", 0))).result
    assert isinstance(r, StatResult)
    assert (r.stat.czxid, r.stat.mzxid, r.stat.ctime, r.stat.mtime) == (1, 2, 10, 20)
    assert (r.stat.version, r.stat.dataLength) == (1, 2)


def test_a_child_delete_moves_the_parent_pzxid_and_cversion():
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 1, rq.Create("/p")))
    m.apply(rq.Txn(0, 2, rq.Create("/p/c")))
    before = stat(m, "/p")
    m.apply(rq.Txn(0, 3, rq.Delete("/p/c")))
    after = stat(m, "/p")
    assert (before.cversion, before.pzxid) == (1, 2)
    assert (after.cversion, after.pzxid, after.numChildren) == (2, 3, 0)
    # The parent's own data is untouched by child changes.
    assert (after.mzxid, after.version) == (before.mzxid, before.version)


def test_entry_time_never_goes_backwards_and_no_clock_is_read():
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 500, rq.Create("/a")))
    m.apply(rq.Txn(0, 400, rq.Create("/b")))  # a new leader with a clock behind the old one
    assert stat(m, "/b").ctime == 500


def test_writes_take_zxids_from_the_entry_or_the_next_one_and_reads_take_none():
    m = ZkStateMachine()
    assert m.apply(rq.Txn(0, 1, rq.Create("/a"), zxid=10)).zxid == 10
    assert m.apply(rq.Txn(0, 1, rq.GetData("/a"))).zxid == 10
    assert m.apply(rq.Txn(0, 1, rq.Create("/a"))).zxid == 11  # a failed write still takes a zxid
    assert m.apply(rq.Txn(0, 1, rq.Create("/b"))).zxid == 12
    with pytest.raises(ValueError):
        m.apply(rq.Txn(0, 1, rq.Create("/c"), zxid=12))


def test_data_over_the_limit_is_refused_with_bad_arguments():
    m = ZkStateMachine()
    at_limit = b"\0" * MAX_DATA_BYTES
    assert MAX_DATA_BYTES == 1024 * 1024
    assert isinstance(m.apply(rq.Txn(0, 1, rq.Create("/a", at_limit))).result, CreateResult)
    over = at_limit + b"\0"
    for request in (rq.Create("/b", over), rq.SetData("/a", over)):
        assert error_of(m.apply(rq.Txn(0, 1, request)).result) == Err.BAD_ARGUMENTS
    assert "/b" not in m.tree
    assert stat(m, "/a").version == 0


def test_the_data_limit_is_configurable():
    m = ZkStateMachine(max_data_bytes=4)
    assert error_of(m.apply(rq.Txn(0, 1, rq.Create("/a", b"12345"))).result) == Err.BAD_ARGUMENTS
    assert error_of(m.apply(rq.Txn(0, 1, rq.Create("/a", b"1234"))).result) == Err.OK


def test_container_and_ttl_nodes_are_unimplemented():
    m = ZkStateMachine()
    for mode in (CreateMode.CONTAINER, CreateMode.PERSISTENT_WITH_TTL,
                 CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL):
        r = m.apply(rq.Txn(0, 1, rq.Create("/c", mode=mode, ttl=1000))).result
        assert error_of(r) == Err.UNIMPLEMENTED
    assert "/c" not in m.tree


def test_an_empty_acl_is_invalid_and_set_acl_checks_the_aversion():
    m = ZkStateMachine()
    assert error_of(m.apply(rq.Txn(0, 1, rq.Create("/a", acl=[]))).result) == Err.INVALID_ACL
    m.apply(rq.Txn(0, 1, rq.Create("/a")))
    readonly = [rq.Acl(1, "world", "anyone")]
    assert error_of(m.apply(rq.Txn(0, 1, rq.SetAcl("/a", readonly, 3))).result) == Err.BAD_VERSION
    r = m.apply(rq.Txn(0, 1, rq.SetAcl("/a", readonly, 0))).result
    assert isinstance(r, StatResult) and r.stat.aversion == 1
    got = m.apply(rq.Txn(0, 1, rq.GetAcl("/a"))).result
    assert isinstance(got, AclResult) and got.acl == readonly and got.stat.aversion == 1


def test_the_system_session_cannot_own_ephemerals_or_close():
    m = ZkStateMachine()
    r = m.apply(rq.Txn(0, 1, rq.Create("/e", mode=CreateMode.EPHEMERAL))).result
    assert error_of(r) == Err.BAD_ARGUMENTS
    assert error_of(m.apply(rq.Txn(0, 1, rq.CloseSession())).result) == Err.BAD_ARGUMENTS


# ----- sessions


def test_session_timeouts_are_clamped_to_2_and_20_ticks():
    m = ZkStateMachine(tick_ms=1000)
    got = []
    for asked in (10, 5000, 60_000):
        r = m.apply(rq.Txn(0, 1, rq.CreateSession(asked))).result
        assert isinstance(r, SessionResult)
        got.append(r.timeout_ms)
    assert got == [2000, 5000, 20_000]


def test_session_ids_and_passwords_are_derived_from_the_entry_alike_on_every_replica():
    a, b = ZkStateMachine(), ZkStateMachine()
    ra = [a.apply(rq.Txn(0, 77, rq.CreateSession(9000))).result for _ in range(3)]
    rb = [b.apply(rq.Txn(0, 77, rq.CreateSession(9000))).result for _ in range(3)]
    assert ra == rb
    ids = [r.session for r in ra if isinstance(r, SessionResult)]
    assert len(set(ids)) == 3 and all(i > 0 for i in ids)
    assert all(isinstance(r, SessionResult) and len(r.password) == 16 for r in ra)
    first = ra[0]
    assert isinstance(first, SessionResult)
    assert a.sessions.verify(first.session, first.password)
    assert not a.sessions.verify(first.session, b"\0" * 16)


def test_requests_of_an_unknown_or_closed_session_answer_session_expired():
    m = ZkStateMachine()
    s = open_session(m, 1)
    assert isinstance(m.apply(rq.Txn(s, 2, rq.CloseSession())).result, OkResult)
    for request in (rq.Create("/a"), rq.GetData("/"), rq.Ping(), rq.CloseSession()):
        assert error_of(m.apply(rq.Txn(s, 3, request)).result) == Err.SESSION_EXPIRED
    assert error_of(m.apply(rq.Txn(12345, 3, rq.Exists("/"))).result) == Err.SESSION_EXPIRED
    assert "/a" not in m.tree


def test_a_tick_expires_silent_sessions_and_deletes_their_ephemerals():
    m = ZkStateMachine(tick_ms=1000)
    quiet = open_session(m, 0, timeout_ms=4000)
    busy = open_session(m, 0, timeout_ms=4000)
    m.apply(rq.Txn(0, 0, rq.Create("/p")))
    m.apply(rq.Txn(quiet, 0, rq.Create("/p/q", mode=CreateMode.EPHEMERAL)))
    m.apply(rq.Txn(quiet, 0, rq.Create("/p/s", mode=CreateMode.EPHEMERAL_SEQUENTIAL)))
    m.apply(rq.Txn(busy, 0, rq.Create("/p/b", mode=CreateMode.EPHEMERAL)))
    m.apply(rq.Txn(busy, 3000, rq.Ping()))
    nothing = m.apply(rq.Txn(0, 4000, rq.Tick()))  # exactly the timeout: not yet
    assert nothing.result == TickResult([]) and nothing.zxid == m.last_zxid == 6
    applied = m.apply(rq.Txn(0, 4001, rq.Tick()))
    assert applied.result == TickResult([quiet])
    assert applied.closed_sessions == [quiet]
    assert sorted(m.tree.get("/p").children) == ["b"]
    p = stat(m, "/p")
    assert p.pzxid == applied.zxid == 7 and p.cversion == 5
    assert Change(EventType.NODE_DELETED, "/p/q") in applied.changes
    assert quiet not in m.sessions and m.tree.ephemerals_of(quiet) == []
    later = m.apply(rq.Txn(0, 7001, rq.Tick()))
    assert later.result == TickResult([busy]) and "/p/b" not in m.tree


def test_every_request_of_a_session_keeps_it_alive():
    m = ZkStateMachine(tick_ms=1000)
    s = open_session(m, 0, timeout_ms=2000)
    for t in range(1000, 10_000, 1000):
        m.apply(rq.Txn(s, t, rq.Exists("/")))
        assert m.apply(rq.Txn(0, t, rq.Tick())).result == TickResult([])
    assert m.apply(rq.Txn(0, 12_000, rq.Tick())).result == TickResult([s])


# ----- multi


def test_a_multi_takes_one_zxid_and_every_op_sees_the_staged_stat():
    m = ZkStateMachine()
    applied = m.apply(rq.Txn(0, 5, rq.Multi([rq.Create("/a", b"1"), rq.SetData("/a", b"22", 0),
                                       rq.Create("/a/b")])))
    r = applied.result
    assert isinstance(r, MultiResult) and not r.failed
    assert applied.zxid == 1
    a = stat(m, "/a")
    assert (a.czxid, a.mzxid, a.pzxid, a.version, a.cversion, a.dataLength) == (1, 1, 1, 1, 1, 2)


def test_a_failed_multi_leaves_no_trace_but_its_zxid():
    m = ZkStateMachine()
    s = open_session(m, 1)
    m.apply(rq.Txn(0, 1, rq.Create("/p", b"keep")))
    tree_before = {p: n.stat() for p, n in m.tree.items()}
    r = m.apply(rq.Txn(s, 2, rq.Multi([
        rq.Create("/p/e", mode=CreateMode.EPHEMERAL), rq.SetData("/p", b"gone"), rq.Delete("/p/e"),
        rq.Create("/p/x"), rq.Delete("/p", 5),
    ])))
    assert isinstance(r.result, MultiResult)
    assert [error_of(x) for x in r.result.results] == [Err.OK] * 4 + [Err.BAD_VERSION]
    assert r.changes == [] and r.zxid == 3
    assert {p: n.stat() for p, n in m.tree.items()} == tree_before
    assert m.tree.get("/p").data == b"keep"
    assert m.tree.ephemerals_of(s) == []
    ops = [rq.Create("/p/f", mode=CreateMode.EPHEMERAL), rq.Create("/p")]
    r = m.apply(rq.Txn(s, 3, rq.Multi(ops)))
    assert isinstance(r.result, MultiResult) and r.result.failed
    assert m.tree.ephemerals_of(s) == [] and m.tree.ephemerals == {}


def test_a_rolled_back_multi_restores_the_ephemeral_index():
    m = ZkStateMachine()
    s = open_session(m, 1)
    m.apply(rq.Txn(s, 1, rq.Create("/e", mode=CreateMode.EPHEMERAL)))
    r = m.apply(rq.Txn(s, 2, rq.Multi([rq.Delete("/e"), rq.Create("/nope/x")]))).result
    assert isinstance(r, MultiResult) and r.failed
    assert m.tree.ephemerals_of(s) == ["/e"]
    m.apply(rq.Txn(s, 3, rq.CloseSession()))
    assert "/e" not in m.tree


def test_results_and_requests_round_trip_through_msgpack():
    from nodes.zk.requests import Request
    from nodes.zk.results import Result

    m = ZkStateMachine()
    for request in (rq.Create("/a", b"x", mode=CreateMode.PERSISTENT_SEQUENTIAL),
                    rq.Multi([rq.Create("/b"), rq.Delete("/b", 0)]), rq.Exists("/zz", True)):
        txn = rq.Txn(0, 9, request)
        blob = msgspec.msgpack.encode(txn)
        assert msgspec.msgpack.decode(blob, type=rq.Txn) == txn
        result = m.apply(txn).result
        back = msgspec.msgpack.decode(msgspec.msgpack.encode(result), type=Result)
        assert back == result
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(rq.Ping()), type=Request) == rq.Ping()


def test_a_malformed_request_is_refused_by_the_decoder():
    bad = msgspec.msgpack.encode([0, 1, ["Create", "/a", b"", [], 99, 0], 0])  # mode 99
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(bad, type=rq.Txn)


def test_counters_wrap_like_java_ints_and_the_sequential_suffix_follows():
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 1, rq.Create("/q")))
    q = m.tree.get("/q")
    assert q is not None
    q.cversion = q.version = 2**31 - 1
    r = m.apply(rq.Txn(0, 2, rq.Create("/q/n", mode=CreateMode.PERSISTENT_SEQUENTIAL))).result
    assert isinstance(r, CreateResult) and r.path == "/q/n2147483647"
    r = m.apply(rq.Txn(0, 3, rq.Create("/q/n", mode=CreateMode.PERSISTENT_SEQUENTIAL))).result
    assert isinstance(r, CreateResult) and r.path == "/q/n-2147483648"
    assert m.tree.get("/q").cversion == -(2**31) + 1
    r = m.apply(rq.Txn(0, 4, rq.SetData("/q", b"", 2**31 - 1))).result
    assert isinstance(r, StatResult) and r.stat.version == -(2**31)


def test_multi_read_answers_each_read_on_its_own_and_leaves_no_watch():
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 1, rq.Create("/a", b"x")))
    m.apply(rq.Txn(0, 1, rq.Create("/a/b")))
    applied = m.apply(rq.Txn(0, 2, rq.MultiRead([rq.GetData("/a", True), rq.GetData("/nope"),
                                           rq.GetChildren("/a"), rq.GetChildren("/a/")])))
    r = applied.result
    assert isinstance(r, MultiReadResult)
    assert [error_of(x) for x in r.results] == [Err.OK, Err.NO_NODE, Err.OK, Err.NO_NODE]
    assert isinstance(r.results[0], DataResult) and r.results[0].data == b"x"
    assert isinstance(r.results[2], ChildrenResult) and r.results[2].children == ["b"]
    assert applied.zxid == 2 and applied.changes == []


def test_get_ephemerals_lists_the_session_own_ephemerals_by_prefix():
    m = ZkStateMachine()
    s, other = open_session(m, 1), open_session(m, 1)
    m.apply(rq.Txn(0, 1, rq.Create("/a")))
    m.apply(rq.Txn(s, 2, rq.Create("/a/x", mode=CreateMode.EPHEMERAL)))
    m.apply(rq.Txn(s, 2, rq.Create("/e1", mode=CreateMode.EPHEMERAL)))
    m.apply(rq.Txn(other, 2, rq.Create("/a/y", mode=CreateMode.EPHEMERAL)))
    assert m.apply(rq.Txn(s, 3, rq.GetEphemerals("/"))).result == PathsResult(["/a/x", "/e1"])
    assert m.apply(rq.Txn(s, 3, rq.GetEphemerals(""))).result == PathsResult(["/a/x", "/e1"])
    assert m.apply(rq.Txn(s, 3, rq.GetEphemerals("/a"))).result == PathsResult(["/a/x"])
    assert m.apply(rq.Txn(0, 3, rq.GetEphemerals("/"))).result == PathsResult([])


def test_get_all_children_number_counts_every_depth():
    m = ZkStateMachine()
    for path in ("/a", "/a/b", "/a/b/c", "/a/d", "/e"):
        m.apply(rq.Txn(0, 1, rq.Create(path)))
    count = {p: m.apply(rq.Txn(0, 2, rq.GetAllChildrenNumber(p))).result for p in ("/", "/a", "/e")}
    # The root counts ZooKeeper's own three nodes too, as ZooKeeper does.
    assert count == {"/": CountResult(8), "/a": CountResult(3), "/e": CountResult(0)}
    assert error_of(m.apply(rq.Txn(0, 2, rq.GetAllChildrenNumber("/x"))).result) == Err.NO_NODE


def test_a_ping_is_answered_ok():
    m = ZkStateMachine()
    s = open_session(m, 1)
    applied = m.apply(rq.Txn(s, 2, rq.Ping()))
    assert applied.result == OkResult() and applied.zxid == 1 and applied.changes == []


def test_a_zxid_that_does_not_follow_is_refused_and_named():
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 1, rq.Create("/a"), zxid=12))
    with pytest.raises(ValueError, match="^zxid 12 does not follow 12$"):
        m.apply(rq.Txn(0, 1, rq.Create("/b"), zxid=12))
    assert "/b" not in m.tree and m.last_zxid == 12


def test_set_acl_refuses_an_empty_acl():
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 1, rq.Create("/a")))
    assert error_of(m.apply(rq.Txn(0, 1, rq.SetAcl("/a", []))).result) == Err.INVALID_ACL
    assert stat(m, "/a").aversion == 0


def test_a_null_character_in_a_path_is_a_bad_argument():
    # Before anything else is looked at: a read or a create under a missing parent would
    # otherwise answer NoNode.
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 1, rq.Create("/a")))
    for request in (rq.GetData("/a\x00"), rq.Exists("/a\x00"), rq.GetChildren("/a\x00"),
                    rq.Create("/missing/b\x00"), rq.Delete("/a\x00"),
                    rq.AddWatch("/a\x00")):
        assert error_of(m.apply(rq.Txn(0, 2, request)).result) == Err.BAD_ARGUMENTS, request
    assert m.apply(rq.Txn(0, 2, rq.AddWatch("/not/yet"))).result == OkResult()


def test_a_local_read_answers_from_the_tree_and_changes_nothing():
    m = ZkStateMachine()
    s = open_session(m, 1)
    m.apply(rq.Txn(s, 2, rq.Create("/e", b"v", mode=CreateMode.EPHEMERAL)))
    open_session(m, 50)  # the clock moves on: a read must not touch `s` with it
    before = (m.last_zxid, msgspec.to_builtins(m.sessions.sessions))
    applied = m.read(s, rq.GetData("/e"))
    assert isinstance(applied.result, DataResult) and applied.result.data == b"v"
    assert (applied.changes, applied.closed_sessions, applied.zxid) == ([], [], 3)
    assert m.read(s, rq.GetEphemerals()).result == PathsResult(["/e"])  # its own session's
    assert error_of(m.read(s, rq.GetData("/nope")).result) == Err.NO_NODE
    assert (m.last_zxid, msgspec.to_builtins(m.sessions.sessions)) == before


@pytest.mark.parametrize("request_", [rq.Create("/a"), rq.SetData("/a", b""), rq.Ping(),
                                      rq.Sync("/"), rq.CloseSession()])
def test_a_local_read_refuses_what_must_go_through_the_log(request_):
    m = ZkStateMachine()
    with pytest.raises(ValueError, match=f"^{type(request_).__name__} must go through the log$"):
        m.read(0, request_)
    assert "/a" not in m.tree and m.last_zxid == 0
