"""The whole Emulab workflow rehearsed: testbed up -> setup -> run (and a fault run) -> down,
with the leftovers of a killed controller cleaned up and the ZooKeeper systems run too.

Real sshd in network namespaces on 198.18.0.0/15, real node processes started over SSH,
results collected over SFTP; skipped with the reason unless root, iproute2 and sshd exist
(in CI, where they must exist, that is a failure instead).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from analysis.contiguity import check_run
from analysis.zkshards import check_run as check_shards
from orchestrator import testbed
from tests.conftest import REPO, interrupt, masonctl, our_processes, wait_for
from tests.faults.timing import ELECTION_RECOVERY_S, run_length
from tests.testbed.bed import Bed, require_testbed, set_up_bed

pytestmark = pytest.mark.testbed

require_testbed()

SHORT = ["--warmup", "1", "--cooldown", "0.5", "--expduration", "3"]
ROLES = "sequencer=2,proxy=3,client=1,server=3"


def run(bed: Bed, name: str, *extra: str):
    return masonctl(
        "run", "--machine-info", str(bed.info), "--testbed", str(bed.dir),
        "--nproxies", "3", "--nproxy_threads", "1", "--nclients", "1",
        "--nclient_threads", "2", "--client_concurrency", "16", "--nsequence_spaces", "2",
        "--record-seqnums", *SHORT, "--outdir", name, "--results", str(bed.results),
        *extra, cwd=bed.root, timeout=280,
    )


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    # Three server hosts: a ZK-Mason shard's replicas each on its own (one testbed for the
    # whole workflow: bringing one up is the slow part).
    with set_up_bed(tmp_path_factory, "rehearsal-run", roles=ROLES) as ready:
        yield ready


def test_run_on_the_testbed_collects_results_and_proves_contiguity(bed: Bed):
    done = run(bed, "plain")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "contiguity: OK" in output
    run_dir = bed.results / "plain"
    # Files from every machine came back over SFTP.
    for name in ("sequencer-0", "sequencer-1", "proxy-0-0", "proxy-1-0", "proxy-2-0",
                 "clients/client-0-0", "clients/client-0-1"):
        assert (run_dir / f"{name}.log").exists(), name
    assert (run_dir / "client-0.dat").read_text().count(",") == 5
    # Client processes' files came back into clients/; the only .dat is the machine's.
    assert [p.name for p in run_dir.rglob("*.dat")] == ["client-0.dat"]
    verdict = check_run(run_dir)
    assert verdict.ok, "\n".join(verdict.lines())
    # Processes ran on the testbed addresses, not on loopback.
    config = (run_dir / "proxy-0-0.toml").read_text()
    assert "198.18." in config and "127.0.0.1" not in config


def test_the_originals_seven_column_machine_info_drives_a_run(bed: Bed):
    # What the original's parse_machine_list.py wrote: name,physical id,iface,MAC,IP,
    # control IP,iface 2, bare commas, no ssh user, port or work directory.
    ours = [line.split(", ") for line in bed.info.read_text().splitlines()]
    original = bed.root / "original_machine_info.txt"
    original.write_text("".join(",".join(cols[:7]) + "\n" for cols in ours))
    done = masonctl(
        "run", "--machine-info", str(original), "--user", "root", "--workdir",
        str(bed.nodes), "--testbed", str(bed.dir), "--nproxies", "3", "--nproxy_threads",
        "1", "--nclients", "1", "--nclient_threads", "2", "--client_concurrency", "16",
        "--record-seqnums", *SHORT, "--outdir", "original-info",
        "--results", str(bed.results), cwd=bed.root, timeout=280,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"{original}: the original's 7-column format" in output
    assert "contiguity: OK" in output
    assert "198.18." in (bed.results / "original-info" / "proxy-0-0.toml").read_text()


def test_a_leader_kill_on_the_testbed_keeps_contiguity(bed: Bed):
    done = run(bed, "kill-leader", "--kill_leader", "1", "--expduration",
               str(run_length(1.0, ELECTION_RECOVERY_S)), "--no-pin")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "kill_leader" in (bed.results / "kill-leader" / "faults.log").read_text()
    assert "contiguity: OK" in output
    record = msgspec.toml.decode((bed.results / "kill-leader" / "experiment.toml").read_bytes())
    assert record["pinning"] == {"enabled": False}


def _allowed_cpus(pid: int) -> str:
    """The kernel's word on where a process may run (the testbed shares our pid namespace)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no Cpus_allowed_list for {pid}")


