"""The nemesis's schedules: flags, files and seeds, and the invariant every one keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import fault_plan
from orchestrator.fault_plan import Event, check_invariant
from orchestrator.spec import SpecError, build
from tests.conftest import masonctl


def spec(**values: object):
    base: dict[str, object] = {"nproxies": 3, "nproxy_threads": 2, "expduration": 20.0}
    return build("t", "mason", {**base, **values})


def windows(events: list[Event], groups_per_triple: int) -> tuple[int, int]:
    """The most replicas of one group down at one moment, and the most faults at one
    moment while a sequencer fails over (a kill's failover lasting SETTLE_S), found by
    sweeping every start (independent of check_invariant)."""
    def failing_over(e: Event, t: float) -> bool:
        until = e.at + fault_plan.SETTLE_S if e.kind in fault_plan.KILLS else e.end
        return e.at <= t < until

    worst_group = worst_takeover = 0
    for e in events:
        t = e.at
        live = [o for o in events if o.at <= t < o.end]
        per_group: dict[int, int] = {}
        for o in live:
            for g in fault_plan.down_groups(o, groups_per_triple):
                per_group[g] = per_group.get(g, 0) + 1
        worst_group = max([worst_group, *per_group.values()])
        if any(o.kind in fault_plan.SEQUENCER_KINDS and failing_over(o, t) for o in events):
            worst_takeover = max(worst_takeover, sum(
                failing_over(o, t) or o.kind not in fault_plan.KILLS and o.at <= t < o.end
                for o in events))
    return worst_group, worst_takeover


@pytest.mark.parametrize("network", [False, True])
def test_seeded_schedules_never_take_a_majority_or_the_last_sequencer(network):
    s = spec(nsequencers=3, nproxies=6)
    kinds = fault_plan.PAUSES + fault_plan.KILLS + (fault_plan.PARTITIONS if network else ())
    seen_kinds: set[str] = set()
    for seed in range(400):
        events = fault_plan.seeded(seed, s, kinds)
        assert events, seed
        assert check_invariant(events, s.nproxy_threads, s.nsequencers) == ""
        worst_group, worst_takeover = windows(events, s.nproxy_threads)
        assert worst_group <= 1, (seed, events)
        assert worst_takeover <= 1, (seed, events)  # nothing else while one fails over
        assert fault_plan.sequencers_needed(events) <= s.nsequencers, (seed, events)
        for e in events:
            fault_plan.check_event(e, s)  # every drawn event is valid for the run
            assert e.end <= s.expduration or e.kind in fault_plan.KILLS
            seen_kinds.add(e.kind)
    assert seen_kinds == set(kinds)  # the mix draws every kind it was given


def test_a_seed_gives_the_same_schedule_every_time_and_seeds_differ():
    s = spec(nsequencers=3)
    assert fault_plan.seeded(7, s) == fault_plan.seeded(7, s)
    assert fault_plan.seeded(7, s) != fault_plan.seeded(8, s)


def test_without_a_standby_no_sequencer_fault_is_drawn():
    s = spec(nsequencers=1)
    for seed in range(100):
        assert not any(e.kind in fault_plan.SEQUENCER_KINDS for e in fault_plan.seeded(seed, s))


def test_the_invariant_refuses_two_replicas_of_one_group_down_at_once():
    pause = Event(at=1.0, kind="pause_leader", duration=2.0, group=0)
    kill = Event(at=2.5, kind="kill_follower", group=0)
    assert "two of group 0's three replicas" in check_invariant([pause, kill], 1, 1)
    # Another group, or after the pause ended: fine.
    assert check_invariant([pause, Event(at=2.5, kind="kill_follower", group=1)], 1, 1) == ""
    assert check_invariant([pause, Event(at=3.0, kind="kill_follower", group=0)], 1, 1) == ""
    # A kill lasts to the end of the run.
    late = Event(at=9.0, kind="pause_follower", duration=1.0, group=0)
    assert check_invariant([kill, late], 1, 1) != ""


def test_a_partition_takes_a_replica_of_every_group_on_its_machines():
    cut = Event(at=1.0, kind="partition_leader", duration=2.0, group=0)
    other = Event(at=1.5, kind="pause_leader", duration=1.0, group=1)
    assert check_invariant([cut, other], 2, 1) != ""  # groups 0 and 1 share a triple
    assert check_invariant([cut, other], 1, 1) == ""  # one group per triple


def test_sequencer_faults_come_one_at_a_time_each_with_a_standby():
    a = Event(at=1.0, kind="pause_sequencer", duration=2.0)
    b = Event(at=2.0, kind="partition_sequencer", duration=1.0, group=1)
    assert "one sequencer fault at a time" in check_invariant([a, b], 1, 3)
    c = Event(at=5.0, kind="kill_sequencer")
    assert "need 3 sequencers" in check_invariant([a, c], 1, 2)
    assert check_invariant([a, c], 1, 3) == ""
    # A kill's failover is over once it settled: a later sequencer fault is fine.
    assert check_invariant([c, Event(at=7.0, kind="pause_sequencer", duration=1.0)], 1, 3,
                           settle=1.0) == ""


def test_nothing_else_happens_while_a_standby_takes_over():
    # A group losing its leader mid-takeover may ask a later standby: two spent on one fault.
    takeover = Event(at=2.0, kind="pause_sequencer", duration=1.5)
    leader = Event(at=2.1, kind="pause_leader", duration=1.5, group=1)
    assert "falls in the takeover" in check_invariant([takeover, leader], 1, 2)
    kill = Event(at=2.0, kind="kill_sequencer")
    assert "falls in the takeover" in check_invariant(
        [kill, Event(at=2.5, kind="pause_leader", duration=1.0)], 1, 2, settle=1.0)
    assert check_invariant([kill, Event(at=3.5, kind="pause_leader", duration=1.0)], 1, 2,
                           settle=1.0) == ""


def test_flags_schedule_group_0_and_raise_the_sequencers_for_a_standby():
    s = spec(pause_leader=3.0, pause_for=1.5, partition_sequencer=8.0, heal_after=2.0)
    events = fault_plan.planned(s)
    assert events == [Event(at=3.0, kind="pause_leader", duration=1.5),
                      Event(at=8.0, kind="partition_sequencer", duration=2.0)]
    assert s.nsequencers == 2  # a standby for the sequencer fault


@pytest.mark.parametrize(("values", "message"), [
    ({"pause_leader": 25.0}, "measured window"),
    ({"pause_leader": 2.0, "pause_for": 0.0}, "duration must be positive"),
    ({"partition_leader": 1.0, "heal_after": 3.0, "pause_follower": 2.0},
     "two of group 0's three replicas"),
    ({"latency_leader": 1.0, "latency_ms": 0}, "delay_ms must be 1..10000"),
    ({"faults": "seed:x"}, "want seed:N or seed:N:net"),
    ({"faults": "seed:3:wan"}, "want seed:N or seed:N:net"),
])
def test_bad_schedules_are_one_line_errors(values, message):
    with pytest.raises(SpecError, match=message) as err:
        spec(**values)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("text", "message"), [
    ('[[event]]\nat = 1.0\nkind = "pause_leader"\nduration = 1.0\ncolour = "red"\n',
     "unknown field `colour`"),
    ('[[event]]\nat = "soon"\nkind = "pause_leader"\n', "Expected `float`"),
    ('[[event]]\nat = 1.0\nkind = "explode"\nduration = 1.0\n', "unknown fault kind"),
    ('[[event]]\nat = 1.0\nkind = "kill_leader"\nduration = 1.0\n', "a kill has no duration"),
    ('[[event]]\nat = 1.0\nkind = "pause_leader"\nduration = 1.0\ngroup = 5\n',
     "group 5 does not exist"),
    ("[[event]\n", "--faults"),
])
def test_bad_schedule_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "schedule.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message) as err:
        spec(faults=str(path))
    assert "\n" not in str(err.value)


def test_a_schedule_file_round_trips_and_a_missing_one_is_named(tmp_path):
    events = [Event(at=1.0, kind="pause_follower", duration=0.5, group=1),
              Event(at=4.0, kind="latency_leader", duration=1.0, delay_ms=30)]
    path = tmp_path / "s.toml"
    path.write_text(fault_plan.dump(events))
    assert fault_plan.planned(spec(faults=str(path))) == events
    with pytest.raises(SpecError, match="nothere.toml"):
        spec(faults=str(tmp_path / "nothere.toml"))


def test_the_cli_refuses_partitions_on_a_local_run_in_one_line(tmp_path: Path):
    done = masonctl("run", "--partition_leader", "1", "--expduration", "3", "--outdir", "p",
                    "--results", str(tmp_path), cwd=tmp_path, timeout=60)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and "needs the nodes on distinct addresses" in lines[-1]
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("p/*.log"))  # nothing was started


def test_the_nemesis_command_refuses_partitions_without_machines(tmp_path: Path):
    done = masonctl("nemesis", "--net", "--count", "1", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "--net needs --machine-info" in done.stderr


def test_a_sequencer_restarted_before_the_backup_dies_is_the_next_standby():
    # Killed at 1 s, back at 2 s, the backup killed at 3 s: the restarted sequencer takes
    # over, so two sequencers suffice; restarted too late (3.5 s), a third is needed.
    from orchestrator.spec import build

    kills = {"kill_sequencer": 1.0, "kill_backup": 3.0, "nsequencers": 2}
    assert build("x", "mason", {**kills, "restart_after": 1.0}).nsequencers == 2
    assert build("x", "mason", {**kills, "restart_after": 2.5}).nsequencers == 3
    assert build("x", "mason", kills).nsequencers == 3


# ---- the run's kill flags in the invariant ---------------------------------------------------


@pytest.mark.parametrize(("values", "group"), [
    # Group 0's leader and then a follower of it: two of its replicas, both for good.
    ({"kill_leader": 1.0, "kill_follower": 2.0}, 0),
    # proxy-0 holds a replica of group 1 too (two groups per triple).
    ({"kill_leader_machine": 1.0, "pause_follower": 2.0}, 0),
    ({"kill_leader_machine": 1.0, "faults_group": 1}, 1),
    # proxy-3 is the second triple's first machine: kill_all_leaders takes group 2's.
    ({"nproxies": 6, "kill_all_leaders": 1.0, "faults_group": 2}, 2),
])
def test_kill_flags_count_against_a_groups_majority(tmp_path: Path, values, group):
    values = dict(values)
    if "faults_group" in values:
        schedule = tmp_path / "f.toml"
        schedule.write_text(f'[[event]]\nat = 3.0\nkind = "pause_follower"\nduration = 1.0\n'
                            f'group = {values.pop("faults_group")}\n')
        values["faults"] = str(schedule)
    with pytest.raises(SpecError, match=f"two of group {group}'s three replicas"):
        spec(**values)


def test_machine_kills_leave_the_other_triples_and_restarted_replicas_alone(tmp_path: Path):
    schedule = tmp_path / "f.toml"
    schedule.write_text('[[event]]\nat = 3.0\nkind = "pause_leader"\nduration = 1.0\n'
                        'group = 2\n')
    # Group 2 is on the second triple: proxy-0's loss does not touch it.
    spec(nproxies=6, kill_leader_machine=1.0, faults=str(schedule))
    # A replica restarted before the next kill is back in its group.
    spec(kill_leader_machine=1.0, kill_follower=3.0, restart_after=1.0)
    spec(kill_leader=1.0, kill_follower=3.0, restart_after=1.0)
    with pytest.raises(SpecError, match="two of group 0's"):
        spec(kill_leader_machine=1.0, kill_follower=3.0, restart_after=2.5)


def test_down_groups_of_machine_kills():
    machine = Event(at=1.0, kind="kill_leader_machine")
    every = Event(at=1.0, kind="kill_all_leaders")
    assert fault_plan.down_groups(machine, 4, ngroups=8) == range(4)
    assert fault_plan.down_groups(every, 4, ngroups=8) == range(8)
    assert fault_plan.down_groups(every, 4) == range(4)  # one triple when not told
