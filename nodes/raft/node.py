"""The Raft state machine: leader election, log replication, commitment and snapshots.

``RaftNode`` does no I/O. Its host feeds it ``tick()`` (one unit of logical time),
``step(message)`` (a message that arrived), ``propose(data)`` and ``campaign()``, then
collects what that produced with ``ready()``: messages to send, newly committed entries
to apply and, after a snapshot install, a snapshot to restore from.

Durability and restarts
-----------------------
All state Raft needs to survive a crash (current term, vote, log, last snapshot) lives in
the ``MemoryStorage`` passed in, and is written there before any message that depends on
it is queued. Restarting a node means building a new ``RaftNode`` on the same storage
object. Everything else is volatile and starts afresh: the node comes back as a follower
without a known leader, with empty leader bookkeeping, and with
``commit_index == applied_index == storage.snapshot.index``. Its first ``ready()`` hands out
that snapshot (when its index is above 0) so the host can rebuild its state machine from
``snapshot.data``; the entries after it are handed out again as ``committed`` once the
node relearns the commit index from a leader.

Behaviour
---------
Standard Raft (Ongaro & Ousterhout) with these well-known refinements, as in etcd's
implementation:

* a rejected append carries a hint (``hint_index``/``hint_term``) so the leader skips back
  a whole term per round trip instead of a single entry;
* appends to a follower whose log is known to agree are pipelined: ``next`` advances
  optimistically, at most ``max_inflight`` appends may be unanswered, and a rejection
  drops the follower back to probing one append at a time;
* with ``check_quorum`` a leader that has not heard from a majority during an election
  timeout steps down, so a partitioned leader stops accepting proposals;
* a follower whose ``next`` index fell below the leader's first log index is sent the
  leader's latest snapshot instead of entries;
* an AppendRequest whose ``prev_index`` lies below the follower's commit index is checked
  at the commit index instead (committed entries are the same everywhere), so a stale
  or duplicated message never forces a needless walk back.

Followers learn the commit index from appends and heartbeats, bounded by what each
message proved to match; the leader does not send extra messages just to spread a new
commit index, so a follower's commit index may lag by up to one heartbeat interval.
"""

from __future__ import annotations

import random

