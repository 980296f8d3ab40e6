"""What a ZooKeeper client asks, as typed records the tree applies (msgspec, so a log entry
can carry them), and the log entry itself (`Txn`).

The wire codec turns jute records into these; several opcodes share one record (create,
create2, createContainer and createTTL are all a `Create`; getChildren and getChildren2 are a
`GetChildren`): the reply's shape is the codec's business, the semantics are the tree's.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

from nodes.zk.codes import AddWatchMode, CreateMode

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
SessionId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]

ANY_VERSION = -1


class Acl(msgspec.Struct, frozen=True, array_like=True):
    perms: Int32
    scheme: str
    id: str


PERM_ALL = 31  # read | write | create | delete | admin
OPEN_ACL_UNSAFE = (Acl(PERM_ALL, "world", "anyone"),)


def _open_acl() -> list[Acl]:
    return list(OPEN_ACL_UNSAFE)


class _Request(msgspec.Struct, frozen=True, tag=True, array_like=True):
    pass


class Create(_Request, frozen=True):
    path: str
    data: bytes = b""
    acl: list[Acl] = msgspec.field(default_factory=_open_acl)
    mode: CreateMode = CreateMode.PERSISTENT
    ttl: Int64 = 0


class _Versioned(_Request, frozen=True):
    path: str
    version: Int32 = ANY_VERSION


class Delete(_Versioned, frozen=True):
    pass


class Check(_Versioned, frozen=True):
    pass


class SetData(_Request, frozen=True):
    path: str
    data: bytes
    version: Int32 = ANY_VERSION


class _Read(_Request, frozen=True):
    path: str
    watch: bool = False


class GetData(_Read, frozen=True):
    pass


class Exists(_Read, frozen=True):
    pass


class GetChildren(_Read, frozen=True):
    pass


class GetAcl(_Request, frozen=True):
    path: str


class SetAcl(_Request, frozen=True):
    path: str
    acl: list[Acl]
    version: Int32 = ANY_VERSION  # compared with the node's aversion


class Sync(_Request, frozen=True):
    path: str


class GetEphemerals(_Request, frozen=True):
    """The session's own ephemeral nodes whose paths start with `prefix` ("/": all)."""

    prefix: str = "/"


class GetAllChildrenNumber(_Request, frozen=True):
    """How many nodes lie below `path` (all depths)."""

    path: str


class MultiRead(_Request, frozen=True):
    """Independent reads in one entry: each answers on its own, none sets a watch."""

    ops: list[Union[GetData, GetChildren]]  # noqa: UP007 - msgspec needs a real Union


MultiOp = Union[Create, Delete, SetData, Check]  # noqa: UP007 - msgspec needs a real Union


class Multi(_Request, frozen=True):
    ops: list[MultiOp]


class AddWatch(_Request, frozen=True):
    path: str
    mode: AddWatchMode = AddWatchMode.PERSISTENT


class CreateSession(_Request, frozen=True):
    timeout_ms: Int32


class CloseSession(_Request, frozen=True):
    pass


class Ping(_Request, frozen=True):
    """Keeps the entry's session alive (its last-heard time becomes the entry's time)."""


class Tick(_Request, frozen=True):
    """The leader's clock, in the log: expires every session silent for longer than its
    timeout at the entry's time, so every replica expires the same sessions at the same
    log position.

    A sharded service decides the expiry where the sessions live and carries the sessions
    to close in `sessions`; the single machine decides it itself and ignores the field."""

    sessions: list[SessionId] = []


Request = Union[  # noqa: UP007 - msgspec needs a real Union of the tagged Structs
    Create, Delete, SetData, Check, GetData, Exists, GetChildren, GetAcl, SetAcl, Sync, Multi,
    MultiRead, GetEphemerals, GetAllChildrenNumber, AddWatch, CreateSession, CloseSession, Ping,
    Tick,
]

# Requests that change the replicated state (or may): they take a zxid.
WRITES = (Create, Delete, SetData, SetAcl, Multi, CreateSession, CloseSession, Tick)


class Txn(msgspec.Struct, frozen=True, array_like=True):
    """One log entry for the tree. `time_ms` is the proposing leader's clock, never the
    replica's; `zxid` 0 lets the tree number writes itself (last zxid + 1)."""

    session: SessionId  # 0: the system itself (no session; cannot own ephemerals)
    time_ms: Int64
    request: Request
    zxid: Int64 = 0


class SetWatches(msgspec.Struct, frozen=True, array_like=True):
    """A reconnecting client's watches (setWatches / setWatches2), re-registered against the
    tree as of `relative_zxid`: what changed since then fires at once. Connection-local:
    it goes to the watch table, never into the log."""

    relative_zxid: Int64
    data: list[str] = []
    exist: list[str] = []
    child: list[str] = []
    persistent: list[str] = []
    persistent_recursive: list[str] = []
