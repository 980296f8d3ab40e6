"""ZK-Mason under failures: `masonctl run --system zkmason` with two shards, a mixed load of
reads and writes over keys of both shards, and one kill -9 each time: the proxy leader,
the sequencer (its standby takes over and fills the holes with noops that reach the
shards), a shard replica (the shard answers with two of three). Every run must end with
the clients' histories linearizable and every shard replica having executed every number
of its space exactly once, in order, up to what the sequencers handed out."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.datfiles import read_faults
from analysis.zkshards import check_run
from tests.conftest import free_port_block, masonctl, our_processes
from tests.faults.timing import ELECTION_RECOVERY_S, TAKEOVER_S, run_length

MIX = ["--system", "zkmason", "--nzk_servers", "6", "--write_percent", "50",
       "--read_percent", "50", "--warmup", "1", "--cooldown", "0.5", "--record-seqnums"]

FAULTS = {
    "kill_leader": (["--kill_leader", "1"], ELECTION_RECOVERY_S),
    "kill_sequencer": (["--nsequencers", "2", "--kill_sequencer", "1"], TAKEOVER_S),
    "kill_zk_server": (["--kill_zk_server", "1"], 1.0),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_zkmason_stays_linearizable_and_contiguous(tmp_path: Path, fault: str) -> None:
    flags, recovery_s = FAULTS[fault]
    done = masonctl("run", *MIX, *flags, "--expduration", str(run_length(1.0, recovery_s)),
                    "--base_port", str(free_port_block(24)), "--outdir", fault,
                    "--results", str(tmp_path), cwd=tmp_path, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    run_dir = tmp_path / fault
    assert our_processes(str(run_dir)) == []
    assert [e.event for e in read_faults(run_dir / "faults.log")
            if e.event.startswith("kill")] == [fault]
    assert "linearizability: OK" in output, output
    verdict = check_run(run_dir)
    assert verdict.ok and verdict.recorded, "\n".join(verdict.lines())
    # The sequencers' figures are known, and a majority of every shard reached them.
    assert len(verdict.shards) == 2
    assert all(s.handed_out is not None and s.majority_through >= s.handed_out
               for s in verdict.shards), "\n".join(verdict.lines())