def test_each_node_process_runs_on_the_core_experiment_toml_records(bed: Bed):
    name = "pinned"
    background = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", "run",
         "--machine-info", str(bed.info), "--testbed", str(bed.dir), "--nproxies", "3",
         "--nproxy_threads", "2", "--nclients", "1", "--nclient_threads", "2",
         "--client_concurrency", "8", "--warmup", "1", "--cooldown", "0.5",
         "--expduration", "6", "--outdir", name, "--results", str(bed.results)],
        cwd=bed.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
    )

    record_path = bed.results / name / "experiment.toml"

    def pid_file(proc: str) -> Path | None:
        # A client process's files are in its run's clients/ (analysis/runfiles.py).
        where = "clients/" if proc.startswith("client-") else ""
        found = list(bed.nodes.glob(f"**/runs/{name}/{where}{proc}.pid"))
        return found[0] if found and found[0].with_suffix(".ready").exists() else None

    def recorded_pinning() -> dict | None:
        try:
            return msgspec.toml.decode(record_path.read_bytes())["pinning"]
        except (OSError, msgspec.DecodeError):
            return None  # not written yet, or half of it

    try:
        # The pinning is recorded before anything starts; then wait for every process.
        wait_for(lambda: recorded_pinning() is not None, timeout=60, what="experiment.toml")
        pinned = recorded_pinning()
        assert pinned is not None
        recorded = {proc: str(core) for cores in pinned["cores"].values()
                    for proc, core in cores.items()}
        wait_for(lambda: all(pid_file(proc) for proc in recorded), timeout=120,
                 what="the pinned run's processes to start")
        affinity = {proc: _allowed_cpus(int(path.read_text()))
                    for proc in recorded if (path := pid_file(proc)) is not None}
        output, _ = background.communicate(timeout=240)
    finally:
        interrupt(background)
    assert background.returncode == 0, output
    assert pinned["enabled"] is True and pinned["tool"] == "taskset"
    # 3 x 2 proxies, 2 sequencers, 2 clients: every one of them pinned, where recorded.
    assert len(recorded) == 10 and affinity == recorded, (affinity, recorded)
    assert set(pinned["cores"]["proxy-0"]) == {"proxy-0-0", "proxy-0-1"}
    # Two processes on a machine of one core would share it: the run says so in a line.
    if len(set(pinned["cores"]["proxy-0"].values())) == 1:
        assert "proxy-0: 2 processes on 1 core(s)" in output


