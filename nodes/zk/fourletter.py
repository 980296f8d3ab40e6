"""ZooKeeper's four-letter words: on a fresh connection the first four bytes may be an
ASCII command instead of a frame length; the server answers in text and closes.

The answers keep ZooKeeper 3.8's line formats, which clients parse: kazoo's
`server_version()` reads `zookeeper.version=` from `envi`; monitoring tools read `srvr`
(`Zookeeper version:`, `Mode:`, `Node count:`) and `mntr` (tab-separated `zk_*` keys).
"""

from __future__ import annotations

import platform

import msgspec

# The ZooKeeper release whose client protocol we speak (kazoo compares major.minor).
ZK_VERSION = "3.8.4"
FULL_VERSION = f"{ZK_VERSION}-mason, built on 1970-01-01 00:00 UTC"

# Every word ZooKeeper knows; those we do not answer get its "not in the whitelist" line.
KNOWN_WORDS = frozenset(
    w.encode() for w in ("conf", "cons", "crst", "dump", "envi", "gtmk", "ruok", "stmk",
                         "srst", "srvr", "stat", "wchc", "wchp", "wchs", "mntr", "isro",
                         "hash", "dirs"))


class ServerFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the server knows about itself when a four-letter word arrives."""

    mode: str = "standalone"  # standalone, leader or follower
    node_count: int = 0
    zxid: int = 0  # the last applied
    connections: int = 0
    outstanding: int = 0
    received: int = 0
    sent: int = 0
    latency_min_ms: int = 0
    latency_avg_ms: float = 0.0
    latency_max_ms: int = 0
    watch_count: int = 0
    ephemerals_count: int = 0
    data_size: int = 0  # bytes of node data and paths
    client_port: int = 0
    tick_time_ms: int = 2000
    min_session_timeout_ms: int = 4000
    max_session_timeout_ms: int = 40000
    server_id: int = 0
    host: str = ""
    clients: tuple[str, ...] = ()  # `stat`'s per-connection lines, e.g. "/10.0.0.2:5123[1]"


def _server_stats(f: ServerFacts) -> list[str]:
    return [
        f"Latency min/avg/max: {f.latency_min_ms}/{f.latency_avg_ms}/{f.latency_max_ms}",
        f"Received: {f.received}",
        f"Sent: {f.sent}",
        f"Connections: {f.connections}",
        f"Outstanding: {f.outstanding}",
        f"Zxid: 0x{f.zxid:x}",
        f"Mode: {f.mode}",
        f"Node count: {f.node_count}",
    ]


def _srvr(f: ServerFacts) -> list[str]:
    return [f"Zookeeper version: {FULL_VERSION}", *_server_stats(f)]


def _stat(f: ServerFacts) -> list[str]:
    clients = [f" {c}" for c in f.clients]
    return [f"Zookeeper version: {FULL_VERSION}", "Clients:", *clients, "", *_server_stats(f)]


def _envi(f: ServerFacts) -> list[str]:
    return ["Environment:",
            f"zookeeper.version={FULL_VERSION}",
            f"host.name={f.host or platform.node()}",
            f"python.version={platform.python_version()}",
            f"os.name={platform.system()}",
            f"os.arch={platform.machine()}",
            f"os.version={platform.release()}"]


def _conf(f: ServerFacts) -> list[str]:
    return [f"clientPort={f.client_port}",
            "secureClientPort=-1",
            f"tickTime={f.tick_time_ms}",
            f"minSessionTimeout={f.min_session_timeout_ms}",
            f"maxSessionTimeout={f.max_session_timeout_ms}",
            f"serverId={f.server_id}"]


def _mntr(f: ServerFacts) -> list[str]:
    pairs = [("zk_version", FULL_VERSION), ("zk_server_state", f.mode),
             ("zk_avg_latency", f.latency_avg_ms), ("zk_max_latency", f.latency_max_ms),
             ("zk_min_latency", f.latency_min_ms), ("zk_packets_received", f.received),
             ("zk_packets_sent", f.sent), ("zk_num_alive_connections", f.connections),
             ("zk_outstanding_requests", f.outstanding), ("zk_znode_count", f.node_count),
             ("zk_watch_count", f.watch_count), ("zk_ephemerals_count", f.ephemerals_count),
             ("zk_approximate_data_size", f.data_size)]
    return [f"{k}\t{v}" for k, v in pairs]


_LINES = {"srvr": _srvr, "stat": _stat, "envi": _envi, "conf": _conf, "mntr": _mntr}


def answer(word: str, facts: ServerFacts) -> bytes:
    """The text ZooKeeper would send for `word` (one of KNOWN_WORDS)."""
    if word == "ruok":
        return b"imok"
    if word == "isro":
        return b"rw"
    lines = _LINES.get(word)
    if lines is None:
        return f"{word} is not executed because it is not in the whitelist.\n".encode()
    return ("\n".join(lines(facts)) + "\n").encode()
