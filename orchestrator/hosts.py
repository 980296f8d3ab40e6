"""Hosts: where node processes run. One interface, two transports.

`LocalHost` runs everything as subprocesses of this machine (the embedded default);
`SSHHost` (orchestrator/ssh_host.py) runs the same operations over SSH. The experiment
code is written once against `Host` and never knows which one it drives.

Commands are always argument vectors. A transport that needs a shell line (SSH) quotes
every element itself, so no text from a machine list or a flag is ever interpreted by a
shell.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class HostError(Exception):
    """A host could not do what was asked; the message is one line naming the host."""


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str


class Host(ABC):
    """A machine that runs node processes.

    `address` is the address nodes on this host bind to and peers use to reach them
    (the experiment LAN, never the control network). `python` is the interpreter that
    has the `nodes` package importable; `workdir` is where configs and outputs live.
    """

    name: str
    address: str
    python: str
    workdir: str

    @abstractmethod
    def run(
        self, argv: Sequence[str], *, timeout: float | None = 60.0, check: bool = True
    ) -> CommandResult:
        """Run a command to completion. With check, a non-zero exit raises HostError."""

    @abstractmethod
    def spawn(
        self,
        argv: Sequence[str],
        *,
        log_path: str,
        pid_path: str,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start a detached process whose stdout+stderr go to log_path; write its pid."""

    @abstractmethod
    def signal(self, pid_path: str, sig: int) -> bool:
        """Send sig to the process named by pid_path; False if it was not running."""

    @abstractmethod
    def alive(self, pid_path: str) -> bool:
        """Whether the process named by pid_path is still running."""

    @abstractmethod
    def exit_code(self, pid_path: str) -> int | None:
        """The exit status of a process that has ended, when the transport can tell."""

    @abstractmethod
    def makedirs(self, path: str) -> None: ...

    @abstractmethod
    def write_text(self, path: str, text: str) -> None: ...

    @abstractmethod
    def read_text(self, path: str) -> str: ...

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    def read_from(self, path: str, offset: int) -> bytes:
        """The bytes of a growing file from offset on (b'' when it is not there yet), so a
        file that is being appended to can be followed without reading it whole again."""
        try:
            return self.read_text(path).encode()[offset:]
        except HostError:
            return b""

    @abstractmethod
    def fetch_dir(self, remote_dir: str, local_dir: Path) -> list[Path]:
        """Copy every regular file of remote_dir into local_dir; return the local paths."""

    def put_file(self, local_path: Path, remote_path: str) -> None:
        """Copy one local file (any bytes) to remote_path, replacing it whole."""
        raise HostError(f"{self.name}: this transport cannot copy files")

    def tail(self, path: str, lines: int = 10) -> str:
        """The last lines of a (log) file, or '' when it cannot be read."""
        try:
            text = self.read_text(path)
        except HostError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release connections; the default transport holds none."""


class LocalHost(Host):
    """This machine: processes are children started in their own session."""

    def __init__(
        self,
        name: str = "local",
        address: str = "127.0.0.1",
        python: str | None = None,
        workdir: str = ".",
    ) -> None:
        import sys

        self.name = name
        self.address = address
        self.python = python or sys.executable
        self.workdir = workdir
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def run(
        self, argv: Sequence[str], *, timeout: float | None = 60.0, check: bool = True
    ) -> CommandResult:
        try:
            done = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=timeout, check=False
            )
        except FileNotFoundError as exc:
            raise HostError(f"{self.name}: {argv[0]}: command not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise HostError(f"{self.name}: {argv[0]} did not finish in {timeout} s") from exc
        result = CommandResult(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise HostError(f"{self.name}: {argv[0]} exited {done.returncode}: {last}")
        return result

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log_path: str,
        pid_path: str,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        exe = argv[0]
        if os.sep not in exe and shutil.which(exe) is None:
            raise HostError(f"{self.name}: {exe}: command not found")
        if os.sep in exe and not os.access(exe, os.X_OK):
            raise HostError(f"{self.name}: {exe}: not found or not executable")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        with open(log_path, "ab") as log:
            try:
                child = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=full_env,
                    # Own session: a kill of the run's process group never reaches us,
                    # and an interrupted masonctl does not forward ^C to the nodes twice.
                    start_new_session=True,
                )
            except OSError as exc:
                raise HostError(f"{self.name}: cannot start {exe}: {exc.strerror}") from exc
        Path(pid_path).write_text(f"{child.pid}\n")
        self._children[pid_path] = child

    def _pid(self, pid_path: str) -> int | None:
        try:
            return int(Path(pid_path).read_text().strip())
        except (OSError, ValueError):
            return None

    def alive(self, pid_path: str) -> bool:
        child = self._children.get(pid_path)
        if child is not None:
            return child.poll() is None
        pid = self._pid(pid_path)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True

    def exit_code(self, pid_path: str) -> int | None:
        child = self._children.get(pid_path)
        return None if child is None else child.poll()

    def signal(self, pid_path: str, sig: int) -> bool:
        if not self.alive(pid_path):
            return False
        pid = self._pid(pid_path)
        if pid is None:
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        if sig == signal.SIGKILL:
            child = self._children.get(pid_path)
            if child is not None:
                child.wait()
        return True

    def makedirs(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)

    def write_text(self, path: str, text: str) -> None:
        Path(path).write_text(text)

    def read_text(self, path: str) -> str:
        try:
            return Path(path).read_text(errors="replace")
        except OSError as exc:
            raise HostError(f"{self.name}: cannot read {path}: {exc.strerror}") from exc

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def read_from(self, path: str, offset: int) -> bytes:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    def put_file(self, local_path: Path, remote_path: str) -> None:
        if Path(local_path).resolve() != Path(remote_path).resolve():
            shutil.copyfile(local_path, remote_path)

    def fetch_dir(self, remote_dir: str, local_dir: Path) -> list[Path]:
        src = Path(remote_dir).resolve()
        dst = Path(local_dir).resolve()
        dst.mkdir(parents=True, exist_ok=True)
        copied = []
        for item in sorted(src.iterdir()):
            if not item.is_file():
                continue
            target = dst / item.name
            if src != dst:
                shutil.copyfile(item, target)
            copied.append(target)
        return copied

    def close(self) -> None:
        for child in self._children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
        self._children.clear()
