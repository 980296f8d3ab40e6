"""SSHHost: the `Host` interface over SSH (fabric/paramiko), for Emulab, CloudLab and the
rehearsal testbed.

Safety rules this module keeps:
- A command is an argument vector; the line sent to the remote shell is `shlex.join(argv)`,
  so nothing from a machine list, a flag or a path is ever interpreted by that shell.
- Host keys are checked against a known_hosts file. Unknown keys are refused unless the caller
  asked to accept new ones, and then each is appended to that file (never rewritten, so
  parallel connections cannot lose each other's keys). A changed key is always refused.
- Every failure surfaces as a one-line HostError that names the machine.

Detached processes are started by a small launcher run with the host's Python: it forks a
monitor into its own session, the monitor starts the command (stdout+stderr to the log),
writes the command's pid to the pid file, tells the launcher it started (or why it could not)
and then waits for it, so the exit status lands in `<pid file>.exit`. `spawn` therefore
returns only once the pid file exists, and `exit_code` works remotely.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shlex
import socket
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut

from orchestrator.hosts import CommandResult, Host, HostError
from orchestrator.machines import Cluster, Machine

# Per machine name: Emulab homes are NFS-shared, and the rehearsal namespaces share one disk.
DEFAULT_WORKDIR_BASE = "~/mason"
# SFTP reports a refused operation as OSError, a broken channel as SSHException or EOFError.
_SFTP_ERRORS = (OSError, paramiko.SSHException, EOFError)
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Appends to a known_hosts file are serialised across the threads of one controller.
_KNOWN_HOSTS_LOCK = threading.Lock()

# Runs on the node (any Python >= 3.6); argv: pid_path log_path cwd env_json command...
_LAUNCHER = r"""
import json, os, signal, subprocess, sys
pid_path, log_path, cwd, env_json = sys.argv[1:5]
argv = sys.argv[5:]
r, w = os.pipe()
if os.fork():
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        chunks.append(b)
    msg = b"".join(chunks).decode("utf-8", "replace")
    if msg == "ok":
        sys.exit(0)
    sys.stderr.write((msg or "launcher died") + "\n")
    sys.exit(127)
os.close(r)
os.setsid()
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
try:
    os.unlink(pid_path + ".exit")
except OSError:
    pass
env = dict(os.environ)
env.update(json.loads(env_json))
try:
    log = open(log_path, "ab")
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, cwd=cwd or None, env=env)
    with open(pid_path + ".tmp", "w") as f:
        f.write("%d\n" % child.pid)
    os.replace(pid_path + ".tmp", pid_path)
except Exception as exc:
    os.write(w, ("cannot start %s: %s" % (argv[0], exc)).encode())
    os._exit(1)
os.write(w, b"ok")
os.close(w)
log.close()
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
rc = child.wait()
with open(pid_path + ".exit.tmp", "w") as f:
    f.write("%d\n" % rc)
