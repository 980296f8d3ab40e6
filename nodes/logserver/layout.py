"""Where a log position lives: the one mapping every role (clients, proxies, servers) uses.

The log is striped round-robin over chains: position p belongs to chain `p mod nchains`
and is held at local slot `p div nchains` on every replica of that chain. A chain is a list
of log-server endpoints, head first, tail last; writers go head to tail, readers read the
tail. Chains are built by the orchestrator from `--ncorfu_servers` machines, each running
`units` log-server processes: consecutive groups of `replication` machines form a replica
set, and unit u on every machine of replica set k is chain k * units + u.

`layout.json` (written by the orchestrator into a run's results directory, read by the log
checker, analysis/logcheck.py) names the log-server processes of every chain:

    {"nchains": 2, "replication": 2, "entry_size": 64,
     "chains": [["logserver-0-0", "logserver-1-0"], ["logserver-0-1", "logserver-1-1"]]}

`chains[c]` lists chain c's processes head first (replica index = list index); a process
writes its entries to `<name>.entries`. `entry_size` is the size of the entries clients
append (nodes/logserver/values.entry_value).
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from nodes.metrics import write_atomic

LAYOUT_FILE = "layout.json"


class LogLayout(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    nchains: int
    replication: int
    chains: list[list[str]]  # per chain, its log-server process names, head first
    entry_size: int = 64

    def __post_init__(self) -> None:
        if self.nchains <= 0 or self.replication <= 0 or self.entry_size < 0:
            raise ValueError("nchains and replication must be positive, entry_size >= 0")
        if len(self.chains) != self.nchains:
            raise ValueError(f"{len(self.chains)} chains listed, nchains is {self.nchains}")
        for c, names in enumerate(self.chains):
            if len(names) != self.replication or len(set(names)) != len(names):
                raise ValueError(f"chain {c} lists {names}: not {self.replication} distinct"
                                 " processes")


def write_layout(path: str | os.PathLike[str], layout: LogLayout) -> None:
    write_atomic(path, msgspec.json.encode(layout) + b"\n")


def read_layout(path: str | os.PathLike[str]) -> LogLayout:
    """Raises ValueError with a one-line reason when the file is not a layout."""
    try:
        return msgspec.json.decode(Path(path).read_bytes(), type=LogLayout)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def chain_of(position: int, nchains: int) -> int:
    return position % nchains


def slot_of(position: int, nchains: int) -> int:
    return position // nchains


def chain_members(nservers: int, units: int, replication: int) -> list[list[tuple[int, int]]]:
    """For each chain, its replicas as (server machine index, unit index), head first."""
    if nservers <= 0 or units <= 0 or replication <= 0:
        raise ValueError("servers, units and replication must be positive")
    if nservers % replication:
        raise ValueError(f"{nservers} log servers do not split into chains of {replication}")
    chains = []
    for replica_set in range(nservers // replication):
        machines = range(replica_set * replication, (replica_set + 1) * replication)
        for unit in range(units):
            chains.append([(m, unit) for m in machines])
    return chains
