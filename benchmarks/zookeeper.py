"""`make bench`: ZooKeeper setData and getData throughput, driven by the load generator.

Apache ZooKeeper 3.8 (Debian's package), a 3-server ensemble on this machine started and
stopped here, runs the original's two experiments (`--setDatas`, `--getDatas`) driven by
nodes/zkclient: P client processes x N sessions x K outstanding requests, sessions spread
over the servers. The ensemble runs twice: as configured by default (every write's
transaction log fsynced before it is acknowledged) and with forceSync=no, which shows what
the CPUs alone allow. `measure(connect_string, workload)` runs the same load against any
server speaking ZooKeeper's protocol, so other systems are rows beside it, in the same run:
every system of SERVED that `masonctl serve` can start (RSMKeeper: one Raft group of three
replicas on this machine) and, with `--connect name=host:port,...`, a cluster already
serving. Every row gives the CPU per operation of the servers and the load generators
together, and of each role (benchmarks/cpu.py); rows of a cluster given by `--connect`
count the load generators only. Writes bench-results/zookeeper.json and
bench-results/zookeeper.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from analysis.aggregate import summarize_run
from benchmarks import apache_zk
from benchmarks.cpu import CpuSampler, client_window, cpu_per_op, format_roles
from benchmarks.run import write_report
from benchmarks.serving import served
from nodes.zkclient.counts import read_counts
from orchestrator.placement import MachineSlot
from orchestrator.render import render
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.zkworkload import check_zk_workload, zk_client_procs

WORKLOADS = ("setDatas", "getDatas")
# Systems measured through `masonctl serve` (when it exists): (system, row label, flags).
SERVED = [
    ("rsmkeeper", "RSMKeeper (one Raft group of 3)", ()),
    *(("zkmason", f"ZK-Mason, {n} shard{'s' if n > 1 else ''} of 3 (one group of 3)",
        ("--nzk_servers", str(3 * n))) for n in (1, 2, 4)),
]
SERVE_TIMEOUT_S = 120.0
console = Console(stderr=True)


@dataclass(frozen=True)
class Shape:
    """The load: processes x sessions per process x outstanding requests per session."""

    processes: int = 2
    connections: int = 4
    concurrency: int = 16
    seconds: float = 5.0
    warmup_s: float = 2.0
    cooldown_s: float = 0.5
    value_size: int = 8
    nkeys: int = 128

    @property
    def outstanding(self) -> int:
        return self.processes * self.connections * self.concurrency


def servers_of(connect_string: str) -> list[dict[str, object]]:
    """`host:port,host:port` as endpoints; ValueError in one line when malformed."""
    servers: list[dict[str, object]] = []
    for part in connect_string.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r} in {connect_string!r} is not host:port")
        servers.append({"host": host, "port": int(port)})
    return servers


def ensemble_pids(zk: apache_zk.Ensemble) -> dict[int, tuple[str, str]]:
    """Apache ZooKeeper's server processes as the CPU sampler takes them: pid -> (name,
    the server's mode: leader, follower or standalone)."""
    return {proc.pid: (f"zookeeper-{i}", apache_zk.serving_mode(port) or "server")
            for i, (proc, port) in enumerate(zip(zk.procs, zk.client_ports, strict=True))}


def shape_spec(shape: Shape, name: str, **mix: Any) -> ExperimentSpec:
    """The experiment of the load generators for `shape`, with the mix flags given
    (setdatas=True, create_percent=100, ...), checked; SpecError in one line."""
    return check_zk_workload(ExperimentSpec(
        name=name, nclient_threads=shape.processes,
        client_connections=shape.connections, client_concurrency=shape.concurrency,
        expduration=shape.seconds, warmup=shape.warmup_s, cooldown=shape.cooldown_s,
        client_timeout_ms=10_000, value_size=shape.value_size, nkeys=shape.nkeys, **mix))