os.replace(pid_path + ".exit.tmp", pid_path + ".exit")
"""


class _AppendNewKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host key and append it to the known_hosts file (ssh's accept-new)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _KNOWN_HOSTS_LOCK:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(line)


def default_known_hosts() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


class SSHHost(Host):
    """A node reached over SSH. It connects lazily, on the first operation.

    `workdir` and `python` may start with `~`; they are expanded against the remote home
    directory when first read (which connects), because a quoted `~` is never expanded.
    """

    def __init__(
        self,
        name: str,
        ssh_host: str,
        *,
        user: str,
        port: int = 22,
        address: str | None = None,
        workdir: str | None = None,
        python: str | None = None,
        identity_file: str | None = None,
        known_hosts: str | Path | None = None,
        accept_new_host_keys: bool = False,
        connect_timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.ssh_host = ssh_host
        self.user = user
        self.port = port
        self.address = address or ssh_host
        self._workdir = workdir or f"{DEFAULT_WORKDIR_BASE}/{name}"
        self._python = python or f"{self._workdir}/venv/bin/python"
        self.identity_file = os.path.expanduser(identity_file) if identity_file else None
        self.known_hosts = Path(known_hosts) if known_hosts else default_known_hosts()
        self.accept_new_host_keys = accept_new_host_keys
        self.connect_timeout = connect_timeout
        self._conn: Connection | None = None
        self._sftp_client: paramiko.SFTPClient | None = None
        self._home: str | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_machine(
        cls,
        machine: Machine,
        *,
        user: str | None = None,
        identity_file: str | None = None,
        known_hosts: str | Path | None = None,
        accept_new_host_keys: bool = False,
        workdir_base: str | None = None,
        python: str | None = None,
    ) -> SSHHost:
        """A host for one machine, with its venv's Python unless `python` is given.

        The work directory is `<workdir_base>/<name>` when workdir_base is given, else the
        one setup recorded in machine_info.txt (kept when a machine is renamed), else
        `~/mason/<name>`. `user` overrides the list's; `identity_file` the list's `-i`.
        """
        login = user or machine.ssh_user
        if not login:
            raise HostError(f"{machine.name}: no ssh user (give one on the command line)")
        if workdir_base is not None:
            wd = f"{workdir_base.rstrip('/') or '/'}/{machine.name}"
        else:
            wd = machine.workdir or f"{DEFAULT_WORKDIR_BASE}/{machine.name}"
        return cls(
            machine.name,
            machine.ssh_host or machine.control_ip,
            user=login,
            port=machine.ssh_port,
            address=machine.experiment_ip or None,
            workdir=wd,
            python=python,
            identity_file=identity_file or machine.identity_file,
            known_hosts=known_hosts,
            accept_new_host_keys=accept_new_host_keys,
        )

    def __repr__(self) -> str:
        return f"SSHHost({self.name!r}, {self.user}@{self.ssh_host}:{self.port})"

    # ---- connection ---------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.name} ({self.user}@{self.ssh_host}:{self.port})"

    def _connection(self) -> Connection:
        with self._lock:
            if self._conn is not None and self._conn.is_connected:
                return self._conn
            kwargs: dict[str, Any] = {"banner_timeout": self.connect_timeout,
                                      "auth_timeout": self.connect_timeout}
            if self.identity_file:
                if not os.path.isfile(self.identity_file):
                    raise HostError(f"{self.where}: identity file {self.identity_file} not found")
                kwargs["key_filename"] = [self.identity_file]
                kwargs["look_for_keys"] = False
            conn = Connection(
                self.ssh_host,
                user=self.user,
                port=self.port,
                connect_timeout=self.connect_timeout,
                connect_kwargs=kwargs,
            )
            client = conn.client
            if self.known_hosts.is_file():
                try:
                    client.load_host_keys(str(self.known_hosts))
                except (OSError, paramiko.SSHException) as exc:
                    why = f"cannot read {self.known_hosts}: {exc}"
                    raise HostError(f"{self.where}: {why}") from None
            if self.accept_new_host_keys:
                client.set_missing_host_key_policy(_AppendNewKeyPolicy(self.known_hosts))
            else:
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            try:
                conn.open()
            except Exception as exc:  # paramiko and socket raise many types; all mean one thing
                conn.close()
                raise HostError(f"{self.where}: {self._explain(exc)}") from None
            self._conn = conn
            return conn

    def _explain(self, exc: BaseException) -> str:
        if isinstance(exc, paramiko.BadHostKeyException):
            return (f"host key does not match {self.known_hosts} (reimaged node, or someone in "
                    "the middle); remove the old entry if you trust the new key")
        if isinstance(exc, paramiko.AuthenticationException):
            return "authentication failed (name a key with --identity, or use an ssh-agent)"
        if isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
            return (f"unknown host key (not in {self.known_hosts}); add it with ssh-keyscan "
                    "or pass --accept-new-host-keys")
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve {self.ssh_host}"
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return f"no answer within {self.connect_timeout:g} s"
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            return "connection refused (is sshd running?)"
        text = str(exc).strip().splitlines()
        return f"cannot connect: {text[0] if text else type(exc).__name__}"

    def _sftp(self) -> paramiko.SFTPClient:
        with self._lock:
            if self._sftp_client is None or self._conn is None or not self._conn.is_connected:
                try:
                    self._sftp_client = self._connection().client.open_sftp()
                except HostError:
                    raise
                except Exception as exc:
                    raise HostError(f"{self.where}: cannot open sftp: {exc}") from None
            return self._sftp_client

    @property
    def home(self) -> str:
        with self._lock:
            if self._home is None:
                try:
                    self._home = self._sftp().normalize(".")
                except _SFTP_ERRORS as exc:
                    why = f"cannot find the home directory: {_why(exc)}"
                    raise HostError(f"{self.where}: {why}") from None
            return self._home

    def expand(self, path: str) -> str:
        """A remote path with a leading `~` made absolute (quoted paths are never expanded)."""
        if path == "~":
            return self.home
        if path.startswith("~/"):
            return str(PurePosixPath(self.home) / path[2:])
        return path

    @property
    def workdir(self) -> str:
        return self.expand(self._workdir)

    @workdir.setter
    def workdir(self, value: str) -> None:
        self._workdir = value

    @property
    def python(self) -> str:
        return self.expand(self._python)

    @python.setter
    def python(self, value: str) -> None:
        self._python = value

    def close(self) -> None:
        with self._lock:
            if self._sftp_client is not None:
                self._sftp_client.close()
                self._sftp_client = None
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---- commands -----------------------------------------------------------------------

    def run(
        self, argv: Sequence[str], *, timeout: float | None = 60.0, check: bool = True
    ) -> CommandResult:
        if not argv:
            raise HostError(f"{self.name}: empty command")
        line = shlex.join(argv)
        conn = self._connection()
        try:
            done = conn.run(line, hide=True, warn=True, timeout=timeout, in_stream=False)
        except CommandTimedOut:
            raise HostError(f"{self.name}: {argv[0]} did not finish in {timeout} s") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise HostError(f"{self.where}: connection lost running {argv[0]}: {exc}") from None
        result = CommandResult(done.exited, done.stdout, done.stderr)
        if check and done.exited != 0:
            last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines()
                    or ["no output"])[-1]
            raise HostError(f"{self.name}: {argv[0]} exited {done.exited}: {last}")
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
        if not argv:
            raise HostError(f"{self.name}: empty command")
        for key in env or {}:
            if not _ENV_KEY.match(key):
                raise HostError(f"{self.name}: bad environment variable name {key!r}")
        launcher = [
            self.python, "-c", _LAUNCHER,
            self.expand(pid_path), self.expand(log_path), self.expand(cwd or ""),
            json.dumps(dict(env or {})), *argv,
        ]
        result = self.run(launcher, timeout=30.0, check=False)
        if result.rc != 0:
            why = (result.stderr.strip().splitlines() or [f"launcher exited {result.rc}"])[-1]
            raise HostError(f"{self.name}: {why}")

    def _read_int(self, path: str) -> int | None:
        try:
            text = self.read_text(path)
        except HostError:
            return None
        try:
            return int(text.strip())
        except ValueError:
            return None

    def exit_code(self, pid_path: str) -> int | None:
        return self._read_int(pid_path + ".exit")

    def alive(self, pid_path: str) -> bool:
        pid = self._read_int(pid_path)
        if pid is None or pid <= 1:
            return False
        # The launcher waits for its child and writes the exit status beside the pid file,
        # so liveness is one SFTP stat rather than a remote shell per poll.
        return not self.exists(pid_path + ".exit")

    def signal(self, pid_path: str, sig: int) -> bool:
        if not self.alive(pid_path):
            return False
        pid = self._read_int(pid_path)
        if pid is None:
            return False
        return self.run(["kill", f"-{int(sig)}", str(pid)], check=False).rc == 0

    def tail(self, path: str, lines: int = 10) -> str:
        # Logs can be large: read only their end, remotely.
        try:
            result = self.run(["tail", "-n", str(int(lines)), "--", self.expand(path)],
                              check=False)
        except HostError:
            return ""
        return result.stdout.rstrip("\n") if result.rc == 0 else ""

    # ---- files --------------------------------------------------------------------------

    def makedirs(self, path: str) -> None:
        self.run(["mkdir", "-p", "--", self.expand(path)])

    def write_text(self, path: str, text: str) -> None:
        self._put(io.BytesIO(text.encode()), self.expand(path))

    def put_file(self, local_path: Path, remote_path: str) -> None:
        with open(local_path, "rb") as f:
            self._put(f, self.expand(remote_path))

    def _put(self, data: Any, path: str) -> None:
        # Write beside the target and rename, so a reader never sees half a file.
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        sftp = self._sftp()
        try:
            with self._lock:
                sftp.putfo(data, tmp, confirm=True)
                sftp.posix_rename(tmp, path)
        except _SFTP_ERRORS as exc:
            raise HostError(f"{self.name}: cannot write {path}: {_why(exc)}") from None

    def read_text(self, path: str) -> str:
        target = self.expand(path)
        sftp = self._sftp()
        try:
            with self._lock, sftp.open(target, "rb") as f:
                data = f.read()
        except _SFTP_ERRORS as exc:
            raise HostError(f"{self.name}: cannot read {target}: {_why(exc)}") from None
        return bytes(data).decode("utf-8", errors="replace")

    def read_from(self, path: str, offset: int) -> bytes:
        sftp = self._sftp()
        try:
            with self._lock, sftp.open(self.expand(path), "rb") as f:
                f.seek(offset)
                return bytes(f.read())
        except _SFTP_ERRORS:
            return b""

    def exists(self, path: str) -> bool:
        sftp = self._sftp()
        try:
            with self._lock:
                sftp.stat(self.expand(path))
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise HostError(f"{self.name}: cannot stat {path}: {_why(exc)}") from None
        except (paramiko.SSHException, EOFError) as exc:
            raise HostError(f"{self.name}: cannot stat {path}: {_why(exc)}") from None
        return True

    def fetch_dir(self, remote_dir: str, local_dir: Path) -> list[Path]:
        src = self.expand(remote_dir)
        dst = Path(local_dir)
        dst.mkdir(parents=True, exist_ok=True)
        sftp = self._sftp()
        copied: list[Path] = []
        try:
            with self._lock:
                entries = sorted(sftp.listdir_attr(src), key=lambda e: e.filename)
                for entry in entries:
                    if entry.st_mode is None or not stat.S_ISREG(entry.st_mode):
                        continue
                    # A remote name is only ever a file name here, never a path.
                    if "/" in entry.filename or entry.filename in (".", ".."):
                        continue
                    target = dst / entry.filename
                    sftp.get(f"{src}/{entry.filename}", str(target))
                    copied.append(target)
        except _SFTP_ERRORS as exc:
            raise HostError(f"{self.name}: cannot fetch {src}: {_why(exc)}") from None
        return copied


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def hosts_for(
    cluster: Cluster,
    *,
    user: str | None = None,
    identity_file: str | None = None,
    known_hosts: str | Path | None = None,
    accept_new_host_keys: bool = False,
    workdir_base: str | None = None,
    python: str | None = None,
) -> dict[str, SSHHost]:
    """One SSHHost per machine (name -> host); nothing connects until first used."""
    return {
        m.name: SSHHost.from_machine(
            m, user=user, identity_file=identity_file, known_hosts=known_hosts,
            accept_new_host_keys=accept_new_host_keys, workdir_base=workdir_base, python=python,
        )
        for m in cluster
    }
