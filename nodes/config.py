"""Typed role configurations, loaded from TOML; unknown keys are errors.

Every node process reads exactly one of these. The orchestrator renders them from
templates and validates them with the same Structs before shipping, so a typo fails on
the user's machine, not halfway through an experiment.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import msgspec

from nodes.wire import MAX_BATCH_OPS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class Endpoint(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: str
    port: int


class Common(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str  # process name, e.g. "proxy-0-1": prefix of every file it writes
    outdir: str  # where its log, ready marker and data files go
    nspaces: int
    listen: Endpoint | None = None  # servers only; clients connect out


class SequencerConfig(Common, kw_only=True):
    epoch: int = 1
    # Sequencers in the run: this one owns epochs epoch, epoch + sequencers, ...
    # (nodes/sequencer/epochs.py).
    sequencers: int = 1
    # A standby waits for a TakeOver, then recovers from the groups named here
    # (group id as text -> replica endpoints, index = replica id) and serves epoch `epoch`.
    standby: bool = False
    groups: dict[str, list[Endpoint]] = {}
    # Seconds between stats lines (the original's per-second sequencer log).
    stats_interval_s: float = 1.0


class ChainConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The shared log's layout (nodes/logserver/layout.py): chain c's replicas, head first."""

    chains: list[list[Endpoint]]
    max_entry_bytes: int = 4096
    # A log server silent this long is taken for failed: its chain is sealed and
    # reconfigured to the survivors.
    timeout_ms: int = 1000


class ProxyConfig(Common, kw_only=True):
    # What the group serves: "mason" (multi-sequence numbers), "corfumason" (appends to
    # the shared log in `log`, reads forwarded to a chain's tail) or "rsmkeeper" (a
    # ZooKeeper tree replicated by the group's own log: nspaces 0 and no sequencer).
    service: str = "mason"
    log: ChainConfig | None = None
    # corfumason reads: "any" replica forwards to the tail (the original's behaviour);
    # "leader" only the leader does (followers redirect).
    read_policy: str = "any"
    group: int
    replica: int  # Raft node id within the group (0..2)
    peers: dict[str, Endpoint]  # replica id (as text, TOML keys are strings) -> endpoint
    # None: the group's operations need no numbers (nspaces 0); batches go straight into
    # the Raft log and no replica talks to a sequencer.
    sequencer: Endpoint | None = None
    epoch: int = 1
    designated_leader: bool = False  # campaigns at start-up, as replica 0 did in the original
    batch_timeout_us: int = 200
    batch_max_ops: Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH_OPS)] = 1024
    tick_ms: int = 10
    election_ticks: int = 30
    heartbeat_ticks: int = 3
    max_log_entries: int = 50_000  # compaction trigger (the original's --max_log_size)
    seq_timeout_ms: int = 500  # resend a sequencer request after this long without answer
    # Sequencer failure detection: a leader that hears nothing for heartbeat_ms sends a
    # heartbeat; after heartbeat_misses silent periods it asks the backup to take over.
    # The other sequencers in order: with `sequencer` first they are the run's sequencers,
    # and epoch e belongs to the ((e - 1) mod n)-th (nodes/sequencer/epochs.py): backups[k]
    # serves epoch k + 2 once the sequencer of epoch k + 1 is reported dead, and a killed
    # sequencer that restarted serves its next epoch after that.
    backups: list[Endpoint] = []
    heartbeat_ms: int = 100
    heartbeat_misses: int = 3
    # Received-number bitmaps and their garbage-collection ring (derived by the
    # orchestrator from the experiment: see orchestrator/placement.py).
    bitmap_block: int = 1 << 16
    gc_interval_ms: int = 50
    gc_next: list[Endpoint] = []  # replicas of the next group on the ring; [] = last/only
    gc_leader: bool = False  # group 0 starts the rounds (when it leads)
    # Write every committed noop to <name>.noops (every replica does, so a noop committed
    # just before its leader died is still on record).
    record_noops: bool = False
    # Raft's term, vote and log in <name>.raft, replayed when the replica restarts:
    # "always" fsyncs before sending, "batch" fsyncs every few ms, "off" never fsyncs
    # (nodes/proxy/durable.py).
    durable: Literal["always", "batch", "off"] = "off"
    # rsmkeeper: this replica's ZooKeeper client port; reads served by the local replica
    # (sequentially consistent) instead of through the log (linearizable); ZooKeeper's
    # tickTime (session timeouts are clamped to [2, 20] ticks; the leader logs a Tick every
    # half tick, which expires silent sessions).
    zk_listen: Endpoint | None = None
    zk_local_reads: bool = False
    zk_tick_ms: int = 2000
    zk_max_frame: int = 0xFFFFF  # jute.maxbuffer: a longer frame closes its connection
    # zkmason: the shards' replicas (shard k, ordered by space k, -> its replicas' endpoints)
    # and this replica's index in the shards' `proxies` list (where they send watch events).
    zk_shards: list[list[Endpoint]] = []
    zk_origin: int = -1
    zk_shard_timeout_ms: int = 1000  # a shard replica silent this long is asked again


WORKLOADS = ("sequence", "append", "read")


