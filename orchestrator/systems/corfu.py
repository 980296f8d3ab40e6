"""Corfu (the original's corfu branch): clients take a position from the sequencer, then
write the entry down its chain of log servers themselves (head to tail); reads go to a
chain's tail. No proxies, no sequencer failover."""

from __future__ import annotations

from pathlib import Path

import msgspec

from orchestrator import placement
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.systems import checks
from orchestrator.systems.base import (
    Counts,
    System,
    check_base_port,
    check_fault_times,
    check_positive,
    check_window,
)

# The shared log and its workload: what corfu and corfumason share.
LOG_FIELDS = frozenset({
    "ncorfu_servers", "corfu_replication_factor", "corfu_units", "appends", "reads",
    "max_log_position", "entry_size", "kill_logserver",
})
# --reads without --max_log_position: positions [0, this) are written before the run.
DEFAULT_READ_POSITIONS = 100_000


def check_log(spec: ExperimentSpec) -> ExperimentSpec:
    """The log's layout and the workload; settles which workload runs (appends unless
    --reads or a read range is given, as the original chose by --max_log_position)."""
    servers, replication = spec.ncorfu_servers, spec.corfu_replication_factor
    check_positive({"--ncorfu_servers": servers, "--corfu_units": spec.corfu_units})
    if replication not in (1, 2, 3):
        raise SpecError(f"--corfu_replication_factor must be 1, 2 or 3, not {replication}")
    if servers % replication:
        raise SpecError(f"--ncorfu_servers {servers} is not a multiple of "
                        f"--corfu_replication_factor {replication} (each chain's replicas "
                        "are on that many server machines)")
    if spec.appends and spec.reads:
        raise SpecError("--appends and --reads cannot be combined: a run appends or reads")
    if spec.max_log_position < 0:
        raise SpecError(f"--max_log_position must be 0 or more, not {spec.max_log_position}")
    if spec.appends and spec.max_log_position:
        raise SpecError("--max_log_position is the range --reads reads from; it does not go "
                        "with --appends")
    if not 1 <= spec.entry_size <= placement.MAX_ENTRY_BYTES:
        raise SpecError(f"--entry_size must be between 1 and {placement.MAX_ENTRY_BYTES} "
                        f"bytes, not {spec.entry_size}")
    if spec.kill_logserver >= 0 and replication < 2:
        raise SpecError("--kill_logserver needs --corfu_replication_factor 2 or 3: with one "
                        "replica a chain dies with its log server")
    reads = spec.reads or spec.max_log_position > 0
    positions = spec.max_log_position or (DEFAULT_READ_POSITIONS if reads else 0)
    nchains = servers * spec.corfu_units // replication
    if -(-positions // nchains) > placement.LOG_CAPACITY:
        raise SpecError(f"--max_log_position {positions} does not fit in {nchains} chain(s) "
                        f"of {placement.LOG_CAPACITY} positions")
    return msgspec.structs.replace(spec, appends=not reads, reads=reads,
                                   max_log_position=positions)


def log_text(spec: ExperimentSpec) -> str:
    nchains = spec.ncorfu_servers * spec.corfu_units // spec.corfu_replication_factor
    return (f"{spec.ncorfu_servers} log server(s) x {spec.corfu_units} process(es), "
            f"{nchains} chain(s) of {spec.corfu_replication_factor}")


def workload_text(spec: ExperimentSpec) -> str:
    if spec.reads:
        return f"reads of [0, {spec.max_log_position})"
    return f"appends of {spec.entry_size} B"


def log_checks(run_dir: Path) -> list[checks.Check]:
    """Positions handed out are contiguous (the clients' and proxies' records, as mason's
    numbers), and the log holds what was acknowledged."""
    return [checks.contiguity(run_dir), checks.shared_log(run_dir)]


class Corfu(System):
    name = "corfu"
    title = "Corfu over the sequencer"
    description = "Clients take sequence numbers and talk to the Corfu servers directly."
    largest = Counts(2, 0, 16, 8)
    machine_counts = {"sequencer": "nsequencers", "client": "nclients",
                      "server": "ncorfu_servers"}
    start_order = ("sequencer", "logserver", "corfuclient")
    fields = LOG_FIELDS
    fixed = {"nsequencers": 1, "nproxies": 0, "nproxy_leaders": 0}
    why_not = {
        "nproxies": "plain Corfu has no proxies; clients talk to the sequencer and the log "
                    "servers directly",
        "kill_leader": "plain Corfu has no proxy groups, so no leader to kill",
        "kill_sequencer": "Corfu has no sequencer failover",
        "nsequencers": "Corfu has no sequencer failover",
    }
    local_defaults = {"ncorfu_servers": 2, "corfu_replication_factor": 2, "corfu_units": 1,
                      "nclients": 1, "nclient_threads": 2, "client_concurrency": 8}
    testbed_base = {"nclients": 4, "nclient_threads": 16, "client_concurrency": 8,
                    "expduration": 60.0, "warmup": 4.0, "cooldown": 4.0,
                    "client_timeout_ms": 1000, "corfu_units": 4}
    fault_events = ("kill_logserver",)

    def check_fields(self, spec: ExperimentSpec) -> ExperimentSpec:
        check_positive({
            "--nclients": spec.nclients,
            "--nclient_threads": spec.nclient_threads,
            "--client_concurrency": spec.client_concurrency,
        })
        check_window(spec)
        check_fault_times(spec, self.fault_events)
        check_base_port(spec)
        return check_log(spec)

    def place(self, spec: ExperimentSpec,
              machines: list[placement.MachineSlot]) -> placement.Placement:
        slots = placement.by_role(machines)
        sequencers = placement.need(slots, "sequencer", 1)
        clients = placement.need(slots, "client", spec.nclients)
        ports = placement.Ports(spec.base_port)
        sequencer = ports.endpoint(sequencers[0].address)
        log = placement.place_log(spec, slots, ports)
        procs = placement.sequencer_procs(sequencers, [sequencer], {}, {"nspaces": 1})
        procs += log.procs
        procs += placement.corfu_client_procs(spec, clients, sequencer, log.chains)
        return placement.Placement(procs, log.layout)

    def check(self, run_dir: Path) -> list[checks.Check]:
        return log_checks(run_dir)

    def describe(self, spec: ExperimentSpec) -> str:
        return log_text(spec)

    def workload(self, spec: ExperimentSpec) -> str:
        return workload_text(spec)


SYSTEM = Corfu()
