"""A sharded ZooKeeper in one process, for equivalence tests: N ShardMachines, a session table
standing in for the proxies, local ops run at their shard, the others through TxnRun rounds.
Every message crosses a msgpack round trip, as it would cross a socket."""

from __future__ import annotations

from collections import Counter
from typing import Any, TypeVar

import msgspec

from nodes.zk import requests as rq
from nodes.zk import results as rs
from nodes.zk.codes import Err
from nodes.zk.coordinate import TxnRun
from nodes.zk.machine import Applied, Change
from nodes.zk.sessions import DEFAULT_TICK_MS, SessionTable
from nodes.zk.shard_machine import (
    Decision,
    Executed,
    NodeState,
    ShardMachine,
    ViewReply,
    ViewRequest,
)
from nodes.zk.shards import plan, shard_of
from nodes.zk.tree import DataTree

T = TypeVar("T")


def wire(message: Any, kind: type[T]) -> T:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(message), type=kind)


class ShardedSim:
    def __init__(self, nshards: int, *, tick_ms: int = DEFAULT_TICK_MS) -> None:
        self.nshards = nshards
        self.shards = [ShardMachine(k, nshards) for k in range(nshards)]
        self.sessions = SessionTable(tick_ms)
        self.now_ms = 0
        # Per shard, the changes its decisions and local runs fired (for routing checks).
        self.fired: list[Counter[Change]] = [Counter() for _ in range(nshards)]
        self.coordinated = 0  # operations run through TxnRun

    def apply(self, txn: rq.Txn) -> Applied:
        """The proxies' part (sessions), then the shards'."""
        self.now_ms = max(self.now_ms, txn.time_ms)
        request = txn.request
        if isinstance(request, rq.CreateSession):
            s = self.sessions.open(request.timeout_ms, txn.zxid, self.now_ms)
            return Applied(rs.SessionResult(s.id, s.timeout_ms, s.password), [], [], txn.zxid)
        if isinstance(request, rq.Tick):
            expiring = rq.Tick(self.sessions.expired(self.now_ms))
            txn = rq.Txn(txn.session, txn.time_ms, expiring, txn.zxid)
        elif txn.session and not self.sessions.touch(txn.session, self.now_ms):
            return Applied(rs.ErrorResult(Err.SESSION_EXPIRED), [], [], txn.zxid)
        elif isinstance(request, rq.Ping):
            return Applied(rs.OkResult(), [], [], txn.zxid)
        result, changes, closed = self.run(txn)
        for session in closed:
            self.sessions.close(session)
        return Applied(result, changes, closed, txn.zxid)

    def run(self, txn: rq.Txn) -> tuple[rs.Result, list[Change], list[int]]:
        p = plan(txn.request, self.nshards)
        if p.local:
            (k,) = p.shards
            done = wire(self.shards[k].execute(wire(txn, rq.Txn)), Executed)
            self.fired[k].update(done.changes)
            for change in done.changes:
                assert shard_of(change.path, self.nshards) == k, change
            return done.result, done.changes, done.closed_sessions
        coordinator = TxnRun(txn, self.nshards)
        self.coordinated += 1
        while wanted := coordinator.wanted():
            for k, ask in wanted.items():
                reply = self.shards[k].views(wire(ask, ViewRequest))
                coordinator.feed(k, wire(reply, ViewReply))
        outcome = coordinator.outcome()
        assert sorted(outcome.decisions) == list(p.shards)
        for k, decision in outcome.decisions.items():
            self.shards[k].decide(wire(decision, Decision))
            self.fired[k].update(decision.changes)
        routed = Counter(c for d in outcome.decisions.values() for c in d.changes)
        assert routed == Counter(outcome.changes)
        closed = outcome.decisions[p.shards[0]].closed_sessions
        return outcome.result, outcome.changes, closed

    # ----- the state, for comparing with one machine

    def nodes(self) -> dict[str, NodeState]:
        out: dict[str, NodeState] = {}
        for shard in self.shards:
            for path, node in shard.tree.nodes.items():
                assert path not in out, f"{path} held by two shards"
                assert shard.owns(path), f"{path} held by shard {shard.shard}"
                out[path] = NodeState.of(node)
        return out

    def ephemerals(self) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for shard in self.shards:
            for owner, owned in shard.tree.ephemerals.items():
                out.setdefault(owner, set()).update(owned)
        return out


def tree_nodes(tree: DataTree) -> dict[str, NodeState]:
    return {path: NodeState.of(node) for path, node in tree.nodes.items()}
