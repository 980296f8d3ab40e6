"""Which group carries a takeover's fill (nodes/sequencer/fill_carrier.py), the groups' side
of it (nodes/proxy/failover.py) and the standby's loop over real replicas on real sockets.

The fill used to go to group 0 only: a group 0 without a majority after collect held
every group's failover. Any group may carry it now, but never two groups.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import raft, runtime, wire
from nodes.config import Endpoint, ProxyConfig
from nodes.proxy import entries
from nodes.proxy.group_state import GroupState
from nodes.proxy.replica import Replica
from nodes.sequencer.fill_carrier import FillCarrier, Outcome
from nodes.sequencer.recovery import GroupLink, carry_fill, fill_outcome
from tests.conftest import free_port
from tests.unit.test_standby_fencing import Kept

# ---- the rule ----------------------------------------------------------------------------


def test_group_0_first_then_the_next_round_and_round():
    carrier = FillCarrier(3)
    seen = []
    for _ in range(4):
        group = carrier.next_group()
        seen.append(group)
        carrier.unavailable(group)
    assert seen == [0, 1, 2, 0]


def test_a_provably_refused_fill_lets_the_carrier_move_on():
    carrier = FillCarrier(2)
    carrier.sending(0)
    assert not carrier.may_skip()
    carrier.unavailable(0)  # no skipping a group the fill was sent to, while it is there
    carrier.answered(0, Outcome.REFUSED)  # its leader had just stepped down, say
    assert carrier.may_skip() and carrier.next_group() == 0  # probed again first
    carrier.unavailable(0)
    carrier.sending(1)
    carrier.answered(1, Outcome.DONE)
    assert carrier.next_group() == 1


@pytest.mark.parametrize("outcome", [Outcome.UNKNOWN, Outcome.DONE])
def test_a_group_that_may_hold_the_fill_is_never_passed_over(outcome):
    carrier = FillCarrier(3)
    carrier.sending(0)
    carrier.answered(0, outcome)
    carrier.answered(0, Outcome.REFUSED)  # a later refusal does not clear an earlier doubt
    carrier.unavailable(0)
    assert carrier.next_group() == 0 and not carrier.may_skip()
    with pytest.raises(ValueError, match="group 0 may hold the fill"):
        carrier.sending(1)


def test_a_carrier_needs_a_group():
    with pytest.raises(ValueError, match="^a fill needs at least one group to carry it$"):
        FillCarrier(0)


def test_a_bound_carrier_asks_its_group_whatever_the_turn():
    carrier = FillCarrier(3)
    carrier.sending(2)  # the turn is group 0's
    assert carrier.next_group() == 2
    carrier.unavailable(0)  # a probe's failure moves no turn while bound
    assert carrier.next_group() == 2 and carrier.turn == 0


def test_misuse_of_the_carrier_names_the_groups():
    carrier = FillCarrier(3)
    carrier.sending(0)
    carrier.answered(0, Outcome.UNKNOWN)
    with pytest.raises(ValueError, match="^group 0 may hold the fill: group 1 must not be sent "
                                         "it$"):
        carrier.sending(1)
    with pytest.raises(ValueError, match="^an answer from group 2, but the fill went to group "
                                         "0$"):
        carrier.answered(2, Outcome.DONE)


@settings(max_examples=300, deadline=None)
@given(ngroups=st.integers(1, 4),
       steps=st.lists(st.tuples(st.booleans(), st.sampled_from(list(Outcome))), max_size=40))
def test_never_two_groups_may_hold_the_fill(ngroups, steps):
    # The standby's loop (recovery.carry_fill) against groups that answer at random:
    # probes that fail, fills that commit, are refused, or get no answer.
    carrier = FillCarrier(ngroups)
    may_hold: set[int] = set()  # groups sent a fill that was not provably refused
    refused_only: dict[int, bool] = {}
    for probe_ok, outcome in steps:
        group = carrier.next_group()
        if carrier.may_skip() and not probe_ok:
            carrier.unavailable(group)
            continue
        carrier.sending(group)
        carrier.answered(group, outcome)
        refused_only[group] = refused_only.get(group, True) and outcome is Outcome.REFUSED
        if not refused_only[group]:
            may_hold.add(group)
        assert len(may_hold) <= 1
        if may_hold:
            assert carrier.next_group() in may_hold and not carrier.may_skip()
        if outcome is Outcome.DONE:
            break


def test_what_an_answer_proves_about_the_log():
    ok = wire.GroupReply(0, True)
    refused = wire.GroupReply(0, False, 1, untouched=True)
    stepped_down = wire.GroupReply(0, False, 1)  # the leader held the request, then lost
    assert fill_outcome(ok, True) is Outcome.DONE
    assert fill_outcome(refused, True) is Outcome.REFUSED
    assert fill_outcome(None, False) is Outcome.REFUSED  # never left this process
    assert fill_outcome(stepped_down, True) is Outcome.UNKNOWN
    assert fill_outcome(None, True) is Outcome.UNKNOWN  # no answer: it may be in the log


# ---- the groups' side --------------------------------------------------------------------


def proxy_conf(outdir: Path, group: int, peers: dict[str, Endpoint] | None = None,
               port: int = 0) -> ProxyConfig:
    return ProxyConfig(name=f"p{group}", outdir=str(outdir), nspaces=1, group=group, replica=0,
                       peers=peers or {}, sequencer=Endpoint("127.0.0.1", 3),
                       listen=Endpoint("127.0.0.1", port) if port else None)


def test_a_probe_commits_a_marker_that_changes_nothing(tmp_path):
    async def scenario() -> tuple[list[object], list[object], GroupState, bytes]:
        replica = Replica(proxy_conf(tmp_path, 0))
        replica.raft.campaign()  # a group of one leads at once
        replica.won_term = replica.serving_term = replica.raft.term
        before = replica.state.snapshot()
        probe, fill = Kept(), Kept()
        replica.failover.on_fill(probe, 1, wire.FillRequest(2, [[(0, 4)]], probe=True))  # type: ignore[arg-type]
        replica.failover.on_fill(probe, 2, wire.FillRequest(2, [[(0, 4)]], probe=True))  # type: ignore[arg-type]
        for _ in range(5):
            await asyncio.sleep(0)
        after_probe = replica.state.snapshot()
        replica.failover.on_fill(fill, 3, wire.FillRequest(2, [[(0, 4)]]))  # type: ignore[arg-type]
        for _ in range(5):
            await asyncio.sleep(0)
        assert before == after_probe
        return probe.replies, fill.replies, replica.state, before

    probed, filled, state, _ = asyncio.run(scenario())
    assert probed == [wire.GroupReply(0, True)]  # one marker for the two probes
    assert filled == [wire.GroupReply(0, True)]
    assert state.fills == {2} and state.noop_numbers == [5]


def test_refusals_say_whether_anything_was_proposed(tmp_path):
    async def scenario() -> list[list[tuple[bool, bool]]]:
        down = {"1": Endpoint("127.0.0.1", 1), "2": Endpoint("127.0.0.1", 2)}
        replica = Replica(proxy_conf(tmp_path, 0, down))
        follower, probe, fill = Kept(), Kept(), Kept()
        replica.failover.on_fill(follower, 1, wire.FillRequest(2, [[(0, 4)]]))  # type: ignore[arg-type]
        lead_without_majority(replica)
        replica.failover.on_fill(probe, 2, wire.FillRequest(2, [[(0, 4)]], probe=True))  # type: ignore[arg-type]
        replica.failover.on_fill(fill, 3, wire.FillRequest(2, [[(0, 4)]]))  # type: ignore[arg-type]
        replica.step_down()  # as when a newer term's leader speaks up
        return [[(r.ok, r.untouched) for r in kept.replies]  # type: ignore[attr-defined]
                for kept in (follower, probe, fill)]

    follower, probe, fill = asyncio.run(scenario())
    assert follower == [(False, True)]
    assert probe == [(False, True)]  # a probe's marker owns no number
    assert fill == [(False, False)]  # the fill entry may yet commit


def lead_without_majority(replica: Replica) -> None:
    """Win an election with replica 1's vote; replicas 1 and 2 are gone since."""
    replica.raft.campaign()
    replica.raft.step(raft.VoteResponse(1, 0, replica.raft.term, True))
    replica.process_ready()
    assert replica.leading()