def run_load(spec: ExperimentSpec, connect_string: str, run_dir: Path, what: str,
             workload: dict[str, object] | None = None) -> list[Path]:
    """Runs the load generators of `spec` (their workload table updated with `workload`)
    against the servers in `run_dir` until they have all exited; their .zkops.json files.
    RuntimeError in one line when one fails (`what` names the run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    slot = MachineSlot("client-0", "client", 0, "127.0.0.1", str(run_dir))
    procs = zk_client_procs(spec, [slot], [servers_of(connect_string)])
    started = []
    try:
        for proc in procs:
            proc.context["workload"].update(workload or {})
            config = run_dir / f"{proc.name}.toml"
            config.write_text(render(proc.kind, proc.context))
            with open(run_dir / f"{proc.name}.log", "wb") as log:
                started.append(subprocess.Popen(
                    [sys.executable, "-m", proc.module, "--config", str(config)],
                    stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + spec.warmup + spec.expduration + spec.cooldown + 120
        for p in started:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait()
    failed = [(proc.name, p.returncode) for proc, p in zip(procs, started, strict=True)
              if p.returncode != 0]
    if failed:
        name, code = failed[0]
        tail = (run_dir / f"{name}.log").read_text(errors="replace").strip()
        last = tail.splitlines()[-1] if tail else ""
        raise RuntimeError(f"{what}: {name} exited {code}: {last}")
    return [Path(slot.outdir(proc.kind)) / f"{proc.name}.zkops.json" for proc in procs]


def measure(connect_string: str, workload: str, shape: Shape = Shape(),
            root: Path | None = None, label: str = "zk", server_dirs: Sequence[Path] = (),
            server_pids: dict[int, tuple[str, str]] | None = None) -> dict[str, object]:
    """One run of `workload` (setDatas or getDatas) against the servers; its row, with the
    CPU per operation answered in the clients' measured window of the load generators and
    of the servers: the node processes whose run directory is one of `server_dirs` (mason's
    systems) and the processes `server_pids` names (pid -> (name, role))."""
    if workload not in WORKLOADS:
        raise ValueError(f"workload {workload!r} is not one of {', '.join(WORKLOADS)}")
    spec = shape_spec(shape, f"{label}-{workload}", setdatas=workload == "setDatas",
                      getdatas=workload == "getDatas")
    with tempfile.TemporaryDirectory(prefix="zk-bench-") as tmp:
        run_dir = Path(root or tmp) / spec.name
        with CpuSampler(str(run_dir), *map(str, server_dirs), pids=server_pids) as sampler:
            counts_files = run_load(spec, connect_string, run_dir, f"{label} {workload}")
        summary = summarize_run(run_dir)
        errors = 0
        for path in counts_files:
            counts = read_counts(path)
            errors += sum(sum(k.errors.values()) for k in counts.kinds.values())
        start, end, ops = client_window(run_dir)
        cpu = cpu_per_op(sampler, [run_dir, *server_dirs], start, end, ops)
    servers = (sum(v for role, v in cpu.items() if role not in ("all", "client"))
               if cpu and (server_dirs or server_pids) else None)
    return {"system": label, "workload": workload, "ops_per_s": summary.throughput_ops,
            "p50_us": summary.p50_us, "p99_us": summary.p99_us, "p999_us": summary.p999_us,
            "errors": errors, "unanswered": summary.unanswered,
            "reconnects": summary.redirects, "outstanding": shape.outstanding,
            "cpu_us_per_op": cpu, "server_cpu_us_per_op": servers}


def can_serve() -> bool:
    """Whether this code base has `masonctl serve`."""
    return importlib.util.find_spec("orchestrator.serve") is not None


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| system | workload | ops/s | p50 us | p99 us | p99.9 us | errors "
             "| servers' CPU us/op | CPU us/op, servers + clients (by role) |",
             "|" + "---|" * 9]
    for r in rows:
        servers, cpu = r.get("server_cpu_us_per_op"), r.get("cpu_us_per_op")
        lines.append(
            f"| {r['system']} | {r['workload']} | {r['ops_per_s']:,.0f} | {r['p50_us']:,.0f} "
            f"| {r['p99_us']:,.0f} | {r['p999_us']:,.0f} | {r['errors']} "
            f"| {'-' if servers is None else f'{servers:,.1f}'} "
            f"| {format_roles(cpu if isinstance(cpu, dict) else {})} |")
    return "\n".join(lines) + "\n"


def _exit_on_term(signum: int, frame: FrameType | None) -> None:
    # A terminated benchmark still leaves the block that stops the ensemble.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=Shape.seconds,
                        help="measured seconds per run")
    parser.add_argument("--processes", type=int, default=Shape.processes)
    parser.add_argument("--connections", type=int, default=Shape.connections,
                        help="sessions per client process")
    parser.add_argument("--concurrency", type=int, default=Shape.concurrency,
                        help="outstanding requests per session")
    parser.add_argument("--connect", action="append", default=[], metavar="NAME=HOSTS",
                        help="also measure a serving cluster: name=host:port,host:port,...")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_term)
    shape = Shape(processes=args.processes, connections=args.connections,
                  concurrency=args.concurrency, seconds=args.seconds)
    others = []
    for item in args.connect:
        name, sep, hosts = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError(f"--connect {item!r} is not name=host:port,...")
            servers_of(hosts)
        except ValueError as exc:
            sys.exit(f"error: {exc}")
        others.append((name, hosts))
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    try:
        if apache_zk.missing():
            console.print(f"[yellow]Apache ZooKeeper needs {', '.join(apache_zk.missing())}: "
                          "skipping it (scripts/system-deps.sh installs it)")
        else:
            for force_sync in (True, False):
                label = "Apache ZooKeeper 3.8 (3 servers" + (")" if force_sync else
                                                              ", forceSync=no)")
                with tempfile.TemporaryDirectory(prefix="apache-zk-") as tmp:
                    console.print(f"starting {label}")
                    with apache_zk.Ensemble(3, Path(tmp), force_sync=force_sync) as zk:
                        for workload in WORKLOADS:
                            console.print(f"{label}: {workload}")
                            rows.append(measure(zk.connect_string, workload, shape,
                                                label=label, server_pids=ensemble_pids(zk)))
        if can_serve():
            for system, label, flags in SERVED:
                with tempfile.TemporaryDirectory(prefix=f"{system}-") as tmp:
                    console.print(f"starting {label} (masonctl serve)")
                    with served(system, Path(tmp), *flags, outdir=system,
                                timeout_s=SERVE_TIMEOUT_S) as serving:
                        for workload in WORKLOADS:
                            console.print(f"{label}: {workload}")
                            rows.append(measure(serving.hosts, workload, shape, label=label,
                                                server_dirs=[serving.run_dir]))
        for name, hosts in others:
            for workload in WORKLOADS:
                console.print(f"{name}: {workload}")
                rows.append(measure(hosts, workload, shape, label=name))
    except (RuntimeError, SpecError) as exc:
        sys.exit(f"error: {exc}")
    write_report(args.out, "zookeeper", "ZooKeeper setData and getData", args.seconds,
                 f"{shape.processes} load-generator process(es) x {shape.connections} "
                 f"session(s) x {shape.concurrency} outstanding request(s) "
                 f"({shape.outstanding} in all), {shape.value_size}-byte values, "
                 f"{shape.nkeys} keys per process; every server and client on this machine. "
                 "Apache ZooKeeper fsyncs its transaction log before acknowledging a write "
                 "unless forceSync=no. CPU per operation: the user + system CPU (from /proc) "
                 "of every process in the load generators' measured window over the "
                 "operations answered in it; servers' CPU: the server processes alone "
                 "(Apache ZooKeeper's JVMs; mason's sequencer, proxies and shards), then "
                 "servers and load generators together, by role (followers: all of them "
                 "together). Rows of a cluster given by --connect count the load "
                 "generators only.",
                 rows, table(rows))


if __name__ == "__main__":
    main()
