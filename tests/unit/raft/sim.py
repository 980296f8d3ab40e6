"""A deterministic simulator for ``nodes.raft`` and the invariant checker it runs.

One ``random.Random`` seeded from the scenario drives everything: per-message delay,
loss, duplication and reordering, network partitions that heal, crash-restarts of nodes
on their surviving ``MemoryStorage``, proposals, forced elections and log compaction.
Time is counted in slots; every node ticks once per ``SLOTS_PER_TICK`` slots at its own
phase, and messages are delivered at slot granularity, so ticks and deliveries interleave.

After every single operation on a node (tick, step, propose, campaign, compact) the
``Checker`` verifies:

* Election Safety: at most one leader per term, ever;
* Log Matching: an (index, term) pair always names the same entry with the same
  predecessor term, which by induction makes the prefixes identical;
* Leader Completeness: an entry committed in some term is in the log of every leader of
  a later term;
* State Machine Safety: the state after applying index i is the same on every node that
  gets there, whether it got there entry by entry or from a snapshot; entries are
  handed out contiguously, each exactly once per incarnation.

A run has a chaos phase followed by a calm one (network healed, everyone restarted, no
loss). Liveness: in the calm phase a stable leader must emerge within a bounded number
of ticks, and proposals made to it must then be applied on every node within a bound.

A failure raises ``SimFailure`` whose message names the scenario and shows the last
events; replay a seed with ``python -m tests.unit.raft.sim SEED --nodes N --trace``.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import zlib
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import msgspec

from nodes.raft import (
    MemoryStorage,
    RaftConfig,
    RaftLog,
    RaftMessage,
    RaftNode,
    Ready,
    Role,
)

SLOTS_PER_TICK = 4
LEADER = Role.LEADER


class SimFailure(AssertionError):
    pass


class InvariantViolation(AssertionError):
    pass


class LivenessFailure(AssertionError):
    pass


# ---------------------------------------------------------------------------- checker


class _NodeView:
    """What the checker remembers about one node between checks."""

    __slots__ = ("tip_index", "tip_entry", "seen_commit", "leader_term")

    def __init__(self) -> None:
        self.tip_index = 0
        self.tip_entry: Any = None
        self.seen_commit = 0
        self.leader_term = -1


class Checker:
    """Raft's safety properties, checked incrementally from observations of nodes.

    It relies only on the public face of a node (role, term, commit index, the log in its
    storage) and on what the host applied, so it can be fed hand-made observations too.
    """

    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> the node that led it
        # (index, term) -> (data, term of index - 1)
        self.entries: dict[tuple[int, int], tuple[bytes, int | None]] = {}
        # index -> [entry term, upper bound on the term in which it was committed]
        self.committed: dict[int, list[int]] = {}
        self.max_committed = 0
        self.digests: dict[int, int] = {0: 0}  # applied index -> state digest
        self.views: dict[int, _NodeView] = {}
        self.current_leaders: dict[int, tuple[int, RaftLog]] = {}  # node -> (term, log)

    def view(self, nid: int) -> _NodeView:
        v = self.views.get(nid)
        if v is None:
            v = self.views[nid] = _NodeView()
        return v

    # Election Safety ------------------------------------------------------------------

    def observe_leader(self, nid: int, term: int, log: RaftLog | None = None) -> None:
        other = self.leaders.setdefault(term, nid)
        if other != nid:
            raise InvariantViolation(
                f"election safety: nodes {other} and {nid} both led term {term}"
            )
        v = self.view(nid)
        if log is not None:
            self.current_leaders[nid] = (term, log)
            if v.leader_term != term:
                v.leader_term = term
                self._check_leader_has_committed(nid, term, log)

    def observe_not_leader(self, nid: int) -> None:
        self.current_leaders.pop(nid, None)

    # Log Matching -----------------------------------------------------------------------

    def observe_log(self, nid: int, log: RaftLog, full: bool = False) -> None:
        v = self.view(nid)
        entries = log.entries
        off = log.offset
        last = off + len(entries)
        start = off + 1
        tip = v.tip_index
        if not full and off < tip <= last and entries[tip - off - 1] is v.tip_entry:
            # Unchanged up to the tip seen last time: only the new entries need a look.
            start = tip + 1
        record = self.entries
        for i in range(start, last + 1):
            k = i - off - 1
            e = entries[k]
            if e.index != i:
                raise InvariantViolation(f"log: node {nid} holds index {e.index} at {i}")
            prev_term = entries[k - 1].term if k else log.snap_term
            if e.term < prev_term:
                raise InvariantViolation(f"log: node {nid} term decreases at index {i}")
            key = (i, e.term)
            val = (e.data, prev_term)
            old = record.get(key)
            if old is None:
                record[key] = val
            elif old != val:
                raise InvariantViolation(
                    f"log matching: node {nid} has (index {i}, term {e.term}) = {val}, "
                    f"seen before as {old}"
                )
        v.tip_index = last
        v.tip_entry = entries[-1] if entries else None

    # Leader Completeness ----------------------------------------------------------------

    def observe_commit(self, nid: int, term: int, commit: int, log: RaftLog) -> None:
        v = self.view(nid)
        seen = v.seen_commit
        if commit <= seen:
            v.seen_commit = commit  # a restart starts again from the snapshot
            return
        committed = self.committed
        for i in range(max(seen + 1, log.offset + 1), commit + 1):
            t = log.term(i)
            if t is None:
                raise InvariantViolation(f"commit: node {nid} committed {i} beyond its log")
            rec = committed.get(i)
            if rec is None:
                committed[i] = rec = [t, term]
                if i > self.max_committed:
                    self.max_committed = i
            elif rec[0] != t:
                raise InvariantViolation(
                    f"state machine safety: index {i} committed with term {rec[0]} and "
                    f"with term {t} (node {nid})"
                )
            elif term < rec[1]:
                rec[1] = term
            else:
                continue
            for lid, (lterm, llog) in self.current_leaders.items():
                if lterm > rec[1]:
                    self._check_leader_entry(lid, lterm, llog, i, t)
        v.seen_commit = commit

    def _check_leader_has_committed(self, nid: int, term: int, log: RaftLog) -> None:
        for i in range(log.offset + 1, self.max_committed + 1):
            rec = self.committed.get(i)
            if rec is not None and rec[1] < term:
                self._check_leader_entry(nid, term, log, i, rec[0])

    @staticmethod
    def _check_leader_entry(nid: int, term: int, log: RaftLog, index: int, eterm: int) -> None:
        if index <= log.offset:
            return  # compacted on the leader; its snapshot is checked as state
        t = log.term(index)
        if t != eterm:
            raise InvariantViolation(
                f"leader completeness: leader {nid} of term {term} has term {t} at "
                f"committed index {index} (committed with term {eterm})"
            )

    # State Machine Safety ---------------------------------------------------------------

    def observe_applied(self, nid: int, index: int, digest: int) -> None:
        old = self.digests.setdefault(index, digest)
        if old != digest:
            raise InvariantViolation(
                f"state machine safety: node {nid} state after index {index} differs "
                f"from another node's"
            )


# ---------------------------------------------------------------------------- scenario


@dataclass(frozen=True)
class Scenario:
    seed: int
    n: int
    profile: str
    election_ticks: int
    heartbeat_ticks: int
    max_inflight: int
    max_append_bytes: int
    check_quorum: bool
    wire: bool
    chaos_ticks: int
    p_loss: float
    p_dup: float
    max_delay: int  # slots
    p_long_delay: float
    long_delay: int  # slots
    p_partition: float  # per tick
    p_crash: float  # per tick
    max_down_ticks: int
    p_crash_on_commit: float
    p_usurp_on_commit: float
    p_campaign: float  # per tick
    proposals_per_tick: float
    p_compact: float  # per tick and node

    @classmethod
    def from_seed(cls, seed: int, n: int) -> Scenario:
        r = random.Random(f"scenario/{seed}/{n}")
        heartbeat = r.choice((1, 1, 2))
        # Each seed leans towards one kind of trouble, so that every kind gets runs where
        # it dominates; "mixed" has a little of all.
        profile = r.choice(("mixed", "crash", "partition", "churn", "lossy"))
        crash = profile in ("mixed", "crash")
        part = profile in ("mixed", "partition")
        churn = profile in ("mixed", "churn")
        lossy = profile in ("mixed", "lossy", "churn")
        return cls(
            seed=seed,
            n=n,
            profile=profile,
            election_ticks=r.randint(max(4, 3 * heartbeat), 10),
            heartbeat_ticks=heartbeat,
            max_inflight=r.choice((1, 2, 4, 64)),
            max_append_bytes=r.choice((0, 0, 16, 64, 1 << 20)),
            check_quorum=r.random() < 0.75,
            wire=r.random() < 0.25,
            chaos_ticks=r.randint(60, 250),
            p_loss=r.choice((0.02, 0.1, 0.25)) if lossy else r.choice((0.0, 0.01)),
            p_dup=r.choice((0.0, 0.02, 0.1)),
            max_delay=r.randint(1, 8),
            p_long_delay=r.choice((0.0, 0.01, 0.05)),
            long_delay=r.randint(8, 60),
            p_partition=r.choice((0.02, 0.05, 0.1)) if part else 0.0,
            p_crash=r.choice((0.02, 0.05, 0.1)) if crash else r.choice((0.0, 0.005)),
            max_down_ticks=r.choice((2, 10, 40)),
            p_crash_on_commit=r.choice((0.01, 0.05, 0.2)) if crash else 0.0,
            p_usurp_on_commit=r.choice((0.01, 0.05, 0.2)) if churn else 0.0,
            p_campaign=r.choice((0.02, 0.1, 0.3)) if churn else r.choice((0.0, 0.005)),
            proposals_per_tick=r.choice((0.2, 0.5, 1.0, 2.0)),
            p_compact=r.choice((0.0, 0.02, 0.1)),
        )

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())


def scenario_for(seed: int) -> Scenario:
    """The default suite's mix: a third of the seeds run five nodes, the rest three."""
    return Scenario.from_seed(seed, 5 if seed % 3 == 2 else 3)


