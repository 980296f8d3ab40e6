"""Scenario tests named after the sections of the Raft paper (Ongaro & Ousterhout, "In
Search of an Understandable Consensus Algorithm", extended version), plus check-quorum.

Each test drives a small ``Cluster`` by hand; every node operation is followed by the
simulator's invariant checks, so a scenario that breaks safety fails even where the test
itself does not look.
"""

from __future__ import annotations

from typing import Any

import pytest

from nodes.raft import (
    AppendRequest,
    AppendResponse,
    Entry,
    MemoryStorage,
    RaftConfig,
    RaftNode,
    Role,
    Snapshot,
    SnapshotRequest,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from nodes.raft.progress import ProgressState

from .sim import Cluster, InvariantViolation

FOLLOWER = Role.FOLLOWER
CANDIDATE = Role.CANDIDATE
LEADER = Role.LEADER


def lone(node_id: int = 2, **kw: object) -> RaftNode:
    """A node of a three-node group, driven directly without a network."""
    return RaftNode(RaftConfig(node_id=node_id, peers=(1, 2, 3), **kw))  # type: ignore[arg-type]


def answers(node: RaftNode) -> list[object]:
    return list(node.ready().messages)


def win(c: Cluster, nid: int, drop: Any = None) -> RaftNode:
    """Campaign until ``nid`` leads: a restarted node may need a few terms to get past
    votes already cast."""
    for _ in range(5):
        c.campaign(nid, deliver=False)
        c.deliver(drop=drop)
        if c[nid].role == LEADER:
            return c[nid]
    raise AssertionError(f"node {nid} cannot win: {c[nid]}")


def log_terms(node: RaftNode) -> list[int]:
    return [e.term for e in node.storage.log.entries]


# ------------------------------------------------------------------ 5.2 leader election


def test_5_2_campaign_elects_leader_and_followers_learn_it() -> None:
    c = Cluster(3)
    c.elect(1)
    assert c[1].role == LEADER and c[1].term == 1 and c[1].leader_id == 1
    for i in (2, 3):
        assert c[i].role == FOLLOWER and c[i].term == 1 and c[i].leader_id == 1
    # The new leader's empty entry commits and is handed to every host.
    assert all(c[i].commit_index == 1 for i in c.ids)
    assert all(c.applied_index[i] == 1 and c.applied[i] == [] for i in c.ids)


@pytest.mark.parametrize("n", [3, 5])
def test_5_2_election_timeouts_elect_exactly_one_stable_leader(n: int) -> None:
    for seed in range(10):
        c = Cluster(n, seed=seed)
        for _ in range(200):
            c.tick_all()
            if c.leaders():
                break
        assert len(c.leaders()) == 1, f"seed {seed}: no leader"
        lid = c.leaders()[0]
        term = c[lid].term
        c.tick_all(100)
        assert c.leaders() == [lid] and c[lid].term == term, f"seed {seed}: leader unstable"
        assert all(c[i].leader_id == lid for i in c.ids)


def test_5_2_election_timeout_is_randomised_within_one_to_two_timeouts() -> None:
    seen = set()
    for seed in range(60):
        node = lone(seed=seed, election_ticks=10)
        ticks = 0
        while node.role == FOLLOWER:
            node.tick()
            ticks += 1
        assert 10 <= ticks < 20
        seen.add(ticks)
        # A new timeout is drawn for each election.
        first = node.term
        more = 0
        while node.term == first:
            node.tick()
            more += 1
        assert 10 <= more < 20
    assert len(seen) >= 5, "timeouts are not randomised"


def test_5_2_votes_at_most_once_per_term_and_the_vote_survives_restart() -> None:
    st = MemoryStorage()
    node = RaftNode(RaftConfig(node_id=3, peers=(1, 2, 3)), st)
    node.step(VoteRequest(1, 3, 1, 0, 0))
    node.step(VoteRequest(2, 3, 1, 0, 0))
    node.step(VoteRequest(1, 3, 1, 0, 0))  # a duplicate of the granted request
    granted = [(m.to, m.granted) for m in answers(node)]  # type: ignore[attr-defined]
    assert granted == [(1, True), (2, False), (1, True)]
    assert st.term == 1 and st.voted_for == 1
    node = RaftNode(RaftConfig(node_id=3, peers=(1, 2, 3)), st)
    node.step(VoteRequest(2, 3, 1, 0, 0))
    assert [m.granted for m in answers(node)] == [False]  # type: ignore[attr-defined]
    # A new term frees the vote.
    node.step(VoteRequest(2, 3, 2, 0, 0))
    assert [m.granted for m in answers(node)] == [True]  # type: ignore[attr-defined]


def test_5_2_candidate_steps_down_on_higher_term() -> None:
    node = lone(1)
    node.campaign()
    assert node.role == CANDIDATE and node.term == 1
    node.step(VoteResponse(2, 1, 5, False))
    assert node.role == FOLLOWER and node.term == 5 and node.leader_id is None
    assert node.storage.voted_for is None


def test_5_2_candidate_steps_down_for_a_leader_of_its_own_term() -> None:
    node = lone(1)
    node.campaign()
    node.ready()
    node.step(AppendRequest(2, 1, 1, 0, 0, [Entry(1, 1, b"")], 0))
    assert node.role == FOLLOWER and node.term == 1 and node.leader_id == 2
    assert node.ready().role_changed


def test_5_2_leader_steps_down_on_higher_term() -> None:
    c = Cluster(3)
    c.elect(1)
    c.step(AppendResponse(2, 1, 7, 0, True))
    assert c[1].role == FOLLOWER and c[1].term == 7 and c[1].leader_id is None


def test_5_2_stale_leader_learns_the_new_term_and_steps_down() -> None:
    c = Cluster(3, check_quorum=False)
    c.elect(1)
    c.isolate(1)
    c.elect(2)
    assert c[2].term == 2 and c[1].role == LEADER  # 1 has not heard yet
    assert c.propose(1, b"lost") is not None  # a stale leader still accepts proposals
    c.heal()
    c.tick(1)  # its heartbeat is answered with term 2
    c.deliver()
    assert c[1].role == FOLLOWER and c[1].term == 2
    c.tick_all(2)
    assert c[1].leader_id == 2
    assert all(b"lost" not in c.applied[i] for i in c.ids)


def test_5_2_stale_vote_request_is_refused_with_the_current_term() -> None:
    node = lone(3)
    node.step(AppendRequest(1, 3, 4, 0, 0, [], 0))
    node.ready()
    node.step(VoteRequest(2, 3, 3, 10, 3))
    (m,) = answers(node)
    assert isinstance(m, VoteResponse) and not m.granted and m.term == 4


def test_5_2_split_vote_is_resolved_in_a_later_term() -> None:
    c = Cluster(3, seed=7)
    c.isolate(3)
    c.campaign(1, deliver=False)
    c.campaign(2, deliver=False)
    c.deliver()
    assert c[1].role == CANDIDATE and c[2].role == CANDIDATE
    assert c[1].term == c[2].term == 1
    c.heal()
    for _ in range(100):
        c.tick_all()
        if c.leaders():
            break
    (lid,) = c.leaders()
    assert c[lid].term >= 2


def test_5_2_a_node_that_knows_the_leader_does_not_vote_for_another() -> None:
    node = lone(3)
    node.step(AppendRequest(1, 3, 1, 0, 0, [Entry(1, 1, b"")], 0))
    node.ready()
    node.step(VoteRequest(2, 3, 1, 1, 1))
    (m,) = answers(node)
    assert isinstance(m, VoteResponse) and not m.granted


def test_messages_for_another_node_are_ignored() -> None:
    node = lone(3)
    node.step(VoteRequest(1, 2, 9, 0, 0))
    assert node.term == 0 and not node.has_ready()


# ------------------------------------------------------------------ 5.3 log replication


def test_5_3_entries_replicate_commit_and_apply_in_order_everywhere() -> None:
    c = Cluster(3)
    c.elect(1)
    data = [b"a%d" % i for i in range(20)]
    indices = [c.propose(1, d) for d in data]
    assert indices == list(range(2, 22))
    c.tick_all()
    for i in c.ids:
        assert c.applied[i] == data
        assert c[i].commit_index == c[i].applied_index == 21
        assert c[i].last_index == 21


def test_5_3_proposals_go_out_at_once_without_waiting_for_a_heartbeat() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, b"x", deliver=False)
    appends = [m for m in c.take() if isinstance(m, AppendRequest)]
    assert sorted(m.to for m in appends) == [2, 3]
    assert all([e.data for e in m.entries] == [b"x"] for m in appends)


