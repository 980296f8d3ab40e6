"""CorfuMason (the original's corfumason branch): Corfu's shared log with clients going
through Mason's Raft-replicated proxy groups, which take ranges of positions from the
sequencer, replicate them and write the entries down the chains."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import placement
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.systems import checks
from orchestrator.systems.base import Counts, System
from orchestrator.systems.corfu import LOG_FIELDS, check_log, log_checks, log_text, workload_text
from orchestrator.systems.mason import (
    GROUP_FIELDS,
    GROUP_MACHINES,
    TESTBED_BASE,
    check_groups,
    group_testbed_defaults,
)

if TYPE_CHECKING:
    from orchestrator.experiment import Experiment

READ_POLICIES = ("any", "leader")


class CorfuMason(System):
    name = "corfumason"
    title = "CorfuMason"
    description = ("Corfu with clients going through Mason's proxies for scale and "
                   "contiguity.")
    largest = Counts(2, 72, 24, 8)
    machine_counts = {**GROUP_MACHINES, "server": "ncorfu_servers"}
    start_order = ("sequencer", "logserver", "proxy", "client")
    fields = GROUP_FIELDS | LOG_FIELDS | {"read_policy", "kill_leader_mid_batch"}
    why_not = {"nsequence_spaces": "CorfuMason orders one log (one space)"}
    local_defaults = {"nproxies": 3, "nproxy_threads": 1, "ncorfu_servers": 2,
                      "corfu_replication_factor": 2, "corfu_units": 1}
    # The original launcher's corfumason defaults: 6 triples (48 groups), 6 client machines.
    testbed_base = {**TESTBED_BASE, "nproxies": 18, "nclients": 6, "client_concurrency": 16,
                    "max_log_size": 500_000, "corfu_units": 4}
    fault_events = ("kill_leader", "kill_sequencer", "kill_backup", "kill_follower",
                    "kill_all_leaders", "kill_logserver", "kill_leader_mid_batch",
                    "kill_leader_machine")

    def check_fields(self, spec: ExperimentSpec) -> ExperimentSpec:
        if spec.kill_all_leaders >= 0 and spec.kill_leader >= 0:
            raise SpecError("--kill_all_leaders cannot be combined with --kill_leader")
        if spec.read_policy not in READ_POLICIES:
            raise SpecError(f"--read_policy must be one of {', '.join(READ_POLICIES)}, not "
                            f"{spec.read_policy!r}")
        return check_log(check_groups(spec, self.fault_events))

    def testbed_defaults(self, counts: Mapping[str, int]) -> dict[str, object]:
        # The launcher's 18 proxy machines, not every one listed; a backup sequencer
        # when there is a second sequencer machine, as for mason.
        return {**group_testbed_defaults(self.testbed_base, counts),
                "nproxies": self.testbed_base["nproxies"]}

    def place(self, spec: ExperimentSpec,
              machines: list[placement.MachineSlot]) -> placement.Placement:
        slots = placement.by_role(machines)
        ports = placement.Ports(spec.base_port)
        log = placement.place_log(spec, slots, ports)
        placed = placement.place_groups(
            spec, slots, ports,
            proxy_extra={"service": "corfumason", "log": log.chains,
                         "read_policy": spec.read_policy},
            client_extra={"workload": placement.workload(spec)},
        )
        placed.procs.extend(log.procs)
        placed.log = log.layout
        return placed

    def wait_ready(self, run: Experiment) -> None:
        run.wait_for_leaders()

    def check(self, run_dir: Path) -> list[checks.Check]:
        return log_checks(run_dir)

    def describe(self, spec: ExperimentSpec) -> str:
        return f"{spec.ngroups} group(s) of 3, {log_text(spec)}"

    def workload(self, spec: ExperimentSpec) -> str:
        return workload_text(spec)


SYSTEM = CorfuMason()
