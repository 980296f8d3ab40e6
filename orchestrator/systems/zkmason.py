"""ZK-Mason: ZooKeeper's tree sharded over shard servers, every operation ordered by Mason.

Shard k is three replicas (`nodes/zkshard`, one process per `server-*` machine; consecutive
triples of the servers, by index, form a shard) that execute in the order of sequence space
k's numbers, so there are as many shards as sequence spaces. Mason's proxy groups (service
"zkmason") serve ZooKeeper's client protocol, hold the sessions, take numbers from the
sequencer and drive each operation to its shards. Each load-generator process talks to the
three replicas of one group; the processes go round-robin over the groups.

`masonctl serve --system zkmason` starts it and prints a group's connect string;
`masonctl run` drives it with the ZooKeeper load generator and checks every shard's
execution records (analysis/zkshards.py) and, where the clients recorded their histories,
linearizability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from orchestrator import placement
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.systems import checks
from orchestrator.systems.base import Counts, System, check_positive
from orchestrator.systems.mason import GROUP_FIELDS, GROUP_MACHINES, TESTBED_BASE, check_groups
from orchestrator.zkworkload import (
    CLIENT_KIND,
    ZK_WORKLOAD_FIELDS,
    check_zk_workload,
    workload_text,
    zk_client_procs,
)

if TYPE_CHECKING:
    from orchestrator.experiment import Experiment

REPLICATION = 3  # replicas per shard: a shard goes on with a majority (2) of them
SHARD_KIND = "zkshard"


def shards_of(nzk_servers: int) -> int:
    """The shards `nzk_servers` replicas make; SpecError unless a positive multiple of 3."""
    if nzk_servers <= 0 or nzk_servers % REPLICATION:
        raise SpecError(f"--nzk_servers must be a positive multiple of {REPLICATION}, not "
                        f"{nzk_servers}")
    return nzk_servers // REPLICATION


def check_shards(spec: ExperimentSpec) -> ExperimentSpec:
    """Shard servers, replication and the spaces that order them; fills --nzk_servers
    (0: three per sequence space)."""
    if spec.zk_replication_factor != REPLICATION:
        raise SpecError(f"--zk_replication_factor must be {REPLICATION}, not "
                        f"{spec.zk_replication_factor}: every shard is three replicas")
    servers = spec.nzk_servers or REPLICATION * spec.nsequence_spaces
    nshards = shards_of(servers)
    if nshards != spec.nsequence_spaces:
        raise SpecError(f"--nzk_servers {servers} makes {nshards} shard(s), but "
                        f"--nsequence_spaces is {spec.nsequence_spaces}: shard k is ordered by "
                        "space k (leave --nsequence_spaces out to derive it)")
    check_positive({"--zk_tick_ms": spec.zk_tick_ms})
    return msgspec.structs.replace(spec, nzk_servers=servers)


@dataclass
class ShardPlacement:
    procs: list[placement.Proc]  # one replica process per server machine
    endpoints: list[list[dict[str, Any]]]  # shard -> its replicas' endpoints (zk_shards)


def place_shards(spec: ExperimentSpec, slots: dict[str, list[placement.MachineSlot]],
                 ports: placement.Ports, proxies: list[dict[str, Any]]) -> ShardPlacement:
    """A replica on each of the first `nzk_servers` server machines: machine 3k + r holds
    replica r of shard k. `proxies` are the proxy replicas' endpoints by origin index."""
    servers = placement.need(slots, "server", spec.nzk_servers)
    listen = [ports.endpoint(slot.address) for slot in servers]
    procs = []
    for m, slot in enumerate(servers):
        shard, replica = divmod(m, REPLICATION)
        procs.append(placement.Proc(
            name=slot.name, kind=SHARD_KIND, machine=slot.name, group=shard, replica=replica,
            context={"name": slot.name, "outdir": slot.rundir,
                     "nspaces": spec.nsequence_spaces, "shard": shard, "replica": replica,
                     "listen": listen[m], "proxies": proxies, "zk_tick_ms": spec.zk_tick_ms,
                     # Always: every run (and every serve) ends with the per-shard check,
                     # and a line per operation costs a shard replica little.
                     "record_exec": True}))
    endpoints = [listen[k * REPLICATION:(k + 1) * REPLICATION]
                 for k in range(len(servers) // REPLICATION)]
    return ShardPlacement(procs, endpoints)


def _connect(endpoints: list[dict[str, Any]]) -> str:
    return ",".join(f"{e['host']}:{e['port']}" for e in endpoints)


class ZKMason(System):
    name = "zkmason"
    title = "ZK-Mason (ZooKeeper atop Mason)"
    description = "A sharded ZooKeeper whose operations are ordered by Mason."
    largest = Counts(2, 48, 16, 24)
    machine_counts = {**GROUP_MACHINES, "server": "nzk_servers"}
    start_order = ("sequencer", SHARD_KIND, "proxy", CLIENT_KIND)
    # Proxies first: on SIGTERM a leader finishes carrying what its group committed to the
    # shards (and the sequencer answers its last batches), so every number handed out is
    # executed before the shards stop and the per-shard check can demand it.
    stop_first = (CLIENT_KIND, "proxy")
    fields = GROUP_FIELDS | ZK_WORKLOAD_FIELDS | {
        "nsequence_spaces", "nzk_servers", "zk_replication_factor", "zk_tick_ms",
        "kill_zk_server"}
    fault_events = ("kill_leader", "kill_sequencer", "kill_backup", "kill_follower",
                    "kill_zk_server")
    # One machine: one triple of one group, one shard; the original's 8 keys per process.
    local_defaults = {"nproxies": 3, "nproxy_threads": 1, "nkeys": 8}
    # The original launcher's zk-mason defaults: 2 triples of 8 groups, 2 client machines
    # of 16 processes with 8 outstanding operations each, 8 keys per process.
    testbed_base = {**TESTBED_BASE, "nproxies": 6, "nclients": 2, "client_concurrency": 8,
                    "nkeys": 8}

    def fill_given(self, values: Mapping[str, object]) -> dict[str, object]:
        given = dict(values)
        servers = given.get("nzk_servers")
        if isinstance(servers, int) and not isinstance(servers, bool):
            nshards = shards_of(servers)
            given.setdefault("nsequence_spaces", nshards)
        return given

    def check_fields(self, spec: ExperimentSpec) -> ExperimentSpec:
        spec = check_groups(spec, self.fault_events, served=spec.nclients == 0)
        spec = check_shards(spec)
        return check_zk_workload(spec, records_history=spec.record_seqnums)

    def testbed_defaults(self, counts: Mapping[str, int]) -> dict[str, object]:
        # The launcher's machines where listed (fewer when the testbed has fewer); the
        # shard servers follow --nsequence_spaces (three per space) unless given.
        return {
            **self.testbed_base,
            "nproxies": max(3, min(6, counts.get("proxy", 0) // 3 * 3)),
            "nclients": max(1, min(2, counts.get("client", 0))),
            "nsequencers": min(2, max(1, counts.get("sequencer", 0))),
        }

    def place(self, spec: ExperimentSpec,
              machines: list[placement.MachineSlot]) -> placement.Placement:
        slots = placement.by_role(machines)
        ports = placement.Ports(spec.base_port)
        extra = {"service": "zkmason", "read_policy": "any", "zk_local_reads": False,
                 "zk_tick_ms": spec.zk_tick_ms}
        no_clients = msgspec.structs.replace(spec, nclients=0)
        placed = placement.place_groups(no_clients, slots, ports, proxy_extra=extra)
        # Origin index = position in (group, replica) order: where shards send events.
        proxies = sorted(placed.by_kind("proxy"), key=lambda p: (p.group, p.replica))
        for proc in proxies:
            proc.context["zk_listen"] = ports.endpoint(proc.context["listen"]["host"])
        shards = place_shards(spec, slots, ports, [p.context["listen"] for p in proxies])
        for origin, proc in enumerate(proxies):
            proc.context["zk_shards"] = shards.endpoints
            proc.context["zk_origin"] = origin
        placed.procs += shards.procs
        groups = [[p.context["zk_listen"] for p in proxies if p.group == g]
                  for g in range(spec.ngroups)]
        clients = placement.need(slots, "client", spec.nclients)
        placed.procs += zk_client_procs(spec, clients, groups,
                                        record_history=spec.record_seqnums)
        return placed

    def wait_ready(self, run: Experiment) -> None:
        run.wait_for_leaders()

    def group_endpoints(self, placed: placement.Placement) -> list[list[dict[str, Any]]]:
        """Each group's ZooKeeper endpoints, by replica."""
        proxies = sorted(placed.by_kind("proxy"), key=lambda p: (p.group, p.replica))
        groups: dict[int, list[dict[str, Any]]] = {}
        for proc in proxies:
            groups.setdefault(proc.group, []).append(proc.context["zk_listen"])
        return [groups[g] for g in sorted(groups)]

    def connect_string(self, placed: placement.Placement) -> str:
        return _connect(self.group_endpoints(placed)[0])

    def serve_notes(self, placed: placement.Placement) -> list[str]:
        groups = self.group_endpoints(placed)
        if len(groups) == 1:
            return []
        return ([f"group {g}: {_connect(e)}" for g, e in enumerate(groups)]
                + [f"{len(groups)} groups serve the same tree (a session lives in its "
                   "group); the line below is group 0's"])

    def check(self, run_dir: Path) -> list[checks.Check]:
        return [checks.zk_shards(run_dir), checks.linearizability(run_dir)]

    def describe(self, spec: ExperimentSpec) -> str:
        return (f"{spec.ngroups} group(s) of 3, {spec.nzk_servers // REPLICATION} shard(s) "
                f"of {REPLICATION}")

    def workload(self, spec: ExperimentSpec) -> str:
        return workload_text(spec)


SYSTEM = ZKMason()
