"""One shard replica's part of the ZooKeeper tree, and the messages of multi-shard operations.

A shard holds the nodes `shards.shard_of` gives it, each whole (its children set names every
child, wherever the child lives). An operation that touches this shard alone runs here with
ZooKeeper's own code (`ZkStateMachine`'s handlers, over the partial tree). One that touches
several shards is run by a coordinator (`coordinate.TxnRun`) on views of the nodes it needs
(`views`); the shard then applies the coordinator's `Decision`: whole nodes put or removed.

Sessions are the proxies' business: no session table here. The only session state is the
set of sessions closed (every shard takes part in a close), so that an ephemeral create that
arrives for a closed session is refused as ZooKeeper refuses an expired session's requests.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

from nodes.zk import paths
from nodes.zk.codes import Err
from nodes.zk.machine import MAX_DATA_BYTES, Change, ZkStateMachine
from nodes.zk.requests import (
    Acl,
    Create,
    Int32,
    Int64,
    Multi,
    Request,
    SessionId,
    Tick,
    Txn,
)
from nodes.zk.results import ErrorResult, Result
from nodes.zk.shards import plan, shard_of
from nodes.zk.tree import Znode

Count = Annotated[int, msgspec.Meta(ge=0)]


class NodeState(msgspec.Struct, frozen=True, array_like=True):
    """A whole znode as it crosses between shards and coordinator. `cversion` is the stored
    one (child creates, the sequential counter), not the reported one."""

    data: bytes
    acl: list[Acl]
    czxid: Int64
    mzxid: Int64
    ctime: Int64
    mtime: Int64
    version: Int32
    cversion: Int32
    aversion: Int32
    ephemeral_owner: SessionId
    pzxid: Int64
    children: list[str]  # names, sorted

    @classmethod
    def of(cls, node: Znode) -> NodeState:
        return cls(node.data, list(node.acl), node.czxid, node.mzxid, node.ctime, node.mtime,
                   node.version, node.cversion, node.aversion, node.ephemeral_owner,
                   node.pzxid, sorted(node.children))

    def znode(self) -> Znode:
        node = Znode(self.data, list(self.acl), self.czxid, self.ctime, self.ephemeral_owner)
        node.mzxid, node.mtime, node.pzxid = self.mzxid, self.mtime, self.pzxid
        node.version, node.cversion, node.aversion = self.version, self.cversion, self.aversion
        node.children = set(self.children)
        return node


class NodeView(msgspec.Struct, frozen=True, array_like=True):
    path: str
    node: NodeState | None  # None: no such node


class ViewRequest(msgspec.Struct, frozen=True, array_like=True):
    """What a coordinator asks of a held shard: the nodes at `paths` (those the shard owns),
    the nodes owned by the sessions `ephemerals_of`, how many nodes lie below `count_under`,
    and whether `session` (the operation's) or those sessions are closed."""

    paths: list[str]
    ephemerals_of: list[SessionId] = []
    count_under: str | None = None
    session: SessionId = 0


class ViewReply(msgspec.Struct, frozen=True, array_like=True):
    nodes: list[NodeView]
    ephemerals: list[str]  # sorted
    count: Count
    closed: list[SessionId]  # sorted


class Put(msgspec.Struct, frozen=True, tag=True, array_like=True):
    """Create or replace the whole node at `path`."""

    path: str
    node: NodeState


class Remove(msgspec.Struct, frozen=True, tag=True, array_like=True):
    path: str


Write = Union[Put, Remove]  # noqa: UP007 - msgspec needs a real Union


class Decision(msgspec.Struct, frozen=True, array_like=True):
    """A coordinator's verdict for one shard: its writes, the changes to fire there, the
    sessions the operation closed, and the operation's zxid (0 when it took none)."""

    writes: list[Write]
    changes: list[Change]
    closed_sessions: list[SessionId]
    zxid: Int64 = 0


class Executed(msgspec.Struct, frozen=True, array_like=True):
    result: Result
    changes: list[Change]
    closed_sessions: list[SessionId] = []  # by a CloseSession or a Tick


def creates_ephemeral(request: Request) -> bool:
    if isinstance(request, Create):
        return request.mode.ephemeral
    if isinstance(request, Multi):
        return any(isinstance(op, Create) and op.mode.ephemeral for op in request.ops)
    return False


class PartialMachine(ZkStateMachine):
    """ZooKeeper's machine without its session table: the entries come with their sessions
    already checked; only `closed` is known, and it refuses ephemeral creates."""

    def __init__(self, *, max_data_bytes: int = MAX_DATA_BYTES) -> None:
        super().__init__(max_data_bytes=max_data_bytes)
        self.closed: set[int] = set()

    def run_entry(self, txn: Txn) -> Executed:
        self.now_ms = max(self.now_ms, txn.time_ms)
        self._changes, self._closed = [], []
        request = txn.request
        result: Result
        if isinstance(request, Tick):
            result = self._expire(sorted(set(request.sessions)), txn)
        elif txn.session in self.closed and creates_ephemeral(request):
            result = ErrorResult(Err.SESSION_EXPIRED)
        else:
            result = self._execute(txn)
        self.closed.update(self._closed)
        return Executed(result, self._changes, self._closed)


class ShardMachine(PartialMachine):
    def __init__(self, shard: int, nshards: int, *,
                 max_data_bytes: int = MAX_DATA_BYTES) -> None:
        if not 0 <= shard < nshards:
            raise ValueError(f"shard {shard} is not one of 0..{nshards - 1}")
        super().__init__(max_data_bytes=max_data_bytes)
        self.shard, self.nshards = shard, nshards
        for path in [p for p in self.tree.nodes if not self.owns(p)]:
            self.tree.unplace(path)

    def owns(self, path: str) -> bool:
        return shard_of(path, self.nshards) == self.shard

    def ephemerals_of(self, session: int) -> list[str]:
        return self.tree.ephemerals_of(session)

    # ----- an operation of this shard alone

    def execute(self, txn: Txn) -> Executed:
        p = plan(txn.request, self.nshards)
        if p.shards != (self.shard,):
            raise ValueError(f"{type(txn.request).__name__} touches shards {list(p.shards)}, "
                             f"not shard {self.shard} alone")
        return self.run_entry(txn)

    # ----- an operation of several shards, held at this shard's number for it

    def views(self, req: ViewRequest) -> ViewReply:
        wanted = dict.fromkeys(p for p in req.paths if self.owns(p))
        nodes = [NodeView(p, _state(self.tree.get(p))) for p in wanted]
        owned: set[str] = set()
        for session in req.ephemerals_of:
            owned.update(self.tree.ephemerals_of(session))
        count = 0 if req.count_under is None else self._count_below(req.count_under)
        asked = {*req.ephemerals_of, req.session} - {0}
        return ViewReply(nodes, sorted(owned), count, sorted(asked & self.closed))

    def _count_below(self, path: str) -> int:
        prefix = paths.join(path, "")
        return sum(p != path and p.startswith(prefix) for p in self.tree.nodes)

    def decide(self, d: Decision) -> None:
        self.check(d)
        for w in d.writes:
            if isinstance(w, Put):
                self.tree.place(w.path, w.node.znode())
            else:
                self.tree.unplace(w.path)
        self.closed.update(d.closed_sessions)
        self.last_zxid = max(self.last_zxid, d.zxid)

    def check(self, d: Decision) -> None:
        """Refuse (ValueError, one line) a decision this shard must not apply, before any
        write: a node that is not this shard's, a malformed one, a path written twice."""
        seen: set[str] = set()
        for w in d.writes:
            if w.path in seen:
                raise ValueError(f"decision writes {w.path!r} twice")
            seen.add(w.path)
            if not self.owns(w.path):
                raise ValueError(f"{w.path!r} belongs to shard "
                                 f"{shard_of(w.path, self.nshards)}, not {self.shard}")
            try:
                paths.validate(w.path)
            except paths.BadPath as e:
                raise ValueError(f"decision writes a bad path: {e}") from None
            if isinstance(w, Put):
                _check_node(w.path, w.node)
            elif w.path == paths.ROOT:
                raise ValueError("decision removes the root")


def _state(node: Znode | None) -> NodeState | None:
    return None if node is None else NodeState.of(node)


def _check_node(path: str, node: NodeState) -> None:
    names = node.children
    if names != sorted(set(names)):
        raise ValueError(f"children of {path!r} must be sorted and distinct")
    if any(not n or "/" in n for n in names):
        raise ValueError(f"children of {path!r} must be plain names")
    if node.ephemeral_owner and names:
        raise ValueError(f"ephemeral {path!r} cannot have children")
