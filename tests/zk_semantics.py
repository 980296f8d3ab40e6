"""ZooKeeper's semantics as data: cases of steps (session, operation, expected outcome) that
any driver can run, the I/O-free tree (tests/unit/zk/test_semantics.py) as well as a live
server through kazoo. A driver implements the operations of `Driver` and returns either the
value or ZooKeeper's error code; `run_case` checks every step.

Expected outcomes: an `Err` (that error), `OK` (any success), `St(...)` (a Stat whose named
fields have these values; `Owner("a")` stands for session a's id), a path, a list of child
names, a tuple (data, St) for get and (children, St) for children, and for a multi the list
of per-op outcomes (on failure the list of codes: OK before the failing op, its code,
RUNTIME_INCONSISTENCY after it). zxids and times differ between servers, so cases compare
them only through other checks, never with fixed numbers.

A live driver runs each case on an emptied tree (only /zookeeper left) and counts server
notifications, not client callbacks (kazoo calls a function registered as both data and
child watcher twice for one NodeDeleted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nodes.zk.codes import AddWatchMode, CreateMode, Err, EventType

OK = object()  # any success
P, E, PS, ES = (CreateMode.PERSISTENT, CreateMode.EPHEMERAL, CreateMode.PERSISTENT_SEQUENTIAL,
                CreateMode.EPHEMERAL_SEQUENTIAL)
CREATED, DELETED, CHANGED, CHILD = (EventType.NODE_CREATED, EventType.NODE_DELETED,
                                    EventType.NODE_DATA_CHANGED,
                                    EventType.NODE_CHILDREN_CHANGED)


@dataclass(frozen=True)
class Owner:
    session: str


class St:
    """A partial Stat: only the named fields are compared."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def __repr__(self) -> str:
        return f"St({', '.join(f'{k}={v!r}' for k, v in self.fields.items())})"


@dataclass(frozen=True)
class Step:
    op: str
    args: tuple
    expect: Any
    session: str = "a"


class Driver(Protocol):
    """One ZooKeeper service; sessions are named, a name's first use opens its session."""

    def session_id(self, session: str) -> int: ...
    def create(self, session: str, path: str, data: bytes, mode: CreateMode) -> Any: ...
    def delete(self, session: str, path: str, version: int) -> Any: ...
    def set(self, session: str, path: str, data: bytes, version: int) -> Any: ...
    def get(self, session: str, path: str, watch: bool) -> Any: ...
    def exists(self, session: str, path: str, watch: bool) -> Any: ...
    def children(self, session: str, path: str, watch: bool) -> Any: ...
    def multi(self, session: str, ops: Sequence[tuple]) -> Any: ...
    def sync(self, session: str, path: str) -> Any: ...
    def add_watch(self, session: str, path: str, mode: AddWatchMode) -> Any: ...
    def close(self, session: str) -> Any: ...
    def events(self, session: str, count: int) -> list[tuple[EventType, str]]:
        """The notifications the session received since the last call, once there are at
        least `count` of them (a live driver waits for them with a deadline)."""
        ...


# ----- step constructors (multi ops are the same tuples without a session)

def create(path: str, data: bytes = b"", mode: CreateMode = P, *, expect: Any = OK,
           s: str = "a") -> Step:
    return Step("create", (path, data, mode), expect, s)


def delete(path: str, version: int = -1, *, expect: Any = None, s: str = "a") -> Step:
    return Step("delete", (path, version), expect, s)


def set_(path: str, data: bytes, version: int = -1, *, expect: Any = OK, s: str = "a") -> Step:
    return Step("set", (path, data, version), expect, s)


def get(path: str, watch: bool = False, *, expect: Any = OK, s: str = "a") -> Step:
    return Step("get", (path, watch), expect, s)


def exists(path: str, watch: bool = False, *, expect: Any = OK, s: str = "a") -> Step:
    return Step("exists", (path, watch), expect, s)


def children(path: str, watch: bool = False, *, expect: Any = OK, s: str = "a") -> Step:
    return Step("children", (path, watch), expect, s)


def multi(*ops: tuple, expect: Any = OK, s: str = "a") -> Step:
    return Step("multi", (ops,), expect, s)


