"""RSMKeeper: ZooKeeper as the state machine of one Raft group of three proxy replicas, with
no sequencer. Every replica serves ZooKeeper's own client protocol on its own port, so
unmodified clients (kazoo, zkCli) connect to `host:port,host:port,host:port`.

`masonctl serve --system rsmkeeper` starts the group and serves until interrupted;
`masonctl run` drives it with the ZooKeeper load generator (nodes/zkclient) and, where the
clients recorded their histories, ends with the linearizability checker.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from orchestrator import placement
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.systems import checks
from orchestrator.systems.base import (
    Counts,
    System,
    check_base_port,
    check_batch_max_ops,
    check_fault_times,
    check_positive,
    check_window,
)
from orchestrator.systems.mason import check_durability
from orchestrator.zkworkload import (
    CLIENT_KIND,
    ZK_WORKLOAD_FIELDS,
    check_zk_workload,
    workload_text,
    zk_client_procs,
)

if TYPE_CHECKING:
    from orchestrator.experiment import Experiment

# The group never numbers anything: these only keep the shared replica quiet.
QUIET_GROUP = {"gc_interval_ms": 1000, "gc_leader": False, "bitmap_block": 1 << 16,
               "record_noops": False}


class RSMKeeper(System):
    name = "rsmkeeper"
    title = "RSMKeeper (ZooKeeper over Raft)"
    description = "ZooKeeper operations executed by one Raft-replicated proxy group."
    largest = Counts(0, 3, 1, 0)
    machine_counts = {"proxy": "nproxies", "client": "nclients"}
    fields = frozenset({"nproxies", "batch_timeout", "batch_max_ops", "max_log_size",
                        "election_timeout_ms", "raft_tick_ms", "zk_local_reads", "zk_tick_ms",
                        "kill_leader", "kill_follower", "restart_after", "durable",
                        *ZK_WORKLOAD_FIELDS})
    fault_events = ("kill_leader", "kill_follower")
    fixed = {"nsequencers": 0, "nsequence_spaces": 0}
    why_not = {"nsequencers": "RSMKeeper's group numbers nothing: it has no sequencer",
               "nsequence_spaces": "RSMKeeper's group numbers nothing: it has no sequencer"}
    local_defaults = {"nproxies": 3}

    start_order = ("proxy", CLIENT_KIND)

    def check_fields(self, spec: ExperimentSpec) -> ExperimentSpec:
        if spec.nproxies != 3:
            raise SpecError(f"--nproxies must be 3 for rsmkeeper (one Raft group), not "
                            f"{spec.nproxies}")
        if spec.nproxy_threads != 1:
            raise SpecError("--nproxy_threads must be 1 for rsmkeeper (one Raft group)")
        check_positive({"--max_log_size": spec.max_log_size,
                        "--raft_tick_ms": spec.raft_tick_ms, "--zk_tick_ms": spec.zk_tick_ms})
        if spec.batch_timeout < 0:
            raise SpecError(f"--batch_timeout must be >= 0 microseconds, not {spec.batch_timeout}")
        if spec.election_timeout_ms < 2 * spec.raft_tick_ms:
            raise SpecError("--election_timeout_ms must be at least two Raft ticks")
        check_window(spec)
        check_batch_max_ops(spec.batch_max_ops)
        check_fault_times(spec, self.fault_events)
        check_durability(spec)
        check_base_port(spec)
        return check_zk_workload(spec, records_history=spec.record_seqnums)

    def place(self, spec: ExperimentSpec,
              machines: list[placement.MachineSlot]) -> placement.Placement:
        slots = placement.by_role(machines)
        ports = placement.Ports(spec.base_port)
        extra = {"service": "rsmkeeper", "read_policy": "any", "nspaces": 0,
                 "zk_local_reads": spec.zk_local_reads, "zk_tick_ms": spec.zk_tick_ms,
                 **QUIET_GROUP}
        no_clients = msgspec.structs.replace(spec, nclients=0)
        placed = placement.place_groups(no_clients, slots, ports, proxy_extra=extra)
        for proc in placed.by_kind("proxy"):
            proc.context["zk_listen"] = ports.endpoint(proc.context["listen"]["host"])
        servers = [p.context["zk_listen"]
                   for p in sorted(placed.by_kind("proxy"), key=lambda p: p.replica)]
        clients = placement.need(slots, "client", spec.nclients)
        placed.procs += zk_client_procs(spec, clients, [servers],
                                        record_history=spec.record_seqnums)
        return placed

    def wait_ready(self, run: Experiment) -> None:
        run.wait_for_leaders()

    def connect_string(self, placed: placement.Placement) -> str:
        return ",".join(f"{p.context['zk_listen']['host']}:{p.context['zk_listen']['port']}"
                        for p in sorted(placed.by_kind("proxy"), key=lambda p: p.replica))

    def check(self, run_dir: Path) -> list[checks.Check]:
        return [checks.linearizability(run_dir)]

    def describe(self, spec: ExperimentSpec) -> str:
        reads = "local" if spec.zk_local_reads else "linearizable"
        return f"1 group of 3, {reads} reads"

    def workload(self, spec: ExperimentSpec) -> str:
        return workload_text(spec)


SYSTEM = RSMKeeper()
