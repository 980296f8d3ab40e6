"""Role placement: which process runs where, on which port, talking to whom.

The building blocks each system's `place` (orchestrator/systems/) puts together.

Machines are taken by role and numeric index (proxy-2 before proxy-10). Proxy machines
come in triples; machine 3k+i hosts replica i of each of triple k's `nproxy_threads`
groups, one process per group (group = k * nproxy_threads + thread). Replica 0 is the
designated leader, as in the original, but after that leadership is plain Raft.
Client processes are spread round-robin over every group, machine j starting at triple j:
thread t of client machine j uses group (j * nproxy_threads + t) mod groups. (The
original kept a machine's threads inside its triple, so one client machine facing two
triples left the second idle.) Client ids are global and unique
(the original packed the IP's last octet and the thread index into 16 bits).

The shared log of the Corfu systems lives on `server-<i>` machines, each running
`corfu_units` log-server processes (`server-<i>-<u>`, one port each). Chains follow
nodes/logserver/layout.py; every process that reads or writes the log gets the same chains.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec

from analysis.runfiles import subdir_for
from nodes import config as node_config
from nodes.logserver.layout import LogLayout, chain_members
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.systems.base import PROCESS_KINDS


def _node_default(struct: type[msgspec.Struct], name: str) -> Any:
    return next(f.default for f in msgspec.structs.fields(struct) if f.name == name)


# What the log servers accept, as the node side defines it.
MAX_ENTRY_BYTES: int = _node_default(node_config.ChainConfig, "max_entry_bytes")
LOG_CAPACITY: int = _node_default(node_config.LogServerConfig, "capacity")


@dataclass(frozen=True)
class MachineSlot:
    """A logical machine the placement may use."""

    name: str  # e.g. "proxy-4"
    role: str
    index: int
    address: str
    rundir: str  # where this machine's processes write (configs, logs, data)

    def outdir(self, kind: str) -> str:
        """Where a process of this kind writes on this machine: client processes into the
        run's clients/ folder, the others into the run directory (analysis.runfiles)."""
        sub = subdir_for(PROCESS_KINDS[kind].client)
        return f"{self.rundir}/{sub}" if sub else self.rundir


@dataclass
class Proc:
    name: str  # e.g. "proxy-4-1": machine proxy-4, thread 1
    kind: str  # a process kind (systems.base.PROCESS_KINDS): its template and module
    machine: str
    context: dict[str, Any]  # template variables
    group: int = -1
    replica: int = -1

    @property
    def module(self) -> str:
        return PROCESS_KINDS[self.kind].module


@dataclass
class Placement:
    procs: list[Proc] = field(default_factory=list)
    log: LogLayout | None = None  # the shared log's chains (Corfu systems)

    def by_kind(self, kind: str) -> list[Proc]:
        return [p for p in self.procs if p.kind == kind]


class Ports:
    """Ports handed out per address from the base port up, so none repeats on a machine
    (on a local run every process shares 127.0.0.1)."""

    def __init__(self, base: int) -> None:
        self._next: dict[str, int] = defaultdict(lambda: base)

    def endpoint(self, address: str) -> dict[str, Any]:
        port = self._next[address]
        self._next[address] = port + 1
        return {"host": address, "port": port}


def by_role(machines: list[MachineSlot]) -> dict[str, list[MachineSlot]]:
    slots: dict[str, list[MachineSlot]] = defaultdict(list)
    for slot in machines:
        slots[slot.role].append(slot)
    return slots


def need(slots: dict[str, list[MachineSlot]], role: str, count: int) -> list[MachineSlot]:
    have = slots.get(role, [])
    if len(have) < count:
        raise SpecError(f"the experiment needs {count} {role} machine(s), the cluster has "
                        f"{len(have)}")
    return sorted(have, key=lambda s: s.index)[:count]


def sequencer_procs(sequencers: list[MachineSlot], endpoints: list[dict[str, Any]],
                    groups: dict[str, Any], common: dict[str, Any]) -> list[Proc]:
    # Sequencer i serves epoch i + 1; every one after the first is a standby that takes
    # over when the groups report the one before it dead. Epochs go round-robin (i owns
    # i + 1, i + 1 + n, ...), so every one, the first too once it restarted, may recover.
    return [
        Proc(name=slot.name, kind="sequencer", machine=slot.name,
             context={**common, "name": slot.name, "outdir": slot.rundir, "epoch": i + 1,
                      "sequencers": len(sequencers), "standby": i > 0, "groups": groups,
                      "listen": endpoints[i]})
        for i, slot in enumerate(sequencers)
    ]


