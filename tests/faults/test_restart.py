"""Killed processes come back (--restart_after): a replica rejoins its group and catches up,
so the group survives the next failure; a sequencer comes back as a standby and takes
over at the next sequencer failure. Every run ends with the contiguity and FIFO checker.

Without restarts both schedules stop the system: a group that lost a follower and then
its leader has no majority, and two sequencers that both died leave no one to serve.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.datfiles import read_faults
from nodes.proxy.replica import RESTART_GRACE_S
from nodes.status import ReplicaProgress, read_progress, read_summary
from tests.conftest import REPO, free_port_block
from tests.faults.test_failover import FIRST, LOAD, assert_contiguous, run
from tests.faults.timing import ELECTION_RECOVERY_S, ELECTION_S, SLACK, TAKEOVER_S, run_length

RESTART = 1.0  # --restart_after
# A restarted replica starts, waits for its leader's connection (at most its grace period)
# and catches up; the next kill lands once that is surely over.
REJOIN_S = round(SLACK * max(RESTART_GRACE_S, ELECTION_S), 2)
LEADER_KILL = round(FIRST + RESTART + REJOIN_S, 2)
# The sequencer's next kill waits for the restart and for the first takeover to finish.
BACKUP_KILL = round(FIRST + max(RESTART + 1.0, TAKEOVER_S), 2)


def start_run(root: Path, name: str, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", "run", *LOAD,
         *flags, "--base_port", str(free_port_block(24)), "--outdir", name,
         "--results", str(root)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)},
    )


def poll(what: str, timeout: float, probe):
    """probe() until it answers something other than None; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def event_target(run_dir: Path, event: str) -> str | None:
    try:
        events = read_faults(run_dir / "faults.log")
    except (OSError, ValueError):
        return None
    return next((e.target for e in events if e.event == event), None)


def progress(run_dir: Path, name: str) -> ReplicaProgress | None:
    try:
        return read_progress(run_dir / f"{name}.progress.json")
    except ValueError:
        return None


@pytest.mark.parametrize("catch_up", ["log", "snapshot"])
def test_a_restarted_follower_catches_up_and_the_group_survives_its_leader(tmp_path, catch_up):
    # With a tiny log the leader compacts while the follower is down: it needs a snapshot.
    extra = ["--max_log_size", "50"] if catch_up == "snapshot" else []
    run_dir = tmp_path / catch_up
    duration = run_length(LEADER_KILL, ELECTION_RECOVERY_S)
    proc = start_run(tmp_path, catch_up, "--expduration", str(duration), *extra,
                     "--kill_follower", str(FIRST), "--restart_after", str(RESTART),
                     "--kill_leader", str(LEADER_KILL))
    try:
        follower = poll("the follower kill", 60, lambda: event_target(run_dir, "kill_follower"))
        poll("the follower's restart", 10, lambda: event_target(run_dir, "restart"))
        back = poll("the restarted follower's progress", 10, lambda: (
            p if (p := progress(run_dir, follower)) is not None and p.restarted else None))
        # Caught up: it applied at least what the group had committed when it came back.
        others = [progress(run_dir, f"{follower[:-3]}{m}-{follower[-1]}") for m in "012"
                  if f"{follower[:-3]}{m}-{follower[-1]}" != follower]
        target = max(p.commit for p in others if p is not None)
        assert target > back.applied, "the group made no progress while the follower was down"
        caught = poll("the restarted follower to catch up", REJOIN_S, lambda: (
            p if (p := progress(run_dir, follower)) is not None and p.applied >= target
            else None))
        caught_ms = time.time_ns() // 1_000_000
        output, _ = proc.communicate(timeout=200)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert_contiguous(run_dir, output, proc.returncode)
    events = read_faults(run_dir / "faults.log")
    kinds = [e.event for e in events if e.event not in ("measure_start", "measure_end")]
    assert kinds == ["kill_follower", "restart", "kill_leader", "restart"], kinds
    leader_kill = next(e for e in events if e.event == "kill_leader")
    assert caught_ms < leader_kill.unix_ms, "caught up only after the leader was killed"
    assert leader_kill.target != follower
    if catch_up == "snapshot":
        # Its own snapshot at restart, then the leader's: the log it missed was gone.
        assert caught.snapshots_restored >= 2, caught
    # The group elected a new leader among the restarted follower and the third replica
    # and kept serving (assert_contiguous: every client operation was answered).
    finals = {p.stem.split(".")[0]: read_summary(p) for p in run_dir.glob("proxy-*.node.json")}
    group = [s for s in finals.values() if s.group == 0]
    assert max(s.term for s in group) > 1
    assert finals[follower].ops_committed == max(s.ops_committed for s in group)


def test_a_restarted_sequencer_stands_by_and_takes_over_from_the_backup(tmp_path):
    run_dir, output, code = run(tmp_path, "seq", "--nsequencers", "2", "--kill_sequencer",
                                str(FIRST), "--restart_after", str(RESTART), "--kill_backup",
                                str(BACKUP_KILL), duration=run_length(BACKUP_KILL, TAKEOVER_S))
    assert_contiguous(run_dir, output, code)
    events = [(e.event, e.target) for e in read_faults(run_dir / "faults.log")
              if e.event not in ("measure_start", "measure_end")]
    assert events[:3] == [("kill_sequencer", "sequencer-0"), ("restart", "sequencer-0"),
                          ("kill_backup", "sequencer-1")], events
    # The restarted sequencer never served its old epoch again: it took over as epoch 3,
    # and every group follows it.
    assert read_summary(run_dir / "sequencer-0.node.json").epoch == 3
    finals = [read_summary(p) for p in run_dir.glob("proxy-*.node.json")]
    assert finals and all(f.epoch == 3 for f in finals)
