"""The semantics suite's driver for the I/O-free state machine: every call is one log entry
(time advancing a millisecond per entry), and the watch table routes the notifications."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from nodes.zk import requests as rq
from nodes.zk import results as rs
from nodes.zk import snapshot
from nodes.zk.codes import AddWatchMode, CreateMode, EventType
from nodes.zk.machine import ZkStateMachine
from nodes.zk.watches import WatchTable


def outcome(result: rs.Result) -> Any:
    """A result in the suite's terms: the value, or ZooKeeper's error code."""
    if isinstance(result, rs.ErrorResult):
        return result.err
    if isinstance(result, (rs.CreateResult, rs.PathResult)):
        return result.path
    if isinstance(result, rs.StatResult):
        return result.stat
    if isinstance(result, rs.DataResult):
        return (result.data, result.stat)
    if isinstance(result, rs.ChildrenResult):
        return (result.children, result.stat)
    if isinstance(result, rs.OkResult):
        return None
    if isinstance(result, rs.MultiResult):
        if result.failed:
            return [r.err for r in result.results if isinstance(r, rs.ErrorResult)]
        return [outcome(r) for r in result.results]
    raise AssertionError(f"unexpected result {result!r}")


def multi_op(op: tuple) -> rq.MultiOp:
    kind, *args = op
    if kind == "create":
        return rq.Create(args[0], args[1], mode=args[2])
    if kind == "delete":
        return rq.Delete(args[0], args[1])
    if kind == "set":
        return rq.SetData(args[0], args[1], args[2])
    return rq.Check(args[0], args[1])


class TreeDriver:
    def __init__(self, *, restore_every_entry: bool = False) -> None:
        self.machine = ZkStateMachine()
        # Replace the machine by its own snapshot after every entry, as a replica that
        # restarts from snapshots all the time would: the answers must not change.
        self.restore_every_entry = restore_every_entry
        self.watches = WatchTable()
        self.ids: dict[str, int] = {}
        self.inbox: dict[int, list[tuple[EventType, str]]] = defaultdict(list)
        self.clock = 1_000_000
        self.log: list[rq.Txn] = []

    def entry(self, session: int, request: rq.Request) -> rs.Result:
        self.clock += 1
        txn = rq.Txn(session, self.clock, request)
        self.log.append(txn)
        applied = self.machine.apply(txn)
        if self.restore_every_entry:
            self.machine = snapshot.restore(snapshot.take(self.machine))
        for n in self.watches.after_apply(txn, applied):
            self.inbox[n.session].append((n.type, n.path))
        return applied.result

    def session_id(self, session: str) -> int:
        if session not in self.ids:
            opened = self.entry(0, rq.CreateSession(10_000))
            assert isinstance(opened, rs.SessionResult)
            self.ids[session] = opened.session
        return self.ids[session]

    def _do(self, session: str, request: rq.Request) -> Any:
        return outcome(self.entry(self.session_id(session), request))

    def create(self, session: str, path: str, data: bytes, mode: CreateMode) -> Any:
        return self._do(session, rq.Create(path, data, mode=mode))

    def delete(self, session: str, path: str, version: int) -> Any:
        return self._do(session, rq.Delete(path, version))

    def set(self, session: str, path: str, data: bytes, version: int) -> Any:
        return self._do(session, rq.SetData(path, data, version))

    def get(self, session: str, path: str, watch: bool) -> Any:
        return self._do(session, rq.GetData(path, watch))

    def exists(self, session: str, path: str, watch: bool) -> Any:
        return self._do(session, rq.Exists(path, watch))

    def children(self, session: str, path: str, watch: bool) -> Any:
        return self._do(session, rq.GetChildren(path, watch))

    def multi(self, session: str, ops: Sequence[tuple]) -> Any:
        return self._do(session, rq.Multi([multi_op(op) for op in ops]))

    def sync(self, session: str, path: str) -> Any:
        return self._do(session, rq.Sync(path))

    def add_watch(self, session: str, path: str, mode: AddWatchMode) -> Any:
        return self._do(session, rq.AddWatch(path, mode))

    def close(self, session: str) -> Any:
        return self._do(session, rq.CloseSession())

    def events(self, session: str, count: int) -> list[tuple[EventType, str]]:
        got = self.inbox.pop(self.session_id(session), [])
        return got
