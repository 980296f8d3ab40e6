"""Role placement: which process runs where, on which port, talking to whom.

Machines are taken by role and numeric index (proxy-2 before proxy-10). Proxy machines
come in triples; machine 3k+i hosts replica i of each of triple k's `nproxy_threads`
groups, one process per group (group = k * nproxy_threads + thread). Replica 0 is the
designated leader, as in the original, but after that leadership is plain Raft.
Client machine j serves triple j mod ntriples; its thread t uses group
triple * nproxy_threads + (t mod nproxy_threads). Client ids are global and unique
(the original packed the IP's last octet and the thread index into 16 bits).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from orchestrator.spec import ExperimentSpec, SpecError


@dataclass(frozen=True)
class Slot:
    """A logical machine the placement may use."""

    name: str  # e.g. "proxy-4"
    role: str
    index: int
    address: str
    rundir: str  # where this machine's processes write (configs, logs, data)


@dataclass
class Proc:
    name: str  # e.g. "proxy-4-1": machine proxy-4, thread 1
    role: str  # template and module name: sequencer, proxy, client
    machine: str
    context: dict[str, Any]  # template variables
    group: int = -1
    replica: int = -1

    @property
    def module(self) -> str:
        return f"nodes.{self.role}"


@dataclass
class Placement:
    procs: list[Proc] = field(default_factory=list)

    def by_role(self, role: str) -> list[Proc]:
        return [p for p in self.procs if p.role == role]


def _need(slots: dict[str, list[Slot]], role: str, count: int) -> list[Slot]:
    have = slots.get(role, [])
    if len(have) < count:
        raise SpecError(f"the experiment needs {count} {role} machine(s), the cluster has "
                        f"{len(have)}")
    return sorted(have, key=lambda s: s.index)[:count]


def place(spec: ExperimentSpec, machines: list[Slot]) -> Placement:
    by_role: dict[str, list[Slot]] = defaultdict(list)
    for slot in machines:
        by_role[slot.role].append(slot)
    sequencers = _need(by_role, "sequencer", spec.nsequencers)
    proxies = _need(by_role, "proxy", spec.nproxies)
    clients = _need(by_role, "client", spec.nclients)

    ports: dict[str, int] = defaultdict(lambda: spec.base_port)

    def port_on(address: str) -> int:
        port = ports[address]
        ports[address] = port + 1
        return port

    placement = Placement()
    common = {"nspaces": spec.nsequence_spaces}
    seq_endpoints: list[dict[str, Any]] = [
        {"host": s.address, "port": port_on(s.address)} for s in sequencers
    ]

    # Ports first, so every replica can name its peers.
    endpoints: dict[tuple[int, int], dict[str, Any]] = {}
    for m, slot in enumerate(proxies):
        triple, replica = divmod(m, 3)
        for thread in range(spec.nproxy_threads):
            group = triple * spec.nproxy_threads + thread
            endpoints[(group, replica)] = {"host": slot.address, "port": port_on(slot.address)}
    groups = {str(g): [endpoints[(g, r)] for r in range(3)] for g in range(spec.ngroups)}

    # Sequencer i serves epoch i + 1; every one after the first is a standby that takes
    # over when the groups report the one before it dead.
    for i, slot in enumerate(sequencers):
        placement.procs.append(Proc(
            name=slot.name, role="sequencer", machine=slot.name,
            context={**common, "name": slot.name, "outdir": slot.rundir, "epoch": i + 1,
                     "standby": i > 0, "groups": groups if i > 0 else {},
                     "listen": seq_endpoints[i]},
        ))
    heartbeat_ticks = max(1, spec.election_timeout_ms // spec.raft_tick_ms // 10)
    for m, slot in enumerate(proxies):
        triple, replica = divmod(m, 3)
        for thread in range(spec.nproxy_threads):
            group = triple * spec.nproxy_threads + thread
            name = f"{slot.name}-{thread}"
            peers = {str(r): endpoints[(group, r)] for r in range(3) if r != replica}
            ring_next = (group + 1) % spec.ngroups
            gc_next = [] if spec.ngroups == 1 else groups[str(ring_next)]
            placement.procs.append(Proc(
                name=name, role="proxy", machine=slot.name, group=group, replica=replica,
                context={
                    **common, "name": name, "outdir": slot.rundir, "group": group,
                    "replica": replica, "epoch": 1, "designated_leader": replica == 0,
                    "batch_timeout_us": spec.batch_timeout, "batch_max_ops": spec.batch_max_ops,
                    "tick_ms": spec.raft_tick_ms,
                    "election_ticks": max(2, spec.election_timeout_ms // spec.raft_tick_ms),
                    "heartbeat_ticks": heartbeat_ticks, "max_log_entries": spec.max_log_size,
                    "record_noops": spec.record_noops,
                    "listen": endpoints[(group, replica)], "sequencer": seq_endpoints[0],
                    "peers": peers,
                    "backups": seq_endpoints[1:],
                    "heartbeat_ms": spec.heartbeat_ms, "heartbeat_misses": spec.heartbeat_misses,
                    "bitmap_block": spec.bitmap_block, "gc_interval_ms": spec.gc_interval_ms,
                    "gc_next": gc_next, "gc_leader": group == 0,
                },
            ))

    client_id = 0
    for j, slot in enumerate(clients):
        triple = j % spec.ntriples
        for thread in range(spec.nclient_threads):
            group = triple * spec.nproxy_threads + thread % spec.nproxy_threads
            name = f"{slot.name}-{thread}"
            placement.procs.append(Proc(
                name=name, role="client", machine=slot.name, group=group,
                context={
                    **common, "name": name, "outdir": slot.rundir, "client_id": client_id,
                    "group": group, "concurrency": spec.client_concurrency,
                    "warmup_s": spec.warmup, "duration_s": spec.expduration,
                    "cooldown_s": spec.cooldown, "timeout_ms": spec.client_timeout_ms,
                    "record_seqnums": spec.record_seqnums,
                    "replicas": [endpoints[(group, r)] for r in range(3)],
                },
            ))
            client_id += 1
    return placement
