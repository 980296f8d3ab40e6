"""The znode store: nodes by full path, their children, the ephemeral index, and the
bookkeeping ZooKeeper's DataTree does on every change (stat fields, parent's cversion/pzxid).

It checks nothing a client could get wrong (that is `machine.py`'s job, with ZooKeeper's
error codes); it only refuses calls that would break its own invariants. A journal lets a
multi stage its ops on the real tree and roll all of them back when one fails.
"""

from __future__ import annotations

from collections.abc import Iterator

from nodes.zk import paths
from nodes.zk.requests import OPEN_ACL_UNSAFE, Acl
from nodes.zk.stat import Stat

# ZooKeeper's own subtree, as a 3.8 server starts with it (`ls /` shows zookeeper).
ZOOKEEPER = "/zookeeper"
QUOTA = "/zookeeper/quota"
CONFIG = "/zookeeper/config"
SPECIAL = frozenset((paths.ROOT, ZOOKEEPER, QUOTA, CONFIG))  # never deleted
_READ_ONLY = [Acl(1, "world", "anyone")]


class Znode:
    # cversion here is ZooKeeper's stored one: the number of child creates.
    __slots__ = ("data", "acl", "czxid", "mzxid", "ctime", "mtime", "version", "cversion",
                 "aversion", "ephemeral_owner", "pzxid", "children")

    def __init__(self, data: bytes, acl: list[Acl], zxid: int, time_ms: int,
                 ephemeral_owner: int = 0) -> None:
        self.data = data
        self.acl = acl
        self.czxid = self.mzxid = self.pzxid = zxid
        self.ctime = self.mtime = time_ms
        self.version = self.cversion = self.aversion = 0
        self.ephemeral_owner = ephemeral_owner
        self.children: set[str] = set()

    def stat(self) -> Stat:
        # ZooKeeper stores the number of child creates (the sequential suffix) and reports
        # creates + deletes, i.e. 2 x creates - children (DataNode.copyStat, "v3 semantics"),
        # as a wrapping Java int: /zookeeper, born with two children, reports -2.
        reported = _int32(2 * self.cversion - len(self.children))
        return Stat(czxid=self.czxid, mzxid=self.mzxid, ctime=self.ctime, mtime=self.mtime,
                    version=self.version, cversion=reported, aversion=self.aversion,
                    ephemeralOwner=self.ephemeral_owner, dataLength=len(self.data),
                    numChildren=len(self.children), pzxid=self.pzxid)

    def copy(self) -> Znode:
        twin = Znode.__new__(Znode)
        for field in Znode.__slots__:
            setattr(twin, field, getattr(self, field))
        twin.acl = list(self.acl)
        twin.children = set(self.children)
        return twin


