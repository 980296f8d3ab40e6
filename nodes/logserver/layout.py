"""Where a log position lives: the one mapping every role (clients, proxies, servers) uses.

The log is striped round-robin over chains: position p belongs to chain `p mod nchains`
and is held at local slot `p div nchains` on every replica of that chain. A chain is a list
of log-server endpoints, head first, tail last; writers go head to tail, readers read the
tail. Chains are built by the orchestrator from `--ncorfu_servers` machines, each running
`units` log-server processes: consecutive groups of `replication` machines form a replica
set, and unit u on every machine of replica set k is chain k * units + u.
"""

from __future__ import annotations


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
