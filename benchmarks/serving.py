"""`masonctl serve` in a subprocess, for the benchmarks and the tests that need a running
cluster: started, waited on until it prints its connect string, and stopped with ^C (which
stops every process it started), killed only if it hangs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.ports import free_port_block

REPO = Path(__file__).resolve().parent.parent
CONNECT_STRING = re.compile(r"[\w.-]+:\d+(,[\w.-]+:\d+)*")
STOP_TIMEOUT_S = 60.0


class NotServing(RuntimeError):
    """serve exited, or printed no connect string in time; the message says which."""


@dataclass
class Serving:
    hosts: str  # the connect string serve printed
    run_dir: Path
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)  # every line printed so far

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        return [(h, int(p)) for h, p in (e.split(":") for e in self.hosts.split(","))]


@contextmanager
def served(system: str, results: Path, *extra: str, outdir: str = "served",
           timeout_s: float = 120.0) -> Iterator[Serving]:
    """`masonctl serve --system <system>` with its outputs in results/outdir. After the
    block, `proc.returncode` says how serve ended."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", "serve",
         "--system", system, "--base_port", str(free_port_block(64)), "--outdir", outdir,
         "--results", str(results), *extra],
        cwd=results, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # Wide enough that rich never wraps the connect string.
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)},
    )
    output: list[str] = []
    found: list[str] = []
    settled = threading.Event()  # the connect string came, or serve's output ended

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if not found and CONNECT_STRING.fullmatch(line.strip()):
                found.append(line.strip())
                settled.set()
        settled.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not settled.wait(timeout_s):
            raise NotServing(f"{system}: not serving after {timeout_s:g} s")
        if not found:
            last = output[-1].strip() if output else ""
            raise NotServing(f"{system}: masonctl serve exited {proc.wait()}: {last}")
        yield Serving(found[0], results / outdir, proc, output)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(5)