def test_5_3_only_the_leader_accepts_proposals() -> None:
    c = Cluster(3)
    c.elect(1)
    assert c[2].propose(b"x") is None
    assert c[3].propose(b"x") is None
    with pytest.raises(ValueError):
        c[1].propose(b"")  # b"" is reserved for the leader's empty entry


def test_5_3_commit_needs_a_majority() -> None:
    c = Cluster(5)
    c.elect(1)
    c.cut(1, 3)
    c.cut(1, 4)
    c.cut(1, 5)
    index = c.propose(1, b"x")
    assert index is not None
    c.tick_all(3)
    assert c[1].commit_index < index  # stored on 1 and 2 only: two of five
    c.heal()
    c.cut(1, 4)
    c.cut(1, 5)
    c.tick_all(3)
    assert c[1].commit_index >= index  # now on 1, 2 and 3
    assert c.applied[1] == [b"x"]


def test_5_3_follower_rejects_an_append_that_does_not_follow_its_log() -> None:
    node = lone(2)
    node.step(AppendRequest(1, 2, 1, 5, 1, [Entry(1, 6, b"x")], 0))
    (m,) = answers(node)
    assert isinstance(m, AppendResponse) and m.reject and m.index == 5
    assert m.hint_index == 0 and node.last_index == 0