class Workload(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What a client asks for: numbers (mason), log appends or log reads (Corfu systems)."""

    kind: str = "sequence"  # one of WORKLOADS
    entry_size: int = 64  # bytes per appended entry
    max_log_position: int = 0  # reads: positions drawn from [0, max_log_position)
    seed: int = 0  # reads: the position generator's seed (with the client id)


class ClientConfig(Common, kw_only=True):
    client_id: int
    group: int
    replicas: list[Endpoint]  # index = replica id; replica 0 is tried first
    workload: Workload = Workload()
    concurrency: int = 32
    counts: list[int] = []  # numbers per space per operation; empty = 1 in every space
    warmup_s: float = 4.0
    duration_s: float = 10.0
    cooldown_s: float = 4.0
    timeout_ms: int = 1000  # retransmit to the next replica after this long
    drain_s: float = 10.0  # at the end, how long to wait for outstanding answers
    record_seqnums: bool = False
    series_bin_ms: int = 10


class CorfuClientConfig(Common, kw_only=True):
    """A plain Corfu client: tokens from the sequencer, then chain writes and tail reads."""

    client_id: int
    sequencer: Endpoint
    log: ChainConfig
    workload: Workload = Workload(kind="append")
    concurrency: int = 8
    warmup_s: float = 4.0
    duration_s: float = 10.0
    cooldown_s: float = 4.0
    timeout_ms: int = 1000  # a log server or the sequencer silent this long counts as failed
    drain_s: float = 10.0
    record_seqnums: bool = False  # positions of acknowledged appends, and of filled holes
    series_bin_ms: int = 10


# ZooKeeper workloads: the original's operation kinds, in the order its client walks them
# when it draws an operation (spec zookeeper.md 4.1).
ZK_OP_KINDS = ("create", "rename", "setData", "getData", "delete", "exists", "getChildren")


class ZkWorkload(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """What a ZooKeeper load generator asks for: the operation mix in percent (summing to
    100, nodes/zkclient/mix.py checks it), over `nkeys` znodes of its own under `prefix`."""

    create_percent: float = 0.0
    rename_percent: float = 0.0
    write_percent: float = 100.0  # setData
    read_percent: float = 0.0  # getData
    delete_percent: float = 0.0
    exists_percent: float = 0.0
    get_children_percent: float = 0.0
    value_size: int = 8  # bytes of every value written (the original's 8-byte integers)
    nkeys: int = 128  # znodes per client process (the original: 128 RSMKeeper, 8 ZK-Mason)
    prefix: str = "/mason"  # every znode of the run lives under it
    watch: bool = False  # reads leave a watch (the original's RSMKeeper client did)
    seed: int = 0  # the operation draw's seed (with the client id)
    # Creates are PERSISTENT_SEQUENTIAL under the key's parent: the server appends the
    # parent's next sequence number to the name (ZooKeeper's gap-free counter).
    sequential: bool = False


class ZkClientConfig(Common, kw_only=True):
    """A ZooKeeper load generator: `connections` sessions, `concurrency` outstanding
    requests on each, against any server speaking ZooKeeper's protocol."""

    client_id: int
    servers: list[Endpoint]  # the connect string; connection c starts at a rotating one
    connections: int = 1
    concurrency: int = 32  # outstanding requests per connection
    workload: ZkWorkload = ZkWorkload()
    session_timeout_ms: int = 10_000  # requested; pings go out at a third of it
    timeout_ms: int = 2000  # a request unanswered this long counts the connection lost
    warmup_s: float = 4.0
    duration_s: float = 10.0
    cooldown_s: float = 4.0
    drain_s: float = 10.0  # at the end, how long to wait for outstanding answers
    record_history: bool = False  # <name>.history for the linearizability checker
    series_bin_ms: int = 10


class LogServerConfig(Common, kw_only=True):
    """One log-server process (the original's storage thread): a replica of some chains."""

    chains: list[int]  # the chain ids this process holds a replica of
    nchains: int  # chains in the whole log: position p is on chain p mod nchains
    max_entry_bytes: int = 4096
    capacity: int = 1 << 24  # positions held per chain; a write beyond is refused, never wrapped
    prefill: int = 0  # reads: positions [0, prefill) of its chains start written
    dump_entries: bool = False  # at a clean stop write <name>.entries for the log checker


class ZkShardConfig(Common, kw_only=True):
    """One replica of one ZK-Mason shard (nodes/zkshard): executes the sub-operations of
    space `shard` in number order. nspaces is the number of shards."""

    shard: int
    replica: int
    # Every proxy replica's endpoint, by origin index: where watch events for the
    # connections that replica holds are sent.
    proxies: list[Endpoint] = []
    # Decided results kept for leaders that re-drive an operation (by number, newest).
    result_cache: int = 1 << 16
    zk_tick_ms: int = 2000
    record_exec: bool = True  # <name>.exec: the executed numbers, for the shard checker


ConfigT = TypeVar("ConfigT", bound=Common)


class ConfigError(Exception):
    """A config file that cannot be used; the message is one line."""


def parse(text: str, kind: type[ConfigT], source: str = "<config>") -> ConfigT:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load(path: str | Path, kind: type[ConfigT]) -> ConfigT:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    return parse(text, kind, str(path))
