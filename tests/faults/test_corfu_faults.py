"""Kill real processes of Corfu and CorfuMason under append load; the log stays whole.

After every run: each position handed out is owned by exactly one acknowledged append or
hole (contiguity), and every acknowledged append is on every surviving replica of its
chain with its bytes (the log checker).
"""

from __future__ import annotations

from pathlib import Path

from analysis.datfiles import read_faults
from analysis.logcheck import check_log
from nodes.logserver.dump import read_dump
from nodes.status import read_summary
from tests.faults.timing import (
    ELECTION_RECOVERY_S,
    LOGSERVER_RECOVERY_S,
    TAKEOVER_S,
    run_length,
)
from tests.integration.test_corfu_systems import assert_checked, run

FIRST = 1.0
AFTER_ELECTION = round(FIRST + ELECTION_RECOVERY_S, 2)


def events(run_dir: Path) -> set[str]:
    return {e.event for e in read_faults(run_dir / "faults.log")}


def test_corfumason_survives_a_leader_kill_then_a_sequencer_kill(tmp_path):
    run_dir, output = run(tmp_path, "cm-both", "--system", "corfumason",
                          "--kill_leader", str(FIRST), "--kill_sequencer",
                          str(AFTER_ELECTION), "--expduration",
                          str(run_length(AFTER_ELECTION, TAKEOVER_S)))
    assert_checked(run_dir, output)
    assert {"kill_leader", "kill_sequencer"} <= events(run_dir)
    finals = [read_summary(p) for p in run_dir.glob("proxy-*.node.json")]
    assert finals and all(f.numbers_committed_twice == 0 for f in finals)
    # A new leader of group 0 (a later term) and every survivor on the standby's epoch.
    assert any(f.final_role == "leader" and f.term > 1 for f in finals)
    assert all(f.epoch == 2 for f in finals)
    assert read_summary(run_dir / "sequencer-1.node.json").counters[0] > 0


def test_corfumason_survives_every_leader_killed_at_once(tmp_path):
    run_dir, output = run(tmp_path, "cm-all", "--system", "corfumason", "--nproxy_threads",
                          "2", "--kill_all_leaders", str(FIRST),
                          "--expduration", str(run_length(FIRST, ELECTION_RECOVERY_S)))
    assert_checked(run_dir, output)
    killed = [e for e in read_faults(run_dir / "faults.log") if e.event == "kill_all_leaders"]
    # The original's meaning: every process of proxy-0, one replica of each group.
    assert sorted(e.target for e in killed) == ["proxy-0-0", "proxy-0-1"]
    finals = [read_summary(p) for p in run_dir.glob("proxy-*.node.json")]
    assert sorted(f.group for f in finals if f.final_role == "leader") == [0, 1]


def test_a_killed_log_server_is_sealed_out_of_its_chain(tmp_path):
    for system, replication, servers in (("corfu", 2, 2), ("corfumason", 3, 3)):
        run_dir, output = run(tmp_path, f"{system}-ls", "--system", system,
                              "--corfu_replication_factor", str(replication),
                              "--ncorfu_servers", str(servers), "--kill_logserver", str(FIRST),
                              "--expduration", str(run_length(FIRST, LOGSERVER_RECOVERY_S)))
        assert_checked(run_dir, output)
        assert "kill_logserver" in events(run_dir)
        dumps = [read_dump(p) for p in run_dir.glob("server-*.entries")]
        assert len(dumps) == servers - 1  # the killed head left none
        # The survivors were sealed into a newer view without the head (replica 0).
        for dump in dumps:
            state = dump.chains[0]
            assert state.epoch > 0 and 0 not in state.members, (system, state)


def test_positions_a_dying_leader_took_are_filled_with_holes(tmp_path):
    # The leader dies between the sequencer's answer and its Raft entry: nobody logged
    # those positions. The new leader probes the srid, commits a noop, and fills each
    # position with a hole marker on every replica of its chain.
    run_dir, output = run(tmp_path, "cm-mid", "--system", "corfumason",
                          "--kill_leader_mid_batch", str(FIRST), "--expduration",
                          str(run_length(FIRST, ELECTION_RECOVERY_S)))
    assert_checked(run_dir, output)
    verdict = check_log(run_dir)
    assert verdict.noops > 0 and verdict.holes == verdict.noops, "\n".join(verdict.lines())