def test_5_3_conflicting_uncommitted_suffix_is_overwritten() -> None:
    c = Cluster(3)
    c.elect(1)
    c.propose(1, b"a")
    c.propose(1, b"b")
    c.isolate(1)
    for d in (b"x1", b"x2", b"x3"):
        c.propose(1, d)  # only node 1 stores these
    c.elect(2)
    c.propose(2, b"y")
    c.heal()
    c.tick_all(3)
    assert c[1].role == FOLLOWER and c[1].leader_id == 2
    c.tick_all(2)
    for i in c.ids:
        assert c.applied[i] == [b"a", b"b", b"y"]
        assert [e.data for e in c[i].storage.log.entries] == [
            e.data for e in c[2].storage.log.entries
        ]


def test_5_3_delayed_shorter_append_does_not_truncate() -> None:
    node = lone(2)
    ents = [Entry(1, i, b"e%d" % i) for i in (1, 2, 3)]
    node.step(AppendRequest(1, 2, 1, 0, 0, ents, 0))
    node.step(AppendRequest(1, 2, 1, 0, 0, ents[:1], 0))  # arrives late
    node.step(AppendRequest(1, 2, 1, 0, 0, ents, 0))  # and a duplicate
    assert node.last_index == 3
    acks = [m.index for m in answers(node)]  # type: ignore[attr-defined]
    assert acks == [3, 1, 3]


def test_5_3_ack_reports_only_what_the_message_proved() -> None:
    node = lone(3)
    # Entries of leader 1 (term 1) that its successor never had.
    node.step(AppendRequest(1, 3, 1, 0, 0, [Entry(1, i, b"o") for i in (1, 2, 3)], 0))
    node.ready()
    # Leader 2 of term 2 agrees up to index 1 only; its heartbeat at 1 must not be
    # acknowledged as matching up to 3.
    node.step(AppendRequest(2, 3, 2, 1, 1, [], 1))
    (m,) = answers(node)
    assert isinstance(m, AppendResponse) and not m.reject and m.index == 1
    assert node.commit_index == 1