def place_groups(
    spec: ExperimentSpec,
    slots: dict[str, list[MachineSlot]],
    ports: Ports,
    proxy_extra: dict[str, Any] | None = None,
    client_extra: dict[str, Any] | None = None,
) -> Placement:
    """Sequencers, proxy groups and the clients that talk to them (mason; corfumason adds
    its service's keys to every proxy's and client's template context)."""
    sequencers = need(slots, "sequencer", spec.nsequencers)
    proxies = need(slots, "proxy", spec.nproxies)
    clients = need(slots, "client", spec.nclients)

    placement = Placement()
    common = {"nspaces": spec.nsequence_spaces}
    seq_endpoints = [ports.endpoint(s.address) for s in sequencers]

    # Ports first, so every replica can name its peers.
    endpoints: dict[tuple[int, int], dict[str, Any]] = {}
    for m, slot in enumerate(proxies):
        triple, replica = divmod(m, 3)
        for thread in range(spec.nproxy_threads):
            group = triple * spec.nproxy_threads + thread
            endpoints[(group, replica)] = ports.endpoint(slot.address)
    groups = {str(g): [endpoints[(g, r)] for r in range(3)] for g in range(spec.ngroups)}

    placement.procs.extend(sequencer_procs(sequencers, seq_endpoints, groups, common))
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
                name=name, kind="proxy", machine=slot.name, group=group, replica=replica,
                context={
                    **common, "name": name, "outdir": slot.rundir, "group": group,
                    "replica": replica, "epoch": 1, "designated_leader": replica == 0,
                    "batch_timeout_us": spec.batch_timeout, "batch_max_ops": spec.batch_max_ops,
                    "tick_ms": spec.raft_tick_ms,
                    "election_ticks": max(2, spec.election_timeout_ms // spec.raft_tick_ms),
                    "heartbeat_ticks": heartbeat_ticks, "max_log_entries": spec.max_log_size,
                    "record_noops": spec.record_noops, "durable": spec.durable,
                    "listen": endpoints[(group, replica)],
                    # None: a group whose operations need no numbers (rsmkeeper).
                    "sequencer": seq_endpoints[0] if seq_endpoints else None,
                    "peers": peers,
                    "backups": seq_endpoints[1:],
                    "heartbeat_ms": spec.heartbeat_ms, "heartbeat_misses": spec.heartbeat_misses,
                    "bitmap_block": spec.bitmap_block, "gc_interval_ms": spec.gc_interval_ms,
                    "gc_next": gc_next, "gc_leader": group == 0,
                    **(proxy_extra or {}),
                },
            ))

    client_id = 0
    for j, slot in enumerate(clients):
        for thread in range(spec.nclient_threads):
            group = (j * spec.nproxy_threads + thread) % spec.ngroups
            name = f"{slot.name}-{thread}"
            placement.procs.append(Proc(
                name=name, kind="client", machine=slot.name, group=group,
                context={
                    **common, "name": name, "outdir": slot.outdir("client"),
                    "client_id": client_id,
                    "group": group, "concurrency": spec.client_concurrency,
                    "warmup_s": spec.warmup, "duration_s": spec.expduration,
                    "cooldown_s": spec.cooldown, "timeout_ms": spec.client_timeout_ms,
                    "record_seqnums": spec.record_seqnums,
                    "replicas": [endpoints[(group, r)] for r in range(3)],
                    **(client_extra or {}),
                },
            ))
            client_id += 1
    return placement


# ---- the shared log (corfu, corfumason) -----------------------------------------------------


@dataclass
class LogPlacement:
    procs: list[Proc]  # one log-server process per (server machine, unit)
    chains: dict[str, Any]  # the ChainConfig every log user gets (template context)
    layout: LogLayout  # the same chains by process name: layout.json


def place_log(spec: ExperimentSpec, slots: dict[str, list[MachineSlot]],
              ports: Ports) -> LogPlacement:
    """Log-server processes on the first `ncorfu_servers` server machines."""
    servers = need(slots, "server", spec.ncorfu_servers)
    units, replication = spec.corfu_units, spec.corfu_replication_factor
    try:
        members = chain_members(len(servers), units, replication)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    keys = [(m, u) for m in range(len(servers)) for u in range(units)]
    names = {(m, u): f"{servers[m].name}-{u}" for m, u in keys}
    listen = {key: ports.endpoint(servers[key[0]].address) for key in keys}
    holds: dict[tuple[int, int], list[int]] = defaultdict(list)
    for c, chain in enumerate(members):
        for key in chain:
            holds[key].append(c)
    chains = {"chains": [[listen[key] for key in chain] for chain in members],
              "max_entry_bytes": MAX_ENTRY_BYTES}
    procs = []
    for key in keys:
        slot = servers[key[0]]
        procs.append(Proc(name=names[key], kind="logserver", machine=slot.name, context={
            "nspaces": 1, "name": names[key], "outdir": slot.rundir, "listen": listen[key],
            "chains": holds[key], "nchains": len(members),
            "max_entry_bytes": MAX_ENTRY_BYTES, "capacity": LOG_CAPACITY,
            "prefill": spec.max_log_position if spec.reads else 0,
            "dump_entries": spec.record_seqnums,
        }))
    layout = LogLayout(nchains=len(members), replication=replication,
                       entry_size=spec.entry_size,
                       chains=[[names[key] for key in chain] for chain in members])
    return LogPlacement(procs, chains, layout)


def workload(spec: ExperimentSpec) -> dict[str, Any]:
    """What every client of a Corfu system does (nodes.config.Workload)."""
    return {"kind": "read" if spec.reads else "append", "entry_size": spec.entry_size,
            "max_log_position": spec.max_log_position, "seed": 0}


def corfu_client_procs(spec: ExperimentSpec, clients: list[MachineSlot],
                       sequencer: dict[str, Any], chains: dict[str, Any]) -> list[Proc]:
    """Plain Corfu clients: tokens from the sequencer, then the chains directly."""
    procs = []
    for j, slot in enumerate(clients):
        for thread in range(spec.nclient_threads):
            name = f"{slot.name}-{thread}"
            procs.append(Proc(name=name, kind="corfuclient", machine=slot.name, context={
                "nspaces": 1, "name": name, "outdir": slot.outdir("corfuclient"),
                "client_id": j * spec.nclient_threads + thread, "sequencer": sequencer,
                "log": chains, "workload": workload(spec),
                "concurrency": spec.client_concurrency, "warmup_s": spec.warmup,
                "duration_s": spec.expduration, "cooldown_s": spec.cooldown,
                "timeout_ms": spec.client_timeout_ms, "record_seqnums": spec.record_seqnums,
            }))
    return procs
