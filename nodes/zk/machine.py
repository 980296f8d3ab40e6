"""ZooKeeper's replicated state machine: the data tree plus the session table, changed only
by `apply(txn)`. The same log gives the same state on every replica: time and zxids come from
the entries, iteration is in sorted order, nothing reads a clock or a random source.

Each request is checked in ZooKeeper's order (PrepRequestProcessor) and refused with its
error code; a multi stages its ops on the tree and rolls all of them back when one fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from nodes.zk import paths
from nodes.zk.codes import CreateMode, Err, EventType
from nodes.zk.requests import (
    ANY_VERSION,
    WRITES,
    AddWatch,
    Check,
    CloseSession,
    Create,
    CreateSession,
    Delete,
    Exists,
    GetAcl,
    GetAllChildrenNumber,
    GetChildren,
    GetData,
    GetEphemerals,
    Multi,
    MultiOp,
    MultiRead,
    Ping,
    Request,
    SetAcl,
    SetData,
    Sync,
    Tick,
    Txn,
)
from nodes.zk.results import (
    AclResult,
    ChildrenResult,
    CountResult,
    CreateResult,
    DataResult,
    ErrorResult,
    MultiReadResult,
    MultiResult,
    OkResult,
    OpResult,
    PathResult,
    PathsResult,
    Result,
    SessionResult,
    StatResult,
    TickResult,
    ZkError,
)
from nodes.zk.sessions import DEFAULT_TICK_MS, SessionTable
from nodes.zk.stat import Stat
from nodes.zk.tree import SPECIAL, DataTree, Znode

MAX_DATA_BYTES = 1024 * 1024  # ZooKeeper's default jute.maxbuffer, about 1 MiB
_UNIMPLEMENTED_MODES = (CreateMode.CONTAINER, CreateMode.PERSISTENT_WITH_TTL,
                        CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)


class Change(msgspec.Struct, frozen=True, array_like=True):
    """A change to the tree that watches may be waiting for."""

    type: EventType
    path: str


class Applied(msgspec.Struct, frozen=True):
    """What one log entry did: the answer for its session, the changes (for the watch table),
    the sessions it closed, and the last zxid after it (for the reply header)."""

    result: Result
    changes: list[Change]
    closed_sessions: list[int]
    zxid: int


class ZkStateMachine:
    def __init__(self, *, tick_ms: int = DEFAULT_TICK_MS,
                 max_data_bytes: int = MAX_DATA_BYTES) -> None:
        self.tree = DataTree()
        self.sessions = SessionTable(tick_ms)
        self.max_data_bytes = max_data_bytes
        self.last_zxid = 0
        self.now_ms = 0  # the latest entry time seen; never goes backwards
        self._handlers: dict[type, Callable[[Any, int, int], Result]] = {
            Create: self._create, Delete: self._delete, SetData: self._set_data,
            SetAcl: self._set_acl, Multi: self._multi, Check: self._check,
            GetData: self._get_data, Exists: self._exists, GetChildren: self._get_children,
            GetAcl: self._get_acl, Sync: self._sync, AddWatch: self._add_watch,
            MultiRead: self._multi_read, GetEphemerals: self._get_ephemerals,
            GetAllChildrenNumber: self._count_descendants,
            Ping: lambda req, session, zxid: OkResult(),
        }
        self._changes: list[Change] = []
        self._closed: list[int] = []

    # ----- the one entry point

    def apply(self, txn: Txn) -> Applied:
        self.now_ms = max(self.now_ms, txn.time_ms)
        self._changes, self._closed = [], []
        request = txn.request
        if isinstance(request, (CreateSession, Tick)):
            result = self._session_entry(request, txn)
        elif txn.session and not self.sessions.touch(txn.session, self.now_ms):
            result = ErrorResult(Err.SESSION_EXPIRED)
        else:
            result = self._execute(txn)
        return Applied(result, self._changes, self._closed, self.last_zxid)

    def _execute(self, txn: Txn) -> Result:
        """A tree entry whose session is live (or that has none)."""
        request = txn.request
        if isinstance(request, CloseSession):
            return self._close_session(txn.session, self._next_zxid(txn))
        zxid = self._next_zxid(txn) if isinstance(request, WRITES) else self.last_zxid
        return self._run(request, txn.session, zxid)

    def read(self, session: int, request: Request) -> Applied:
        """A read served by one replica on its own (ZooKeeper's local reads): answered from
        the tree as it is, touching no session and moving no clock, so replicas that serve
        different reads stay identical."""
        if isinstance(request, (*WRITES, Ping, Sync)):
            raise ValueError(f"{type(request).__name__} must go through the log")
        return Applied(self._run(request, session, self.last_zxid), [], [], self.last_zxid)

    def _next_zxid(self, txn: Txn) -> int:
        zxid = txn.zxid or self.last_zxid + 1
        if zxid <= self.last_zxid:
            # Only a broken host can do this; every replica would refuse the same entry.
            raise ValueError(f"zxid {zxid} does not follow {self.last_zxid}")
        self.last_zxid = zxid
        return zxid

    def _run(self, request: Request, session: int, zxid: int) -> Result:
        # Only the code of a refusal reaches the client (ZooKeeper's replies carry no text);
        # a ZkError's detail, where there is one, is for the reader of this code.
        try:
            return self._handlers[type(request)](request, session, zxid)
        except ZkError as e:
            return ErrorResult(e.err)

    # ----- sessions

    def _session_entry(self, request: CreateSession | Tick, txn: Txn) -> Result:
        if isinstance(request, CreateSession):
            # The zxid (and the entry's time) name the session, so every replica agrees.
            session = self.sessions.open(request.timeout_ms, self._next_zxid(txn), self.now_ms)
            return SessionResult(session.id, session.timeout_ms, session.password)
        return self._expire(self.sessions.expired(self.now_ms), txn)

    def _expire(self, expired: list[int], txn: Txn) -> TickResult:
        if expired:
            zxid = self._next_zxid(txn)  # a tick that expires nobody changes nothing
            for session_id in expired:
                self._close_session(session_id, zxid)
        return TickResult(expired)

    def _close_session(self, session: int, zxid: int) -> Result:
        if not session:
            return ErrorResult(Err.BAD_ARGUMENTS)
        for path in self.tree.ephemerals_of(session):
            self._remove(path, zxid)
        self.sessions.close(session)
        self._closed.append(session)
        return OkResult()

    # ----- writes

    def _create(self, req: Create, session: int, zxid: int) -> CreateResult:
        path = req.path
        if req.mode in _UNIMPLEMENTED_MODES:
            raise ZkError(Err.UNIMPLEMENTED, "container and TTL nodes")
        _no_null(path)
        if "/" not in path:
            raise ZkError(Err.BAD_ARGUMENTS)
        self._check_size(req.data)
        if req.mode.ephemeral and not session:
            raise ZkError(Err.BAD_ARGUMENTS, "an ephemeral node needs a session")
        if not req.acl:
            raise ZkError(Err.INVALID_ACL)
        parent_path = path[:path.rfind("/")] or paths.ROOT
        parent = self._node(parent_path)
        if req.mode.sequential:
            path = f"{path}{parent.cversion:010d}"
        # Checked after the parent as ZooKeeper does: "/a//b" is NoNode (there is no "/a/").
        self._validate(path)
        if path in self.tree:
            raise ZkError(Err.NODE_EXISTS)
        if parent.ephemeral_owner:
            raise ZkError(Err.NO_CHILDREN_FOR_EPHEMERALS)
        owner = session if req.mode.ephemeral else 0
        node = self.tree.create(path, req.data, req.acl, zxid, self.now_ms, owner)
        self._changes += [Change(EventType.NODE_CREATED, path),
                          Change(EventType.NODE_CHILDREN_CHANGED, parent_path)]
        return CreateResult(path, node.stat())

    def _delete(self, req: Delete, session: int, zxid: int) -> OkResult:
        # Like ZooKeeper, only a path without a slash or with a null is a bad argument here:
        # any other path that is not in the tree (it could never have been created) is NoNode.
        _no_null(req.path)
        if "/" not in req.path or req.path in SPECIAL:
            raise ZkError(Err.BAD_ARGUMENTS, f"{req.path!r} cannot be deleted")
        node = self._node(req.path)
        _check_version(node.version, req.version)
        if node.children:
            raise ZkError(Err.NOT_EMPTY)
        self._remove(req.path, zxid)
        return OkResult()

    def _remove(self, path: str, zxid: int) -> None:
        self.tree.delete(path, zxid)
        self._changes += [Change(EventType.NODE_DELETED, path),
                          Change(EventType.NODE_CHILDREN_CHANGED, paths.parent(path))]

    def _set_data(self, req: SetData, session: int, zxid: int) -> StatResult:
        self._validate(req.path)
        self._check_size(req.data)
        _check_version(self._node(req.path).version, req.version)
        node = self.tree.set_data(req.path, req.data, zxid, self.now_ms)
        self._changes.append(Change(EventType.NODE_DATA_CHANGED, req.path))
        return StatResult(node.stat())

    def _set_acl(self, req: SetAcl, session: int, zxid: int) -> StatResult:
        self._validate(req.path)
        if not req.acl:
            raise ZkError(Err.INVALID_ACL)
        _check_version(self._node(req.path).aversion, req.version)
        return StatResult(self.tree.set_acl(req.path, req.acl).stat())

    def _check(self, req: Check, session: int, zxid: int) -> OkResult:
        self._validate(req.path)
        _check_version(self._node(req.path).version, req.version)
        return OkResult()

    def _multi(self, req: Multi, session: int, zxid: int) -> MultiResult:
        """All or nothing; each op sees what the ops before it staged."""
        self.tree.begin()
        done: list[OpResult] = []
        try:
            for i, op in enumerate(req.ops):
                result = self._run_op(op, session, zxid)
                if isinstance(result, ErrorResult):
                    self.tree.rollback()
                    self._changes.clear()  # a multi is the whole entry
                    failed: list[OpResult] = [ErrorResult(Err.OK)] * i
                    failed.append(result)
                    failed += [ErrorResult(Err.RUNTIME_INCONSISTENCY)] * (len(req.ops) - i - 1)
                    return MultiResult(failed)
                done.append(result)
        except BaseException:
            self.tree.rollback()  # never leave a half-applied multi behind
            raise
        self.tree.commit()
        return MultiResult(done)

    def _run_op(self, op: MultiOp, session: int, zxid: int) -> OpResult:
        try:
            if isinstance(op, Create):
                return self._create(op, session, zxid)
            if isinstance(op, Delete):
                return self._delete(op, session, zxid)
            if isinstance(op, SetData):
                return self._set_data(op, session, zxid)
            return self._check(op, session, zxid)
        except ZkError as e:
            return ErrorResult(e.err)

    # ----- reads

    def _get_data(self, req: GetData, session: int, zxid: int) -> DataResult:
        node = self._read(req.path)
        return DataResult(node.data, node.stat())

    def _exists(self, req: Exists, session: int, zxid: int) -> StatResult:
        return StatResult(self._read(req.path).stat())

    def _get_children(self, req: GetChildren, session: int, zxid: int) -> ChildrenResult:
        node = self._read(req.path)
        return ChildrenResult(sorted(node.children), node.stat())

    def _get_acl(self, req: GetAcl, session: int, zxid: int) -> AclResult:
        node = self._read(req.path)
        return AclResult(list(node.acl), node.stat())

    def _multi_read(self, req: MultiRead, session: int, zxid: int) -> MultiReadResult:
        out: list[ErrorResult | DataResult | ChildrenResult] = []
        for op in req.ops:
            try:
                if isinstance(op, GetData):
                    out.append(self._get_data(op, session, zxid))
                else:
                    out.append(self._get_children(op, session, zxid))
            except ZkError as e:
                out.append(ErrorResult(e.err))
        return MultiReadResult(out)

    def _get_ephemerals(self, req: GetEphemerals, session: int, zxid: int) -> PathsResult:
        # Session 0 owns none (the tree indexes no owner 0), and every path starts with ""
        # and with "/": those prefixes list all of the session's ephemerals.
        prefix = req.prefix.strip()
        return PathsResult([p for p in self.tree.ephemerals_of(session) if p.startswith(prefix)])

    def _count_descendants(self, req: GetAllChildrenNumber, session: int,
                           zxid: int) -> CountResult:
        count, todo = 0, [req.path]
        self._read(req.path)
        while todo:
            path = todo.pop()
            kids = self.tree.nodes[path].children
            count += len(kids)
            todo += [paths.join(path, k) for k in kids]
        return CountResult(count)

    def _sync(self, req: Sync, session: int, zxid: int) -> PathResult:
        return PathResult(req.path)

    def _add_watch(self, req: AddWatch, session: int, zxid: int) -> OkResult:
        # The watch itself is connection-local (the watch table registers it from this
        # result), and like ZooKeeper's it may wait on a path that does not exist yet.
        _no_null(req.path)
        return OkResult()

    def stat(self, path: str) -> Stat | None:
        node = self.tree.get(path)
        return None if node is None else node.stat()

    # ----- helpers

    def _read(self, path: str) -> Znode:
        # Reads answer as ZooKeeper's do: a path that is not in the tree (malformed ones
        # included: they could never have been created) is NoNode.
        _no_null(path)
        return self._node(path)

    def _node(self, path: str) -> Znode:
        node = self.tree.get(path)
        if node is None:
            raise ZkError(Err.NO_NODE)
        return node

    @staticmethod
    def _validate(path: str) -> None:
        try:
            paths.validate(path)
        except paths.BadPath as e:
            raise ZkError(Err.BAD_ARGUMENTS, str(e)) from None

    def _check_size(self, data: bytes) -> None:
        if len(data) > self.max_data_bytes:
            raise ZkError(Err.BAD_ARGUMENTS,
                          f"{len(data)} bytes of data, more than {self.max_data_bytes}")


def _check_version(current: int, expected: int) -> None:
    if expected != ANY_VERSION and expected != current:
        raise ZkError(Err.BAD_VERSION, f"version {current}, expected {expected}")



def _no_null(path: str) -> None:
    if "\x00" in path:
        raise ZkError(Err.BAD_ARGUMENTS, f"null character in {path!r}")