def sync(path: str, *, expect: Any = OK, s: str = "a") -> Step:
    return Step("sync", (path,), expect, s)


def add_watch(path: str, mode: AddWatchMode = AddWatchMode.PERSISTENT, *, s: str = "a") -> Step:
    return Step("add_watch", (path, mode), None, s)


def close(s: str) -> Step:
    return Step("close", (), None, s)


def events(*expected: tuple[EventType, str], s: str = "a") -> Step:
    return Step("events", (), list(expected), s)


def op_create(path: str, data: bytes = b"", mode: CreateMode = P) -> tuple:
    return ("create", path, data, mode)


def op_delete(path: str, version: int = -1) -> tuple:
    return ("delete", path, version)


def op_set(path: str, data: bytes, version: int = -1) -> tuple:
    return ("set", path, data, version)


def op_check(path: str, version: int) -> tuple:
    return ("check", path, version)


# ----- checking

def matches(expect: Any, got: Any, driver: Driver) -> bool:
    if expect is OK:
        return not isinstance(got, Err)
    if isinstance(expect, Err):
        return isinstance(got, Err) and got == expect
    if isinstance(expect, St):
        return not isinstance(got, Err) and all(
            getattr(got, k) == (driver.session_id(v.session) if isinstance(v, Owner) else v)
            for k, v in expect.fields.items())
    if isinstance(expect, (tuple, list)):
        return (isinstance(got, (tuple, list)) and len(got) == len(expect)
                and all(matches(e, g, driver) for e, g in zip(expect, got, strict=True)))
    return bool(expect == got)


def run_step(driver: Driver, step: Step) -> Any:
    if step.op == "events":
        return driver.events(step.session, len(step.expect))
    method: Callable[..., Any] = getattr(driver, step.op)
    return method(step.session, *step.args)


def run_case(driver: Driver, steps: Sequence[Step]) -> None:
    for i, step in enumerate(steps):
        got = run_step(driver, step)
        assert matches(step.expect, got, driver), (
            f"step {i} {step.op}{step.args!r} by {step.session}: expected {step.expect!r}, "
            f"got {got!r}")


@dataclass
class Case:
    name: str
    steps: list[Step] = field(default_factory=list)
    # The paths must reach the server as written: kazoo's high-level calls normalise "/a//b"
    # and refuse "." client-side, so a kazoo driver sends these through its raw requests.
    raw_paths: bool = False


BIG = b"x" * 1000

