"""Mason (the original's master branch): clients ask Raft-replicated proxy groups for
numbers in N sequence spaces; the groups batch them to the sequencer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from orchestrator import fault_plan, placement
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

if TYPE_CHECKING:
    from orchestrator.experiment import Experiment

# The nemesis's flags (orchestrator/fault_plan.py): pauses, partitions, latency, schedules.
NEMESIS_FIELDS = frozenset({*fault_plan.FLAG_EVENTS, *set(fault_plan.FLAG_EVENTS.values()),
                            "latency_ms", "faults"})
# Sequencers, proxy groups and their clients: what mason and corfumason share.
GROUP_FIELDS = frozenset({
    "nsequencers", "nproxies", "nproxy_threads", "nproxy_leaders", "batch_timeout",
    "batch_max_ops", "max_log_size", "election_timeout_ms", "raft_tick_ms", "heartbeat_ms",
    "heartbeat_misses", "gc_interval_ms", "bitmap_block", "record_noops", "kill_leader",
    "kill_sequencer", "kill_backup", "kill_follower", "kill_leader_machine", "kill_all_leaders",
    "restart_after", "durable",
}) | NEMESIS_FIELDS
DURABLE_MODES = ("always", "batch", "off")
GROUP_MACHINES = {"sequencer": "nsequencers", "proxy": "nproxies", "client": "nclients"}

# The original launcher's defaults, for a testbed.
TESTBED_BASE: dict[str, object] = {
    "nproxy_threads": 8,
    "nclient_threads": 16,
    "client_concurrency": 32,
    "expduration": 60.0,
    "warmup": 4.0,
    "cooldown": 4.0,
    "batch_timeout": 20,
    "election_timeout_ms": 1000,
    "client_timeout_ms": 1000,
    "heartbeat_ms": 500,
    "max_log_size": 500_000,
}


def check_groups(spec: ExperimentSpec, events: tuple[str, ...],
                 served: bool = False) -> ExperimentSpec:
    """Proxy groups, the sequencer chain and the client load; derives the group count,
    the sequencers a fault schedule needs and the bitmap/GC settings. `served`: clients
    of the user's own (`masonctl serve`), so no load generators (--nclients 0)."""
    if spec.nproxies < 3 or spec.nproxies % 3:
        raise SpecError(f"--nproxies must be a positive multiple of 3, not {spec.nproxies}")
    check_positive({
        "--nproxy_threads": spec.nproxy_threads,
        **({} if served else {"--nclients": spec.nclients}),
        "--nclient_threads": spec.nclient_threads,
        "--client_concurrency": spec.client_concurrency,
        "--nsequence_spaces": spec.nsequence_spaces,
        "--max_log_size": spec.max_log_size,
        "--raft_tick_ms": spec.raft_tick_ms,
    })
    check_window(spec)
    check_batch_max_ops(spec.batch_max_ops)
    if spec.batch_timeout < 0:
        raise SpecError(f"--batch_timeout must be >= 0 microseconds, not {spec.batch_timeout}")
    if spec.heartbeat_ms <= 0 or spec.heartbeat_misses <= 0:
        raise SpecError("--heartbeat_ms and --heartbeat_misses must be positive")
    if spec.bitmap_block < 0 or spec.bitmap_block % 8:
        raise SpecError(f"--bitmap_block must be a multiple of 8, not {spec.bitmap_block}")
    if spec.election_timeout_ms < 2 * spec.raft_tick_ms:
        raise SpecError("--election_timeout_ms must be at least two Raft ticks")
    if spec.nproxy_leaders not in (0, spec.ngroups):
        raise SpecError(
            f"--nproxy_leaders {spec.nproxy_leaders} does not match the groups the other flags "
            f"make: nproxy_threads {spec.nproxy_threads} x nproxies {spec.nproxies} / 3 = "
            f"{spec.ngroups} (leave it out to derive it)"
        )
    check_fault_times(spec, events)
    check_durability(spec)
    nsequencers = fault_plan.validate(spec, kill_flag_standbys(spec))
    if not 1 <= nsequencers <= 8:
        raise SpecError(f"--nsequencers must be between 1 and 8, not {nsequencers}")
    check_base_port(spec)
    spec = msgspec.structs.replace(spec, nproxy_leaders=spec.ngroups, nsequencers=nsequencers)
    return derive_gc(spec)