def test_5_3_follower_commit_is_bounded_by_what_the_message_proved() -> None:
    node = lone(3)
    node.step(AppendRequest(1, 3, 1, 0, 0, [Entry(1, 1, b"a"), Entry(1, 2, b"b")], 0))
    node.step(AppendRequest(1, 3, 1, 0, 0, [Entry(1, 1, b"a")], 2))
    assert node.commit_index == 1
    node.step(AppendRequest(1, 3, 1, 2, 1, [], 2))
    assert node.commit_index == 2


def test_5_3_fast_backoff_skips_a_whole_term_per_round_trip() -> None:
    c = Cluster(3)
    common = [Entry(1, i, b"c%d" % i) for i in range(1, 6)]
    for nid, term in ((1, 3), (2, 2), (3, 1)):
        st = c.storages[nid]
        st.term = 3
        st.log.entries = list(common)
        if nid != 3:
            st.log.entries += [Entry(term, i, b"t%d" % term) for i in range(6, 56)]
        c.restart(nid)
    c.isolate(3)
    c.elect(1)
    rejects = [m for m in c.sent if isinstance(m, AppendResponse) and m.frm == 2 and m.reject]
    assert len(rejects) == 1  # 50 conflicting entries, one round trip
    assert log_terms(c[2]) == log_terms(c[1])
    assert c[2].commit_index == c[1].commit_index == 56


def test_5_3_pipeline_respects_max_inflight() -> None:
    c = Cluster(3, max_inflight=2)
    c.elect(1)
    for i in range(10):
        c.propose(1, b"p%d" % i, deliver=False)
    out = [m for m in c.take() if isinstance(m, AppendRequest) and m.to == 2]
    assert len(out) == 2 and [len(m.entries) for m in out] == [1, 1]
    pr = c[1].progress(2)
    assert pr is not None and pr.state == ProgressState.REPLICATE and len(pr.inflight) == 2
    # Answer them: the rest follows in a batch.
    for m in out:
        c.step(m)
    c.deliver()
    c.tick_all()
    assert all(len(c.applied[i]) == 10 for i in c.ids)


def test_5_3_batches_respect_max_append_bytes() -> None:
    c = Cluster(3, max_append_bytes=10)
    c.elect(1)
    c.isolate(3)
    for i in range(10):
        c.propose(1, b"%04d" % i)
    c.propose(1, b"x" * 25)  # bigger than the cap on its own
    c.heal()
    c.tick_all(5)
    to3 = [m for m in c.sent if isinstance(m, AppendRequest) and m.to == 3 and m.entries]
    assert to3
    for m in to3:
        assert len(m.entries) == 1 or sum(len(e.data) for e in m.entries) <= 10
    assert c.applied[3] == c.applied[1] and len(c.applied[3]) == 11


def test_5_3_followers_learn_the_commit_index_from_heartbeats() -> None:
    c = Cluster(3)
    c.elect(1)
    index = c.propose(1, b"x")
    assert c[1].commit_index == index
    assert c[2].commit_index < index  # the entry is stored, its commit not yet known
    c.tick_all(c[1].config.heartbeat_ticks)
    assert c[2].commit_index == c[3].commit_index == index
    assert c.applied[2] == [b"x"]


def test_5_3_lost_appends_are_retransmitted() -> None:
    c = Cluster(3, max_inflight=4)
    c.elect(1)
    for i in range(6):
        c.propose(1, b"p%d" % i, deliver=False)
    # Lose everything the leader sent to node 3 this round.
    c.deliver(drop=lambda m: m.to == 3)
    assert c.applied[3] == []
    c.tick_all(4)
    assert c.applied[3] == [b"p%d" % i for i in range(6)]


def test_ready_hands_out_each_committed_entry_exactly_once() -> None:
    c = Cluster(3)
    c.elect(1)
    for i in range(5):
        c.propose(1, b"%d" % i)
    c.tick_all(3)
    node = c[2]
    assert not node.has_ready()
    rd = node.ready()
    assert rd.committed == [] and rd.messages == [] and rd.snapshot is None
    assert not rd.role_changed


# ------------------------------------------------------------------ 5.4 safety


