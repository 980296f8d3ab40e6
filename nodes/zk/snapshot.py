"""Snapshot and restore of the replicated ZooKeeper state (tree + sessions).

The bytes are deterministic (same state, same bytes: nodes by path, sessions by id, no sets
or maps), so replicas can compare snapshots. A snapshot is checked where it enters, before
any state is built: structure by msgspec, then the tree's invariants; a bad one raises
SnapshotError with one line saying why.
"""

from __future__ import annotations

import msgspec

from nodes.zk import paths
from nodes.zk.machine import ZkStateMachine
from nodes.zk.requests import Acl, Int32, Int64
from nodes.zk.sessions import Session
from nodes.zk.tree import SPECIAL, Znode

FORMAT = 1


class SnapshotError(ValueError):
    pass


class SnapNode(msgspec.Struct, frozen=True, array_like=True):
    path: str
    data: bytes
    acl: list[Acl]
    czxid: Int64
    mzxid: Int64
    ctime: Int64
    mtime: Int64
    version: Int32
    cversion: Int32
    aversion: Int32
    ephemeral_owner: Int64
    pzxid: Int64


class Snapshot(msgspec.Struct, frozen=True, array_like=True):
    format: int
    last_zxid: Int64
    now_ms: Int64
    tick_ms: Int32
    max_data_bytes: Int32
    sessions: list[Session]
    nodes: list[SnapNode]


def take(machine: ZkStateMachine) -> bytes:
    nodes = [
        SnapNode(path, n.data, list(n.acl), n.czxid, n.mzxid, n.ctime, n.mtime, n.version,
                 n.cversion, n.aversion, n.ephemeral_owner, n.pzxid)
        for path, n in machine.tree.items()
    ]
    sessions = [machine.sessions.sessions[sid] for sid in sorted(machine.sessions.sessions)]
    return msgspec.msgpack.encode(Snapshot(
        FORMAT, machine.last_zxid, machine.now_ms, machine.sessions.tick_ms,
        machine.max_data_bytes, sessions, nodes))


def restore(blob: bytes) -> ZkStateMachine:
    try:
        snap = msgspec.msgpack.decode(blob, type=Snapshot)
    except msgspec.DecodeError as e:
        raise SnapshotError(f"unreadable ZooKeeper snapshot: {e}") from None
    _check(snap)
    machine = ZkStateMachine(tick_ms=snap.tick_ms, max_data_bytes=snap.max_data_bytes)
    machine.last_zxid, machine.now_ms = snap.last_zxid, snap.now_ms
    for s in snap.sessions:
        machine.sessions.sessions[s.id] = Session(s.id, s.password, s.timeout_ms,
                                                  s.last_heard_ms)
    for n in snap.nodes:  # sorted by path: every parent comes before its children
        node = Znode(n.data, list(n.acl), n.czxid, n.ctime, n.ephemeral_owner)
        node.mzxid, node.mtime, node.pzxid = n.mzxid, n.mtime, n.pzxid
        node.version, node.cversion, node.aversion = n.version, n.cversion, n.aversion
        machine.tree.restore_node(n.path, node)
    return machine


def _check(snap: Snapshot) -> None:
    def bad(why: str) -> SnapshotError:
        return SnapshotError(f"bad ZooKeeper snapshot: {why}")

    if snap.format != FORMAT:
        raise bad(f"format {snap.format}, this code reads {FORMAT}")
    if snap.tick_ms <= 0 or snap.max_data_bytes <= 0 or snap.last_zxid < 0:
        raise bad("tick, data limit and zxid must be positive")
    session_ids = [s.id for s in snap.sessions]
    if session_ids != sorted(set(session_ids)) or any(i <= 0 for i in session_ids):
        raise bad("session ids must be positive, unique and ascending")
    if any(len(s.password) != 16 or s.timeout_ms <= 0 for s in snap.sessions):
        raise bad("a session needs a 16-byte password and a positive timeout")
    node_paths = [n.path for n in snap.nodes]
    if node_paths != sorted(set(node_paths)):
        raise bad("node paths must be unique and sorted")
    known = set(node_paths)
    if not SPECIAL <= known:
        raise bad(f"the tree must hold {sorted(SPECIAL)}")
    live_sessions = set(session_ids)
    owners: dict[str, int] = {}
    for n in snap.nodes:
        try:
            paths.validate(n.path)
        except paths.BadPath as e:
            raise bad(str(e)) from None
        if n.path != paths.ROOT:
            parent = paths.parent(n.path)
            if parent not in known:
                raise bad(f"{n.path} has no parent")
            if owners.get(parent):
                raise bad(f"{n.path} is the child of an ephemeral node")
        owners[n.path] = n.ephemeral_owner
        if n.ephemeral_owner and n.ephemeral_owner not in live_sessions:
            raise bad(f"{n.path} is owned by unknown session {n.ephemeral_owner}")
        if len(n.data) > snap.max_data_bytes:
            raise bad(f"{n.path} holds more data than the limit")
        if max(n.czxid, n.mzxid, n.pzxid) > snap.last_zxid or min(
                n.czxid, n.mzxid, n.pzxid) < 0:
            raise bad(f"{n.path} has zxids outside 0..{snap.last_zxid}")
