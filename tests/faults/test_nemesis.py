"""Pauses under load (SIGSTOP/SIGCONT of real node processes) and schedules from files and
seeds; every run ends with the contiguity and FIFO checker."""

from __future__ import annotations

from pathlib import Path

from analysis.datfiles import read_faults
from nodes.status import FOLLOWER, LEADER, parse_role
from orchestrator import fault_plan
from orchestrator.fault_plan import Event
from tests.faults.test_failover import assert_contiguous, run
from tests.faults.timing import ELECTION_RECOVERY_S, TAKEOVER_S, run_length


def roles(run_dir: Path, kind: str) -> dict[str, tuple[str, int]]:
    found = {}
    for path in sorted(run_dir.glob(f"{kind}-*.role")):
        parsed = parse_role(path.read_text())
        assert parsed is not None, path
        found[path.name.removesuffix(".role")] = parsed
    return found


def faults(run_dir: Path) -> list[tuple[str, str]]:
    return [(e.event, e.target) for e in read_faults(run_dir / "faults.log")
            if not e.event.startswith("measure")]


def test_a_paused_leader_is_replaced_and_its_wake_accuses_no_sequencer(tmp_path):
    run_dir, output, code = run(tmp_path, "pause-leader", "--pause_leader", "1",
                                "--pause_for", "1.5", "--nsequencers", "2",
                                duration=run_length(2.5, ELECTION_RECOVERY_S))
    assert_contiguous(run_dir, output, code)
    (start, paused), (end, resumed) = faults(run_dir)
    assert (start, end) == ("pause_leader", "resume") and paused == resumed
    group0 = {name: r for name, r in roles(run_dir, "proxy").items() if name.endswith("-0")}
    leaders = [name for name, (role, _) in group0.items() if role == LEADER]
    assert len(leaders) == 1 and leaders[0] != paused  # replaced while it slept
    assert group0[paused][0] == FOLLOWER and group0[paused][1] >= 2
    # Waking up, the old leader must not take its own sleep for the sequencer's silence:
    # the standby never took over.
    assert roles(run_dir, "sequencer")["sequencer-1"][0] == FOLLOWER


def test_a_paused_sequencer_is_replaced_by_the_standby(tmp_path):
    run_dir, output, code = run(tmp_path, "pause-sequencer", "--pause_sequencer", "1",
                                "--pause_for", "1.5", duration=run_length(2.5, TAKEOVER_S))
    assert_contiguous(run_dir, output, code)
    assert faults(run_dir) == [("pause_sequencer", "sequencer-0"), ("resume", "sequencer-0")]
    assert roles(run_dir, "sequencer")["sequencer-1"] == (LEADER, 2)


def test_a_schedule_file_mixing_pauses_and_kills_keeps_contiguity(tmp_path):
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(fault_plan.dump([
        Event(at=0.5, kind="pause_follower", duration=1.0, group=1),
        Event(at=1.0, kind="kill_leader", group=0),
        Event(at=2.0, kind="pause_leader", duration=1.0, group=1),
    ]))
    run_dir, output, code = run(tmp_path, "file", "--faults", str(schedule),
                                duration=run_length(3.0, ELECTION_RECOVERY_S))
    assert_contiguous(run_dir, output, code)
    kinds = [event for event, _ in faults(run_dir)]
    assert kinds == ["pause_follower", "kill_leader", "resume", "pause_leader", "resume"]
    assert (run_dir / fault_plan.SCHEDULE_FILE).read_text() == schedule.read_text()