def test_5_4_1_vote_is_denied_to_a_candidate_with_an_older_log() -> None:
    c = Cluster(3)
    c.elect(1)
    c.cut(1, 3)
    c.propose(1, b"x")  # committed by 1 and 2; 3 misses it
    c.heal()
    c.crash(1)
    c.campaign(3)
    assert c[3].role == CANDIDATE  # 2 refused: 3's log is behind
    c.campaign(2)
    assert c[2].role == LEADER
    c.tick_all()
    assert c.applied[3] == [b"x"]


def test_5_4_1_more_up_to_date_compares_last_term_before_length() -> None:
    node = lone(3)
    node.step(AppendRequest(1, 3, 2, 0, 0, [Entry(1, 1, b"a"), Entry(2, 2, b"b")], 0))
    node.ready()
    # A longer log whose last term is older loses ...
    node.step(VoteRequest(2, 3, 3, 10, 1))
    # ... a shorter log with a newer last term wins.
    node.step(VoteRequest(1, 3, 4, 1, 3))
    assert [m.granted for m in answers(node)] == [False, True]  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(5))
def test_5_4_leader_completeness_after_leader_crashes(seed: int) -> None:
    c = Cluster(5, seed=seed)
    c.elect(1)
    for i in range(5):
        c.propose(1, b"c%d" % i)
    committed = c[1].commit_index
    c.crash(1)
    for _ in range(300):
        c.tick_all()
        if c.leaders():
            break
    (lid,) = c.leaders()
    log = c[lid].storage.log
    assert log.last_index >= committed
    assert [e.data for e in log.entries[:committed] if e.data] == [b"c%d" % i for i in range(5)]


def test_5_4_2_entries_of_older_terms_are_not_committed_by_counting() -> None:
    """Figure 8 of the paper, with five nodes and one entry per append."""
    c = Cluster(5, max_append_bytes=0, check_quorum=False)
    c.elect(1)  # term 1; index 1 (empty) committed everywhere
    # (a) leader 1 writes index 2 but only node 2 gets it.
    for other in (3, 4, 5):
        c.cut(1, other)
    c.propose(1, b"a")
    assert c[2].last_index == 2 and c[3].last_index == 1
    # (b) 1 crashes; 5 wins term 2 with votes of 3 and 4, writes index 2 locally, crashes.
    c.crash(1)
    c.heal()
    c.campaign(5, deliver=False)
    c.deliver(drop=lambda m: isinstance(m, AppendRequest))
    assert c[5].role == LEADER and c[5].term == 2
    c.crash(5)
    # (c) 1 comes back and wins a later term (its log [1, 2@t1] beats 3's and 4's); it
    # copies index 2 to 3 and 4, but its own entry of the new term reaches nobody.
    c.restart(1)

    def drop_new(m: Any) -> bool:
        # Probes that will be rejected pass; whatever would store an entry of the new
        # term is lost.
        return (
            isinstance(m, AppendRequest)
            and any(e.term > 2 for e in m.entries)
            and c[m.to].storage.log.term(m.prev_index) == m.prev_term
        )

    win(c, 1, drop_new)
    assert c[1].term > 2
    assert all(c[i].storage.log.term(2) == 1 for i in (1, 2, 3, 4))
    # Index 2 is on four of five nodes, yet it must not count as committed.
    assert c[1].commit_index < 2
    # (d) 1 crashes; 5 returns, wins a later term and rightly replaces index 2.
    c.crash(1)
    c.restart(5)
    win(c, 5)
    c.tick_all(2)
    for i in (2, 3, 4, 5):
        assert c[i].storage.log.term(2) == 2
        assert b"a" not in c.applied[i]


def test_5_4_2_a_current_term_entry_commits_its_predecessors() -> None:
    """Figure 8 (e): once the leader's own entry is on a majority, all before it is
    committed and the node holding the conflicting entry can no longer win."""
    c = Cluster(5, max_append_bytes=0, check_quorum=False)
    c.elect(1)
    for other in (3, 4, 5):
        c.cut(1, other)
    c.propose(1, b"a")
    c.crash(1)
    c.heal()
    c.campaign(5, deliver=False)
    c.deliver(drop=lambda m: isinstance(m, AppendRequest))
    c.crash(5)
    c.restart(1)
    win(c, 1)
    assert c[1].commit_index == 3  # index 2 (term 1) committed by index 3 (new term)
    c.tick_all()
    assert all(c.applied[i] == [b"a"] for i in (1, 2, 3, 4))
    c.crash(1)
    c.restart(5)
    for _ in range(5):
        c.campaign(5)
        assert c[5].role != LEADER


