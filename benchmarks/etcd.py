"""etcd (Debian's `etcd-server` package) on this machine: a cluster of members on 127.0.0.1,
started as subprocesses and always stopped.

    with Cluster(3, workdir) as etcd:
        etcd.endpoints  # ["127.0.0.1:c0", "127.0.0.1:c1", "127.0.0.1:c2"]

Each member gets its own client and peer port (a block from orchestrator/ports.py), its
data dir under `workdir` and its log in `workdir/etcd-<i>.log`. The cluster is up when
every member answers /health with {"health":"true"} (which needs a leader); leaving the
block (normally or by an exception) kills every member and waits for it. Members keep
etcd's defaults otherwise: the write-ahead log is fsynced before a write is acknowledged.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks.local_servers import LocalServers
from orchestrator.ports import free_port_block


def missing() -> list[str]:
    """What running etcd here lacks (empty when nothing)."""
    return [] if shutil.which("etcd") else ["etcd (Debian's etcd-server)"]


def healthy(client_port: int, timeout: float = 1.0) -> bool:
    """Whether the member on `client_port` reports itself healthy (it has a leader)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{client_port}/health",
                                    timeout=timeout) as answer:
            return bool(json.loads(answer.read()).get("health") == "true")
    except (OSError, ValueError, urllib.error.URLError):
        return False


class Cluster(LocalServers):
    """`n` etcd members on 127.0.0.1 forming one cluster."""

    server_name = "etcd member"
    log_prefix = "etcd"

    def __init__(self, n: int, workdir: Path, *, start_timeout_s: float = 60.0) -> None:
        super().__init__(n, workdir, start_timeout_s)
        base = free_port_block(2 * n)
        self.client_ports = [base + i for i in range(n)]
        self.peer_ports = [base + n + i for i in range(n)]

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    def where(self) -> str:
        return ", ".join(self.endpoints)

    def command(self, i: int) -> list[str]:
        peers = ",".join(f"m{k}=http://127.0.0.1:{self.peer_ports[k]}" for k in range(self.n))
        client = f"http://127.0.0.1:{self.client_ports[i]}"
        peer = f"http://127.0.0.1:{self.peer_ports[i]}"
        return ["etcd", "--name", f"m{i}", "--data-dir", str(self.workdir / f"etcd-{i}"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", peers, "--initial-cluster-state", "new",
                "--initial-cluster-token", f"bench-{self.peer_ports[0]}",
                "--logger", "zap", "--log-level", "warn"]

    def serving(self) -> bool:
        return all(healthy(port) for port in self.client_ports)
