"""Kill real processes under load; every run ends with the contiguity and FIFO checker.

The checker proves: every number 0..max of every space assigned exactly once (operations
plus noops), no operation numbered twice, per-client FIFO intact, no client left without
an answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.contiguity import check_run
from analysis.datfiles import read_faults
from nodes.status import read_summary
from tests.conftest import free_port_block, masonctl, our_processes
from tests.faults.timing import (
    ELECTION_RECOVERY_S,
    SEQUENCER_SILENCE_S,
    TAKEOVER_S,
    run_length,
)

LOAD = ["--nsequence_spaces", "2", "--nproxies", "3", "--nproxy_threads", "2",
        "--nclient_threads", "2", "--client_concurrency", "16", "--warmup", "1",
        "--cooldown", "0.5"]


# The first fault lands once the run has measured a while.
FIRST = 1.0
# A second fault after a leader kill waits for the group to have a leader again, so both
# recoveries show separately.
AFTER_ELECTION = round(FIRST + ELECTION_RECOVERY_S, 2)
AFTER_TAKEOVER = round(FIRST + TAKEOVER_S, 2)


def run(root: Path, name: str, *faults: str, duration: float):
    done = masonctl("run", *LOAD, "--expduration", str(duration), *faults,
                    "--base_port", str(free_port_block(24)), "--outdir", name,
                    "--results", str(root), cwd=root, timeout=200)
    return root / name, done.stdout + done.stderr, done.returncode


def assert_contiguous(run_dir: Path, output: str, code: int) -> None:
    verdict = check_run(run_dir)
    assert verdict.ok, "\n".join(verdict.lines()) + "\n" + output
    assert code == 0, output
    assert "contiguity: OK" in output
    assert our_processes(str(run_dir)) == []
    # No surviving replica committed a number twice in its log.
    finals = [read_summary(p) for p in run_dir.glob("proxy-*.node.json")]
    assert finals and all(f.numbers_committed_twice == 0 for f in finals)
    assert any(f.final_role == "leader" for f in finals)


def test_leader_kill_then_sequencer_kill(tmp_path):
    run_dir, output, code = run(tmp_path, "both", "--kill_leader", str(FIRST),
                                "--kill_sequencer", str(AFTER_ELECTION),
                                duration=run_length(AFTER_ELECTION, TAKEOVER_S))
    assert_contiguous(run_dir, output, code)
    events = {e.event for e in read_faults(run_dir / "faults.log")}
    assert {"kill_leader", "kill_sequencer"} <= events
    logs = "".join(p.read_text() for p in run_dir.glob("*.log"))
    assert "taking over as epoch 2" in logs  # the backup really took over
    assert "switched to sequencer epoch 2" in logs


# name -> (flags, when the last fault lands, the longest recovery it needs)
SCHEDULES = {
    "kill-leader": (["--kill_leader", str(FIRST)], FIRST, ELECTION_RECOVERY_S),
    "kill-follower": (["--kill_follower", str(FIRST)], FIRST, 0.0),
    "kill-sequencer": (["--kill_sequencer", str(FIRST)], FIRST, TAKEOVER_S),
    "kill-both": (["--kill_leader", str(FIRST), "--kill_sequencer", str(AFTER_ELECTION)],
                  AFTER_ELECTION, TAKEOVER_S),
    "kill-mid-batch": (["--kill_leader_mid_batch", str(FIRST)], FIRST, ELECTION_RECOVERY_S),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_fault_schedule_keeps_contiguity(tmp_path, name):
    flags, last, recovery = SCHEDULES[name]
    run_dir, output, code = run(tmp_path, name, *flags, duration=run_length(last, recovery))
    assert_contiguous(run_dir, output, code)
    assert read_faults(run_dir / "faults.log"), "no fault was injected"


def test_a_leader_dying_mid_batch_leaves_a_noop(tmp_path):
    run_dir, output, code = run(tmp_path, "mid", "--kill_leader_mid_batch", str(FIRST),
                                duration=run_length(FIRST, ELECTION_RECOVERY_S))
    assert_contiguous(run_dir, output, code)
    verdict = check_run(run_dir)
    # The dead leader's srid was answered but never logged: the new leader probed it and
    # its numbers became a noop rather than a gap.
    assert sum(s.noop_numbers for s in verdict.spaces) > 0
    logs = "".join(p.read_text() for p in run_dir.glob("proxy-*.log"))
    assert "answered but not logged" in logs and "probing" in logs


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_schedule(tmp_path, seed):
    # A seeded mix of kills and pauses (orchestrator/fault_plan.py, as the soak draws them):
    # events fall in the first four fifths of the window, each with a quiet settling time
    # after it, and clients wait for their last answers after the window closes.
    run_dir, output, code = run(tmp_path, f"seed{seed}", "--nsequencers", "3", "--faults",
                                f"seed:{seed}", duration=8.0)
    assert_contiguous(run_dir, output, code)
    assert [e for e in read_faults(run_dir / "faults.log")
            if e.event not in ("measure_start", "measure_end")], "no fault was injected"


def test_a_second_standby_takes_over_when_the_first_backup_dies(tmp_path):
    # The backup is killed once it has surely taken over, and the run lasts until the
    # second standby surely has.
    run_dir, output, code = run(tmp_path, "twice", "--kill_sequencer", str(FIRST),
                                "--kill_backup", str(AFTER_TAKEOVER),
                                duration=run_length(AFTER_TAKEOVER, TAKEOVER_S))
    assert_contiguous(run_dir, output, code)
    logs = "".join(p.read_text() for p in run_dir.glob("proxy-*.log"))
    assert "switched to sequencer epoch 2" in logs and "switched to sequencer epoch 3" in logs
    finals = [read_summary(p) for p in run_dir.glob("proxy-*.node.json")]
    assert all(f.epoch == 3 for f in finals)


def test_a_standby_dying_with_the_sequencer_is_skipped(tmp_path):
    # The backup dies well before the groups can even notice the primary is silent, so it
    # never takes over. The groups used to ask only the next epoch's standby, for good:
    # every client stalled. The third sequencer's takeover includes giving up on the dead
    # standby: two takeovers' time.
    backup_dies = round(FIRST + SEQUENCER_SILENCE_S / 6, 2)
    run_dir, output, code = run(tmp_path, "both-die", "--nsequencers", "3",
                                "--kill_sequencer", str(FIRST), "--kill_backup",
                                str(backup_dies),
                                duration=run_length(backup_dies, 2 * TAKEOVER_S))
    assert_contiguous(run_dir, output, code)
    assert read_summary(run_dir / "sequencer-2.node.json").epoch == 3
    finals = [read_summary(p) for p in run_dir.glob("proxy-*.node.json")]
    assert all(f.epoch == 3 for f in finals)
