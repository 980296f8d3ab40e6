"""RSMKeeper: ZooKeeper as the state machine of one Raft group of three proxy replicas, with
no sequencer. Every replica serves ZooKeeper's own client protocol on its own port, so
unmodified clients (kazoo, zkCli) connect to `host:port,host:port,host:port`.

`masonctl serve --system rsmkeeper` starts the group and serves until interrupted.
`masonctl run` needs a ZooKeeper load generator (process kind `zkclient`): until one is
registered in PROCESS_KINDS, a run with clients is refused in one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from orchestrator import placement
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.systems.base import (
    PROCESS_KINDS,
    Counts,
    System,
    check_base_port,
    check_positive,
)

if TYPE_CHECKING:
    from orchestrator.experiment import Experiment

CLIENT_KIND = "zkclient"  # the ZooKeeper-protocol load generator, once it exists
# The group never numbers anything: these only keep the shared replica quiet.
QUIET_GROUP = {"gc_interval_ms": 1000, "gc_leader": False, "bitmap_block": 1 << 16,
               "record_noops": False}


def has_load_generator() -> bool:
    return CLIENT_KIND in PROCESS_KINDS


class RSMKeeper(System):
    name = "rsmkeeper"
    title = "RSMKeeper (ZooKeeper over Raft)"
    description = "ZooKeeper operations executed by one Raft-replicated proxy group."
    largest = Counts(0, 3, 1, 0)
    machine_counts = {"proxy": "nproxies", "client": "nclients"}
    fields = frozenset({"nproxies", "batch_timeout", "batch_max_ops", "max_log_size",
                        "election_timeout_ms", "raft_tick_ms", "zk_local_reads", "zk_tick_ms"})
    fixed = {"nsequencers": 0, "nsequence_spaces": 0}
    why_not = {"nsequencers": "RSMKeeper's group numbers nothing: it has no sequencer",
               "nsequence_spaces": "RSMKeeper's group numbers nothing: it has no sequencer"}
    local_defaults = {"nproxies": 3}

    @property
    def start_order(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("proxy", CLIENT_KIND) if has_load_generator() else ("proxy",)

    def check_fields(self, spec: ExperimentSpec) -> ExperimentSpec:
        if spec.nproxies != 3:
            raise SpecError(f"--nproxies must be 3 for rsmkeeper (one Raft group), not "
                            f"{spec.nproxies}")
        if spec.nproxy_threads != 1:
            raise SpecError("--nproxy_threads must be 1 for rsmkeeper (one Raft group)")
        check_positive({"--batch_max_ops": spec.batch_max_ops,
                        "--max_log_size": spec.max_log_size,
                        "--raft_tick_ms": spec.raft_tick_ms, "--zk_tick_ms": spec.zk_tick_ms})
        if spec.batch_timeout < 0:
            raise SpecError(f"--batch_timeout must be >= 0 microseconds, not {spec.batch_timeout}")
        if spec.election_timeout_ms < 2 * spec.raft_tick_ms:
            raise SpecError("--election_timeout_ms must be at least two Raft ticks")
        if spec.nclients and not has_load_generator():
            raise SpecError("rsmkeeper has no ZooKeeper load generator yet (process kind "
                            f"{CLIENT_KIND!r}); `masonctl serve --system rsmkeeper` runs the "
                            "group for clients of your own")
        check_base_port(spec)
        return spec

    def place(self, spec: ExperimentSpec,
              machines: list[placement.MachineSlot]) -> placement.Placement:
        slots = placement.by_role(machines)
        slots.pop("client", None)  # the load generator places its own clients (not yet)
        ports = placement.Ports(spec.base_port)
        extra = {"service": "rsmkeeper", "read_policy": "any", "nspaces": 0,
                 "zk_local_reads": spec.zk_local_reads, "zk_tick_ms": spec.zk_tick_ms,
                 **QUIET_GROUP}
        no_clients = msgspec.structs.replace(spec, nclients=0)
        placed = placement.place_groups(no_clients, slots, ports, proxy_extra=extra)
        for proc in placed.by_kind("proxy"):
            proc.context["zk_listen"] = ports.endpoint(proc.context["listen"]["host"])
        return placed

    def wait_ready(self, run: Experiment) -> None:
        run.wait_for_leaders()

    def connect_string(self, placed: placement.Placement) -> str:
        return ",".join(f"{p.context['zk_listen']['host']}:{p.context['zk_listen']['port']}"
                        for p in sorted(placed.by_kind("proxy"), key=lambda p: p.replica))

    def describe(self, spec: ExperimentSpec) -> str:
        reads = "local" if spec.zk_local_reads else "linearizable"
        return f"1 group of 3, {reads} reads"

    def workload(self, spec: ExperimentSpec) -> str:
        return "ZooKeeper operations"


SYSTEM = RSMKeeper()