def test_the_corfu_systems_run_on_the_testbed(bed: Bed):
    # The bed's one server machine holds the log (a chain of one); the same machine list.
    for system in ("corfu", "corfumason"):
        extra = ["--nproxies", "3"] if system == "corfumason" else []
        done = masonctl(
            "run", "--system", system, "--machine-info", str(bed.info), "--testbed",
            str(bed.dir), "--ncorfu_servers", "1", "--corfu_replication_factor", "1",
            "--nclients", "1", "--nclient_threads", "2", "--client_concurrency", "8",
            *extra, "--record-seqnums", *SHORT, "--outdir", system,
            "--results", str(bed.results), cwd=bed.root, timeout=280,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "contiguity: OK" in output and "log: OK" in output, output
        run_dir = bed.results / system
        assert (run_dir / "server-0-0.entries").exists()  # the dump came back over SFTP
        assert "198.18." in (run_dir / "server-0-0.toml").read_text()


# ---- leftovers after a crash ----------------------------------------------------------

LOAD = ["--nproxies", "3", "--nproxy_threads", "1", "--nclients", "1", "--nclient_threads",
        "1", "--client_concurrency", "4", "--warmup", "1", "--cooldown", "0.5"]


def run_args(bed: Bed, name: str, seconds: str) -> list[str]:
    return ["run", "--machine-info", str(bed.info), "--testbed", str(bed.dir), *LOAD,
            "--expduration", seconds, "--outdir", name, "--results", str(bed.results),
            "--retries", "0"]


def test_cleanup_ends_what_a_killed_controller_left_on_every_machine(bed: Bed):
    controller = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()",
         *run_args(bed, "crashed", "300")],
        cwd=bed.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_for(lambda: any(bed.nodes.rglob("crashed/clients/client-*.ready"))
                 or controller.poll() is not None, 120, "the run's clients to start")
        assert controller.poll() is None, "the run ended before it could be killed"
        controller.send_signal(signal.SIGKILL)
        controller.wait()
        # The nodes themselves (python -m nodes.<role>), not the launchers watching them.
        nodes = [p for p in our_processes(str(bed.nodes)) if p.split()[1:2] == ["-m"]]
        assert len(nodes) >= 5, nodes  # sequencers, 3 proxies, a client

        again = masonctl(*run_args(bed, "second", "2"), cwd=bed.root, timeout=180)
        assert again.returncode != 0
        errors = [line for line in again.stderr.splitlines() if line.strip()]
        assert len(errors) == 1, again.stderr
        assert "ports this run needs are held" in errors[0] and "(pid " in errors[0]
        assert "masonctl cleanup --machine-info" in errors[0]

        done = masonctl("cleanup", "--machine-info", str(bed.info), "--testbed",
                        str(bed.dir), cwd=bed.root, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"ended {len(nodes)} node process(es)" in done.stdout, done.stdout
        # The SSH launchers that watched the nodes write their exit status and go too.
        wait_for(lambda: our_processes(str(bed.nodes)) == [], 30,
                 "every process of the run to be gone")
        quiet = masonctl("cleanup", "--machine-info", str(bed.info), "--testbed",
                         str(bed.dir), cwd=bed.root, timeout=180)
        assert quiet.returncode == 0 and "no node process left behind" in quiet.stdout
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
        masonctl("cleanup", "--machine-info", str(bed.info), "--testbed", str(bed.dir),
                 cwd=bed.root, timeout=180)


# ---- the ZooKeeper systems ----------------------------------------------------------------

ZK_RUN = ["--warmup", "1", "--cooldown", "0.5", "--nclients", "1", "--nclient_threads", "2",
       "--client_concurrency", "8", "--write_percent", "50", "--read_percent", "50",
       "--record-seqnums", "--expduration", str(run_length(1.0, ELECTION_RECOVERY_S))]


def zk_run(bed: Bed, name: str, *extra: str) -> str:
    done = masonctl("run", "--machine-info", str(bed.info), "--testbed", str(bed.dir),
                    *ZK_RUN, *extra, "--outdir", name, "--results", str(bed.results),
                    cwd=bed.root, timeout=280)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "linearizability: OK" in output, output
    return output


def test_rsmkeeper_on_the_testbed(bed: Bed) -> None:
    zk_run(bed, "rsmkeeper", "--system", "rsmkeeper", "--nproxies", "3", "--kill_leader", "1")
    assert "198.18." in (bed.results / "rsmkeeper" / "proxy-0-0.toml").read_text()


def test_zkmason_on_the_testbed(bed: Bed) -> None:
    output = zk_run(bed, "zkmason", "--system", "zkmason", "--nproxies", "3",
                 "--nzk_servers", "3", "--kill_zk_server", "1")
    assert "shards: OK" in output, output
    run_dir = bed.results / "zkmason"
    verdict = check_shards(run_dir)
    assert verdict.ok and len(verdict.shards) == 1, "\n".join(verdict.lines())
    # Each shard replica ran on its own testbed host and its record came back over SFTP.
    assert len(list(run_dir.glob("*.exec"))) == 3
    assert "198.18." in (run_dir / "server-0.toml").read_text()


def test_down_leaves_nothing_behind(bed: Bed):
    testbed.down(bed.dir)
    assert testbed.our_namespaces() == []
    assert testbed.our_links() == []
    assert our_processes(str(bed.nodes)) == []
    assert our_processes("sshd -f") == [] or all(
        str(bed.dir) not in p for p in our_processes("sshd -f"))