from .config import RaftConfig, Role
from .log import RaftLog
from .messages import (
    AppendRequest,
    AppendResponse,
    Entry,
    RaftMessage,
    Snapshot,
    SnapshotRequest,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from .progress import PROBE, REPLICATE, SNAPSHOT, Progress
from .ready import Ready
from .storage import MemoryStorage

FOLLOWER = Role.FOLLOWER
CANDIDATE = Role.CANDIDATE
LEADER = Role.LEADER


class RaftNode:
    __slots__ = (
        "_cfg",
        "_id",
        "_others",
        "_quorum",
        "_max_inflight", "_commit_notice",
        "_max_bytes",
        "_snapshot_retry",
        "_storage",
        "_log",
        "_rng",
        "_term",
        "_role",
        "_leader",
        "_commit",
        "_applied",
        "_pending_snapshot",
        "_msgs",
        "_role_changed",
        "_election_elapsed",
        "_heartbeat_elapsed",
        "_timeout",
        "_votes",
        "_prs",
    )

    def __init__(self, config: RaftConfig, storage: MemoryStorage | None = None) -> None:
        if storage is None:
            storage = MemoryStorage()
        self._cfg = config
        self._id = config.node_id
        self._others = tuple(sorted(p for p in set(config.peers) if p != config.node_id))
        self._quorum = (len(self._others) + 1) // 2 + 1
        self._max_inflight = config.max_inflight
        self._commit_notice = config.commit_notice
        self._max_bytes = config.max_append_bytes
        # Heartbeats to wait for a snapshot's answer before sending it again: a lost
        # snapshot must not leave the follower stranded, but a big one takes a while.
        self._snapshot_retry = max(2, 2 * config.election_ticks // config.heartbeat_ticks)
        self._storage = storage
        self._log: RaftLog = storage.log
        # Mixing in the stored term gives a restarted node fresh timeouts rather than a
        # replay of its previous life's.
        self._rng = random.Random(f"{config.seed}/{config.node_id}/{storage.term}")
        self._term = storage.term
        self._role = FOLLOWER
        self._leader: int | None = None
        snap = storage.snapshot
        self._commit = snap.index
        self._applied = snap.index
        self._pending_snapshot: Snapshot | None = snap if snap.index > 0 else None
        self._msgs: list[RaftMessage] = []
        self._role_changed = False
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._timeout = self._random_timeout()
        self._votes: dict[int, bool] = {}
        self._prs: dict[int, Progress] = {}

    # ------------------------------------------------------------------ properties

    @property
    def id(self) -> int:
        return self._id

    @property
    def config(self) -> RaftConfig:
        return self._cfg

    @property
    def storage(self) -> MemoryStorage:
        return self._storage

    @property
    def term(self) -> int:
        return self._term

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader_id(self) -> int | None:
        return self._leader

    @property
    def commit_index(self) -> int:
        return self._commit

    @property
    def applied_index(self) -> int:
        """The last index handed out by ``ready()`` (as an entry or inside a snapshot)."""
        return self._applied

    @property
    def first_index(self) -> int:
        return self._log.offset + 1

    @property
    def last_index(self) -> int:
        return self._log.last_index

    def progress(self, peer: int) -> Progress | None:
        """The leader's bookkeeping for ``peer`` (None unless leader); for diagnostics."""
        return self._prs.get(peer)

    def __repr__(self) -> str:
        return (
            f"RaftNode(id={self._id} {self._role.name} term={self._term} "
            f"leader={self._leader} commit={self._commit} applied={self._applied} "
            f"log=[{self.first_index}..{self.last_index}])"
        )

    # ------------------------------------------------------------------ driving API

    def tick(self) -> None:
        if self._role == LEADER:
            self._tick_leader()
            return
        self._election_elapsed += 1
        if self._election_elapsed >= self._timeout:
            self.campaign()

    def campaign(self) -> None:
        """Start an election now (a no-op on a leader)."""
        if self._role == LEADER:
            return
        self._become_candidate()
        if self._quorum == 1:
            self._become_leader()
            return
        log = self._log
        last_index = log.last_index
        last_term = log.last_term
        term = self._term
        me = self._id
        msgs = self._msgs
        for peer in self._others:
            msgs.append(VoteRequest(me, peer, term, last_index, last_term))

    def propose(self, data: bytes) -> int | None:
        """Append ``data`` as a new entry if this node leads; answer its index, else None.

        The entry goes out at once to every follower whose pipeline is caught up and has
        room; the others get it with their next batch.
        """
        if self._role != LEADER:
            return None
        if not data:
            # b"" is reserved for the empty entry that opens a term; hosts skip it.
            raise ValueError("cannot propose empty data")
        log = self._log
        entries = log.entries
        index = log.offset + len(entries) + 1
        term = self._term
        prev_term = entries[-1].term if entries else log.snap_term
        entry = Entry(term, index, data)
        entries.append(entry)
        if self._quorum == 1:
            self._commit = index
            return index
        commit = self._commit
        me = self._id
        max_inflight = self._max_inflight
        msgs = self._msgs
        for peer, pr in self._prs.items():
            if pr.state == REPLICATE and pr.next == index and len(pr.inflight) < max_inflight:
                msgs.append(AppendRequest(me, peer, term, index - 1, prev_term, [entry], commit))
                pr.next = index + 1
                pr.inflight.append(index)
        return index

    def step(self, msg: RaftMessage) -> None:
        """Handle one incoming message. Messages addressed to another node are ignored."""
        if msg.to != self._id:
            return
        term = msg.term
        if term != self._term:
            if term < self._term:
                self._answer_stale(msg)
                return
            # A higher term always wins; the sender of an append or snapshot is that
            # term's leader.
            leader = msg.frm if isinstance(msg, (AppendRequest, SnapshotRequest)) else None
            self._become_follower(term, leader)
        # Ordered by frequency: appends and their answers are the hot path.
        if isinstance(msg, AppendRequest):
            if self._accept_leader(msg.frm):
                self._handle_append(msg)
        elif isinstance(msg, AppendResponse):
            if self._role == LEADER:
                self._handle_append_response(msg)
        elif isinstance(msg, VoteRequest):
            self._handle_vote_request(msg)
        elif isinstance(msg, VoteResponse):
            if self._role == CANDIDATE:
                self._handle_vote_response(msg)
        elif isinstance(msg, SnapshotRequest):
            if self._accept_leader(msg.frm):
                self._handle_snapshot(msg)
        elif isinstance(msg, SnapshotResponse):
            if self._role == LEADER:
                self._handle_snapshot_response(msg)

    def has_ready(self) -> bool:
        return bool(
            self._msgs
            or self._commit > self._applied
            or self._pending_snapshot is not None
            or self._role_changed
        )

    def ready(self) -> Ready:
        """Hand out everything produced since the previous call (and forget it here)."""
        committed: list[Entry]
        if self._commit > self._applied:
            committed = self._log.slice(self._applied + 1, self._commit + 1)
            self._applied = self._commit
        else:
            committed = []
        msgs = self._msgs
        self._msgs = []
        rd = Ready(msgs, committed, self._pending_snapshot, self._role_changed)
        self._pending_snapshot = None
        self._role_changed = False
        return rd

    def compact(self, index: int, data: bytes) -> None:
        """Record ``data``, the host's state machine as of applied index ``index``, as the
        latest snapshot and drop the log entries up to ``index``."""
        if index > self._applied:
            raise ValueError(f"compact({index}) beyond applied index {self._applied}")
        log = self._log
        if index <= log.offset:
            return
        term = log.term(index)
        assert term is not None
        log.compact(index)
        self._storage.snapshot = Snapshot(index, term, data)

    # ------------------------------------------------------------------ transitions

    def _random_timeout(self) -> int:
        et = self._cfg.election_ticks
        return et + self._rng.randrange(et)

    def _become_follower(self, term: int, leader: int | None) -> None:
        if term != self._term:
            st = self._storage
            st.term = term
            st.voted_for = None
            self._term = term
        if self._role != FOLLOWER or self._leader != leader:
            self._role_changed = True
        self._role = FOLLOWER
        self._leader = leader
        self._election_elapsed = 0
        self._timeout = self._random_timeout()
        self._votes = {}
        self._prs = {}

    def _become_candidate(self) -> None:
        st = self._storage
        st.term = self._term + 1
        st.voted_for = self._id
        self._term = st.term
        if self._role != CANDIDATE or self._leader is not None:
            self._role_changed = True
        self._role = CANDIDATE
        self._leader = None
        self._election_elapsed = 0
        self._timeout = self._random_timeout()
        self._votes = {self._id: True}
        self._prs = {}

    def _become_leader(self) -> None:
        self._role = LEADER
        self._leader = self._id
        self._role_changed = True
        self._votes = {}
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        log = self._log
        last = log.last_index
        self._prs = {peer: Progress(last + 1) for peer in self._others}
        # An entry of the new term lets the leader commit (and so learn) everything its
        # predecessors left behind; only entries of the leader's own term are committed
        # by counting replicas.
        log.append(Entry(self._term, last + 1, b""))
        if self._quorum == 1:
            self._commit = last + 1
            return
        for peer, pr in self._prs.items():
            self._send_append(peer, pr, True)

    def _accept_leader(self, frm: int) -> bool:
        """An append or snapshot of the current term arrived from ``frm``: follow it."""
        role = self._role
        if role != FOLLOWER:
            if role == LEADER:
                # Two leaders in one term would violate election safety; never obey.
                return False
            self._become_follower(self._term, frm)
        elif self._leader != frm:
            self._leader = frm
            self._role_changed = True
        self._election_elapsed = 0
        return True

    def _answer_stale(self, msg: RaftMessage) -> None:
        """A message from an older term: tell requesters our term so they step down."""
        if isinstance(msg, AppendRequest):
            self._msgs.append(AppendResponse(self._id, msg.frm, self._term, msg.prev_index, True))
        elif isinstance(msg, VoteRequest):
            self._msgs.append(VoteResponse(self._id, msg.frm, self._term, False))
        elif isinstance(msg, SnapshotRequest):
            self._msgs.append(SnapshotResponse(self._id, msg.frm, self._term, self._commit))
        # Answers from older terms carry nothing that still matters.

    # ------------------------------------------------------------------ follower side

    def _handle_append(self, m: AppendRequest) -> None:
        log = self._log
        prev = m.prev_index
        prev_term = m.prev_term
        ents = m.entries
        commit = self._commit
        if prev < commit:
            # Everything up to our commit index is committed and therefore identical in
            # the leader's log: check agreement at the commit index instead.
            skip = commit - prev
            if skip >= len(ents):
                self._msgs.append(AppendResponse(self._id, m.frm, self._term, commit, False))
                return
            prev_term = ents[skip - 1].term
            ents = ents[skip:]
            prev = commit
        if log.term(prev) != prev_term:
            last = log.last_index
            hint = log.find_conflict_by_term(prev if prev < last else last, prev_term)
            hint_term = log.term(hint) or 0
            self._msgs.append(
                AppendResponse(self._id, m.frm, self._term, m.prev_index, True, hint, hint_term)
            )
            return
        if ents:
            if prev == log.last_index:
                log.extend(ents)
            else:
                self._merge(ents)
            last_new = prev + len(ents)
        else:
            last_new = prev
        if m.commit > commit:
            new_commit = m.commit if m.commit < last_new else last_new
            if new_commit > commit:
                self._commit = new_commit
        self._msgs.append(AppendResponse(self._id, m.frm, self._term, last_new, False))

    def _merge(self, ents: list[Entry]) -> None:
        """Add ``ents`` (which follow a matching entry) to a log that already holds some of
        them: keep what agrees, truncate at the first conflict, append the rest. Never
        truncate on agreement, or a delayed short append would erase newer entries."""
        log = self._log
        last = log.last_index
        n = len(ents)
        k = 0
        while k < n:
            e = ents[k]
            if e.index > last:
                break
            if log.term(e.index) != e.term:
                if e.index <= self._commit:
                    raise AssertionError(
                        f"node {self._id}: leader overwrites committed index {e.index}"
                    )
                log.truncate_from(e.index)
                break
            k += 1
        if k < n:
            log.extend(ents[k:] if k else ents)

    def _handle_snapshot(self, m: SnapshotRequest) -> None:
        s = m.snapshot
        if s.index > self._commit:
            log = self._log
            if log.term(s.index) == s.term:
                # Our log already holds the snapshot's last entry, hence agrees with the
                # leader up to it: commit that far and keep the entries.
                self._commit = s.index
            else:
                log.reset(s.index, s.term)
                self._storage.snapshot = s
                self._commit = s.index
                self._applied = s.index
                self._pending_snapshot = s
        self._msgs.append(SnapshotResponse(self._id, m.frm, self._term, self._commit))

    def _handle_vote_request(self, m: VoteRequest) -> None:
        st = self._storage
        voted_for = st.voted_for
        # A node that knows this term's leader does not help anyone else to lead it.
        can_vote = voted_for == m.frm or (voted_for is None and self._leader is None)
        granted = False
        if can_vote:
            log = self._log
            last_term = log.last_term
            if m.last_log_term > last_term or (
                m.last_log_term == last_term and m.last_log_index >= log.last_index
            ):
                granted = True
                st.voted_for = m.frm
                self._election_elapsed = 0
        self._msgs.append(VoteResponse(self._id, m.frm, self._term, granted))

    def _handle_vote_response(self, m: VoteResponse) -> None:
        votes = self._votes
        votes[m.frm] = m.granted
        if sum(votes.values()) >= self._quorum:
            self._become_leader()

    # ------------------------------------------------------------------ leader side

    def _tick_leader(self) -> None:
        cfg = self._cfg
        self._election_elapsed += 1
        if self._election_elapsed >= cfg.election_ticks:
            self._election_elapsed = 0
            if cfg.check_quorum:
                active = 1
                for pr in self._prs.values():
                    if pr.active:
                        active += 1
                        pr.active = False
                if active < self._quorum:
                    self._become_follower(self._term, None)
                    return
        self._heartbeat_elapsed += 1
        if self._heartbeat_elapsed >= cfg.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            for peer, pr in self._prs.items():
                self._heartbeat(peer, pr)

    def _heartbeat(self, peer: int, pr: Progress) -> None:
        log = self._log
        state = pr.state
        if state == PROBE:
            # The probe itself is the heartbeat; an unanswered one is simply re-sent.
            pr.paused = False
            self._send_append(peer, pr, True)
            return
        if state == REPLICATE:
            match = pr.match
            stalled = match == pr.heartbeat_match and match < log.last_index
            pr.heartbeat_match = match
            if stalled:
                # Entries are outstanding but nothing was acknowledged for a whole
                # heartbeat: an append or its answer may be lost. Ask about the tip of
                # the pipeline; a reject sends us back to probing, a success frees it.
                prev = pr.next - 1
                prev_term = log.term(prev)
                if prev_term is None:
                    pr.become_probe()
                    self._send_append(peer, pr, True)
                    return
                self._msgs.append(
                    AppendRequest(self._id, peer, self._term, prev, prev_term, [], self._commit)
                )
                return
        else:
            pr.snapshot_elapsed += 1
            if pr.snapshot_elapsed >= self._snapshot_retry:
                pr.become_probe()
                self._send_append(peer, pr, True)
                return
        # A plain heartbeat at the known match point: it cannot be rejected, carries the
        # commit index, and its answer reports how far the follower got.
        match = pr.match
        match_term = log.term(match)
        if match_term is None:
            # Below our compaction point; index 0 (term 0) always agrees.
            match = match_term = 0
        self._msgs.append(
            AppendRequest(self._id, peer, self._term, match, match_term, [], self._commit)
        )

    def _send_append(self, peer: int, pr: Progress, allow_empty: bool) -> bool:
        """Send ``peer`` the next batch if its state allows. Answers True when a batch of
        entries went out in pipelined mode (the caller may try for another)."""
        state = pr.state
        if state == REPLICATE:
            if len(pr.inflight) >= self._max_inflight:
                return False
        elif state == PROBE:
            if pr.paused:
                return False
        else:
            return False
        log = self._log
        nxt = pr.next
        prev_term = log.term(nxt - 1)
        if prev_term is None:
            # The entries the follower needs are gone: send the snapshot instead.
            snap = self._storage.snapshot
            self._msgs.append(SnapshotRequest(self._id, peer, self._term, snap))
            pr.become_snapshot(snap.index)
            return False
        ents = log.slice_bytes(nxt, self._max_bytes)
        if not ents and not allow_empty:
            return False
        self._msgs.append(
            AppendRequest(self._id, peer, self._term, nxt - 1, prev_term, ents, self._commit)
        )
        if state == PROBE:
            pr.paused = True
            return False
        if not ents:
            return False
        last = ents[-1].index
        pr.next = last + 1
        pr.inflight.append(last)
        return True

    def _handle_append_response(self, m: AppendResponse) -> None:
        peer = m.frm
        pr = self._prs.get(peer)
        if pr is None:
            return
        pr.active = True
        if m.reject:
            self._handle_reject(peer, pr, m)
            return
        index = m.index
        advanced = index > pr.match
        if advanced:
            pr.match = index
        state = pr.state
        if state == REPLICATE:
            if advanced:
                pr.free_to(index)
                if pr.next <= index:
                    pr.next = index + 1
        elif state == PROBE:
            # Any success tells where the logs agree: pipeline from there.
            pr.become_replicate()
        elif pr.match >= pr.pending_snapshot:
            pr.become_replicate()
        committed = advanced and self._maybe_commit()
        while self._send_append(peer, pr, False):
            pass
        if committed and self._commit_notice:
            self._notice_commit()

    def _notice_commit(self) -> None:
        """An empty append at the tip of each follower's pipeline: it follows the entries
        already sent on the same connection, so the follower can commit all of them."""
        log = self._log
        for peer, pr in self._prs.items():
            if pr.state != REPLICATE:
                continue
            prev = pr.next - 1
            prev_term = log.term(prev)
            if prev_term is not None:
                self._msgs.append(AppendRequest(self._id, peer, self._term, prev, prev_term,
                                                [], self._commit))

    def _handle_reject(self, peer: int, pr: Progress, m: AppendResponse) -> None:
        rejected = m.index
        state = pr.state
        if state == REPLICATE:
            if rejected <= pr.match:
                return  # an old message; the logs are known to agree past it
        elif state == PROBE:
            if rejected != pr.next - 1:
                return  # answer to an earlier probe
        else:
            return  # waiting for the snapshot to land
        nxt = self._log.find_conflict_by_term(m.hint_index, m.hint_term) + 1
        if nxt > rejected:
            nxt = rejected
        pr.next = nxt
        pr.become_probe()  # also lifts next to at least match + 1
        self._send_append(peer, pr, True)

    def _handle_snapshot_response(self, m: SnapshotResponse) -> None:
        peer = m.frm
        pr = self._prs.get(peer)
        if pr is None:
            return
        pr.active = True
        advanced = m.index > pr.match
        if advanced:
            pr.match = m.index
        if pr.state == SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_replicate()
        if advanced:
            self._maybe_commit()
        while self._send_append(peer, pr, False):
            pass

    def _maybe_commit(self) -> bool:
        """Advance the commit index to the highest index stored on a majority, provided
        that entry is of the current term (Raft paper, section 5.4.2)."""
        prs = self._prs
        if len(prs) == 2:
            # The common three-node group: the leader plus the better follower.
            a, b = prs.values()
            n = a.match if a.match > b.match else b.match
        else:
            matches = sorted((pr.match for pr in prs.values()), reverse=True)
            # The leader's own log is the longest, so it is the first of the majority.
            n = matches[self._quorum - 2]
        if n > self._commit and self._log.term(n) == self._term:
            self._commit = n
            return True
        return False
