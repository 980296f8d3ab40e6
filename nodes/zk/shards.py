"""Which shard holds a znode, and which shards an operation touches: ONE rule, used by every
component of the sharded service (proxies, shard replicas, checkers).

A node (data, stat, acl, owner and its own children-name set) lives in `shard_of(path)`.
A sequential create's name is fixed only when the parent's cversion is read, so the shard is
computed from the path without its sequential suffix: `normalize` strips the suffix that
`f"{n:010d}"` of a Java int gives (ten digits, or "-" and nine digits), and the node of a
sequential create of `p` lives where `p + suffix` does, which is the hash of `p` itself.

`plan` never raises: a path that is not valid still has a shard, and the code that runs the
operation there answers ZooKeeper's error for it.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from nodes.zk import paths
from nodes.zk.codes import AddWatchMode
from nodes.zk.requests import (
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
    MultiRead,
    Ping,
    Request,
    SetAcl,
    SetData,
    Sync,
    Tick,
)

SUFFIX_LEN = 10  # f"{n:010d}" of an int32 in [-999_999_999, 2**31 - 1]
_SUFFIX = re.compile(r"(?:\d{10}|-\d{9})\Z")


def normalize(path: str) -> str:
    """`path` without the sequential suffix of its last segment (if it ends in one).

    The segment may be the suffix alone (a sequential create of "/q/" names "/q/0000000004"):
    it is stripped then too, so that every name a sequential create of a prefix can produce
    maps to that prefix and its shard is known before the name is."""
    last = path[path.rfind("/") + 1:]
    if len(last) >= SUFFIX_LEN and _SUFFIX.search(last):
        return path[:-SUFFIX_LEN]
    return path


def _hash_shard(key: str, nshards: int) -> int:
    if nshards < 1:
        raise ValueError(f"nshards must be at least 1, not {nshards}")
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % nshards


def shard_of(path: str, nshards: int) -> int:
    return _hash_shard(normalize(path), nshards)


def create_shard(request: Create, nshards: int) -> int:
    """The shard of the node a create makes (for a sequential one: whatever suffix it gets)."""
    if request.mode.sequential:
        return _hash_shard(request.path, nshards)
    return shard_of(request.path, nshards)


class Plan(msgspec.Struct, frozen=True, array_like=True):
    """The shards an operation touches (sorted, distinct), whether it runs whole on one shard,
    and the paths whose state a coordinator needs for it (in the order it meets them)."""

    shards: tuple[int, ...]
    local: bool
    paths: tuple[str, ...] = ()


def _parent(path: str) -> str:
    # The parent a create or delete looks up (machine.py's rule, also for paths without "/").
    return paths.parent(path)


def _touches(request: Request, nshards: int) -> tuple[set[int], list[str]]:
    """(shards, paths) of one operation; every shard when the op may touch any node."""
    every = set(range(nshards))
    if isinstance(request, Create):
        parent = _parent(request.path)
        node_paths = [parent] if request.mode.sequential else [request.path, parent]
        return {create_shard(request, nshards), shard_of(parent, nshards)}, node_paths
    if isinstance(request, Delete):
        parent = _parent(request.path)
        return ({shard_of(request.path, nshards), shard_of(parent, nshards)},
                [request.path, parent])
    if isinstance(request, AddWatch) and request.mode == AddWatchMode.PERSISTENT_RECURSIVE:
        return every, [request.path]
    if isinstance(request, (SetData, GetData, Exists, GetChildren, GetAcl, SetAcl, Check, Sync,
                            AddWatch)):
        return {shard_of(request.path, nshards)}, [request.path]
    if isinstance(request, (Multi, MultiRead)):
        shards: set[int] = set()
        wanted: list[str] = []
        for op in request.ops:
            op_shards, op_paths = _touches(op, nshards)
            shards |= op_shards
            wanted += [p for p in op_paths if p not in wanted]
        return shards, wanted
    if isinstance(request, GetAllChildrenNumber):
        return every, [request.path]
    if isinstance(request, (CloseSession, Tick, GetEphemerals)):
        return every, []
    if isinstance(request, (CreateSession, Ping)):
        return set(), []
    raise TypeError(f"no shard rule for {type(request).__name__}")


def plan(request: Request, nshards: int) -> Plan:
    if nshards < 1:
        raise ValueError(f"nshards must be at least 1, not {nshards}")
    shards, wanted = _touches(request, nshards)
    ordered = tuple(sorted(shards))
    return Plan(ordered, len(ordered) == 1, tuple(wanted))


def counts(p: Plan, nshards: int) -> list[int]:
    """How many numbers the operation takes in each sequence space: 1 where it touches."""
    return [1 if k in p.shards else 0 for k in range(nshards)]
