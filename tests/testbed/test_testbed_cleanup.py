"""Leftovers on a testbed: a run's controller killed with SIGKILL leaves the node processes
running on the machines; a new run on their ports is refused in one line naming them, and
`masonctl cleanup --machine-info` ends every one of them over SSH."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO, masonctl, our_processes, wait_for
from tests.testbed.bed import Bed, require_testbed, set_up_bed

pytestmark = pytest.mark.testbed

require_testbed()

LOAD = ["--nproxies", "3", "--nproxy_threads", "1", "--nclients", "1", "--nclient_threads",
        "1", "--client_concurrency", "4", "--warmup", "1", "--cooldown", "0.5"]


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with set_up_bed(tmp_path_factory, "rehearsal-cleanup") as ready:
        yield ready


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
