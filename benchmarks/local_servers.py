"""Server processes of one system on this machine (a ZooKeeper ensemble, an etcd cluster),
started together as subprocesses, waited for until they serve, and always stopped.

A system says how to start its i-th server (`command`, after writing what it needs under
`workdir`), whether all of them serve (`serving`) and what to call them in a message;
leaving the block (normally or by an exception) kills every server and waits for it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TypeVar

S = TypeVar("S", bound="LocalServers")


class LocalServers:
    server_name = "server"  # "<server_name> <i>" in messages
    log_prefix = "server"  # each server's output goes to workdir/<log_prefix>-<i>.log

    def __init__(self, n: int, workdir: Path, start_timeout_s: float) -> None:
        if n < 1:
            raise ValueError(f"at least one {self.server_name} is needed, not {n}")
        self.n = n
        self.workdir = Path(workdir)
        self.start_timeout_s = start_timeout_s
        self.procs: list[subprocess.Popen[bytes]] = []

    def command(self, i: int) -> list[str]:
        """The command line of server i, once its files are in place."""
        raise NotImplementedError

    def serving(self) -> bool:
        """Whether every server is up and serves clients."""
        raise NotImplementedError

    def where(self) -> str:
        """Where the clients reach the servers, for messages."""
        raise NotImplementedError

    def log(self, i: int) -> Path:
        return self.workdir / f"{self.log_prefix}-{i}.log"

    def start(self: S) -> S:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for i in range(self.n):
            command = self.command(i)
            with open(self.log(i), "wb") as log:
                self.procs.append(subprocess.Popen(command, stdout=log,
                                                   stderr=subprocess.STDOUT))
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            dead = [i for i, p in enumerate(self.procs) if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{self.server_name} {dead[0]} exited while starting; see "
                                   f"{self.log(dead[0])}")
            if self.serving():
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.server_name}s ({self.where()}) not serving after "
                                   f"{self.start_timeout_s:g} s; see {self.workdir}")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()
        self.procs.clear()

    def __enter__(self: S) -> S:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
