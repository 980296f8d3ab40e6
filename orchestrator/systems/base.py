"""What a system is to the orchestrator, and the vocabulary every system shares.

- `MACHINE_ROLES`: the machine name prefixes (`proxy-3` is a proxy machine), in the order
  profiles list them; `PROCESS_KINDS`: the node processes, each with its module, config
  Struct (the config is validated with it before shipping) and the machines it runs on.
- `System`: one object per system (orchestrator/systems/<name>.py), saying its profile
  counts, machine roles, start order, which ExperimentSpec fields apply, its defaults,
  validation, placement, readiness, fault targets and checker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from nodes import config as node_config
from nodes.wire import MAX_BATCH_OPS
from orchestrator.spec import ExperimentSpec, SpecError, field_defaults

if TYPE_CHECKING:
    from orchestrator.experiment import Experiment
    from orchestrator.placement import MachineSlot, Placement
    from orchestrator.systems.checks import Check

MACHINE_ROLES = ("sequencer", "proxy", "client", "server")


@dataclass(frozen=True)
class ProcessKind:
    name: str  # the template orchestrator/roles/<name>.toml.j2
    module: str  # started as `python -m <module> --config FILE`
    config: type[node_config.Common]  # what the rendered config must validate as
    machine_role: str  # the machines it runs on
    client: bool = False  # runs the workload: started last; the run ends when all exit


PROCESS_KINDS: dict[str, ProcessKind] = {k.name: k for k in (
    ProcessKind("sequencer", "nodes.sequencer", node_config.SequencerConfig, "sequencer"),
    ProcessKind("proxy", "nodes.proxy", node_config.ProxyConfig, "proxy"),
    ProcessKind("logserver", "nodes.logserver", node_config.LogServerConfig, "server"),
    ProcessKind("zkshard", "nodes.zkshard", node_config.ZkShardConfig, "server"),
    ProcessKind("client", "nodes.client", node_config.ClientConfig, "client", client=True),
    ProcessKind("corfuclient", "nodes.corfuclient", node_config.CorfuClientConfig, "client",
                client=True),
    ProcessKind("zkclient", "nodes.zkclient", node_config.ZkClientConfig, "client",
                client=True),
)}

COUNT_FIELD = {"sequencer": "nsequencers", "proxy": "nproxies", "client": "nclients",
               "server": "nservers"}


class Counts(msgspec.Struct, frozen=True):
    """Machines per role of a testbed profile."""

    nsequencers: int
    nproxies: int
    nclients: int
    nservers: int

    @property
    def total(self) -> int:
        return self.nsequencers + self.nproxies + self.nclients + self.nservers

    def of(self, role: str) -> int:
        return int(getattr(self, COUNT_FIELD[role]))


# ExperimentSpec fields every system uses: the run's name and shape of the client load.
COMMON_FIELDS = frozenset({
    "name", "system", "nclients", "nclient_threads", "client_concurrency", "expduration",
    "warmup", "cooldown", "client_timeout_ms", "record_seqnums", "base_port", "python",
})


class System:
    """One system as the orchestrator sees it; subclasses set the attributes and override
    what differs. Each orchestrator/systems/<name>.py defines one instance, SYSTEM."""

    name = ""
    title = ""
    description = ""
    largest = Counts(0, 0, 0, 0)  # the README's largest configuration: the profile default
    # Machine role -> the spec field saying how many machines of it a run uses.
    machine_counts: Mapping[str, str] = {}
    start_order: tuple[str, ...] = ()  # process kinds; clients last
    # Process kinds stopped (and waited for) before the rest, in this order: a system whose
    # servers finish owed work on SIGTERM needs the servers that work reaches still up.
    stop_first: tuple[str, ...] = ()
    fields: frozenset[str] = frozenset()  # spec fields beyond COMMON_FIELDS that apply
    # Fields that do not apply but that validation sets (corfu: nproxies 0), and why a
    # field does not apply when that needs saying.
    fixed: Mapping[str, object] = {}
    why_not: Mapping[str, str] = {}
    local_defaults: Mapping[str, object] = {}  # a run on this machine
    testbed_base: Mapping[str, object] = {}  # the original launcher's defaults
    fault_events: tuple[str, ...] = ()  # kill_* fields it supports, in schedule order

    @property
    def machine_roles(self) -> tuple[str, ...]:
        return tuple(r for r in MACHINE_ROLES if r in self.machine_counts)

    def applies(self, name: str) -> bool:
        return name in COMMON_FIELDS or name in self.fields

    # ---- the spec ----------------------------------------------------------------------

    def fill_given(self, values: Mapping[str, object]) -> dict[str, object]:
        """The flags given (before typing and defaults), with those that follow from the
        others when left out (zkmason: the sequence spaces from its shard servers)."""
        return dict(values)

    def validate(self, spec: ExperimentSpec) -> ExperimentSpec:
        """Check the spec and fill derived values; raises SpecError naming the bad flag."""
        return self.check_fields(self.only_applicable(spec))

    def only_applicable(self, spec: ExperimentSpec) -> ExperimentSpec:
        """Refuse a flag of another system given a value; set this system's fixed ones."""
        defaults = field_defaults()
        for name in ExperimentSpec.__struct_fields__:
            if self.applies(name):
                continue
            value = getattr(spec, name)
            if value in (defaults[name], self.fixed.get(name, defaults[name])):
                continue
            why = self.why_not.get(name)
            raise SpecError(f"--{name} does not apply to --system {self.name}"
                            + (f": {why}" if why else ""))
        return msgspec.structs.replace(spec, system=self.name, **self.fixed)

    def check_fields(self, spec: ExperimentSpec) -> ExperimentSpec:
        raise SpecError(f"system {self.name!r} is not available yet")

    def testbed_defaults(self, counts: Mapping[str, int]) -> dict[str, object]:
        """The launcher's defaults fitted to the machines listed (role -> count)."""
        return dict(self.testbed_base)

    def machines_needed(self, spec: ExperimentSpec) -> dict[str, int]:
        return {role: int(getattr(spec, self.machine_counts[role]))
                for role in self.machine_roles}

    # ---- the run -----------------------------------------------------------------------

    def place(self, spec: ExperimentSpec, machines: list[MachineSlot]) -> Placement:
        raise SpecError(f"system {self.name!r} is not available yet")

    def wait_ready(self, run: Experiment) -> None:
        """Block until the servers can take clients (every start already waited for each
        process's ready marker); raises RunFailed."""

    def check(self, run_dir: Path) -> list[Check]:
        """The verdicts over a finished run's records."""
        return []

    def connect_string(self, placed: Placement) -> str:
        """Where clients of its own reach a served cluster (`masonctl serve`); "" for a
        system that cannot be served that way."""
        return ""

    def serve_notes(self, placed: Placement) -> list[str]:
        """Lines `masonctl serve` prints before the connect string (zkmason: every group's,
        when there are several)."""
        return []

    def describe(self, spec: ExperimentSpec) -> str:
        """The servers of a run, for its first line ("4 group(s) of 3")."""
        return ""

    def workload(self, spec: ExperimentSpec) -> str:
        """What the clients ask for ("2 space(s)", "appends of 64 B")."""
        return ""


