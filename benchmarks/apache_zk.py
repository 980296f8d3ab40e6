"""Apache ZooKeeper 3.8 (Debian's `zookeeper` package) on this machine: a standalone server
or an ensemble of servers on 127.0.0.1, started as java subprocesses and always stopped.

    with Ensemble(3, workdir) as zk:
        zk.connect_string  # "127.0.0.1:p0,127.0.0.1:p1,127.0.0.1:p2"

Each server gets its own client, quorum and election port (a block from
orchestrator/ports.py), its dataDir and myid under `workdir`, and its log in
`workdir/zk-<i>.log`. The ensemble is up when every server answers `srvr` with its mode
(leader, follower or standalone); leaving the block (normally or by an exception) kills
every server and waits for it.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from benchmarks.local_servers import LocalServers
from orchestrator.ports import free_port_block

JAVA_DIR = Path("/usr/share/java")
# What a server loads with the admin server off (Debian's jar names).
JARS = ("zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "metrics-core.jar")
MAIN_STANDALONE = "org.apache.zookeeper.server.ZooKeeperServerMain"
MAIN_QUORUM = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def missing() -> list[str]:
    """What running Apache ZooKeeper here lacks (empty when nothing)."""
    lacking = [] if shutil.which("java") else ["java"]
    return lacking + [str(JAVA_DIR / j) for j in JARS if not (JAVA_DIR / j).exists()]


def four_letter(port: int, word: str, timeout: float = 1.0) -> str:
    """A four-letter word's answer ("" when the server does not answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def serving_mode(port: int) -> str:
    """leader, follower or standalone once the server serves clients; "" before."""
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line.removeprefix("Mode: ").strip()
    return ""


class Ensemble(LocalServers):
    """`n` Apache ZooKeeper servers on 127.0.0.1 (n = 1: a standalone server)."""

    server_name = "Apache ZooKeeper server"
    log_prefix = "zk"

    def __init__(self, n: int, workdir: Path, *, heap_mb: int = 512, force_sync: bool = True,
                 start_timeout_s: float = 120.0) -> None:
        super().__init__(n, workdir, start_timeout_s)
        self.heap_mb = heap_mb
        self.force_sync = force_sync  # fsync the transaction log before acknowledging
        base = free_port_block(3 * n)
        self.client_ports = [base + i for i in range(n)]
        self.peer_ports = [base + n + i for i in range(n)]
        self.election_ports = [base + 2 * n + i for i in range(n)]

    @property
    def connect_string(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def where(self) -> str:
        return self.connect_string

    def config(self, i: int) -> str:
        data = self.workdir / f"zk-{i}" / "data"
        lines = ["tickTime=2000", "initLimit=10", "syncLimit=5", f"dataDir={data}",
                 f"clientPort={self.client_ports[i]}", "clientPortAddress=127.0.0.1",
                 "admin.enableServer=false", "4lw.commands.whitelist=ruok,srvr",
                 "maxClientCnxns=0", f"forceSync={'yes' if self.force_sync else 'no'}"]
        if self.n > 1:
            lines += [f"server.{k + 1}=127.0.0.1:{self.peer_ports[k]}:"
                      f"{self.election_ports[k]}" for k in range(self.n)]
        return "\n".join(lines) + "\n"

    def command(self, i: int) -> list[str]:
        home = self.workdir / f"zk-{i}"
        (home / "data").mkdir(parents=True, exist_ok=True)
        (home / "data" / "myid").write_text(f"{i + 1}\n")
        cfg = home / "zoo.cfg"
        cfg.write_text(self.config(i))
        classpath = ":".join(str(JAVA_DIR / j) for j in JARS)
        main = MAIN_QUORUM if self.n > 1 else MAIN_STANDALONE
        return ["java", f"-Xmx{self.heap_mb}m", "-cp", classpath, main, str(cfg)]

    def serving(self) -> bool:
        return all(serving_mode(port) for port in self.client_ports)
