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

import enum
from collections.abc import Callable, Iterable

import msgspec

from nodes.zk import paths
from nodes.zk.codes import AddWatchMode, Err, EventType, WatcherType
from nodes.zk.machine import Applied, Change
from nodes.zk.requests import (
    AddWatch,
    Exists,
    GetChildren,
    GetData,
    Request,
    SetWatches,
    Txn,
)
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

    def trigger(self, changes: Iterable[Change],
                only: tuple[int, str] | None = None) -> list[Notification]:
        """The notifications `changes` fire, using up the one-shot watches they fire. With
        `only` = (session, path): just that session's watches set on that path."""
        out: list[Notification] = []
        for change in changes:
            hearing: set[int] = set()
            if change.type in _DATA_EVENTS:
                hearing |= _take(self.data, change.path, only)
            if change.type in _CHILD_EVENTS:
                hearing |= _take(self.child, change.path, only)
            hearing |= _watching(self.persistent, change.path, only)
            if change.type != EventType.NODE_CHILDREN_CHANGED:
                for path in [change.path, *paths.ancestors(change.path)]:
                    hearing |= _watching(self.recursive, path, only)
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
        """Re-register a reconnecting client's watches against a tree this replica holds."""
        out: list[Notification] = []
        for kind, path in one_shots(request):
            fired = self.rewatch(session, kind, path, stat_of(path), request.relative_zxid)
            if fired is not None:
                out.append(fired)
        for path, mode in persistents(request):
            self.add_persistent(session, path, mode)
        return out

    def rewatch(self, session: int, kind: Rewatch, path: str, stat: Stat | None,
                since: int) -> Notification | None:
        """One one-shot watch of a setWatches, given the path's stat now: the notification
        that fires at once, or None when the watch is registered instead."""
        event = rewatch_event(kind, stat, since)
        if event is not None:
            return Notification(session, event, path)
        if kind == Rewatch.CHILD:
            self.add_child(session, path)
        else:
            self.add_data(session, path)
        return None


def watched_path(request: Request) -> str | None:
    """The path a request may leave a watch on (a read with watch, or addWatch)."""
    if isinstance(request, (GetData, Exists, GetChildren)):
        return request.path if request.watch else None
    return request.path if isinstance(request, AddWatch) else None


class Rewatch(enum.Enum):
    """The one-shot watch lists of a setWatches request."""

    DATA = "data"
    EXIST = "exist"
    CHILD = "child"


def one_shots(request: SetWatches) -> list[tuple[Rewatch, str]]:
    """A setWatches' one-shot watches, in the order they are decided."""
    return ([(Rewatch.EXIST, p) for p in request.exist]
            + [(Rewatch.DATA, p) for p in request.data]
            + [(Rewatch.CHILD, p) for p in request.child])


def persistents(request: SetWatches) -> list[tuple[str, AddWatchMode]]:
    """A setWatches' persistent watches: registered as they are, whatever changed."""
    return ([(p, AddWatchMode.PERSISTENT) for p in request.persistent]
            + [(p, AddWatchMode.PERSISTENT_RECURSIVE) for p in request.persistent_recursive])


def rewatch_event(kind: Rewatch, stat: Stat | None, since: int) -> EventType | None:
    """ZooKeeper's DataTree.setWatches for one path, `stat` being the node now (None: no
    such node) and `since` the last zxid the client saw: the event the watch fires at once
    because the node changed after `since`, or None when nothing it watches changed (the
    watch is then registered). An exist watch fires when the node is there; a data or child
    watch when the node is gone, or its data (mzxid) or children (pzxid) changed."""
    if kind == Rewatch.EXIST:
        return EventType.NODE_CREATED if stat is not None else None
    if stat is None:
        return EventType.NODE_DELETED
    if kind == Rewatch.DATA:
        return EventType.NODE_DATA_CHANGED if stat.mzxid > since else None
    return EventType.NODE_CHILDREN_CHANGED if stat.pzxid > since else None

def _take(table: Table, path: str, only: tuple[int, str] | None) -> set[int]:
    """The sessions of a one-shot watch on `path` that fires, its watch used up."""
    if only is None:
        return table.pop(path, set())
    session, at = only
    if path != at or session not in table.get(path, ()):
        return set()
    _discard(table, path, session)
    return {session}


def _watching(table: Table, path: str, only: tuple[int, str] | None) -> set[int]:
    sessions = table.get(path, set())
    if only is None:
        return sessions
    session, at = only
    return {session} if path == at and session in sessions else set()


def _discard(table: Table, path: str, session: int) -> None:
    sessions = table[path]
    sessions.discard(session)
    if not sessions:
        del table[path]