class NotYetAvailable(System):
    """A system with its profile but no nodes yet: every run is refused in one line."""

    def validate(self, spec: ExperimentSpec) -> ExperimentSpec:
        raise SpecError(f"system {self.name!r} is not available yet")


# ---- checks shared by the systems' validation ---------------------------------------------


def check_positive(flags: Mapping[str, int]) -> None:
    for flag, value in flags.items():
        if value <= 0:
            raise SpecError(f"{flag} must be positive, not {value}")


def check_batch_max_ops(value: int) -> None:
    """A batch's numbers must fit one sequencer request (nodes/wire.py MAX_BATCH_OPS)."""
    if not 1 <= value <= MAX_BATCH_OPS:
        raise SpecError(f"--batch_max_ops must be 1 to {MAX_BATCH_OPS}, not {value}")


def check_window(spec: ExperimentSpec) -> None:
    if spec.expduration <= 0:
        raise SpecError(f"--expduration must be positive, not {spec.expduration}")
    if spec.warmup < 0 or spec.cooldown < 0:
        raise SpecError("--warmup and --cooldown cannot be negative")


def check_fault_times(spec: ExperimentSpec, events: tuple[str, ...]) -> None:
    for event in events:
        at = float(getattr(spec, event))
        if at >= 0 and at >= spec.expduration:
            raise SpecError(f"--{event} {at} falls after the {spec.expduration} s measured "
                            "window")


def check_base_port(spec: ExperimentSpec) -> None:
    if not 1024 <= spec.base_port <= 65000:
        raise SpecError(f"--base_port {spec.base_port} is outside 1024..65000")