def kill_flag_standbys(spec: ExperimentSpec) -> int:
    """The standbys --kill_sequencer and --kill_backup spend: one each, except that a
    sequencer restarted (--restart_after) before the backup dies is the next standby."""
    if spec.kill_backup >= 0:
        if spec.kill_sequencer < 0 or spec.kill_backup <= spec.kill_sequencer:
            raise SpecError("--kill_backup needs an earlier --kill_sequencer (the backup "
                            "serves only after the sequencer died)")
        restarted_first = 0 <= spec.restart_after < spec.kill_backup - spec.kill_sequencer
        return 1 if restarted_first else 2
    return 1 if spec.kill_sequencer >= 0 else 0


def check_durability(spec: ExperimentSpec) -> None:
    """--durable and --restart_after, for every system whose replicas keep Raft state."""
    if spec.durable not in DURABLE_MODES:
        raise SpecError(f"--durable must be one of {', '.join(DURABLE_MODES)}, not "
                        f"{spec.durable!r}")
    if spec.restart_after != -1.0 and spec.restart_after < 0:
        raise SpecError(f"--restart_after must be >= 0 seconds, not {spec.restart_after}")


def derive_gc(spec: ExperimentSpec) -> ExperimentSpec:
    """Bitmap block size and GC period from the experiment, not from a rebuild.

    The ring truncates at most one block per space per round, and a round visits every
    group leader, so a block must hold at least a few rounds' worth of numbers or the
    bitmaps grow faster than they are collected. The expected rate is the offered load:
    every outstanding operation completes about once per (assumed) 200 us round trip.
    """
    interval = spec.gc_interval_ms or 10 * max(1, spec.raft_tick_ms // 2)
    block = spec.bitmap_block
    if not block:
        outstanding = spec.nclients * spec.nclient_threads * spec.client_concurrency
        rate = outstanding / 200e-6  # numbers per second per space, upper estimate
        round_s = max(interval / 1000, spec.ngroups * 0.5e-3)
        want = max(8192, int(4 * rate * round_s))
        block = min(1 << 24, 1 << (want - 1).bit_length())
    return msgspec.structs.replace(spec, gc_interval_ms=interval, bitmap_block=block)


def group_testbed_defaults(base: Mapping[str, object],
                           counts: Mapping[str, int]) -> dict[str, object]:
    """As the original launcher: every proxy machine (in whole triples), a backup
    sequencer when there is a second sequencer machine."""
    return {
        **base,
        "nproxies": max(3, counts.get("proxy", 0) // 3 * 3),
        "nsequencers": min(2, max(1, counts.get("sequencer", 0))),
    }


class Mason(System):
    name = "mason"
    title = "multi-sequencing (master)"
    description = ("Clients ask proxies for multi-sequence numbers; proxies are Raft "
                   "triples.")
    largest = Counts(2, 48, 16, 0)
    machine_counts = GROUP_MACHINES
    start_order = ("sequencer", "proxy", "client")
    fields = GROUP_FIELDS | {"nsequence_spaces", "kill_leader_mid_batch"}
    testbed_base = TESTBED_BASE
    fault_events = ("kill_leader", "kill_sequencer", "kill_backup", "kill_follower",
                    "kill_leader_mid_batch", "kill_leader_machine", "kill_all_leaders")

    def check_fields(self, spec: ExperimentSpec) -> ExperimentSpec:
        return check_groups(spec, self.fault_events)

    def testbed_defaults(self, counts: Mapping[str, int]) -> dict[str, object]:
        return group_testbed_defaults(self.testbed_base, counts)

    def place(self, spec: ExperimentSpec,
              machines: list[placement.MachineSlot]) -> placement.Placement:
        return placement.place_groups(spec, placement.by_role(machines),
                                      placement.Ports(spec.base_port))

    def wait_ready(self, run: Experiment) -> None:
        run.wait_for_leaders()

    def check(self, run_dir: Path) -> list[checks.Check]:
        return [checks.contiguity(run_dir)]

    def describe(self, spec: ExperimentSpec) -> str:
        return f"{spec.ngroups} group(s) of 3"

    def workload(self, spec: ExperimentSpec) -> str:
        return f"{spec.nsequence_spaces} space(s)"


SYSTEM = Mason()