# ---- the standby's loop over real replicas -------------------------------------------------


@pytest.mark.parametrize("left", ["leader without majority", "no leader"])
def test_a_group_0_that_cannot_commit_does_not_hold_the_fill(tmp_path, left):
    # Group 0 lost two replicas after collect: the one left still leads (it answers, but
    # can commit nothing) or no longer does. Group 1 (a group of one) carries the fill;
    # group 0's log never holds it.
    async def scenario() -> tuple[int, set[int], list[entries.Entry]]:
        ports = [free_port() for _ in range(4)]
        gone = {str(i): Endpoint("127.0.0.1", ports[i]) for i in (1, 2)}
        group0 = Replica(proxy_conf(tmp_path, 0, gone, ports[0]))
        group1 = Replica(proxy_conf(tmp_path, 1, port=ports[3]))
        servers = [await runtime.listen(r.conf, r.handle) for r in (group0, group1)]
        if left == "leader without majority":
            lead_without_majority(group0)
        group1.raft.campaign()
        group1.process_ready()
        links = [GroupLink(0, [Endpoint("127.0.0.1", p) for p in ports[:3]]),
                 GroupLink(1, [Endpoint("127.0.0.1", ports[3])])]
        try:
            fill = wire.FillRequest(2, [[(10, 12)]])
            carrier = FillCarrier(2)
            by = await asyncio.wait_for(carry_fill(links, fill, carrier), 20)
            # A retried takeover goes back to the group that committed it.
            again = await asyncio.wait_for(carry_fill(links, fill, carrier), 5)
            assert again is by
        finally:
            for link in links:
                link.stop()
            for server in servers:
                server.close()
        raft_log = group0.raft.storage.log
        log = [entries.decode(e.data) for e in raft_log.slice(1, raft_log.last_index + 1)
               if e.data]
        return by.group, group1.state.fills, log

    group, fills, group0_log = asyncio.run(scenario())
    assert group == 1 and fills == {2}
    # A leader of group 0 logged its probe's marker (which can never commit), no fill.
    assert any(isinstance(e, entries.FillProbe) for e in group0_log) == (
        left == "leader without majority")
    assert not any(isinstance(e, entries.BatchEntry) and e.fill_id for e in group0_log)