CASES = [
    Case("create_then_get_returns_data_and_a_fresh_stat", [
        create("/a", b"hello", expect="/a"),
        get("/a", expect=(b"hello", St(version=0, cversion=0, aversion=0, dataLength=5,
                                       numChildren=0, ephemeralOwner=0))),
        exists("/a", expect=St(version=0, dataLength=5)),
    ]),
    Case("create_answers_node_exists_for_an_existing_node_and_the_root", [
        create("/a", expect="/a"),
        create("/a", expect=Err.NODE_EXISTS),
        create("/", expect=Err.NODE_EXISTS),
        create("/zookeeper", expect=Err.NODE_EXISTS),
    ]),
    Case("create_under_a_missing_parent_answers_no_node", [
        create("/missing/child", expect=Err.NO_NODE),
        exists("/missing", expect=Err.NO_NODE),
    ]),
    Case("bad_paths_answer_bad_arguments_where_zookeeper_checks_them", [
        create("/a", expect="/a"),
        create("/a/", expect=Err.BAD_ARGUMENTS),
        create("/a//b", expect=Err.NO_NODE),  # ZooKeeper looks "/a/" up before the path
        create("/a/b//", expect=Err.NO_NODE),
        create("/a//", mode=PS, expect=Err.NO_NODE),
        create("a", expect=Err.BAD_ARGUMENTS),
        create("/a/.", expect=Err.BAD_ARGUMENTS),
        create("/a/..", expect=Err.BAD_ARGUMENTS),
        create("/a/b\x01", expect=Err.BAD_ARGUMENTS),
        set_("/a/", b"x", expect=Err.BAD_ARGUMENTS),
        set_("/a/.", b"x", expect=Err.BAD_ARGUMENTS),
        # delete and the reads look the path up: a malformed one was never created.
        delete("/a/./b", expect=Err.NO_NODE),
        delete("/a/", expect=Err.NO_NODE),
        delete("a", expect=Err.BAD_ARGUMENTS),
        get("/a/", expect=Err.NO_NODE),
        exists("/a//", expect=Err.NO_NODE),
        children("/a/..", expect=Err.NO_NODE),
    ], raw_paths=True),
    Case("root_lists_zookeeper", [
        children("/", expect=(["zookeeper"], St(numChildren=1))),
        create("/b", expect="/b"),
        children("/", expect=(["b", "zookeeper"], St(numChildren=2))),
    ]),
    Case("set_data_bumps_version_and_honours_expected_versions", [
        create("/v", b"0", expect="/v"),
        set_("/v", b"1", 0, expect=St(version=1, dataLength=1)),
        set_("/v", b"2", 0, expect=Err.BAD_VERSION),
        set_("/v", b"22", -1, expect=St(version=2, dataLength=2)),
        get("/v", expect=(b"22", St(version=2))),
        set_("/nope", b"x", expect=Err.NO_NODE),
        set_("/v", BIG, 2, expect=St(version=3, dataLength=1000)),
    ]),
    Case("delete_checks_existence_version_and_children", [
        create("/d", expect="/d"),
        create("/d/c", expect="/d/c"),
        delete("/nope", expect=Err.NO_NODE),
        delete("/d", expect=Err.NOT_EMPTY),
        delete("/d/c", 3, expect=Err.BAD_VERSION),
        delete("/d/c", 0, expect=None),
        delete("/d", -1, expect=None),
        exists("/d", expect=Err.NO_NODE),
    ]),
    Case("bad_version_is_checked_before_not_empty", [
        create("/d", expect="/d"),
        create("/d/c", expect="/d/c"),
        delete("/d", 7, expect=Err.BAD_VERSION),
    ]),
    Case("the_root_and_zookeeper_cannot_be_deleted", [
        delete("/", expect=Err.BAD_ARGUMENTS),
        delete("/zookeeper", expect=Err.BAD_ARGUMENTS),
    ]),
    Case("children_are_sorted_names_with_the_parent_stat", [
        create("/p", expect="/p"),
        create("/p/b", expect="/p/b"),
        create("/p/a", expect="/p/a"),
        children("/p", expect=(["a", "b"], St(numChildren=2, cversion=2))),
        delete("/p/a"),
        children("/p", expect=(["b"], St(numChildren=1))),
        children("/nope", expect=Err.NO_NODE),
    ]),
    Case("sequential_names_come_from_the_parent_cversion", [
        create("/q", expect="/q"),
        create("/q/n", mode=PS, expect="/q/n0000000000"),
        create("/q/n", mode=PS, expect="/q/n0000000001"),
        create("/q/plain", expect="/q/plain"),
        create("/q/n", mode=PS, expect="/q/n0000000003"),
        delete("/q/n0000000000"),  # a child delete counts too
        exists("/q", expect=St(cversion=5, numChildren=3)),
        # The suffix counts creates only (ZooKeeper stores creates, reports creates + deletes).
        create("/q/", mode=PS, expect="/q/0000000004"),
        exists("/q", expect=St(cversion=6, numChildren=4)),
    ]),
    Case("ephemerals_belong_to_their_session_and_have_no_children", [
        create("/e", b"x", E, expect="/e"),
        exists("/e", expect=St(ephemeralOwner=Owner("a"))),
        create("/e/child", expect=Err.NO_CHILDREN_FOR_EPHEMERALS),
        create("/e/", mode=ES, expect=Err.NO_CHILDREN_FOR_EPHEMERALS),
        create("/p", expect="/p"),
        create("/p/s", mode=ES, expect="/p/s0000000000"),
        exists("/p/s0000000000", expect=St(ephemeralOwner=Owner("a"))),
    ]),
    Case("close_session_deletes_its_ephemerals_only", [
        create("/p", expect="/p"),
        create("/p/mine", mode=E, expect="/p/mine"),
        create("/p/theirs", mode=E, expect="/p/theirs", s="b"),
        create("/p/more", mode=E, expect="/p/more"),
        close("a"),
        exists("/p/mine", expect=Err.NO_NODE, s="b"),
        exists("/p/theirs", expect=St(ephemeralOwner=Owner("b")), s="b"),
        children("/p", expect=(["theirs"], St(numChildren=1, cversion=5)), s="b"),
    ]),
    Case("multi_applies_every_op_and_sees_earlier_ops", [
        multi(op_create("/m", b"1"), op_create("/m/c"), op_set("/m/c", b"2", 0),
              op_check("/m/c", 1),
              expect=["/m", "/m/c", St(version=1), None]),
        get("/m/c", expect=(b"2", St(version=1))),
        children("/m", expect=(["c"], OK)),
    ]),
    Case("multi_is_all_or_nothing", [
        create("/x", expect="/x"),
        multi(op_create("/y"), op_delete("/nope"), op_create("/z"),
              expect=[Err.OK, Err.NO_NODE, Err.RUNTIME_INCONSISTENCY]),
        exists("/y", expect=Err.NO_NODE),
        exists("/z", expect=Err.NO_NODE),
        multi(op_set("/x", b"new"), op_create("/x"),
              expect=[Err.OK, Err.NODE_EXISTS]),
        get("/x", expect=(b"", St(version=0))),
        multi(op_create("/x/a"), op_create("/x/a"), expect=[Err.OK, Err.NODE_EXISTS]),
        exists("/x", expect=St(cversion=0, numChildren=0)),
    ]),
    Case("multi_validates_deletes_against_staged_state", [
        create("/p", expect="/p"),
        create("/p/c", expect="/p/c"),
        multi(op_delete("/p"), op_delete("/p/c"),
              expect=[Err.NOT_EMPTY, Err.RUNTIME_INCONSISTENCY]),
        exists("/p/c", expect=OK),
        multi(op_delete("/p/c"), op_delete("/p"), expect=[None, None]),
        exists("/p", expect=Err.NO_NODE),
    ]),
    Case("multi_check_guards_the_ops_after_it", [
        create("/g", b"a", expect="/g"),
        multi(op_check("/g", 5), op_set("/g", b"b"),
              expect=[Err.BAD_VERSION, Err.RUNTIME_INCONSISTENCY]),
        multi(op_check("/g", 0), op_set("/g", b"b"), expect=[None, St(version=1)]),
        multi(op_check("/nope", -1), expect=[Err.NO_NODE]),
    ]),
    Case("multi_sequential_creates_count_the_staged_cversion", [
        create("/q", expect="/q"),
        multi(op_create("/q/n", mode=PS), op_create("/q/n", mode=PS),
              expect=["/q/n0000000000", "/q/n0000000001"]),
        multi(op_create("/q/n", mode=PS), op_create("/nope/x"),
              expect=[Err.OK, Err.NO_NODE]),
        create("/q/n", mode=PS, expect="/q/n0000000002"),
    ]),
    Case("a_data_watch_fires_once", [
        create("/w", expect="/w"),
        get("/w", watch=True, expect=(b"", OK)),
        set_("/w", b"1", s="b"),
        events((CHANGED, "/w")),
        set_("/w", b"2", s="b"),
        events(),
    ]),
    Case("an_exists_watch_on_a_missing_node_fires_on_create", [
        exists("/w", watch=True, expect=Err.NO_NODE),
        create("/w", s="b", expect="/w"),
        events((CREATED, "/w")),
        get("/nope", watch=True, expect=Err.NO_NODE),  # getData leaves no watch on NoNode
        create("/nope", s="b", expect="/nope"),
        events(),
    ]),
    Case("a_child_watch_fires_once_and_a_data_watch_ignores_children", [
        create("/w", expect="/w"),
        children("/w", watch=True, expect=([], OK)),
        create("/w/c", s="b", expect="/w/c"),
        events((CHILD, "/w")),
        get("/w", watch=True, expect=OK),
        create("/w/d", s="b", expect="/w/d"),  # a data watch ignores child changes
        events(),
    ]),
    Case("a_delete_fires_data_and_child_watches_as_one_event", [
        create("/w", expect="/w"),
        get("/w", watch=True, expect=OK),
        children("/w", watch=True, expect=OK),
        delete("/w", s="b"),
        events((DELETED, "/w")),
    ]),
    Case("a_session_close_fires_the_watches_on_its_ephemerals", [
        create("/e", mode=E, expect="/e"),
        exists("/e", watch=True, expect=OK, s="b"),
        children("/", watch=True, expect=OK, s="b"),
        close("a"),
        events((DELETED, "/e"), (CHILD, "/"), s="b"),
    ]),
    Case("a_persistent_watch_stays", [
        create("/pw", expect="/pw"),
        add_watch("/pw"),
        set_("/pw", b"1", s="b"),
        set_("/pw", b"2", s="b"),
        create("/pw/c", s="b", expect="/pw/c"),
        create("/pw/c/deeper", s="b", expect="/pw/c/deeper"),
        events((CHANGED, "/pw"), (CHANGED, "/pw"), (CHILD, "/pw")),
    ]),
    Case("a_recursive_watch_sees_the_subtree_but_no_child_events", [
        create("/rw", expect="/rw"),
        add_watch("/rw", AddWatchMode.PERSISTENT_RECURSIVE),
        create("/rw/a", s="b", expect="/rw/a"),
        set_("/rw/a", b"1", s="b"),
        delete("/rw/a", s="b"),
        create("/other", s="b", expect="/other"),
        events((CREATED, "/rw/a"), (CHANGED, "/rw/a"), (DELETED, "/rw/a")),
    ]),
    Case("zookeeper_holds_quota_and_config", [
        children("/zookeeper", expect=(["config", "quota"], St(numChildren=2))),
        delete("/zookeeper/quota", expect=Err.BAD_ARGUMENTS),
    ]),
    Case("ephemeral_sequential_nodes_number_and_vanish_with_their_session", [
        create("/l", expect="/l"),
        create("/l/lock-", mode=ES, expect="/l/lock-0000000000"),
        create("/l/lock-", mode=ES, expect="/l/lock-0000000001", s="b"),
        children("/l", watch=True, expect=(["lock-0000000000", "lock-0000000001"], OK),
                 s="b"),
        close("a"),
        events((CHILD, "/l"), s="b"),
        create("/l/lock-", mode=ES, expect="/l/lock-0000000002", s="b"),
        children("/l", expect=(["lock-0000000001", "lock-0000000002"], St(cversion=4)),
                 s="b"),
    ]),
    Case("multi_ops_may_touch_nodes_earlier_ops_created_or_deleted", [
        multi(op_create("/t", b"1"), op_set("/t", b"2"), op_delete("/t", 1),
              op_create("/t", b"3"), op_check("/t", 0),
              expect=["/t", St(version=1), None, "/t", None]),
        get("/t", expect=(b"3", St(version=0))),
        multi(op_create("/t/a\x01"), op_create("/t/b"), expect=[Err.BAD_ARGUMENTS,
                                                            Err.RUNTIME_INCONSISTENCY]),
        multi(expect=[]),
    ]),
    Case("a_multi_fires_the_watches_of_every_op_and_a_failed_one_none", [
        create("/w", expect="/w"),
        get("/w", watch=True, expect=OK, s="b"),
        children("/w", watch=True, expect=OK, s="b"),
        multi(op_set("/w", b"x"), op_create("/nope/y"), expect=[Err.OK, Err.NO_NODE]),
        events(s="b"),
        multi(op_set("/w", b"x"), op_create("/w/c"), expect=[St(version=1), "/w/c"]),
        events((CHANGED, "/w"), (CHILD, "/w"), s="b"),
    ]),
    Case("a_session_hears_its_own_changes_and_exists_watches_see_deletes", [
        create("/w", expect="/w"),
        exists("/w", watch=True, expect=St(version=0)),
        delete("/w"),
        events((DELETED, "/w")),
    ]),
    Case("sync_answers_its_path", [
        sync("/", expect="/"),
    ]),
]
