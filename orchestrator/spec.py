"""ExperimentSpec: everything that defines one run, validated, and written with its results.

Two sets of defaults: the original launcher's for a testbed (8 proxy threads, 16 client
threads, 60 s) and smaller ones for the embedded local run, where every process shares
this machine's cores. Either way `experiment.toml` in the results records the values used.
"""

from __future__ import annotations

import msgspec

SYSTEMS = ("mason", "corfu", "corfumason", "rsmkeeper", "zkmason")
SYSTEM_ALIASES = {"master": "mason", "zk-mason": "zkmason"}


class SpecError(ValueError):
    """An experiment that cannot run as specified; the message is one line."""


class ExperimentSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    system: str = "mason"
    nsequencers: int = 1
    nproxies: int = 3  # proxy machines, a multiple of 3 (one triple hosts nproxy_threads groups)
    nproxy_threads: int = 1  # groups per triple = proxy processes per proxy machine
    nproxy_leaders: int = 0  # total groups; 0 = derive it (it must equal the derived value)
    nclients: int = 1  # client machines, assigned to triples round-robin
    nclient_threads: int = 2  # client processes per client machine
    client_concurrency: int = 32
    nsequence_spaces: int = 1
    expduration: float = 10.0
    warmup: float = 2.0
    cooldown: float = 1.0
    batch_timeout: int = 200  # microseconds, counted from a batch's first operation
    batch_max_ops: int = 1024
    max_log_size: int = 50_000
    election_timeout_ms: int = 300
    raft_tick_ms: int = 10
    client_timeout_ms: int = 500
    kill_leader: float = -1.0  # seconds after warm-up; -1 = never
    kill_sequencer: float = -1.0
    record_seqnums: bool = False
    record_noops: bool = False
    base_port: int = 31850
    python: str = ""  # interpreter on the nodes; "" = the controller's own (local runs)

    @property
    def ngroups(self) -> int:
        return (self.nproxies // 3) * self.nproxy_threads

    @property
    def ntriples(self) -> int:
        return self.nproxies // 3


LOCAL_DEFAULTS: dict[str, object] = {}
TESTBED_DEFAULTS: dict[str, object] = {
    "nproxy_threads": 8,
    "nclient_threads": 16,
    "client_concurrency": 32,
    "expduration": 60.0,
    "warmup": 4.0,
    "cooldown": 4.0,
    "batch_timeout": 20,
    "election_timeout_ms": 1000,
    "client_timeout_ms": 1000,
    "max_log_size": 500_000,
}


def normalise_system(system: str) -> str:
    name = SYSTEM_ALIASES.get(system, system)
    if name not in SYSTEMS:
        raise SpecError(f"unknown system {system!r}; choose one of {', '.join(SYSTEMS)}")
    return name


def validate(spec: ExperimentSpec) -> ExperimentSpec:
    """Check the spec and fill derived values; raises SpecError naming the bad flag."""
    system = normalise_system(spec.system)
    if system != "mason":
        raise SpecError(f"system {system!r} is not available yet; this build runs 'mason'")
    if spec.nproxies < 3 or spec.nproxies % 3:
        raise SpecError(f"--nproxies must be a positive multiple of 3, not {spec.nproxies}")
    positive = {
        "--nproxy_threads": spec.nproxy_threads,
        "--nclients": spec.nclients,
        "--nclient_threads": spec.nclient_threads,
        "--client_concurrency": spec.client_concurrency,
        "--nsequence_spaces": spec.nsequence_spaces,
        "--batch_max_ops": spec.batch_max_ops,
        "--max_log_size": spec.max_log_size,
        "--raft_tick_ms": spec.raft_tick_ms,
    }
    for flag, value in positive.items():
        if value <= 0:
            raise SpecError(f"{flag} must be positive, not {value}")
    if spec.expduration <= 0:
        raise SpecError(f"--expduration must be positive, not {spec.expduration}")
    if spec.warmup < 0 or spec.cooldown < 0:
        raise SpecError("--warmup and --cooldown cannot be negative")
    if spec.batch_timeout < 0:
        raise SpecError(f"--batch_timeout must be >= 0 microseconds, not {spec.batch_timeout}")
    if spec.election_timeout_ms < 2 * spec.raft_tick_ms:
        raise SpecError("--election_timeout_ms must be at least two Raft ticks")
    if spec.nproxy_leaders not in (0, spec.ngroups):
        raise SpecError(
            f"--nproxy_leaders {spec.nproxy_leaders} does not match the groups the other flags "
            f"make: nproxy_threads {spec.nproxy_threads} x nproxies {spec.nproxies} / 3 = "
            f"{spec.ngroups} (leave it out to derive it)"
        )
    for flag, value in (("--kill_leader", spec.kill_leader),
                        ("--kill_sequencer", spec.kill_sequencer)):
        if value >= 0 and value >= spec.expduration:
            raise SpecError(f"{flag} {value} falls after the {spec.expduration} s measured window")
    nsequencers = spec.nsequencers
    if spec.kill_sequencer >= 0 and nsequencers < 2:
        nsequencers = 2
    if not 1 <= nsequencers <= 2:
        raise SpecError(f"--nsequencers must be 1 or 2, not {nsequencers}")
    if not 1024 <= spec.base_port <= 65000:
        raise SpecError(f"--base_port {spec.base_port} is outside 1024..65000")
    return msgspec.structs.replace(
        spec, system=system, nproxy_leaders=spec.ngroups, nsequencers=nsequencers
    )


def to_toml(spec: ExperimentSpec, extra: dict[str, object] | None = None) -> str:
    """experiment.toml: the spec plus provenance, enough to rerun the experiment."""
    import msgspec.toml

    doc: dict[str, object] = {"experiment": msgspec.to_builtins(spec)}
    if extra:
        doc["run"] = extra
    return msgspec.toml.encode(doc).decode()


def from_toml(text: str) -> ExperimentSpec:
    import msgspec.toml

    try:
        doc = msgspec.toml.decode(text)
        return msgspec.convert(doc["experiment"], ExperimentSpec)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
        raise SpecError(f"experiment.toml: {exc}") from None