# ------------------------------------------------------------------ 7 log compaction


def test_7_compaction_drops_the_prefix_and_keeps_a_snapshot() -> None:
    c = Cluster(3)
    c.elect(1)
    for i in range(10):
        c.propose(1, b"%d" % i)
    node = c[1]
    applied = node.applied_index
    c.compact(1)
    snap = node.storage.snapshot
    assert (snap.index, snap.term) == (applied, 1)
    assert node.first_index == applied + 1 and node.storage.log.entries == []
    with pytest.raises(ValueError):
        node.compact(applied + 1, b"")
    node.compact(applied - 3, b"ignored")  # already covered: a no-op
    assert node.storage.snapshot is snap
    c.propose(1, b"after")
    c.tick_all()
    assert c.applied[2][-1] == b"after"


def test_7_lagging_follower_is_sent_a_snapshot() -> None:
    c = Cluster(3)
    c.elect(1)
    c.crash(3)
    for i in range(30):
        c.propose(1, b"%d" % i)
    c.compact(1)
    c.compact(2)
    c.restart(3)
    c.tick_all(3)
    snaps = [m for m in c.sent if isinstance(m, SnapshotRequest) and m.to == 3]
    assert len(snaps) == 1 and snaps[0].snapshot.index == c[1].storage.snapshot.index
    assert c.restored[3] == [snaps[0].snapshot.index]
    assert c.applied[3] == c.applied[1]
    c.propose(1, b"more")
    c.tick_all()
    assert c.applied[3] == c.applied[1] and c.applied[3][-1] == b"more"
    pr = c[1].progress(3)
    assert pr is not None and pr.state == ProgressState.REPLICATE


def test_7_lost_snapshot_is_sent_again() -> None:
    c = Cluster(3, election_ticks=5)
    c.elect(1)
    c.crash(3)
    for i in range(5):
        c.propose(1, b"%d" % i)
    c.compact(1)
    c.restart(3)
    lost: list[SnapshotRequest] = []

    def drop_first_snapshot(m: object) -> bool:
        if isinstance(m, SnapshotRequest) and not lost:
            lost.append(m)
            return True
        return False

    for _ in range(30):
        c.tick_all(deliver=False)
        c.deliver(drop=drop_first_snapshot)
        if c.restored[3]:
            break
    assert lost and c.restored[3]
    assert c.applied[3] == c.applied[1]


def test_7_restart_hands_out_the_snapshot_first() -> None:
    c = Cluster(3)
    c.elect(1)
    for i in range(8):
        c.propose(1, b"%d" % i)
    c.tick_all()
    c.compact(2, 5)
    c.crash(2)
    node = c.restart(2)
    assert c.restored[2] == [5]
    assert node.applied_index == node.commit_index == 5
    assert node.role == FOLLOWER and node.leader_id is None
    assert c.applied[2] == [b"%d" % i for i in range(4)]  # index 1 is the empty entry
    c.tick_all()
    assert c.applied[2] == c.applied[1]


def test_7_snapshot_of_entries_the_follower_already_has_keeps_its_log() -> None:
    node = lone(2)
    ents = [Entry(1, i, b"%d" % i) for i in (1, 2, 3)]
    node.step(AppendRequest(1, 2, 1, 0, 0, ents, 0))
    node.ready()
    node.step(SnapshotRequest(1, 2, 1, snapshot=_snap(2, 1)))
    rd = node.ready()
    assert rd.snapshot is None and [e.index for e in rd.committed] == [1, 2]
    assert node.last_index == 3 and node.first_index == 1
    (m,) = rd.messages
    assert isinstance(m, SnapshotResponse) and m.index == 2


