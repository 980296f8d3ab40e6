"""The semantics suite's driver for a live ZooKeeper service (RSMKeeper, or Apache ZooKeeper
as the reference) through kazoo.

Notifications are recorded as the server sends them (kazoo's reader thread hands each one to
`_read_watch_event`, which this driver wraps) rather than through kazoo's callbacks, which
fire twice for one NodeDeleted and know nothing of persistent watches. `events` waits for the
notifications with a barrier instead of a sleep: a sync and a read on the session return only
after the reader has handled everything the server sent before their replies.
Cases with `raw_paths` send their requests unnormalised through kazoo's request records.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import AsyncResult
from kazoo.protocol import serialization as ks
from kazoo.security import OPEN_ACL_UNSAFE

from nodes.zk.codes import AddWatchMode, CreateMode, Err, EventType, Op

CONNECT_TIMEOUT_S = 30.0


class _AddWatch:
    """addWatch (kazoo 2.11 has no such call): path and mode out, nothing back."""

    type = Op.ADD_WATCH

    def __init__(self, path: str, mode: AddWatchMode) -> None:
        self.path, self.mode = path, mode

    def serialize(self) -> bytearray:
        return bytearray(ks.write_string(self.path) + struct.pack("!i", self.mode))

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> None:
        return None


def _outcome_of_error(e: BaseException) -> Any:
    code = getattr(e, "code", None)
    if isinstance(code, int):
        return Err(code)
    raise e


class KazooDriver:
    def __init__(self, hosts: str, *, raw_paths: bool = False, timeout_s: float = 10.0) -> None:
        self.hosts = hosts
        self.raw_paths = raw_paths
        self.timeout_s = timeout_s
        self.clients: dict[str, KazooClient] = {}
        self.ids: dict[str, int] = {}
        self.inbox: dict[str, list[tuple[EventType, str]]] = {}
        self.lock = threading.Lock()

    # ----- sessions

    def client(self, session: str) -> KazooClient:
        if session not in self.clients:
            c = KazooClient(hosts=self.hosts, timeout=self.timeout_s)
            c.start(timeout=CONNECT_TIMEOUT_S)
            self._record_notifications(c, session)
            self.clients[session] = c
            self.ids[session] = c.client_id[0]
        return self.clients[session]

    def _record_notifications(self, c: KazooClient, session: str) -> None:
        conn = c._connection
        original = conn._read_watch_event
        self.inbox[session] = []

        def recording(buffer: bytes, offset: int) -> None:
            watch, _ = ks.Watch.deserialize(buffer, offset)
            with self.lock:
                self.inbox[session].append((EventType(watch.type), watch.path))
            original(buffer, offset)

        conn._read_watch_event = recording

    def session_id(self, session: str) -> int:
        self.client(session)
        return self.ids[session]

    def stop(self) -> None:
        for c in self.clients.values():
            c.stop()
            c.close()
        self.clients.clear()

    # ----- operations

    def _do(self, call: Any) -> Any:
        try:
            return call()
        except KazooException as e:
            return _outcome_of_error(e)

    def _raw(self, session: str, request: Any) -> Any:
        result = AsyncResult(self.client(session).handler)
        self.client(session)._call(request, result)
        return self._do(lambda: result.get(timeout=self.timeout_s))

    def create(self, session: str, path: str, data: bytes, mode: CreateMode) -> Any:
        if self.raw_paths:
            return self._raw(session, ks.Create(path, data, OPEN_ACL_UNSAFE, int(mode)))
        return self._do(lambda: self.client(session).create(
            path, data, ephemeral=mode.ephemeral, sequence=mode.sequential))

    def delete(self, session: str, path: str, version: int) -> Any:
        if self.raw_paths:
            got = self._raw(session, ks.Delete(path, version))
        else:
            got = self._do(lambda: self.client(session).delete(path, version))
        return got if isinstance(got, Err) else None

    def set(self, session: str, path: str, data: bytes, version: int) -> Any:
        if self.raw_paths:
            return self._raw(session, ks.SetData(path, data, version))
        return self._do(lambda: self.client(session).set(path, data, version))

    def _watcher(self, watch: bool) -> Any:
        return (lambda event: None) if watch else None

    def get(self, session: str, path: str, watch: bool) -> Any:
        if self.raw_paths:
            return self._raw(session, ks.GetData(path, self._watcher(watch)))
        return self._do(lambda: self.client(session).get(path, watch=self._watcher(watch)))

    def exists(self, session: str, path: str, watch: bool) -> Any:
        if self.raw_paths:
            got = self._raw(session, ks.Exists(path, self._watcher(watch)))
        else:
            got = self._do(lambda: self.client(session).exists(path,
                                                                watch=self._watcher(watch)))
        return Err.NO_NODE if got is None else got

    def children(self, session: str, path: str, watch: bool) -> Any:
        if self.raw_paths:
            got = self._raw(session, ks.GetChildren2(path, self._watcher(watch)))
        else:
            got = self._do(lambda: self.client(session).get_children(
                path, watch=self._watcher(watch), include_data=True))
        return got if isinstance(got, Err) else (sorted(got[0]), got[1])

    def multi(self, session: str, ops: Sequence[tuple]) -> Any:
        t = self.client(session).transaction()
        for kind, path, *args in ops:
            if kind == "create":
                data, mode = args
                t.create(path, data, ephemeral=mode.ephemeral, sequence=mode.sequential)
            elif kind == "delete":
                t.delete(path, args[0])
            elif kind == "set":
                t.set_data(path, args[0], args[1])
            else:
                t.check(path, args[0])
        results = self._do(lambda: t.commit())
        if isinstance(results, Err):
            return results
        if any(isinstance(r, Exception) for r in results):
            return [Err(r.code) for r in results]
        return [None if r is True else r for r in results]

    def sync(self, session: str, path: str) -> Any:
        return self._do(lambda: self.client(session).sync(path))

    def add_watch(self, session: str, path: str, mode: AddWatchMode) -> Any:
        got = self._raw(session, _AddWatch(path, mode))
        return got if isinstance(got, Err) else None

    def close(self, session: str) -> Any:
        c = self.client(session)
        c.stop()
        c.close()
        return None

    def events(self, session: str, count: int) -> list[tuple[EventType, str]]:
        c = self.client(session)
        c.sync("/")
        c.exists("/")  # its reply comes after every notification sent before it
        with self.lock:
            got, self.inbox[session] = self.inbox[session], []
        return got


def empty_tree(hosts: str) -> None:
    """Delete every node but /zookeeper, so each case starts from a fresh-looking tree."""
    c = KazooClient(hosts=hosts)
    c.start(timeout=CONNECT_TIMEOUT_S)
    try:
        for child in c.get_children("/"):
            if child != "zookeeper":
                c.delete("/" + child, recursive=True)
    finally:
        c.stop()
        c.close()
