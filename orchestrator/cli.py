"""masonctl: the command line. Thin: it parses flags and calls the modules that do the work.

Every command turns expected failures (bad input, dead host, port in use) into one line on
stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from orchestrator import systems

if TYPE_CHECKING:
    from orchestrator.machines import Cluster

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run Mason experiments locally or on Emulab/CloudLab, and analyse their results.",
)
err = Console(stderr=True, highlight=False)
# The parser's usage error class, reached through typer's public BadParameter (typer may
# bring click itself or a copy of it).
UsageError: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


# SSH options shared by setup, run and suite: one definition, the same spelling everywhere.
IDENTITY = typer.Option(None, "--identity", "-i", help="SSH private key.")
KNOWN_HOSTS = typer.Option(
    None, "--known-hosts", help="Host keys to check against. [~/.ssh/known_hosts]")
ACCEPT_NEW_HOST_KEYS = typer.Option(
    False, "--accept-new-host-keys", help="Trust and record keys of hosts not yet known.")
SSH_USER = typer.Option(None, "--user", help="SSH login on the nodes.")
TESTBED_DIR = typer.Option(
    None, "--testbed", help="A rehearsal testbed's list view, key and known_hosts.")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one error line and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


# ---- commands: experiment (run, check) --------------------------------------------------

out = Console(highlight=False)


def _opt(name: str, help: str, *, hidden_default: Any = None) -> Any:
    """An option spelled both --a_b (the original's flags) and --a-b."""
    dashed = "--" + name.replace("_", "-")
    underscored = "--" + name
    names = [dashed] if dashed == underscored else [dashed, underscored]
    return typer.Option(hidden_default, *names, help=help, show_default=False)


def _system_and_spec_flags(system: str, flags: dict[str, Any]
                           ) -> tuple[systems.System, dict[str, Any]]:
    """The chosen system and the experiment fields given on the command line."""
    from orchestrator import spec as specs

    try:
        chosen = systems.get(system)
    except specs.SpecError as exc:
        raise fail(str(exc)) from None
    given = {k: v for k, v in flags.items()
             if v is not None and k in specs.ExperimentSpec.__struct_fields__
             and k not in ("name", "system")}
    return chosen, given


def _outdir(outdir: str | None, results_root: Path, prefix: str) -> str:
    """The run's directory name under results_root: plain, and not holding a run yet."""
    name = outdir or f"{prefix}-{int(time.time())}"
    if "/" in name or name in ("", ".", ".."):
        raise fail(f"--outdir must be a plain directory name, not {name!r}")
    if (results_root / name).exists() and any((results_root / name).iterdir()):
        raise fail(f"{results_root / name} already holds a run; choose another --outdir")
    return name


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def run(
    nproxies: int | None = _opt("nproxies", "Proxy machines (a multiple of 3). [3]"),
    nproxy_threads: int | None = _opt(
        "nproxy_threads", "Proxy processes per proxy machine = groups per triple. "
        "[local 1, testbed 8]"),
    nproxy_leaders: int | None = _opt(
        "nproxy_leaders", "Total groups; derived when left out, checked when given."),
    nclients: int | None = _opt("nclients", "Client machines. [1]"),
    nclient_threads: int | None = _opt(
        "nclient_threads", "Client processes per client machine. [local 2, testbed 16]"),
    client_concurrency: int | None = _opt(
        "client_concurrency", "Outstanding operations per client process. [32]"),
    nsequence_spaces: int | None = _opt("nsequence_spaces", "Sequence spaces. [1]"),
    expduration: float | None = _opt(
        "expduration", "Measured seconds, after the warm-up. [local 10, testbed 60]"),
    warmup: float | None = _opt("warmup", "Warm-up seconds. [local 2, testbed 4]"),
    cooldown: float | None = _opt("cooldown", "Cool-down seconds. [local 1, testbed 4]"),
    batch_timeout: int | None = _opt(
        "batch_timeout", "Proxy batch timeout in microseconds. [local 200, testbed 20]"),
    batch_max_ops: int | None = _opt("batch_max_ops", "Operations that close a batch. [1024]"),
    max_log_size: int | None = _opt("max_log_size", "Raft entries before compaction."),
    election_timeout_ms: int | None = _opt(
        "election_timeout_ms", "Raft election timeout. [local 300, testbed 1000]"),
    client_timeout_ms: int | None = _opt(
        "client_timeout_ms", "Client retransmit timeout. [local 500, testbed 1000]"),
    heartbeat_ms: int | None = _opt(
        "heartbeat_ms", "Proxy->sequencer liveness period. [local 100, testbed 500]"),
    heartbeat_misses: int | None = _opt(
        "heartbeat_misses", "Silent periods before the backup takes over. [3]"),
    gc_interval_ms: int | None = _opt(
        "gc_interval_ms", "Bitmap garbage-collection period. [derived]"),
    bitmap_block: int | None = _opt(
        "bitmap_block", "Numbers per bitmap block. [derived from the expected rate]"),
    kill_leader: float | None = _opt(
        "kill_leader", "Kill -9 group 0's leader this many seconds after warm-up."),
    kill_sequencer: float | None = _opt(
        "kill_sequencer", "Kill -9 the sequencer this many seconds after warm-up."),
    kill_backup: float | None = _opt(
        "kill_backup", "Kill -9 the backup sequencer after it took over (needs "
        "--kill_sequencer earlier); a second standby takes over."),
    kill_follower: float | None = _opt(
        "kill_follower", "Kill -9 a follower of group 0 this many seconds after warm-up."),
    kill_leader_mid_batch: float | None = _opt(
        "kill_leader_mid_batch", "Make group 0's leader die between a sequencer answer and "
        "its Raft entry, this many seconds after warm-up."),
    nsequencers: int | None = _opt("nsequencers", "Sequencers (2 = with a backup)."),
    ncorfu_servers: int | None = _opt(
        "ncorfu_servers", "Corfu systems: server machines holding the log (S). [2]"),
    corfu_replication_factor: int | None = _opt(
        "corfu_replication_factor", "Replicas per chain, 1 to 3; S must be a multiple. [2]"),
    corfu_units: int | None = _opt(
        "corfu_units", "Log-server processes per server machine. [local 1, testbed 4]"),
    appends: bool | None = typer.Option(
        None, "--appends", help="Corfu systems: the append workload. [the default]",
        show_default=False),
    reads: bool | None = typer.Option(
        None, "--reads", help="Corfu systems: the read workload over [0, --max_log_position).",
        show_default=False),
    max_log_position: int | None = _opt(
        "max_log_position", "Positions written before a read run; alone it means --reads. "
        "[100000 with --reads]"),
    entry_size: int | None = _opt("entry_size", "Bytes per appended entry. [64]"),
    read_policy: str | None = _opt(
        "read_policy", "corfumason reads: any replica serves them, or only the leader. [any]"),
    kill_logserver: float | None = _opt(
        "kill_logserver", "Kill -9 the head of chain 0 this many seconds after warm-up "
        "(needs --corfu_replication_factor 2 or 3)."),
    kill_leader_machine: float | None = _opt(
        "kill_leader_machine", "Kill -9 every proxy process on proxy-0 (one replica of each "
        "group of the first triple) this many seconds after warm-up: the original's "
        "--kill_leader."),
    kill_all_leaders: float | None = _opt(
        "kill_all_leaders", "Kill -9 every proxy process on proxy-0, 3, 6, ... (one replica "
        "of every group) this many seconds after warm-up: the original's flag."),
    pause_leader: float | None = _opt(
        "pause_leader", "SIGSTOP group 0's leader this many seconds after warm-up, for "
        "--pause_for seconds."),
    pause_follower: float | None = _opt("pause_follower", "SIGSTOP a follower of group 0."),
    pause_sequencer: float | None = _opt(
        "pause_sequencer", "SIGSTOP the serving sequencer (a standby takes over)."),
    pause_for: float | None = _opt("pause_for", "Seconds a pause lasts. [2]"),
    partition_leader: float | None = _opt(
        "partition_leader", "Cut group 0's leader from its followers (iptables, testbed runs) "
        "for --heal_after seconds."),
    partition_oneway: float | None = _opt(
        "partition_oneway", "Group 0's leader hears nothing from its followers (one-way cut)."),
    partition_sequencer: float | None = _opt(
        "partition_sequencer", "Cut group 0's machines from every sequencer."),
    latency_leader: float | None = _opt(
        "latency_leader", "Add --latency_ms on group 0's leader machine (tc netem)."),
    latency_ms: int | None = _opt("latency_ms", "Delay --latency_leader adds. [50]"),
    heal_after: float | None = _opt(
        "heal_after", "Seconds a partition or added latency lasts. [2]"),
    faults: str | None = _opt(
        "faults", "A fault schedule file (TOML, [[event]] tables) or seed:N (random pauses "
        "and kills) or seed:N:net (with partitions)."),
    create_percent: float | None = _opt(
        "create_percent", "ZooKeeper systems: share of creates, in percent (or the "
        "original's fractions: all shares then sum to 1). [0]"),
    rename_percent: float | None = _opt("rename_percent", "Share of renames. [0]"),
    write_percent: float | None = _opt(
        "write_percent", "Share of setData. [100 when no share is given]"),
    read_percent: float | None = _opt("read_percent", "Share of getData. [0]"),
    delete_percent: float | None = _opt("delete_percent", "Share of deletes. [0]"),
    exists_percent: float | None = _opt("exists_percent", "Share of exists. [0]"),
    get_children_percent: float | None = _opt(
        "get_children_percent", "Share of getChildren. [0]"),
    setdatas: bool | None = typer.Option(
        None, "--setDatas", help="The setData experiment: 100 % setData.",
        show_default=False),
    getdatas: bool | None = typer.Option(
        None, "--getDatas", help="The getData experiment: 100 % getData.",
        show_default=False),
    value_size: int | None = _opt("value_size", "ZooKeeper systems: bytes per value. [8]"),
    nkeys: int | None = _opt("nkeys", "ZooKeeper systems: znodes per client process. [128]"),
    client_connections: int | None = _opt(
        "client_connections", "ZooKeeper systems: sessions per client process, each with "
        "--client_concurrency outstanding requests. [1]"),
    zk_local_reads: bool | None = typer.Option(
        None, "--zk-local-reads/--zk-linearizable-reads", "--zk_local_reads",
        help="rsmkeeper: reads served by the replica a client is connected to "
        "(sequentially consistent) instead of through the log. [off]", show_default=False),
    zk_tick_ms: int | None = _opt(
        "zk_tick_ms", "ZooKeeper systems: ZooKeeper's tickTime; session timeouts are clamped "
        "to [2, 20] ticks. [2000]"),
    nzk_servers: int | None = typer.Option(
        None, "--nzk-servers", "--nzk_servers", "--nservers",
        help="zkmason: shard replicas (server machines), a multiple of 3; each triple is one "
        "shard, ordered by its own sequence space. [3 per --nsequence_spaces]",
        show_default=False),
    zk_replication_factor: int | None = _opt(
        "zk_replication_factor", "zkmason: replicas per shard; only 3 runs. [3]"),
    kill_zk_server: float | None = _opt(
        "kill_zk_server", "zkmason: kill -9 a replica of shard 0 this many seconds after "
        "warm-up (the shard goes on with the other two)."),
    restart_after: float | None = _opt(
        "restart_after", "Start every process a fault killed again this many seconds after "
        "its kill (proxies rejoin their group, a sequencer comes back as a standby)."),
    durable: str | None = typer.Option(
        None, "--durable", help="Proxies' Raft log on disk: fsync before sending (always), "
        "every few ms (batch) or never (off). [off]", show_default=False),
    base_port: int | None = _opt("base_port", "First TCP port on each machine. [31850]"),
    record_seqnums: bool | None = typer.Option(
        None, "--record-seqnums/--no-record-seqnums", "--record_seqnums",
        help="Clients record every number (needed for the contiguity check). [local on]",
        show_default=False),
    record_noops: bool | None = typer.Option(
        None, "--record-noops/--no-record-noops", "--record_noops",
        help="Proxies record committed noops. [on with --record-seqnums]", show_default=False),
    system: str = typer.Option("mason", "--system", help=systems.choices() + "."),
    outdir: str | None = _opt("outdir", "Results directory name. [results-<unix time>]"),
    results_root: Path = typer.Option(Path("results"), "--results", help="Where runs go."),
    python: str | None = typer.Option(
        None, "--python", help="Interpreter that runs the nodes. [this one]"),
    machine_info: Path | None = typer.Option(
        None, "--machine-info", "--machine_info",
        help="Run on the testbed machines setup wrote here (default: all local)."),
    user: str | None = SSH_USER,
    identity: str | None = IDENTITY,
    known_hosts: Path | None = KNOWN_HOSTS,
    accept_new_host_keys: bool = ACCEPT_NEW_HOST_KEYS,
    testbed_dir: Path | None = TESTBED_DIR,
    workdir: str | None = typer.Option(
        None, "--workdir", help="Base directory on the nodes, as given to setup (for a "
        "machine_info.txt that does not record it). [recorded, else ~/mason]"),
    retries: int = typer.Option(
        2, "--retries", help="Re-run when a node fails to start (as run_suite.sh did)."),
    no_pin: bool = typer.Option(
        False, "--no-pin", help="Testbeds: leave node processes unpinned (by default each "
        "runs on a core of its own, with taskset; experiment.toml records which)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Place every process and check every config; start nothing."),
) -> None:
    """Run one experiment; with no machine list, every role runs on this machine."""
    from orchestrator import spec as specs
    from orchestrator.runner import dry_run as plan_only
    from orchestrator.runner import link_latest, run_local

    chosen, given = _system_and_spec_flags(system, dict(locals()))
    name = _outdir(outdir, results_root, "results")
    if machine_info is None:
        given.setdefault("record_seqnums", True)  # local runs record every number
    if chosen.applies("record_noops"):
        given.setdefault("record_noops", given.get("record_seqnums", False))
    if machine_info is None:
        try:
            spec = specs.build(name, system, {**chosen.local_defaults, **given})
        except specs.SpecError as exc:
            raise fail(str(exc)) from None
        if dry_run:
            from orchestrator.experiment import RunMachines
            from orchestrator.hosts import LocalHost

            slots = RunMachines.local(spec, (results_root / name).resolve(), LocalHost()).slots
            raise typer.Exit(plan_only(spec, slots, out, err).code)
        result = run_local(spec, results_root / name, out, err)
        link_latest(results_root / name)
        raise typer.Exit(result.code)
    from orchestrator.remote import (
        RemoteOptions,
        machine_info_note,
        planned_slots,
        read_cluster,
        run_on_testbed,
        testbed_spec,
    )

    try:
        out.print(machine_info_note(machine_info), soft_wrap=True, highlight=False)
    except specs.SpecError as exc:
        raise fail(str(exc)) from None
    if dry_run:
        try:
            cluster = read_cluster(machine_info)
            spec = testbed_spec(cluster, name, system, given)
        except specs.SpecError as exc:
            raise fail(str(exc)) from None
        raise typer.Exit(plan_only(spec, planned_slots(cluster, spec), out, err).code)

    options = RemoteOptions(machine_info, user, identity, known_hosts, accept_new_host_keys,
                            testbed_dir, retries, pin=not no_pin, workdir=workdir)
    try:
        result = run_on_testbed(name, system, given, options, results_root / name, out, err)
    except specs.SpecError as exc:
        raise fail(str(exc)) from None
    finally:
        link_latest(results_root / name)
    raise typer.Exit(result.code)


@app.command()
def serve(
    system: str = typer.Option(
        "rsmkeeper", "--system", help="What to serve: rsmkeeper or zkmason."),
    base_port: int | None = _opt("base_port", "First TCP port. [31850]"),
    nproxies: int | None = _opt(
        "nproxies", "zkmason: proxy machines, a multiple of 3 (one group each). [3]"),
    nzk_servers: int | None = typer.Option(
        None, "--nzk-servers", "--nzk_servers", "--nservers",
        help="zkmason: shard replicas, a multiple of 3 (a shard each triple). [3]",
        show_default=False),
    nsequence_spaces: int | None = _opt(
        "nsequence_spaces", "zkmason: sequence spaces = shards. [--nzk_servers / 3]"),
    zk_local_reads: bool | None = typer.Option(
        None, "--zk-local-reads/--zk-linearizable-reads", "--zk_local_reads",
        help="Reads served by the replica a client is connected to. [off]",
        show_default=False),
    zk_tick_ms: int | None = _opt("zk_tick_ms", "ZooKeeper's tickTime. [2000]"),
    election_timeout_ms: int | None = _opt(
        "election_timeout_ms", "Raft election timeout. [300]"),
    raft_tick_ms: int | None = _opt("raft_tick_ms", "Raft tick. [10]"),
    outdir: str | None = _opt("outdir", "Logs directory name. [serve-<unix time>]"),
    results_root: Path = typer.Option(Path("results"), "--results", help="Where it goes."),
    python: str | None = typer.Option(
        None, "--python", help="Interpreter that runs the nodes. [this one]"),
) -> None:
    """Start a system's servers on this machine, print where clients connect
    (host:port,host:port,host:port: rsmkeeper's group, or a zkmason group's; with several
    groups every one is listed before it) and serve until Ctrl-C."""
    from orchestrator import spec as specs
    from orchestrator.serve import serve_local

    chosen, given = _system_and_spec_flags(system, dict(locals()))
    if type(chosen).connect_string is systems.System.connect_string:
        raise fail(f"--system {chosen.name} cannot be served for clients of your own")
    name = _outdir(outdir, results_root, "serve")
    try:
        spec = specs.build(name, chosen.name, {**chosen.local_defaults, **given,
                                               "nclients": 0})
    except specs.SpecError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(serve_local(spec, results_root / name, out, err))


@app.command()
def cleanup(
    machine_info: Path | None = typer.Option(
        None, "--machine-info", "--machine_info",
        help="Every machine of this testbed (default: this machine's local runs)."),
    results_root: Path = typer.Option(
        Path("results"), "--results", help="Where local runs went (without --machine-info)."),
    testbed_dir: Path | None = TESTBED_DIR,
    user: str | None = SSH_USER,
    identity: str | None = IDENTITY,
    known_hosts: Path | None = KNOWN_HOSTS,
    accept_new_host_keys: bool = ACCEPT_NEW_HOST_KEYS,
) -> None:
    """End every node process a run left behind (the original's --only_kill_zombies): those
    the pid files of its runs name, on this machine or on every machine of --machine-info."""
    from orchestrator import leftovers
    from orchestrator import spec as specs
    from orchestrator.hosts import HostError, LocalHost
    from orchestrator.remote import RemoteOptions, Testbed

    bed: Testbed | None = None
    try:
        if machine_info is None:
            where = [leftovers.Machine("local", LocalHost(), (str(results_root.resolve()),))]
        else:
            bed = Testbed(RemoteOptions(machine_info, user, identity, known_hosts,
                                        accept_new_host_keys, testbed_dir))
            where = [leftovers.Machine(name, host, (f"{host.workdir}/runs",))
                     for name, host in bed.hosts.items()]
        ended = leftovers.end_everywhere(where)
    except (HostError, specs.SpecError) as exc:
        raise fail(str(exc), 1) from None
    finally:
        if bed is not None:
            bed.close()
    for leftover in ended:
        state = "ended" if leftover.gone else "[bold red]could not end[/]"
        out.print(f"{leftover.machine}: {state} {leftover.what()}", soft_wrap=True)
    alive = [x for x in ended if not x.gone]
    if alive:
        raise fail(f"{len(alive)} node process(es) still running", 1)
    machines_word = f"{len(where)} machine(s)"
    out.print(f"ended {len(ended)} node process(es) on {machines_word}" if ended
              else f"no node process left behind on {machines_word}")


@app.command()
def check(
    results: Path = typer.Argument(..., help="A run's results directory."),
) -> None:
    """Prove contiguity (every number 0..max once) and per-client FIFO for a finished run;
    for the Corfu systems also that the log holds what was acknowledged."""
    from orchestrator import spec as specs

    if not results.is_dir():
        raise fail(f"{results}: no such results directory")
    record = results / "experiment.toml"
    try:
        chosen = systems.get(specs.recorded_system(record) if record.is_file() else "mason")
    except specs.SpecError as exc:
        raise fail(str(exc)) from None
    verdicts = chosen.check(results)
    for verdict in verdicts:
        for line in verdict.lines:
            out.print(line)
    raise typer.Exit(0 if all(v.ok for v in verdicts) else 1)


@app.command()
def nemesis(
    seed: int = typer.Option(1, "--seed", help="The first seed; seeds seed..seed+count-1."),
    count: int = typer.Option(10, "--count", help="Schedules (runs)."),
    seconds: float = typer.Option(10.0, "--seconds", help="Measured seconds per run."),
    net: bool = typer.Option(
        False, "--net", help="Partitions too (needs --machine-info: nodes on distinct "
        "addresses, root on them)."),
    system: str = typer.Option("mason", "--system", help="mason or corfumason."),
    sets: list[str] = typer.Option(
        [], "--set", help="FIELD=VALUE for every run, e.g. nproxy_threads=2 (repeatable)."),
    results_root: Path = typer.Option(Path("results"), "--results", help="Where runs go."),
    machine_info: Path | None = typer.Option(
        None, "--machine-info", "--machine_info", help="Run on these testbed machines."),
    user: str | None = SSH_USER,
    identity: str | None = IDENTITY,
    known_hosts: Path | None = KNOWN_HOSTS,
    accept_new_host_keys: bool = ACCEPT_NEW_HOST_KEYS,
    testbed_dir: Path | None = TESTBED_DIR,
) -> None:
    """Seeded random fault schedules (pauses, kills; partitions with --net), never more
    than a minority of any group down, each run ending with the checker; exits 1 if any
    schedule fails."""
    from orchestrator import soak
    from orchestrator import spec as specs
    from orchestrator.runner import RunResult, run_local
    from orchestrator.suite import parse_sets
    from suites.loader import SuiteError

    if count < 1 or seed < 0:
        raise fail("--count must be positive and --seed non-negative")
    if net and machine_info is None:
        raise fail("--net needs --machine-info: a local run puts every process on one "
                   "address, where partitions cannot be drawn")
    try:
        chosen = systems.get(system)
        overrides = parse_sets(sets)
    except (specs.SpecError, SuiteError) as exc:
        raise fail(str(exc)) from None

    def one(seed_n: int, name: str) -> RunResult:
        if machine_info is None:
            given = {**overrides, **soak.seed_flags(seed_n, net, seconds)}
            try:
                spec = specs.build(name, system, {**chosen.local_defaults, **given})
            except specs.SpecError as exc:
                return RunResult(2, str(exc))
            return run_local(spec, results_root / name, out, err)
        from orchestrator.remote import RemoteOptions, read_cluster, run_on_testbed

        options = RemoteOptions(machine_info, user, identity, known_hosts,
                                accept_new_host_keys, testbed_dir, 0)
        try:
            # Standbys as the machines allow: the schedule draws a sequencer fault per standby.
            machines = read_cluster(machine_info).counts().get("sequencer", 1)
            given = {**overrides,
                     **soak.seed_flags(seed_n, net, seconds, min(3, max(1, machines)))}
            return run_on_testbed(name, system, given, options, results_root / name, out, err)
        except specs.SpecError as exc:
            return RunResult(2, str(exc))

    done = soak.soak(range(seed, seed + count), results_root, one, out)
    raise typer.Exit(0 if all(r.ok for r in done) else 1)


# ---- commands: testbed, setup, profile ----------------------------------------------------

testbed_app = typer.Typer(
    no_args_is_help=True,
    help="A rehearsal testbed on this Linux box: sshd in network namespaces (needs root).",
)
app.add_typer(testbed_app, name="testbed")


def _testbed_dir(state_dir: Path | None) -> Path:
    from orchestrator import testbed

    return state_dir if state_dir is not None else testbed.DEFAULT_DIR


@testbed_app.command("up")
def testbed_up(
    hosts: int | None = typer.Option(None, "--hosts", help="Number of hosts. [7]"),
    roles: str | None = typer.Option(
        None, "--roles", help="Hosts per role, e.g. sequencer=2,proxy=3,client=1. "
        "[7 hosts: 2 sequencers, 3 proxies, 1 client, 1 server]"),
    state_dir: Path | None = typer.Option(
        None, "--dir", help="Where keys, configs and the list view go. [$TMPDIR/mason-testbed]"),
) -> None:
    """Start N namespace hosts, each running sshd, on the bridge masonbr0 (198.18.0.0/24)."""
    from orchestrator import testbed

    directory = _testbed_dir(state_dir)
    try:
        role_counts = testbed.parse_roles(roles) if roles else None
        if hosts is None and role_counts is None:
            hosts = 7
        state = testbed.up(hosts, role_counts, directory, log=lambda m: err.print(f"  {m}"))
    except testbed.TestbedError as exc:
        raise fail(str(exc)) from None
    out.print(f"testbed up: {len(state.hosts)} hosts, list view in {state.machine_list}")
    out.print(f"  masonctl setup root --testbed {state.dir}")
    out.print(f"  (= --machine-list {state.machine_list} --identity {state.identity} "
              f"--known-hosts {state.known_hosts})", soft_wrap=True)


@testbed_app.command("down")
def testbed_down(
    state_dir: Path | None = typer.Option(
        None, "--dir", help="The directory given to `testbed up`. [$TMPDIR/mason-testbed]"),
) -> None:
    """Remove every namespace, veth, the bridge and our sshds; safe to repeat."""
    from orchestrator import testbed

    try:
        testbed.down(_testbed_dir(state_dir), log=lambda m: err.print(f"  {m}"))
    except testbed.TestbedError as exc:
        raise fail(str(exc)) from None
    out.print("testbed down")


@app.command()
def setup(
    user: str = typer.Argument(..., help="Your login on the nodes (wins over the list's)."),
    machine_list: Path | None = typer.Option(
        None, "--machine-list", help="The portal's List View, pasted. [machine_list.txt]"),
    identity: str | None = IDENTITY,
    python: str = typer.Option("python3", "--python", help="Python >= 3.10 on the nodes."),
    known_hosts: Path | None = KNOWN_HOSTS,
    accept_new_host_keys: bool = ACCEPT_NEW_HOST_KEYS,
    dpdk: bool = typer.Option(
        False, "--dpdk", help="Also hugepages and DPDK; takes the experiment NIC from the kernel."),
    workdir: str = typer.Option(
        "~/mason", "--workdir", help="Base directory on the nodes; each uses <base>/<name>."),
    lan_prefix: str | None = typer.Option(
        None, "--lan-prefix", help="The experiment LAN (e.g. 10.1.1.0/24) among several."),
    machine_info: Path = typer.Option(
        Path("machine_info.txt"), "--machine-info", help="Where to write what setup found."),
    testbed_dir: Path | None = TESTBED_DIR,
    no_sysctl: bool = typer.Option(False, "--no-sysctl", help="Leave kernel settings alone."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read the list and show each machine's role; contact none."),
) -> None:
    """Check every machine, find its experiment LAN, ship the code into a venv, tune it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from orchestrator import machines, provision, testbed
    from orchestrator.hosts import Host
    from orchestrator.ssh_host import SSHHost

    try:
        machines.check_user(user)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if testbed_dir is not None:
        try:
            state = testbed.load_state(testbed_dir)
        except testbed.TestbedError as exc:
            raise fail(str(exc)) from None
        machine_list = machine_list or Path(state.machine_list)
        identity = identity or state.identity
        known_hosts = known_hosts or Path(state.known_hosts)
    machine_list = machine_list or Path("machine_list.txt")
    try:
        cluster = machines.load_list_view(machine_list)
    except machines.MachineListError as exc:
        raise fail(str(exc)) from None
    if dry_run:
        _show_list_view(machine_list, cluster, user)
        return
    if identity and not Path(identity).expanduser().is_file():
        raise fail(f"--identity {identity}: no such file")
    if dpdk:
        err.print("[bold red]warning:[/] --dpdk binds the experiment NICs to a DPDK driver: "
                  "the kernel (and mason's socket-based nodes) can no longer use them "
                  "until they are rebound.", soft_wrap=True)
    opts = provision.SetupOptions(python=python, dpdk=dpdk, lan_prefix=lan_prefix,
                                  sysctl=not no_sysctl)

    def connect(machine: machines.Machine) -> Host:
        return SSHHost.from_machine(
            machine, user=user, identity_file=identity, known_hosts=known_hosts,
            accept_new_host_keys=accept_new_host_keys, workdir_base=workdir,
        )

    columns = (TextColumn("setup"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("", total=len(cluster))

        def progress(name: str, text: str) -> None:
            bar.update(task, description=f"{name}: {text}")

        def done(result: provision.NodeResult) -> None:
            bar.advance(task)
            m = result.machine
            if result.ok:
                bar.console.print(f"[green]ok[/] {m.name}: {m.experiment_ip} on "
                                  f"{m.experiment_iface}, Python {result.python_version}, "
                                  f"{result.os_name}", soft_wrap=True)
            else:
                bar.console.print(f"[bold red]failed[/] {result.error}", soft_wrap=True)
            for warning in result.warnings:
                bar.console.print(f"[yellow]warning[/] {m.name}: {warning}", soft_wrap=True)

        try:
            report = provision.setup_cluster(cluster, opts, connect,
                                             progress=progress, done=done)
        except provision.ProvisionError as exc:
            raise fail(str(exc)) from None
    ready = report.cluster
    if len(ready):
        machines.write_machine_info(ready, machine_info)
    failed = report.failed
    if failed:
        for result in failed:
            err.print(f"[bold red]error:[/] {result.error}", soft_wrap=True)
        note = f"; {machine_info} lists only those" if len(ready) else ""
        err.print(f"{len(ready)} of {len(cluster)} machines set up{note}")
        raise typer.Exit(1)
    out.print(f"{len(ready)} machines set up; wrote {machine_info}")


def _show_list_view(source: Path, cluster: Cluster, user: str) -> None:
    """What `setup` would contact: each machine's role and SSH destination."""
    from rich.table import Table

    counts = ", ".join(f"{n} {role}" for role, n in cluster.counts().items() if n)
    out.print(f"{source}: {len(cluster)} machines ({counts}); dry run: none contacted",
              soft_wrap=True, highlight=False)
    table = Table(show_edge=False, pad_edge=False)
    for column in ("machine", "role", "physical id", "type", "ssh"):
        table.add_column(column, no_wrap=True)
    for m in cluster:
        role = f"{m.role} (unused)" if m.unused else m.role
        table.add_row(m.name, role, m.physical_id, m.hardware_type or "-",
                      f"{user}@{m.ssh_host}:{m.ssh_port}")
    out.print(table)


@app.command()
def profile(
    system: str = typer.Argument(..., help=systems.choices() + "."),
    # The second name of each count is the original profile's parameter (s, p, c, cs).
    nsequencers: int | None = typer.Option(None, "--nsequencers", "--s",
                                           help="[largest config]"),
    nproxies: int | None = typer.Option(None, "--nproxies", "--p", help="[largest config]"),
    nclients: int | None = typer.Option(None, "--nclients", "--c", help="[largest config]"),
    nservers: int | None = typer.Option(None, "--nservers", "--cs", help="[largest config]"),
    hardware_type: str = typer.Option("d430", "--hardware-type", help="Node hardware type."),
    image: str | None = typer.Option(None, "--image", help="Disk image URN. [Ubuntu 22.04]"),
    original_links: bool = typer.Option(
        False, "--original-links",
        help="Two experiment interfaces per node (10.1.1.k, 10.1.2.k) on one 10 Gb link, "
             "as the original profile."),
    out_dir: Path = typer.Option(Path("."), "--out", help="Directory for the two files."),
) -> None:
    """Write the geni-lib profile script for the portal and the RSpec it requests."""
    from orchestrator import profiles

    try:
        chosen = profiles.system_named(system)
        counts = profiles.resolve_counts(chosen, nsequencers, nproxies, nclients, nservers)
        script, rspec = profiles.write_profile(
            chosen, counts, out_dir, hardware_type, image or profiles.DEFAULT_IMAGE,
            original_links)
    except profiles.ProfileError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write into {out_dir}: {exc.strerror}") from None
    out.print(f"{chosen.name}: {counts.nsequencers} sequencers, {counts.nproxies} proxies, "
              f"{counts.nclients} clients, {counts.nservers} servers ({counts.total} "
              f"{hardware_type} nodes)")
    out.print(f"  profile script: {script}  (paste into the portal)")
    out.print(f"  request RSpec:  {rspec}")


# ---- commands: analysis (parse, plot) and suites ------------------------------------------


@app.command()
def parse(
    results: Path = typer.Argument(..., help="A run, a suite, or a directory of them."),
    original: bool = typer.Option(
        False, "--original", help="Exactly parse_datfiles.sh's lines (mean of the machines' "
        "percentiles, %.3f, a blank line after every 5 runs); no CSV files."),
) -> None:
    """Print `aggregate-throughput p50 p99 p99.9 p99.99` (Mops/s, µs) per run below a
    directory, as parse_datfiles.sh did (exact percentiles); write a suite's CSV files."""
    from analysis import suite_table
    from analysis.parse_original import original_lines

    if not results.is_dir():
        raise fail(f"{results}: no such results directory")
    if original:
        lines, errors = original_lines(results)
        for line in lines:
            typer.echo(line)  # plain: the user's scripts read these lines as they are
        for message in errors:
            err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
        if not lines and not errors:
            raise fail(f"{results}: no run directories (with client .dat files) at or below "
                       "it", 1)
        raise typer.Exit(1 if errors else 0)
    lines, errors = suite_table.parse_lines(results)
    if not lines and not errors:
        raise fail(f"{results}: no run directories (with client .dat files) at or below it", 1)
    for line in lines:
        out.print(line, soft_wrap=True)
    for message in errors:
        err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    for suite_dir in suite_table.find_suite_dirs(results):
        try:
            runs_csv, medians_csv, table, medians = suite_table.write_suite_csvs(suite_dir)
        except suite_table.SuiteTableError as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            errors.append(str(exc))
            continue
        err.print(f"wrote {runs_csv} ({len(table)} run(s)), {medians_csv} "
                  f"({len(medians)} point(s))", soft_wrap=True)
    raise typer.Exit(1 if errors else 0)


@app.command("check-linearizable")
def check_linearizable(
    history: Path = typer.Argument(
        ..., help="A run's results directory (its *.history files) or one history file."),
    max_steps: int = typer.Option(
        5_000_000, "--max-steps", min=1,
        help="Search steps per znode before giving up undecided."),
) -> None:
    """Check that the ZooKeeper operations clients recorded are linearizable, znode by
    znode; exit 1 on a violation (or when undecided), 2 on unreadable histories."""
    from analysis.linearizability import check_file
    from nodes.zk.history import HistoryFormatError

    try:
        verdict = check_file(history, max_steps)
    except HistoryFormatError as exc:
        raise fail(str(exc)) from None
    for line in verdict.lines():
        out.print(line, soft_wrap=True)
    raise typer.Exit(0 if verdict.ok else 1)


@app.command("check-shards")
def check_shards(
    results: Path = typer.Argument(..., help="A zkmason run's results directory."),
) -> None:
    """Check that every ZK-Mason shard replica executed its space's numbers once each, in
    order, that the replicas of a shard agree, and that a majority of each shard reached
    the highest number handed out; exit 1 on a violation."""
    from analysis.zkshards import check_run

    if not results.is_dir():
        raise fail(f"{results}: no such results directory")
    verdict = check_run(results)
    for line in verdict.lines():
        out.print(line, soft_wrap=True)
    raise typer.Exit(0 if verdict.ok else 1)


plot_app = typer.Typer(no_args_is_help=True, help="Figures (PDF and PNG) from results.")
app.add_typer(plot_app, name="plot")


@plot_app.command("recovery")
def plot_recovery_cmd(
    run_dir: Path = typer.Argument(..., help="A run's results directory."),
    out_stem: Path | None = typer.Option(
        None, "--out", help="Path without extension (default: <run_dir>/recovery)."),
    bin_ms: int = typer.Option(10, "--bin-ms", help="Width of a throughput bin in ms."),
) -> None:
    """Throughput over time with the injected faults marked (the README's recovery.pdf)
    and, when the run recorded its numbers, each space's highest contiguous number over
    time, also written as the original's recovery_data_<space>.dat in recovery-<run>/ beside
    the run (or beside the figure when --out names it)."""
    from analysis.datfiles import DatFormatError
    from analysis.plots import plot_recovery
    from analysis.recovery import run_frontiers, write_recovery_dats
    from analysis.runfiles import recovery_dir, run_files

    if not run_dir.is_dir():
        raise fail(f"{run_dir}: no such results directory")
    if not run_files(run_dir, "*.series"):
        raise fail(f"{run_dir}: no throughput series (*.series) to plot", 1)
    stem = out_stem or run_dir / "recovery"
    try:
        fronts = run_frontiers(run_dir) if run_files(run_dir, "*.seqnums") else []
        dats = stem.parent if out_stem else recovery_dir(run_dir)
        paths = write_recovery_dats(run_dir, dats, fronts) if fronts else []
        paths += plot_recovery(run_dir, stem, bin_ms=bin_ms, fronts=fronts)
    except (DatFormatError, ValueError, OSError) as exc:
        raise fail(str(exc), 1) from None
    for path in paths:
        out.print(str(path), soft_wrap=True)


@plot_app.command("suite")
def plot_suite_cmd(
    suite_dir: Path = typer.Argument(..., help="A suite's results directory."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Directory for the figures (default: the suite directory)."),
) -> None:
    """Latency against throughput per configuration, and peak throughput against triples."""
    from analysis import suite_table

    if not suite_dir.is_dir():
        raise fail(f"{suite_dir}: no such suite directory")
    if not suite_table.suite_runs(suite_dir):
        raise fail(f"{suite_dir}: no finished suite runs (<point>-t<k>/ with a done marker)", 1)
    try:
        _, _, _, medians = suite_table.write_suite_csvs(suite_dir)
        paths = suite_table.suite_figures(medians, out_dir or suite_dir, suite_dir.name)
    except (suite_table.SuiteTableError, ValueError, OSError) as exc:
        raise fail(str(exc), 1) from None
    for path in paths:
        out.print(str(path), soft_wrap=True)


@app.command()
def suite(
    name: str = typer.Argument(..., help="A suite of suites/ (mason, recovery) or a .toml file."),
    appends: bool = typer.Option(False, "--appends", help="Corfu: the append workload."),
    reads: bool = typer.Option(False, "--reads", help="Corfu: the read workload."),
    set_datas: bool = typer.Option(False, "--setDatas", help="ZooKeeper: setData."),
    get_datas: bool = typer.Option(False, "--getDatas", help="ZooKeeper: getData."),
    trials: int | None = typer.Option(
        None, "--trials", help="Trials per point (default: the suite's)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the runs; run nothing."),
    results_root: Path = typer.Option(Path("results"), "--results", help="Where suites go."),
    only: str | None = typer.Option(
        None, "--only", help="Points matching these shell patterns, comma-separated "
        "(e.g. 's1-*,s2-g1-c16')."),
    retries: int = typer.Option(2, "--retries", help="Re-runs of a run whose nodes failed."),
    sets: list[str] = typer.Option(
        [], "--set", help="FIELD=VALUE for every point, e.g. expduration=2 (repeatable)."),
    machine_info: Path | None = typer.Option(
        None, "--machine-info", "--machine_info",
        help="Run on (and scale the sweep to) these testbed machines. [this machine]"),
    user: str | None = SSH_USER,
    identity: str | None = IDENTITY,
    known_hosts: Path | None = KNOWN_HOSTS,
    accept_new_host_keys: bool = ACCEPT_NEW_HOST_KEYS,
    testbed_dir: Path | None = TESTBED_DIR,
) -> None:
    """Run every point x trial of a suite; run it again to resume after ^C."""
    from orchestrator import suite as suites_run
    from suites.loader import SuiteError

    flags = {"appends": appends, "reads": reads, "setDatas": set_datas, "getDatas": get_datas}
    chosen = [f for f, on in flags.items() if on]
    if len(chosen) > 1:
        raise fail(f"choose one of --{', --'.join(chosen)}")
    opts = suites_run.SuiteOptions(
        name=name, variant=chosen[0] if chosen else None, trials=trials, dry_run=dry_run,
        results=results_root, only=only, retries=retries, sets=list(sets),
        machine_info=machine_info, user=user, identity=identity, known_hosts=known_hosts,
        accept_new_host_keys=accept_new_host_keys, testbed_dir=testbed_dir)
    try:
        code = suites_run.command(opts, out)
    except SuiteError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors become one line, not a usage screen and a traceback."""
    try:
        code = app(args=argv, standalone_mode=False)
    except UsageError as exc:
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)  # the help has been printed already
        hint = f" (see masonctl {ctx.command_path.split()[-1]} --help)" if ctx else ""
        message = getattr(exc, "format_message", exc.__str__)()
        err.print(f"[bold red]error:[/] {message}{hint}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