# ---------------------------------------------------------------------------- the host


class _StateMachine:
    """The applied state of one node: index and a running digest of applied data."""

    __slots__ = ("index", "digest", "history")

    def __init__(self) -> None:
        self.index = 0
        self.digest = 0
        # Recent (index, digest) pairs: the host may snapshot at any of them.
        self.history: deque[tuple[int, int]] = deque(maxlen=16)


def _encode_state(index: int, digest: int) -> bytes:
    return f"{index}:{digest}".encode()


def _decode_state(data: bytes) -> tuple[int, int]:
    a, b = data.split(b":")
    return int(a), int(b)


# How long the calm phase may take, in ticks.
STABLE_TICKS_PER_ELECTION = 40
APPLY_TICKS = 60
MAX_DRAIN_TICKS = 5000


class Sim:
    def __init__(self, sc: Scenario, trace: bool = False) -> None:
        self.sc = sc
        self.trace = trace
        self.rng = random.Random(sc.seed)
        self.ids = list(range(1, sc.n + 1))
        self.storages = {i: MemoryStorage() for i in self.ids}
        self.incarnation = {i: 0 for i in self.ids}
        self.nodes: dict[int, RaftNode] = {i: self._new_node(i) for i in self.ids}
        self.alive = {i: True for i in self.ids}
        self.restart_at: dict[int, int] = {}
        self.seen_commit = {i: 0 for i in self.ids}
        self.group = {i: 0 for i in self.ids}
        self.cut: set[tuple[int, int]] = set()
        self.heal_at = -1
        self.phase = {i: self.rng.randrange(SLOTS_PER_TICK) for i in self.ids}
        self.sms = {i: _StateMachine() for i in self.ids}
        self.checker = Checker()
        self.net: list[tuple[int, int, RaftMessage | bytes]] = []
        self.seq = 0
        self.slot = 0
        self.events: deque[tuple[Any, ...]] = deque(maxlen=400)
        self.proposal_counter = 0
        self.p_loss = sc.p_loss
        self.p_dup = sc.p_dup
        self.max_delay = sc.max_delay
        self.p_long = sc.p_long_delay
        self.faults = True
        self.stats = {
            "delivered": 0,
            "lost": 0,
            "duplicated": 0,
            "proposed": 0,
            "elections": 0,
            "snapshots": 0,
            "compactions": 0,
            "crashes": 0,
            "partitions": 0,
            "one_way_cuts": 0,
            "reordered": 0,
        }
        self.last_seq: dict[tuple[int, int], int] = {}
        if sc.wire:
            self.encoder: msgspec.msgpack.Encoder | None = msgspec.msgpack.Encoder()
            self.decoder: msgspec.msgpack.Decoder[Any] | None = msgspec.msgpack.Decoder(RaftMessage)
        else:
            self.encoder = None
            self.decoder = None

    # -- plumbing ---------------------------------------------------------------------

    def _new_node(self, nid: int) -> RaftNode:
        sc = self.sc
        cfg = RaftConfig(
            node_id=nid,
            peers=tuple(self.ids),
            election_ticks=sc.election_ticks,
            heartbeat_ticks=sc.heartbeat_ticks,
            max_inflight=sc.max_inflight,
            max_append_bytes=sc.max_append_bytes,
            check_quorum=sc.check_quorum,
            seed=sc.seed * 1000 + self.incarnation[nid],
        )
        return RaftNode(cfg, self.storages[nid])

    def _event(self, *ev: Any) -> None:
        self.events.append((self.slot, *ev))
        if self.trace:
            print(self._fmt(self.events[-1]))

    @staticmethod
    def _fmt(ev: tuple[Any, ...]) -> str:
        slot, *rest = ev
        return f"{slot // SLOTS_PER_TICK:5d}.{slot % SLOTS_PER_TICK} " + " ".join(
            str(x) for x in rest
        )

    def _send(self, m: RaftMessage) -> None:
        rng = self.rng
        frm = m.frm
        to = m.to
        if self.group[frm] != self.group[to] or (self.cut and (frm, to) in self.cut):
            return
        if self.p_loss and rng.random() < self.p_loss:
            self.stats["lost"] += 1
            return
        payload: RaftMessage | bytes = m
        if self.encoder is not None:
            payload = self.encoder.encode(m)
        copies = 1
        if self.p_dup and rng.random() < self.p_dup:
            copies = 2
            self.stats["duplicated"] += 1
        for _ in range(copies):
            delay = 1 + rng.randrange(self.max_delay)
            if self.p_long and rng.random() < self.p_long:
                delay += rng.randrange(self.sc.long_delay)
            self.seq += 1
            heapq.heappush(self.net, (self.slot + delay, self.seq, payload))

    def _after(self, nid: int) -> None:
        """Collect the node's output like a host would, then check every invariant."""
        node = self.nodes[nid]
        # The adversary's favourite moment: a leader has just learnt that something
        # committed and dies before telling anyone.
        crash = False
        usurper = 0
        if self.faults and node.commit_index > self.seen_commit[nid]:
            self.seen_commit[nid] = node.commit_index
            if node.role == LEADER:
                r = self.rng.random()
                if r < self.sc.p_crash_on_commit:
                    crash = True
                elif r < self.sc.p_crash_on_commit + self.sc.p_usurp_on_commit:
                    usurper = self.rng.choice(self.ids)
        if node.has_ready():
            self._handle_ready(nid, node, node.ready(), send=not crash)
        chk = self.checker
        log = node.storage.log
        if node.role == LEADER:
            chk.observe_leader(nid, node.term, log)
        else:
            chk.observe_not_leader(nid)
        chk.observe_log(nid, log)
        chk.observe_commit(nid, node.term, node.commit_index, log)
        if crash:
            self._crash(nid)
        elif usurper and usurper != nid and self.alive[usurper]:
            self._event("campaign", usurper)
            self.nodes[usurper].campaign()
            self._after(usurper)

    def _handle_ready(self, nid: int, node: RaftNode, rd: Ready, send: bool = True) -> None:
        sm = self.sms[nid]
        chk = self.checker
        if rd.role_changed:
            self._event("role", nid, node.role.name, "term", node.term, "leader", node.leader_id)
            if node.role == LEADER:
                self.stats["elections"] += 1
        if rd.snapshot is not None:
            snap = rd.snapshot
            index, digest = _decode_state(snap.data)
            if index != snap.index:
                raise InvariantViolation(f"snapshot {snap.index} holds state of {index}")
            self._event("restore", nid, snap.index)
            self.stats["snapshots"] += 1
            sm.index = index
            sm.digest = digest
            sm.history.clear()
            sm.history.append((index, digest))
            chk.observe_applied(nid, index, digest)
        if rd.committed:
            for e in rd.committed:
                if e.index != sm.index + 1:
                    raise InvariantViolation(
                        f"apply: node {nid} at {sm.index} handed index {e.index}"
                    )
                if e.data:
                    sm.digest = zlib.crc32(e.data, sm.digest)
                sm.index = e.index
                chk.observe_applied(nid, e.index, sm.digest)
            sm.history.append((sm.index, sm.digest))
        if node.applied_index != sm.index:
            raise InvariantViolation(
                f"node {nid} reports applied {node.applied_index}, host is at {sm.index}"
            )
        if send:
            for m in rd.messages:
                self._send(m)

    def _deliver(self, payload: RaftMessage | bytes, seq: int) -> None:
        if self.decoder is not None:
            assert isinstance(payload, bytes)
            m = self.decoder.decode(payload)
        else:
            assert not isinstance(payload, bytes)
            m = payload
        to = m.to
        # Reordering, as the receiver sees it: a message sent before one already delivered
        # on the same link.
        link = (m.frm, to)
        if seq < self.last_seq.get(link, -1):
            self.stats["reordered"] += 1
        else:
            self.last_seq[link] = seq
        if (
            not self.alive[to]
            or self.group[m.frm] != self.group[to]
            or (self.cut and (m.frm, to) in self.cut)
        ):
            if self.trace:
                self._event("drop", m)
            return
        if self.trace:
            self._event("deliver", m)
        self.stats["delivered"] += 1
        self.nodes[to].step(m)
        self._after(to)

    # -- faults and workload ----------------------------------------------------------

    def _propose(self, nid: int) -> int | None:
        self.proposal_counter += 1
        data = f"{nid}/{self.proposal_counter}".encode()
        index = self.nodes[nid].propose(data)
        if index is not None:
            self.stats["proposed"] += 1
        self._after(nid)
        return index

    def _crash(self, nid: int) -> None:
        self._event("crash", nid)
        self.stats["crashes"] += 1
        self.alive[nid] = False
        self.checker.observe_not_leader(nid)
        tick = self.slot // SLOTS_PER_TICK
        self.restart_at[nid] = tick + 1 + self.rng.randrange(self.sc.max_down_ticks)

    def _restart(self, nid: int) -> None:
        self.incarnation[nid] += 1
        self._event("restart", nid, repr(self.storages[nid]))
        self.alive[nid] = True
        self.nodes[nid] = self._new_node(nid)
        self.sms[nid] = _StateMachine()
        self.seen_commit[nid] = 0
        self._after(nid)

    def _heal(self) -> None:
        self._event("heal")
        for i in self.ids:
            self.group[i] = 0
        self.cut = set()
        self.heal_at = -1

    def _tick_boundary(self) -> None:
        """Once per tick: the fault schedule and the workload."""
        rng = self.rng
        sc = self.sc
        tick = self.slot // SLOTS_PER_TICK
        if self.faults:
            if self.heal_at == tick:
                self._heal()
            elif self.heal_at < 0 and rng.random() < sc.p_partition and rng.random() < 0.3:
                # Some links fail in one direction only.
                pairs = [(a, b) for a in self.ids for b in self.ids if a != b]
                self.cut = set(rng.sample(pairs, rng.randint(1, len(pairs) // 2)))
                self.heal_at = tick + rng.randint(3, 8 * sc.election_ticks)
                self._event("cut links", sorted(self.cut))
                self.stats["one_way_cuts"] += 1
            elif self.heal_at < 0 and rng.random() < sc.p_partition:
                ids = self.ids[:]
                rng.shuffle(ids)
                cut = rng.randrange(1, len(ids))
                for i in ids[:cut]:
                    self.group[i] = 1
                self.heal_at = tick + rng.randint(3, 8 * sc.election_ticks)
                self._event("partition", sorted(ids[:cut]), "|", sorted(ids[cut:]))
                self.stats["partitions"] += 1
            for nid, at in list(self.restart_at.items()):
                if at == tick:
                    del self.restart_at[nid]
                    self._restart(nid)
            if rng.random() < sc.p_crash:
                up = [i for i in self.ids if self.alive[i]]
                if len(up) > 1:
                    nid = rng.choice(up)
                    self._crash(nid)
            if rng.random() < sc.p_campaign:
                nid = rng.choice(self.ids)
                if self.alive[nid]:
                    self._event("campaign", nid)
                    self.nodes[nid].campaign()
                    self._after(nid)
            k = int(sc.proposals_per_tick)
            if rng.random() < sc.proposals_per_tick - k:
                k += 1
            for _ in range(k):
                leaders = [i for i in self.ids if self.alive[i] and self.nodes[i].role == LEADER]
                # Now and then ask a non-leader, which must refuse.
                target = (
                    rng.choice(leaders) if leaders and rng.random() < 0.9 else rng.choice(self.ids)
                )
                if self.alive[target]:
                    self._propose(target)
        if sc.p_compact:
            for nid in self.ids:
                if self.alive[nid] and rng.random() < sc.p_compact:
                    self._compact(nid)

    def _compact(self, nid: int) -> None:
        node = self.nodes[nid]
        sm = self.sms[nid]
        choices = [(i, d) for i, d in sm.history if i >= node.first_index]
        if not choices:
            return
        index, digest = self.rng.choice(choices)
        node.compact(index, _encode_state(index, digest))
        self._event("compact", nid, index)
        self.stats["compactions"] += 1
        self._after(nid)

    # -- main loop --------------------------------------------------------------------

    def _step_slot(self) -> None:
        slot = self.slot
        if slot % SLOTS_PER_TICK == 0:
            self._tick_boundary()
        net = self.net
        while net and net[0][0] <= slot:
            _, seq, payload = heapq.heappop(net)
            self._deliver(payload, seq)
        ph = slot % SLOTS_PER_TICK
        for nid in self.ids:
            if self.phase[nid] == ph and self.alive[nid]:
                self.nodes[nid].tick()
                self._after(nid)
        self.slot = slot + 1

    def _calm(self) -> None:
        """Stop all faults: heal the network, restart every crashed node."""
        self._event("calm")
        self.faults = False
        self.p_loss = 0.0
        self.p_dup = 0.0
        self.p_long = 0.0
        self.max_delay = min(self.max_delay, SLOTS_PER_TICK - 1)
        self._heal()
        for nid in sorted(self.restart_at):
            self._restart(nid)
        self.restart_at.clear()

    def _stable_leader(self) -> int | None:
        nodes = self.nodes
        leaders = [i for i in self.ids if nodes[i].role == LEADER]
        if len(leaders) != 1:
            return None
        lid = leaders[0]
        term = nodes[lid].term
        for i in self.ids:
            if nodes[i].term != term or nodes[i].leader_id != lid:
                return None
        return lid

    def run(self) -> None:
        try:
            self._run()
        except AssertionError as e:
            raise SimFailure(self.report(e)) from e

    def _run(self) -> None:
        sc = self.sc
        rng = self.rng
        if rng.random() < 0.5:
            # The designated-leader start-up of a real group.
            self.nodes[1].campaign()
            self._after(1)
        end = sc.chaos_ticks * SLOTS_PER_TICK
        while self.slot < end:
            self._step_slot()
        self._calm()
        # Let what the chaos phase left behind play out: messages still in flight (some
        # long delayed) and election timers that were already running.
        settle = self.slot + sc.long_delay + 2 * sc.election_ticks * SLOTS_PER_TICK
        while self.slot < settle:
            self._step_slot()
        # Liveness 1: a stable leader within a bounded time.
        deadline = self.slot + STABLE_TICKS_PER_ELECTION * sc.election_ticks * SLOTS_PER_TICK
        while (lid := self._stable_leader()) is None:
            if self.slot > deadline:
                raise LivenessFailure("no stable leader after the faults stopped")
            self._step_slot()
        # Liveness 2: proposals to that leader get applied everywhere.
        wanted: dict[int, int] = {}
        for _ in range(5):
            index = self._propose(lid)
            if index is None:
                raise LivenessFailure(f"stable leader {lid} refused a proposal")
            wanted[index] = self.nodes[lid].term
            for _ in range(rng.randrange(SLOTS_PER_TICK * 2)):
                self._step_slot()
        target = max(wanted)
        # Bounded time without progress: a backlog left by the chaos phase may take a
        # while to drain at small max_inflight / max_append_bytes, but every
        # APPLY_TICKS the slowest node must have applied something new.
        window = (APPLY_TICKS + 4 * sc.election_ticks) * SLOTS_PER_TICK
        hard_deadline = self.slot + MAX_DRAIN_TICKS * SLOTS_PER_TICK
        progress = self._progress()
        deadline = self.slot + window
        while min(self.sms[i].index for i in self.ids) < target:
            if self.slot > deadline or self.slot > hard_deadline:
                raise LivenessFailure(
                    f"proposals up to {target} not applied everywhere: "
                    f"{ {i: self.sms[i].index for i in self.ids} }"
                )
            if self.nodes[lid].role != LEADER:
                raise LivenessFailure(f"leader {lid} lost leadership without any fault")
            self._step_slot()
            now = self._progress()
            if now[0] > progress[0] or now[1] > progress[1]:
                progress = (max(now[0], progress[0]), max(now[1], progress[1]))
                deadline = self.slot + window
        for index, term in wanted.items():
            rec = self.checker.committed.get(index)
            if rec is not None and rec[0] != term:
                raise LivenessFailure(f"proposal at {index} (term {term}) was lost")
        # A last full pass over every log, in case a rewrite slipped past the
        # incremental checks.
        for nid in self.ids:
            self.checker.observe_log(nid, self.nodes[nid].storage.log, full=True)

    def _progress(self) -> tuple[int, int]:
        """Slowest node's applied index and shortest log: while a backlog drains, one of
        them must keep growing."""
        return (
            min(self.sms[i].index for i in self.ids),
            min(self.nodes[i].last_index for i in self.ids),
        )

    def report(self, err: BaseException) -> str:
        sc = self.sc
        lines = [
            f"raft simulation failed: seed={sc.seed} nodes={sc.n}: {err}",
            f"replay: python -m tests.unit.raft.sim {sc.seed} --nodes {sc.n} --trace",
            f"scenario: {sc.describe()}",
            f"at tick {self.slot // SLOTS_PER_TICK}; stats {self.stats}",
        ]
        for nid in self.ids:
            state = repr(self.nodes[nid]) if self.alive[nid] else "down"
            lines.append(f"  node {nid}: {state} sm={self.sms[nid].index} group={self.group[nid]}")
        lines.append("last events:")
        lines.extend("  " + self._fmt(ev) for ev in list(self.events)[-60:])
        return "\n".join(lines)


# ---------------------------------------------------------------------------- directed


class Cluster:
    """A hand-driven network for scenario tests: messages wait in one FIFO queue until the
    test delivers them; links can be cut and nodes crashed and restarted. Every node
    operation is followed by the same invariant checks the random simulator makes.

    The host's state machine is the list of (index, data) pairs applied (``applied[nid]``
    shows just the data); a snapshot's data is that list up to its index, msgpack-encoded.
    """

    def __init__(self, n: int = 3, seed: int = 0, **config: Any) -> None:
        self.ids = list(range(1, n + 1))
        self.seed = seed
        self.config = config
        self.storages = {i: MemoryStorage() for i in self.ids}
        self.nodes = {i: self._new_node(i, 0) for i in self.ids}
        self.incarnation = {i: 0 for i in self.ids}
        self.down: set[int] = set()
        self.cut_links: set[tuple[int, int]] = set()
        self.queue: deque[RaftMessage] = deque()
        self.sent: list[RaftMessage] = []  # everything ever sent, for inspection
        self.state: dict[int, list[tuple[int, bytes]]] = {i: [] for i in self.ids}
        self.applied_index = {i: 0 for i in self.ids}
        self.restored: dict[int, list[int]] = {i: [] for i in self.ids}
        self.checker = Checker()
        self.digests = {i: 0 for i in self.ids}

    def _new_node(self, nid: int, incarnation: int) -> RaftNode:
        cfg = RaftConfig(
            node_id=nid,
            peers=tuple(self.ids),
            seed=self.seed * 1000 + incarnation,
            **self.config,
        )
        return RaftNode(cfg, self.storages[nid])

    def __getitem__(self, nid: int) -> RaftNode:
        return self.nodes[nid]

    # -- plumbing -----------------------------------------------------------------------

    def collect(self, nid: int) -> None:
        node = self.nodes[nid]
        if node.has_ready():
            rd = node.ready()
            if rd.snapshot is not None:
                state = msgspec.msgpack.decode(rd.snapshot.data, type=list[tuple[int, bytes]])
                self.state[nid] = state
                self.applied_index[nid] = rd.snapshot.index
                self.restored[nid].append(rd.snapshot.index)
                self.digests[nid] = self._digest([d for _, d in state])
                self.checker.observe_applied(nid, rd.snapshot.index, self.digests[nid])
            for e in rd.committed:
                if e.index != self.applied_index[nid] + 1:
                    raise InvariantViolation(f"node {nid} handed {e.index} out of order")
                self.applied_index[nid] = e.index
                if e.data:
                    self.state[nid].append((e.index, e.data))
                    self.digests[nid] = zlib.crc32(e.data, self.digests[nid])
                self.checker.observe_applied(nid, e.index, self.digests[nid])
            for m in rd.messages:
                self.sent.append(m)
                self.queue.append(m)
        chk = self.checker
        log = node.storage.log
        if node.role == LEADER:
            chk.observe_leader(nid, node.term, log)
        else:
            chk.observe_not_leader(nid)
        chk.observe_log(nid, log)
        chk.observe_commit(nid, node.term, node.commit_index, log)

    @staticmethod
    def _digest(state: list[bytes]) -> int:
        d = 0
        for data in state:
            d = zlib.crc32(data, d)
        return d

    @property
    def applied(self) -> dict[int, list[bytes]]:
        return {i: [d for _, d in st] for i, st in self.state.items()}

    def snapshot_data(self, nid: int, index: int) -> bytes:
        return msgspec.msgpack.encode([(i, d) for i, d in self.state[nid] if i <= index])

    def blocked(self, m: RaftMessage) -> bool:
        return m.to in self.down or m.frm in self.down or (m.frm, m.to) in self.cut_links

    def step(self, m: RaftMessage) -> None:
        """Deliver one message now, bypassing the queue (unless it is blocked)."""
        if self.blocked(m):
            return
        self.nodes[m.to].step(m)
        self.collect(m.to)

    def deliver(self, limit: int = 100_000, drop: Any = None) -> int:
        """Deliver queued messages (and what they cause) until the queue is empty.
        ``drop(m)`` may discard chosen messages. Answers how many were delivered."""
        count = 0
        q = self.queue
        while q:
            m = q.popleft()
            if self.blocked(m) or (drop is not None and drop(m)):
                continue
            self.nodes[m.to].step(m)
            self.collect(m.to)
            count += 1
            if count >= limit:
                raise AssertionError("message storm: delivery did not settle")
        return count

    def take(self) -> list[RaftMessage]:
        """Remove and answer the queued messages without delivering them."""
        msgs = list(self.queue)
        self.queue.clear()
        return msgs

    # -- actions ------------------------------------------------------------------------

    def tick(self, nid: int, times: int = 1) -> None:
        for _ in range(times):
            self.nodes[nid].tick()
            self.collect(nid)

    def tick_all(self, times: int = 1, deliver: bool = True) -> None:
        for _ in range(times):
            for nid in self.ids:
                if nid not in self.down:
                    self.nodes[nid].tick()
                    self.collect(nid)
            if deliver:
                self.deliver()

    def campaign(self, nid: int, deliver: bool = True) -> None:
        self.nodes[nid].campaign()
        self.collect(nid)
        if deliver:
            self.deliver()

    def elect(self, nid: int) -> RaftNode:
        self.campaign(nid)
        node = self.nodes[nid]
        assert node.role == LEADER, f"node {nid} failed to win: {node}"
        # One heartbeat round so every follower learns the commit index.
        self.tick_all(node.config.heartbeat_ticks)
        return node

    def propose(self, nid: int, data: bytes, deliver: bool = True) -> int | None:
        index = self.nodes[nid].propose(data)
        self.collect(nid)
        if deliver:
            self.deliver()
        return index

    def compact(self, nid: int, index: int | None = None) -> None:
        node = self.nodes[nid]
        if index is None:
            index = node.applied_index
        node.compact(index, self.snapshot_data(nid, index))
        self.collect(nid)

    def crash(self, nid: int) -> None:
        self.down.add(nid)
        self.checker.observe_not_leader(nid)

    def restart(self, nid: int) -> RaftNode:
        self.down.discard(nid)
        self.incarnation[nid] += 1
        self.nodes[nid] = self._new_node(nid, self.incarnation[nid])
        self.state[nid] = []
        self.applied_index[nid] = 0
        self.digests[nid] = 0
        self.collect(nid)
        return self.nodes[nid]

    def isolate(self, nid: int) -> None:
        for other in self.ids:
            if other != nid:
                self.cut_links.add((nid, other))
                self.cut_links.add((other, nid))

    def cut(self, a: int, b: int) -> None:
        self.cut_links.add((a, b))
        self.cut_links.add((b, a))

    def heal(self) -> None:
        self.cut_links.clear()

    def leaders(self) -> list[int]:
        return [i for i in self.ids if i not in self.down and self.nodes[i].role == LEADER]


def run_seed(seed: int, n: int | None = None, trace: bool = False) -> Sim:
    sc = scenario_for(seed) if n is None else Scenario.from_seed(seed, n)
    sim = Sim(sc, trace=trace)
    sim.run()
    return sim


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Replay raft simulator seeds.")
    ap.add_argument("seed", type=int)
    ap.add_argument("--count", type=int, default=1, help="run this many seeds from SEED")
    ap.add_argument("--nodes", type=int, default=None, help="3 or 5 (default: as the suite)")
    ap.add_argument("--trace", action="store_true", help="print every event")
    args = ap.parse_args(argv)
    failed = 0
    for seed in range(args.seed, args.seed + args.count):
        try:
            sim = run_seed(seed, args.nodes, args.trace)
        except SimFailure as e:
            failed += 1
            print(e)
            continue
        if args.count == 1 or args.trace:
            print(f"seed {seed}: ok, tick {sim.slot // SLOTS_PER_TICK}, {sim.stats}")
    if args.count > 1:
        print(f"{args.count - failed}/{args.count} seeds passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
