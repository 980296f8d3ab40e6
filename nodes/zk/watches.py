"""Watches: which session hears about which change.

In ZooKeeper watches belong to a connection, not to the replicated state, so this table sits
beside the state machine on the replica that serves the session: the machine reports what
changed (`Applied.changes`), the table turns that into notifications.

One-shot data watches (getData, exists, also on a missing node) fire on NodeCreated,
NodeDataChanged and NodeDeleted of their path; one-shot child watches (getChildren) on
NodeChildrenChanged and NodeDeleted. Persistent watches (addWatch) fire on every event of
their path and stay; persistent-recursive ones fire on every event of their path and of the
paths below it, except NodeChildrenChanged. A session hears one notification per event,
however many of its watches match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from nodes.zk import paths
from nodes.zk.codes import AddWatchMode, Err, EventType, WatcherType
from nodes.zk.machine import Applied, Change
from nodes.zk.requests import AddWatch, Exists, GetChildren, GetData, SetWatches, Txn
from nodes.zk.results import error_of
from nodes.zk.stat import Stat

_DATA_EVENTS = (EventType.NODE_CREATED, EventType.NODE_DATA_CHANGED, EventType.NODE_DELETED)
_CHILD_EVENTS = (EventType.NODE_CHILDREN_CHANGED, EventType.NODE_DELETED)


class Notification(msgspec.Struct, frozen=True, array_like=True):
    session: int
    type: EventType
    path: str


Table = dict[str, set[int]]


class WatchTable:
    def __init__(self) -> None:
        self.data: Table = {}
        self.child: Table = {}
        self.persistent: Table = {}
        self.recursive: Table = {}

    # ----- registering

    def add_data(self, session: int, path: str) -> None:
        self.data.setdefault(path, set()).add(session)

    def add_child(self, session: int, path: str) -> None:
        self.child.setdefault(path, set()).add(session)

    def add_persistent(self, session: int, path: str, mode: AddWatchMode) -> None:
        table = self.recursive if mode == AddWatchMode.PERSISTENT_RECURSIVE else self.persistent
        table.setdefault(path, set()).add(session)

    def drop_session(self, session: int) -> None:
        for table in (self.data, self.child, self.persistent, self.recursive):
            for path in [p for p, sessions in table.items() if session in sessions]:
                _discard(table, path, session)

    def remove(self, session: int, path: str, kind: WatcherType, *,
               only_check: bool = False) -> bool:
        """removeWatches (or, with only_check, checkWatches): whether the session had such a
        watch on the path; the client answers NoWatcher when it had none."""
        found = False
        for table in self._tables(kind):
            if session in table.get(path, ()):
                found = True
                if not only_check:
                    _discard(table, path, session)
        return found

    def _tables(self, kind: WatcherType) -> list[Table]:
        return {
            WatcherType.CHILDREN: [self.child],
            WatcherType.DATA: [self.data],
            WatcherType.ANY: [self.data, self.child, self.persistent, self.recursive],
            WatcherType.PERSISTENT: [self.persistent],
            WatcherType.PERSISTENT_RECURSIVE: [self.recursive],
        }[kind]

    def count(self, session: int) -> int:
        return sum(session in sessions for table in (self.data, self.child, self.persistent,
                                                     self.recursive)
                   for sessions in table.values())

    # ----- firing

    def trigger(self, changes: Iterable[Change]) -> list[Notification]:
        out: list[Notification] = []
        for change in changes:
            hearing: set[int] = set()
            if change.type in _DATA_EVENTS:
                hearing |= self.data.pop(change.path, set())
            if change.type in _CHILD_EVENTS:
                hearing |= self.child.pop(change.path, set())
            hearing |= self.persistent.get(change.path, set())
            if change.type != EventType.NODE_CHILDREN_CHANGED:
                for path in [change.path, *paths.ancestors(change.path)]:
                    hearing |= self.recursive.get(path, set())
            out += [Notification(s, change.type, change.path) for s in sorted(hearing)]
        return out

    def after_apply(self, txn: Txn, applied: Applied) -> list[Notification]:
        """Everything one applied log entry means for watches: the notifications its changes
        fire, the watch its read leaves, the watches of the sessions it closed."""
        notifications = self.trigger(applied.changes)
        for session in applied.closed_sessions:
            self.drop_session(session)
        request, err = txn.request, error_of(applied.result)
        failed = err != Err.OK
        if isinstance(request, (GetData, Exists)) and request.watch:
            # exists leaves a watch on a missing node too: it fires on NodeCreated.
            if not failed or (isinstance(request, Exists) and err == Err.NO_NODE):
                self.add_data(txn.session, request.path)
        elif isinstance(request, GetChildren) and request.watch and not failed:
            self.add_child(txn.session, request.path)
        elif isinstance(request, AddWatch) and not failed:
            self.add_persistent(txn.session, request.path, request.mode)
        return notifications

    def set_watches(self, session: int, request: SetWatches,
                    stat_of: Callable[[str], Stat | None]) -> list[Notification]:
        """Re-register a reconnecting client's watches as ZooKeeper's DataTree.setWatches does:
        a watch whose path changed after `relative_zxid` fires at once instead."""
        out: list[Notification] = []
        since = request.relative_zxid
        for path in request.exist:
            if stat_of(path) is not None:
                out.append(Notification(session, EventType.NODE_CREATED, path))
            else:
                self.add_data(session, path)
        one_shots = ((request.data, self.data, EventType.NODE_DATA_CHANGED, "mzxid"),
                     (request.child, self.child, EventType.NODE_CHILDREN_CHANGED, "pzxid"))
        for watched, table, event, zxid_field in one_shots:
            for path in watched:
                stat = stat_of(path)
                if stat is None:
                    out.append(Notification(session, EventType.NODE_DELETED, path))
                elif getattr(stat, zxid_field) > since:
                    out.append(Notification(session, event, path))
                else:
                    table.setdefault(path, set()).add(session)
        for path in request.persistent:
            self.add_persistent(session, path, AddWatchMode.PERSISTENT)
        for path in request.persistent_recursive:
            self.add_persistent(session, path, AddWatchMode.PERSISTENT_RECURSIVE)
        return out


def _discard(table: Table, path: str, session: int) -> None:
    sessions = table[path]
    sessions.discard(session)
    if not sessions:
        del table[path]
