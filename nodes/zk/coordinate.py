"""The coordinator of one multi-shard operation: pure, multi-round.

Every touched shard is held at the operation's number and asked for views (`wanted`, then
`feed` each reply). Once it has what it needs the coordinator runs the operation with
ZooKeeper's own code (`PartialMachine`, i.e. `ZkStateMachine`'s handlers) on a scratch tree
built from the views, and diffs the tree before and after into whole-node writes for the
shards that own them (`outcome`). A node named only in a viewed parent's children set is a
stub: it exists (so creates over it answer NodeExists and sequential names collide as in
ZooKeeper), but reading it asks its shard for a view in another round.

A session close (CloseSession, or a Tick that expires sessions) takes two rounds: the
sessions' ephemerals from every shard, then those nodes and their parents.
"""

from __future__ import annotations

import msgspec

from nodes.zk import paths
from nodes.zk.machine import MAX_DATA_BYTES, Change
from nodes.zk.requests import (
    WRITES,
    CloseSession,
    GetAllChildrenNumber,
    GetEphemerals,
    Tick,
    Txn,
)
from nodes.zk.results import CountResult, Result
from nodes.zk.shard_machine import (
    Decision,
    NodeState,
    PartialMachine,
    Put,
    Remove,
    ViewReply,
    ViewRequest,
    Write,
)
from nodes.zk.shards import plan, shard_of
from nodes.zk.tree import DataTree, Znode


class TxnOutcome(msgspec.Struct, frozen=True, array_like=True):
    result: Result
    decisions: dict[int, Decision]  # every touched shard, written to or not
    zxid: int
    changes: list[Change] = []  # all of them, in ZooKeeper's order (each decision has its own)


