"""Leftovers after a crash: a controller killed with SIGKILL leaves its nodes running (they
run in sessions of their own); a new run on their ports is refused in one line naming
them, and `masonctl cleanup` ends exactly the processes the runs' pid files name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from analysis.runfiles import run_files
from tests.conftest import REPO, free_port_block, masonctl, our_processes, wait_for

SMALL = ["--nproxies", "3", "--nproxy_threads", "1", "--nclients", "1",
         "--nclient_threads", "1", "--client_concurrency", "4", "--warmup", "1",
         "--cooldown", "0.5"]


def start_run(root: Path, name: str, base_port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", "run", *SMALL,
         "--expduration", "120", "--base_port", str(base_port), "--outdir", name,
         "--results", str(root / "results")],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_cleanup_ends_what_a_killed_controller_left(tmp_path: Path):
    base = free_port_block(16)
    run_dir = tmp_path / "results" / "crashed"
    # A process that a stale pid file names but that is no node of ours: never touched.
    stranger = subprocess.Popen(["sleep", "300"])
    fake = tmp_path / "results" / "old"
    fake.mkdir(parents=True)
    (fake / "proxy-0-0.pid").write_text(f"{stranger.pid}\n")
    (fake / "proxy-0-0.toml").write_text("")
    controller = start_run(tmp_path, "crashed", base)
    try:
        wait_for(lambda: bool(run_files(run_dir, "client-*.ready"))
                 or controller.poll() is not None, 90, "the run's clients to start")
        assert controller.poll() is None, "the run ended before it could be killed"
        controller.send_signal(signal.SIGKILL)
        controller.wait()
        left = our_processes(str(run_dir))
        assert len(left) >= 5, left  # sequencer, 3 proxies, a client

        # A new run on the same ports is refused, naming what holds them.
        again = masonctl("run", *SMALL, "--expduration", "2", "--base_port", str(base),
                         "--outdir", "second", "--results", str(tmp_path / "results"),
                         "--retries", "0", cwd=tmp_path, timeout=120)
        assert again.returncode != 0
        errors = [line for line in again.stderr.splitlines() if line.strip()]
        assert len(errors) == 1, again.stderr
        assert "ports this run needs are held" in errors[0]
        assert "sequencer-0 (pid" in errors[0] and str(run_dir) in errors[0]
        assert "masonctl cleanup" in errors[0]
        assert not (tmp_path / "results" / "second").exists()  # refused before writing

        done = masonctl("cleanup", "--results", str(tmp_path / "results"), cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"ended {len(left)} node process(es)" in done.stdout, done.stdout
        assert our_processes(str(run_dir)) == []
        assert stranger.poll() is None  # its pid file was stale: the process is not ours
        quiet = masonctl("cleanup", "--results", str(tmp_path / "results"), cwd=tmp_path)
        assert quiet.returncode == 0 and "no node process left behind" in quiet.stdout
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
        masonctl("cleanup", "--results", str(tmp_path / "results"), cwd=tmp_path)
        stranger.kill()
        stranger.wait()