class DataTree:
    def __init__(self) -> None:
        root = Znode(b"", list(OPEN_ACL_UNSAFE), 0, 0)
        self.nodes: dict[str, Znode] = {paths.ROOT: root}
        self.ephemerals: dict[int, set[str]] = {}
        self._journal: dict[str, Znode | None] | None = None
        for path in (ZOOKEEPER, QUOTA):
            self._link(path, Znode(b"", list(OPEN_ACL_UNSAFE), 0, 0))
        config = Znode(b"", list(_READ_ONLY), 0, 0)
        config.aversion = -1
        self._link(CONFIG, config)

    # ----- reading

    def get(self, path: str) -> Znode | None:
        return self.nodes.get(path)

    def __contains__(self, path: str) -> bool:
        return path in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def items(self) -> Iterator[tuple[str, Znode]]:
        """Every node, by path in sorted order (deterministic for snapshots)."""
        for path in sorted(self.nodes):
            yield path, self.nodes[path]

    def ephemerals_of(self, owner: int) -> list[str]:
        return sorted(self.ephemerals.get(owner, ()))

    # ----- changing (caller has checked ZooKeeper's preconditions)

    def create(self, path: str, data: bytes, acl: list[Acl], zxid: int, time_ms: int,
               ephemeral_owner: int = 0) -> Znode:
        parent_path = paths.parent(path)
        parent = self.nodes[parent_path]
        if path in self.nodes or parent.ephemeral_owner:
            raise ValueError(f"cannot create {path!r}")
        self._save(parent_path)
        self._save(path)
        node = Znode(data, list(acl), zxid, time_ms, ephemeral_owner)
        self._link(path, node)
        parent.cversion = _next_int32(parent.cversion)
        parent.pzxid = zxid
        return node

    def delete(self, path: str, zxid: int) -> None:
        """Unlink a childless node: the parent's pzxid moves to the delete's zxid; its stored
        cversion (creates) stays, the reported one counts the delete (see Znode.stat)."""
        node = self.nodes[path]
        if node.children or path in SPECIAL:
            raise ValueError(f"cannot delete {path!r}")
        parent_path = paths.parent(path)
        self._save(parent_path)
        self._save(path)
        parent = self.nodes[parent_path]
        parent.children.discard(paths.name(path))
        parent.pzxid = max(parent.pzxid, zxid)
        del self.nodes[path]
        self._unindex(path, node)

    def set_data(self, path: str, data: bytes, zxid: int, time_ms: int) -> Znode:
        self._save(path)
        node = self.nodes[path]
        node.data = data
        node.version = _next_int32(node.version)
        node.mzxid = zxid
        node.mtime = time_ms
        return node

    def set_acl(self, path: str, acl: list[Acl]) -> Znode:
        self._save(path)
        node = self.nodes[path]
        node.acl = list(acl)
        node.aversion = _next_int32(node.aversion)
        return node

    def restore_node(self, path: str, node: Znode) -> None:
        """Put back a node read from a snapshot, parents before children (the caller has
        validated it); the nodes every tree starts with are replaced in place."""
        existing = self.nodes.get(path)
        if existing is None:
            self._link(path, node)
            return
        node.children = existing.children
        self.nodes[path] = node
        self._index(path, node)

    # ----- whole nodes, placed as they are (a partial tree: a shard's, a coordinator's)

    def place(self, path: str, node: Znode) -> None:
        """Put a whole node at `path`, replacing any there, leaving its parent alone (the
        parent may live elsewhere; its children set already names this node)."""
        old = self.nodes.get(path)
        if old is not None:
            self._unindex(path, old)
        self.nodes[path] = node
        self._index(path, node)

    def unplace(self, path: str) -> None:
        node = self.nodes.pop(path, None)
        if node is not None:
            self._unindex(path, node)

    # ----- the multi journal

    def begin(self) -> None:
        self._journal = {}

    def commit(self) -> None:
        self._journal = None

    def rollback(self) -> None:
        journal, self._journal = self._journal, None
        for path, before in (journal or {}).items():
            now = self.nodes.pop(path, None)
            if now is not None:
                self._unindex(path, now)
            if before is not None:
                self.nodes[path] = before
                self._index(path, before)

    def _save(self, path: str) -> None:
        """Record a node's state before its first change inside a multi."""
        if self._journal is not None and path not in self._journal:
            node = self.nodes.get(path)
            self._journal[path] = None if node is None else node.copy()

    # ----- internals

    def _link(self, path: str, node: Znode) -> None:
        self.nodes[paths.parent(path)].children.add(paths.name(path))
        self.nodes[path] = node
        self._index(path, node)

    def _index(self, path: str, node: Znode) -> None:
        if node.ephemeral_owner:
            self.ephemerals.setdefault(node.ephemeral_owner, set()).add(path)

    def _unindex(self, path: str, node: Znode) -> None:
        owned = self.ephemerals.get(node.ephemeral_owner)
        if owned is not None:
            owned.discard(path)
            if not owned:
                del self.ephemerals[node.ephemeral_owner]


def _int32(n: int) -> int:
    return (n + 2**31) % 2**32 - 2**31


def _next_int32(counter: int) -> int:
    """Versions are jute ints: they wrap as Java's do (a sequential suffix may then read
    "-000000001", as in ZooKeeper) instead of outgrowing the wire format."""
    return _int32(counter + 1)
