"""Shared test helpers: real node processes on real sockets, cleaned up even on failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator import ports

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block(n: int) -> int:
    """A base port with n free ports after it, below the ephemeral range."""
    return ports.free_port_block(n)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def masonctl(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)},
    )


def interrupt(run: subprocess.Popen[str]) -> None:
    """^C a masonctl still running in the background: it stops every node it started
    (they run in sessions of their own) and undoes its faults; killed if it hangs."""
    if run.poll() is None:
        run.send_signal(signal.SIGINT)
        try:
            run.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.communicate()


def our_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention marker (e.g. a results path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker in cmd and state != "Z":
            found.append(cmd)
    return found


class NodeProcs:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, role: str, name: str, config: str) -> subprocess.Popen[bytes]:
        cfg = self.tmp / f"{name}.toml"
        cfg.write_text(config)
        log = open(self.tmp / f"{name}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", f"nodes.{role}", "--config", str(cfg)],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.procs.append(proc)
        wait_for(lambda: (self.tmp / f"{name}.ready").exists() or proc.poll() is not None,
                 30, f"{name} to start")
        assert proc.poll() is None, (self.tmp / f"{name}.log").read_text()
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[NodeProcs]:
    procs = NodeProcs(tmp_path)
    try:
        yield procs
    finally:
        procs.stop()