def test_7_snapshot_replaces_a_conflicting_log() -> None:
    node = lone(2)
    node.step(AppendRequest(1, 2, 1, 0, 0, [Entry(1, i, b"o") for i in (1, 2, 3)], 0))
    node.ready()
    node.step(SnapshotRequest(3, 2, 2, snapshot=_snap(5, 2)))
    rd = node.ready()
    assert rd.snapshot is not None and rd.snapshot.index == 5
    assert node.first_index == 6 and node.last_index == 5
    assert node.commit_index == node.applied_index == 5 and node.leader_id == 3


def _snap(index: int, term: int) -> Snapshot:
    return Snapshot(index, term, b"state")


# ------------------------------------------------------------------ check quorum


def test_check_quorum_partitioned_leader_steps_down() -> None:
    c = Cluster(3, election_ticks=10)
    c.elect(1)
    c.isolate(1)
    c.tick(1, 20)
    assert c[1].role == FOLLOWER and c[1].leader_id is None and c[1].term == 1
    assert c[1].propose(b"x") is None


def test_without_check_quorum_partitioned_leader_keeps_leading() -> None:
    c = Cluster(3, election_ticks=10, check_quorum=False)
    c.elect(1)
    c.isolate(1)
    c.tick(1, 50)
    assert c[1].role == LEADER


def test_check_quorum_leader_with_a_majority_stays() -> None:
    c = Cluster(3, election_ticks=10)
    c.elect(1)
    c.isolate(3)
    c.tick_all(60)
    assert c[1].role == LEADER and c[1].term == 1
    # Meanwhile 3 campaigned on its own; on healing its higher term takes over, but no
    # committed entry is lost.
    c.propose(1, b"kept")
    c.heal()
    for _ in range(100):
        c.tick_all()
        if len(c.leaders()) == 1 and all(c[i].leader_id == c.leaders()[0] for i in c.ids):
            break
    (lid,) = c.leaders()
    c.tick_all()
    assert all(c.applied[i] == [b"kept"] for i in c.ids)


# ------------------------------------------------------------------ misc


def test_single_node_group_commits_on_its_own() -> None:
    node = RaftNode(RaftConfig(node_id=7, peers=(7,)))
    node.campaign()
    assert node.role == LEADER and node.commit_index == 1
    assert node.propose(b"x") == 2 and node.commit_index == 2
    rd = node.ready()
    assert [e.data for e in rd.committed] == [b"", b"x"] and rd.messages == []


def test_role_changes_are_reported_once() -> None:
    c = Cluster(3)
    c.campaign(1, deliver=False)
    assert c[1].ready().role_changed is False  # collect() already took it
    node = lone(1)
    node.campaign()
    assert node.ready().role_changed
    assert not node.ready().role_changed


@pytest.mark.parametrize(
    "kw",
    [
        {"node_id": 4, "peers": (1, 2, 3)},
        {"node_id": 1, "peers": (1, 1, 2)},
        {"node_id": 1, "peers": (1, 2, 3), "election_ticks": 2, "heartbeat_ticks": 2},
        {"node_id": 1, "peers": (1, 2, 3), "max_inflight": 0},
    ],
)
def test_config_is_validated(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RaftConfig(**kw)  # type: ignore[arg-type]


def test_invariant_checker_is_active_in_directed_tests() -> None:
    c = Cluster(3)
    c.elect(1)
    with pytest.raises(InvariantViolation):
        c.checker.observe_leader(2, 1)


# ------------------------------------------------------------------ host options


@pytest.mark.parametrize("notice", [False, True])
def test_commit_notice_tells_followers_of_a_commit_without_waiting_for_a_heartbeat(
        notice: bool) -> None:
    c = Cluster(3, commit_notice=notice)
    c.elect(1)
    index = c.propose(1, b"x")  # delivered until the network is quiet; no tick happens
    assert c[1].commit_index == index
    # Without the notice the followers learn the commit only from the next append or
    # heartbeat; with it, at once.
    followers = [c[i].commit_index for i in (2, 3)]
    assert followers == ([index, index] if notice else [index - 1, index - 1])
    c.tick_all(5)
    assert all(c[i].commit_index == index for i in c.ids)
