"""The original's leader kill: every proxy process of machine proxy-0 dies at once (one
replica of each group of the first triple, leader or not), and contiguity holds."""

from __future__ import annotations

from analysis.contiguity import check_run
from analysis.datfiles import read_faults
from analysis.recovery import run_frontiers
from nodes.status import read_summary
from tests.faults.test_failover import FIRST, assert_contiguous, run
from tests.faults.timing import ELECTION_RECOVERY_S, run_length


def test_killing_proxy_0_takes_every_replica_there_and_keeps_contiguity(tmp_path):
    # Two groups per triple (the run's --nproxy_threads 2): proxy-0 holds a replica of both.
    run_dir, output, code = run(tmp_path, "machine", "--kill_leader_machine", str(FIRST),
                                duration=run_length(FIRST, ELECTION_RECOVERY_S))
    assert_contiguous(run_dir, output, code)
    killed = [e.target for e in read_faults(run_dir / "faults.log")
              if e.event == "kill_leader_machine"]
    assert sorted(killed) == ["proxy-0-0", "proxy-0-1"]
    # Only the survivors stopped cleanly, and each group is led by one of them.
    finals = {p.name.removesuffix(".node.json"): read_summary(p)
              for p in run_dir.glob("proxy-*.node.json")}
    assert sorted(finals) == ["proxy-1-0", "proxy-1-1", "proxy-2-0", "proxy-2-1"]
    assert sorted(f.group for f in finals.values() if f.final_role == "leader") == [0, 1]
    # The recovery figure's frontier reaches every space's last number.
    verdict = check_run(run_dir)
    assert [int(f.highest[-1]) for f in run_frontiers(run_dir)] == [
        s.max for s in verdict.spaces]