class _Unseen(Exception):
    """The operation needs a node no view has shown yet."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class ScratchTree(DataTree):
    """A tree of the viewed nodes and stubs for the children they name. Existence is known
    for a viewed path and for any path whose parent is a viewed (or since created) node;
    asking about anything else, or reading a stub, raises _Unseen."""

    def __init__(self, views: dict[str, NodeState | None]) -> None:
        super().__init__()
        self.nodes, self.ephemerals = {}, {}
        self.seen = set(views)
        self.stubs: dict[str, Znode] = {}
        for path, state in views.items():
            if state is not None:
                self.place(path, state.znode())
        for path, state in views.items():
            for name in state.children if state is not None else ():
                child = paths.join(path, name)
                if child not in views:
                    self.stubs[child] = self.nodes[child] = Znode(b"", [], 0, 0)

    def _known(self, path: str) -> bool:
        if path in self.nodes or path in self.seen:
            return True
        parent = paths.parent(path)
        return parent != path and parent in self.nodes and parent not in self.stubs

    def get(self, path: str) -> Znode | None:
        if path in self.stubs or not self._known(path):
            raise _Unseen(path)
        return self.nodes.get(path)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        if path in self.nodes:
            return True
        if not self._known(path):
            raise _Unseen(path)
        return False


class _Scratch(PartialMachine):
    def __init__(self, tree: ScratchTree, closed: set[int], count: int,
                 max_data_bytes: int) -> None:
        super().__init__(max_data_bytes=max_data_bytes)
        self.tree = tree
        self.closed = set(closed)
        self.count = count

    def _count_descendants(self, req: GetAllChildrenNumber, session: int,
                           zxid: int) -> CountResult:
        # The shards counted their own nodes below the path; the lookup answers NoNode as
        # ZooKeeper does when the path itself is missing.
        self._read(req.path)
        return CountResult(self.count)


class TxnRun:
    def __init__(self, txn: Txn, nshards: int, *, max_data_bytes: int = MAX_DATA_BYTES) -> None:
        request = txn.request
        self.txn, self.nshards, self.max_data_bytes = txn, nshards, max_data_bytes
        self.plan = plan(request, nshards)
        if not self.plan.shards:
            raise ValueError(f"{type(request).__name__} touches no shard")
        if isinstance(request, WRITES) and txn.zxid <= 0:
            raise ValueError("a write run by a coordinator needs its zxid")
        self.views: dict[str, NodeState | None] = {}
        self.ephemerals: set[str] = set()
        self.count = 0
        self.closed: set[int] = set()
        self._closing = isinstance(request, (CloseSession, Tick))
        ephemerals_of: list[int] = []
        if isinstance(request, Tick):
            ephemerals_of = sorted(set(request.sessions))
        elif isinstance(request, (CloseSession, GetEphemerals)) and txn.session:
            ephemerals_of = [txn.session]
        count_under = request.path if isinstance(request, GetAllChildrenNumber) else None
        self._pending: dict[int, ViewRequest] = {
            k: ViewRequest(self._owned_by(k, self.plan.paths), ephemerals_of, count_under,
                           txn.session)
            for k in self.plan.shards}
        self._outcome: TxnOutcome | None = None

    def _owned_by(self, shard: int, wanted: tuple[str, ...] | list[str]) -> list[str]:
        return [p for p in wanted if shard_of(p, self.nshards) == shard]

    # ----- the rounds

    def wanted(self) -> dict[int, ViewRequest]:
        """Shard -> what it still has to show; empty once the outcome is known."""
        return dict(self._pending)

    def feed(self, shard: int, reply: ViewReply) -> None:
        asked = self._pending.get(shard)
        if asked is None:
            raise ValueError(f"no view is awaited from shard {shard}")
        owned = set(self._owned_by(shard, asked.paths))
        shown = {v.path: v.node for v in reply.nodes}
        if not shown.keys() <= owned:
            raise ValueError(f"shard {shard} showed nodes it was not asked for: "
                             f"{sorted(shown.keys() - owned)}")
        del self._pending[shard]
        for path in owned:
            self.views[path] = shown.get(path)
        self.ephemerals.update(reply.ephemerals)
        self.count += reply.count
        self.closed.update(reply.closed)
        if not self._pending:
            self._advance()

    def _advance(self) -> None:
        if self._closing:
            self._closing = False
            needed = {p for e in self.ephemerals for p in (e, paths.parent(e))}
            if self._ask(needed - self.views.keys()):
                return
        try:
            self._outcome = self._run()
        except _Unseen as e:
            if not self._ask({e.path}):
                raise RuntimeError(f"{e.path!r} is unseen although viewed") from None

    def _ask(self, needed: set[str]) -> bool:
        by_shard: dict[int, list[str]] = {}
        for path in sorted(needed):
            by_shard.setdefault(shard_of(path, self.nshards), []).append(path)
        for k, wanted in by_shard.items():
            if k not in self.plan.shards:
                # The plan names every shard the operation may read; anything else is a bug.
                raise RuntimeError(f"{type(self.txn.request).__name__} needs {wanted} of "
                                   f"shard {k}, which it does not hold")
            self._pending[k] = ViewRequest(wanted, session=self.txn.session)
        return bool(by_shard)

    def outcome(self) -> TxnOutcome:
        if self._outcome is None:
            raise RuntimeError(f"views still wanted from shards {sorted(self._pending)}")
        return self._outcome

    # ----- the run and its writes

    def _run(self) -> TxnOutcome:
        tree = ScratchTree(self.views)
        if isinstance(self.txn.request, GetEphemerals) and self.txn.session:
            tree.ephemerals[self.txn.session] = set(self.ephemerals)
        machine = _Scratch(tree, self.closed, self.count, self.max_data_bytes)
        executed = machine.run_entry(self.txn)
        writes: dict[int, list[Write]] = {k: [] for k in self.plan.shards}
        for write in self._diff(tree):
            self._decision_list(writes, write.path).append(write)
        changes: dict[int, list[Change]] = {k: [] for k in self.plan.shards}
        for change in executed.changes:
            self._decision_list(changes, change.path).append(change)
        zxid = self.txn.zxid if machine.last_zxid else 0
        decisions = {k: Decision(writes[k], changes[k], list(executed.closed_sessions), zxid)
                     for k in self.plan.shards}
        return TxnOutcome(executed.result, decisions, self.txn.zxid, executed.changes)

    def _decision_list(self, by_shard: dict[int, list], path: str) -> list:
        k = shard_of(path, self.nshards)
        if k not in by_shard:
            raise RuntimeError(f"{path!r} belongs to shard {k}, which the operation "
                               f"does not hold")
        return by_shard[k]

    def _diff(self, tree: ScratchTree) -> list[Write]:
        after = {p: NodeState.of(n) for p, n in tree.nodes.items() if p not in tree.stubs}
        for path, stub in tree.stubs.items():
            if tree.nodes.get(path) is not stub or stub.data or stub.children:
                raise RuntimeError(f"the operation changed {path!r} without viewing it")
        out: list[Write] = []
        for path in sorted(self.views.keys() | after.keys()):
            before, now = self.views.get(path), after.get(path)
            if now is None and before is not None:
                out.append(Remove(path))
            elif now is not None and now != before:
                out.append(Put(path, now))
        return out
