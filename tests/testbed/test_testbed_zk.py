"""The ZooKeeper systems on the rehearsal testbed: RSMKeeper's group and ZK-Mason's proxies,
sequencer and shard replicas each on their own host (real sshd in network namespaces on
198.18.0.0/15), driven by the load generator over the testbed network, with a kill -9 in
each run; every run must end linearizable, and ZK-Mason's shards contiguous."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from analysis.zkshards import check_run
from tests.conftest import masonctl
from tests.faults.timing import ELECTION_RECOVERY_S, run_length
from tests.testbed.bed import Bed, require_testbed, set_up_bed

pytestmark = pytest.mark.testbed

require_testbed()

ROLES = "sequencer=1,proxy=3,client=1,server=3"
RUN = ["--warmup", "1", "--cooldown", "0.5", "--nclients", "1", "--nclient_threads", "2",
       "--client_concurrency", "8", "--write_percent", "50", "--read_percent", "50",
       "--record-seqnums", "--expduration", str(run_length(1.0, ELECTION_RECOVERY_S))]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with set_up_bed(tmp_path_factory, "rehearsal-zk", roles=ROLES) as ready:
        yield ready


def run(bed: Bed, name: str, *extra: str) -> str:
    done = masonctl("run", "--machine-info", str(bed.info), "--testbed", str(bed.dir),
                    *RUN, *extra, "--outdir", name, "--results", str(bed.results),
                    cwd=bed.root, timeout=280)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "linearizability: OK" in output, output
    return output


def test_rsmkeeper_on_the_testbed(bed: Bed) -> None:
    run(bed, "rsmkeeper", "--system", "rsmkeeper", "--nproxies", "3", "--kill_leader", "1")
    assert "198.18." in (bed.results / "rsmkeeper" / "proxy-0-0.toml").read_text()


def test_zkmason_on_the_testbed(bed: Bed) -> None:
    output = run(bed, "zkmason", "--system", "zkmason", "--nproxies", "3",
                 "--nzk_servers", "3", "--kill_zk_server", "1")
    assert "shards: OK" in output, output
    run_dir = bed.results / "zkmason"
    verdict = check_run(run_dir)
    assert verdict.ok and len(verdict.shards) == 1, "\n".join(verdict.lines())
    # Each shard replica ran on its own testbed host and its record came back over SFTP.
    assert len(list(run_dir.glob("*.exec"))) == 3
    assert "198.18." in (run_dir / "server-0.toml").read_text()
