"""ExperimentSpec: everything that defines one run, validated, and written with its results.

One Struct for every system; which fields apply to a system, its two sets of defaults (the
original launcher's for a testbed, smaller ones for the embedded local run, where every
process shares this machine's cores) and its validation live with the system, in
orchestrator/systems/. Either way `experiment.toml` in the results records the values used.
"""

from __future__ import annotations

from pathlib import Path

import msgspec


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
    # The shared log of the Corfu systems (corfu, corfumason): nodes/logserver/layout.py.
    ncorfu_servers: int = 2  # S: server machines holding the log
    corfu_replication_factor: int = 2  # R: replicas per chain; S must be a multiple of R
    corfu_units: int = 1  # log-server processes per server machine (the original's threads)
    appends: bool = False  # the append workload (the default when neither is given)
    reads: bool = False  # the read workload: positions drawn from [0, max_log_position)
    max_log_position: int = 0  # reads: positions written before the run; > 0 alone = reads
    entry_size: int = 64  # bytes per appended entry
    read_policy: str = "any"  # corfumason reads: "any" replica or only the "leader" serves
    kill_logserver: float = -1.0  # kill -9 the head of chain 0 (needs replication >= 2)
    kill_all_leaders: float = -1.0  # kill -9 the leader of every group
    # The nemesis (orchestrator/fault_plan.py, nemesis.py): seconds after warm-up, -1 = never.
    pause_leader: float = -1.0  # SIGSTOP group 0's leader for pause_for seconds
    pause_follower: float = -1.0
    pause_sequencer: float = -1.0  # the serving sequencer: a standby takes over
    pause_for: float = 2.0
    partition_leader: float = -1.0  # group 0's leader cut from its followers for heal_after s
    partition_oneway: float = -1.0  # group 0's leader hears nothing from its followers
    partition_sequencer: float = -1.0  # group 0's machines cut from every sequencer
    latency_leader: float = -1.0  # latency_ms more delay on group 0's leader machine
    latency_ms: int = 50
    heal_after: float = 2.0
    faults: str = ""  # a schedule file (TOML) or seed:N / seed:N:net
    # ZooKeeper workloads (rsmkeeper, zkmason; orchestrator/zkworkload.py): the original's
    # operation shares, as percentages summing to 100 or its fractions summing to 1 (all 0:
    # 100 % setData), or one of its two experiments; values and keys per client process.
    create_percent: float = 0.0
    rename_percent: float = 0.0
    write_percent: float = 0.0
    read_percent: float = 0.0
    delete_percent: float = 0.0
    exists_percent: float = 0.0
    get_children_percent: float = 0.0
    setdatas: bool = False  # --setDatas: 100 % setData
    getdatas: bool = False  # --getDatas: 100 % getData
    value_size: int = 8
    nkeys: int = 128
    client_connections: int = 1  # ZooKeeper sessions per client process
    restart_after: float = -1.0  # start every killed process again this many s later; -1 = never
    durable: str = "off"  # proxies' Raft file: fsync "always", "batch" (every few ms) or "off"
    # rsmkeeper: reads served by the replica a client is connected to (sequentially
    # consistent) instead of through the log (linearizable); ZooKeeper's tickTime.
    zk_local_reads: bool = False
    zk_tick_ms: int = 2000
    # zkmason: shard replicas on `server-*` machines, consecutive triples of them one shard
    # (shard k ordered by space k); 0 = 3 per sequence space. The replication factor is
    # the original's recorded-only flag: 3 is the one this code base runs.
    nzk_servers: int = 0
    zk_replication_factor: int = 3
    kill_zk_server: float = -1.0  # kill -9 a replica of shard 0

    @property
    def ngroups(self) -> int:
        return (self.nproxies // 3) * self.nproxy_threads

    @property
    def ntriples(self) -> int:
        return self.nproxies // 3


def build(name: str, system: str, values: dict[str, object]) -> ExperimentSpec:
    """A validated spec from flag values (typed by msgspec, so a wrong type is a SpecError)."""
    from orchestrator import systems

    values = systems.get(system).fill_given(values)
    try:
        spec = msgspec.convert({"name": name, "system": system, **values}, ExperimentSpec)
    except msgspec.ValidationError as exc:
        raise SpecError(str(exc)) from None
    return validate(spec)


def validate(spec: ExperimentSpec) -> ExperimentSpec:
    """Check the spec and fill derived values, as its system says (orchestrator/systems/);
    raises SpecError naming the bad flag."""
    from orchestrator import systems

    return systems.get(spec.system).validate(spec)


def field_defaults() -> dict[str, object]:
    """Every field's default (name and system have none that matters)."""
    return {f.name: f.default for f in msgspec.structs.fields(ExperimentSpec)}


def to_toml(spec: ExperimentSpec, extra: dict[str, object] | None = None,
            tables: dict[str, object] | None = None) -> str:
    """experiment.toml: the spec (the fields its system uses) plus provenance, enough to
    rerun the experiment, and any further tables of the run (how it was pinned)."""
    import msgspec.toml

    from orchestrator import systems

    system = systems.get(spec.system)
    doc: dict[str, object] = {"experiment": {
        k: v for k, v in msgspec.to_builtins(spec).items() if system.applies(k)}}
    if extra:
        doc["run"] = extra
    doc.update(tables or {})
    return msgspec.toml.encode(doc).decode()


def recorded_system(path: Path) -> str:
    """The system a run's experiment.toml names (older records may hold other fields)."""
    import msgspec.toml

    try:
        system = msgspec.toml.decode(path.read_bytes())["experiment"]["system"]
    except (OSError, msgspec.DecodeError, KeyError, TypeError) as exc:
        raise SpecError(f"{path}: no system recorded ({exc})") from None
    if not isinstance(system, str):
        raise SpecError(f"{path}: the recorded system is not a name")
    return system


def from_toml(text: str) -> ExperimentSpec:
    import msgspec.toml

    try:
        doc = msgspec.toml.decode(text)
        return msgspec.convert(doc["experiment"], ExperimentSpec)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
        raise SpecError(f"experiment.toml: {exc}") from None
