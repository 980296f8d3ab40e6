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
    heartbeat_ms: int = 100  # proxy -> sequencer liveness period
    heartbeat_misses: int = 3  # silent periods before the backup is asked to take over
    gc_interval_ms: int = 0  # bitmap garbage-collection period; 0 = derive from the run
    bitmap_block: int = 0  # numbers per bitmap block; 0 = derive from the expected rate
    kill_leader: float = -1.0  # seconds after warm-up; -1 = never
    kill_sequencer: float = -1.0
    kill_backup: float = -1.0  # kill -9 the first backup (after it took over): the next one serves
    kill_follower: float = -1.0  # kill -9 a follower of group 0
    kill_leader_mid_batch: float = -1.0  # group 0's leader dies between an answer and its log
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
    "heartbeat_ms": 500,
    "max_log_size": 500_000,
}


def build(name: str, system: str, values: dict[str, object]) -> ExperimentSpec:
    """A validated spec from flag values (typed by msgspec, so a wrong type is a SpecError)."""
    try:
        spec = msgspec.convert({"name": name, "system": system, **values}, ExperimentSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(str(exc)) from None
    return validate(spec)


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
    for flag, at in (("--kill_leader", spec.kill_leader),
                        ("--kill_sequencer", spec.kill_sequencer),
                        ("--kill_backup", spec.kill_backup),
                        ("--kill_follower", spec.kill_follower),
                        ("--kill_leader_mid_batch", spec.kill_leader_mid_batch)):
        if at >= 0 and at >= spec.expduration:
            raise SpecError(f"{flag} {at} falls after the {spec.expduration} s measured window")
    nsequencers = spec.nsequencers
    if spec.kill_sequencer >= 0 and nsequencers < 2:
        nsequencers = 2
    if spec.kill_backup >= 0:
        if spec.kill_sequencer < 0 or spec.kill_backup <= spec.kill_sequencer:
            raise SpecError("--kill_backup needs an earlier --kill_sequencer (the backup "
                            "serves only after the sequencer died)")
        nsequencers = max(nsequencers, 3)
    if not 1 <= nsequencers <= 8:
        raise SpecError(f"--nsequencers must be between 1 and 8, not {nsequencers}")
    if not 1024 <= spec.base_port <= 65000:
        raise SpecError(f"--base_port {spec.base_port} is outside 1024..65000")
    spec = msgspec.structs.replace(
        spec, system=system, nproxy_leaders=spec.ngroups, nsequencers=nsequencers
    )
    return derive_gc(spec)


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
