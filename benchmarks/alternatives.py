"""`make bench`: what a user who needs fault-tolerant, gap-free, increasing numbers uses
today, beside mason, on this machine in the same run.

- etcd: a cluster of 3 members (Debian's etcd-server); every Put to one key answers the
  store's new revision, the number. Driven by benchmarks/etcd_load.py (raw gRPC, several
  processes, all to the leader); the run's revisions are checked distinct, gap-free and
  increasing per slot. Also with the members' data on tmpfs, where fsync costs nothing.
- ZooKeeper: an Apache ZooKeeper 3.8 ensemble of 3 (benchmarks/apache_zk.py); every
  create of a sequential znode is a number (its parent's next sequence number), driven by
  the jute load generator (nodes/zkclient, creates only, sequential). Also with
  forceSync=no.
- Redis INCR, unreplicated (the upper reference): redis-benchmark, N connections with one
  request each (closed loop, no pipelining), and the pipelined driver of benchmarks/drivers.py
  (N requests in flight on one connection, the shape of a mason client process).
- mason: benchmarks.run.bench_mason (one sequencer, one group of three).

Each system at the same totals of outstanding requests (64 and 256 by default). CPU per
number: user + system CPU of the system's processes ("server") and of its load generators
("client"), sampled from /proc, over the measured window, divided by the numbers handed
out in it. Writes bench-results/alternatives.json and bench-results/alternatives.md.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from analysis.aggregate import summarize_run
from benchmarks import apache_zk, etcd, etcd_load
from benchmarks.cpu import CpuSampler, Track, client_window, cpu_per_op
from benchmarks.run import bench_mason, free_port, wait_port, write_report
from benchmarks.zookeeper import Shape, _exit_on_term, ensemble_pids, run_load, shape_spec
from nodes.metrics import LatencyHistogram
from nodes.zkclient.counts import read_counts
from orchestrator.spec import SpecError

OUTSTANDING = (64, 256)
SYSTEMS = ("etcd", "zookeeper", "redis", "mason")
PER_PROCESS = 64  # outstanding per load-generator process where a system has several
TMPFS = Path("/dev/shm")
console = Console(stderr=True)
Row = dict[str, Any]


def watch(sampler: CpuSampler, pid: int, name: str, role: str) -> None:
    """Has the sampler take a process started after it (a load generator), as `role`."""
    sampler.tracks[pid] = Track(name, role)


def per_number(sampler: CpuSampler, start: float, end: float, numbers: int,
               run_dirs: Sequence[Path] = ()) -> dict[str, float]:
    """CPU us per number over [start, end], in all, per role, and for the servers (every
    role but the load generators') together."""
    cpu = cpu_per_op(sampler, run_dirs, start, end, numbers)
    if cpu:
        cpu["server"] = cpu["all"] - cpu.get("client", 0.0)
    return cpu


def split_evenly(total: int, per_process: int, least: int = 1) -> tuple[int, int]:
    """(processes, outstanding each) for `total` outstanding: about `per_process` each, at
    least `least` processes, the total kept exact."""
    processes = max(least, total // per_process)
    while total % processes:
        processes -= 1
    return processes, total // processes


def procs(n: int) -> str:
    return f"{n} process{'es' if n != 1 else ''}"


# ---- etcd ------------------------------------------------------------------------------------

def bench_etcd(cluster: etcd.Cluster, outstanding: int, seconds: float, workdir: Path,
               label: str) -> Row:
    leader = asyncio.run(etcd_load.find_leader(cluster.endpoints))
    processes, each = split_evenly(outstanding, PER_PROCESS, least=2)
    outdir = workdir / f"load-{outstanding}"
    outdir.mkdir(parents=True, exist_ok=True)
    members = {p.pid: (f"etcd-{i}", "leader" if endpoint == leader else "follower")
               for i, (p, endpoint) in enumerate(zip(cluster.procs, cluster.endpoints,
                                                     strict=True))}
    with CpuSampler(pids=members) as cpu:
        drivers = []
        for i in range(processes):
            drivers.append(subprocess.Popen(
                [sys.executable, "-m", "benchmarks.etcd_load", leader, str(each),
                 str(seconds), str(outdir), f"driver-{i}"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            watch(cpu, drivers[-1].pid, f"driver-{i}", "client")
        results = []
        for i, driver in enumerate(drivers):
            out, err = driver.communicate(timeout=seconds + 120)
            if driver.returncode != 0:
                raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else
                                   f"etcd driver {i} exited {driver.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    hist = LatencyHistogram()
    slots: list[list[int]] = []
    for i in range(processes):
        hist.merge(LatencyHistogram.read(outdir / f"driver-{i}.hist"))
        slots += msgspec.json.decode((outdir / f"driver-{i}.revisions.json").read_bytes(),
                                     type=list[list[int]])
    first, last = etcd_load.check_revisions(slots)
    console.print(f"  {label}: revisions {first}..{last}: {last - first + 1} puts, distinct, "
                  "gap-free, increasing per slot", soft_wrap=True)
    start = min(r["window_start_unix"] for r in results)
    end = max(r["window_end_unix"] for r in results)
    ops = sum(int(r["ops"]) for r in results)
    return {"system": label, "outstanding": outstanding,
            "shape": f"{procs(processes)} x {each} (raw gRPC Put, to the leader)",
            "numbers_per_s": sum(r["ops_per_s"] for r in results),
            "p50_us": hist.percentile(0.5), "p99_us": hist.percentile(0.99),
            "cpu_us_per_number": per_number(cpu, start, end, ops),
            "check": f"revisions {first}..{last}: distinct, gap-free"}


def etcd_missing() -> list[str]:
    return etcd.missing() + etcd_load.missing()


def etcd_rows(totals: list[int], seconds: float) -> list[Row]:
    rows = []
    for on_tmpfs in (False, True):
        label = "etcd 3.4, 3 members" + (", data on tmpfs" if on_tmpfs else "")
        where = str(TMPFS) if on_tmpfs and TMPFS.is_dir() else None
        with tempfile.TemporaryDirectory(prefix="etcd-bench-", dir=where) as tmp:
            console.print(f"starting {label}")
            with etcd.Cluster(3, Path(tmp)) as cluster:
                for total in totals:
                    console.print(f"{label}: {total} outstanding")
                    rows.append(bench_etcd(cluster, total, seconds, Path(tmp), label))
    return rows


# ---- ZooKeeper -------------------------------------------------------------------------------

def bench_zookeeper(zk: apache_zk.Ensemble, outstanding: int, seconds: float, workdir: Path,
                    label: str) -> Row:
    processes, each = split_evenly(outstanding, PER_PROCESS)
    connections = 4 if each % 4 == 0 else 1
    shape = Shape(processes=processes, connections=connections,
                  concurrency=each // connections, seconds=seconds, nkeys=1)
    spec = shape_spec(shape, f"zk-{outstanding}", create_percent=100.0)
    run_dir = workdir / spec.name
    # The load generators are node processes, found by their config's path as they start.
    with CpuSampler(str(run_dir), pids=ensemble_pids(zk)) as cpu:
        counts_files = run_load(spec, zk.connect_string, run_dir,
                                f"{label} sequential creates", {"sequential": True})
    errors = 0
    for path in counts_files:
        created = read_counts(path).kinds.get("create")
        errors += sum(created.errors.values()) if created else 0
    if errors:
        raise RuntimeError(f"{label}: {errors} sequential creates refused")
    summary = summarize_run(run_dir)
    start, end, ops = client_window(run_dir)
    return {"system": label, "outstanding": outstanding,
            "shape": f"{procs(processes)} x {connections} sessions x "
                     f"{each // connections} (sequential create)",
            "numbers_per_s": summary.throughput_ops, "p50_us": summary.p50_us,
            "p99_us": summary.p99_us, "check": "every create answered OK",
            "cpu_us_per_number": per_number(cpu, start, end, ops, [run_dir])}


def zookeeper_rows(totals: list[int], seconds: float) -> list[Row]:
    if apache_zk.missing():
        console.print(f"[yellow]Apache ZooKeeper needs {', '.join(apache_zk.missing())}: "
                      "skipping it (scripts/system-deps.sh installs it)")
        return []
    rows = []
    for force_sync in (True, False):
        label = "ZooKeeper 3.8, 3 servers" + ("" if force_sync else ", forceSync=no")
        with tempfile.TemporaryDirectory(prefix="apache-zk-") as tmp:
            console.print(f"starting {label}")
            with apache_zk.Ensemble(3, Path(tmp), force_sync=force_sync) as zk:
                # The JVM compiles its hot paths under the first seconds of load, as it has
                # long done in a server that runs: one unmeasured run first.
                console.print(f"{label}: warming the JVM up")
                bench_zookeeper(zk, totals[0], min(seconds, 3.0), Path(tmp) / "jit", label)
                for total in totals:
                    console.print(f"{label}: {total} outstanding")
                    rows.append(bench_zookeeper(zk, total, seconds, Path(tmp), label))
    return rows


# ---- Redis -----------------------------------------------------------------------------------

def parse_redis_benchmark_csv(text: str) -> dict[str, float]:
    """redis-benchmark --csv's INCR line: requests/s and the p50/p99 latency (us);
    ValueError in one line when the output has no such line."""
    try:
        records = list(csv.DictReader(io.StringIO(text, newline=None)))  # \r: progress
    except csv.Error as exc:
        raise ValueError(f"redis-benchmark's output is not CSV: {exc}") from None
    for record in records:
        if record.get("test") == "INCR":
            try:
                return {"ops_per_s": float(record["rps"]),
                        "p50_us": float(record["p50_latency_ms"]) * 1000,
                        "p99_us": float(record["p99_latency_ms"]) * 1000}
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"redis-benchmark's INCR line is malformed: {record}") from None
    first = (text.strip().splitlines() or ["nothing"])[0]
    raise ValueError(f"redis-benchmark printed no INCR line: {first[:120]}")


def run_redis_benchmark(tool: str, port: int, clients: int, requests: int,
                        cpu: CpuSampler) -> tuple[dict[str, float], float, float]:
    proc = subprocess.Popen([tool, "-p", str(port), "-t", "incr", "-c", str(clients),
                             "-n", str(requests), "--csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch(cpu, proc.pid, f"redis-benchmark-{proc.pid}", "client")
    start = time.time()
    out, err = proc.communicate(timeout=300)
    end = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"redis-benchmark exited {proc.returncode}: {err.strip()[:200]}")
    return parse_redis_benchmark_csv(out), start, end


def bench_redis(server: subprocess.Popen[bytes], port: int, outstanding: int,
                seconds: float) -> list[Row]:
    rows = []
    tool = shutil.which("redis-benchmark")
    if tool:
        with CpuSampler(pids={server.pid: ("redis-server", "server")}) as cpu:
            # A short first run sizes the measured one to about `seconds`.
            probe, _, _ = run_redis_benchmark(tool, port, outstanding, 20_000, cpu)
            requests = max(20_000, int(probe["ops_per_s"] * seconds))
            result, start, end = run_redis_benchmark(tool, port, outstanding, requests, cpu)
        # Its CPU over its whole life (start-up included) over the requests it made.
        rows.append({"system": "Redis INCR, unreplicated: redis-benchmark",
                     "outstanding": outstanding,
                     "shape": f"{outstanding} connections x 1 (no pipelining), "
                              f"{requests} requests",
                     "numbers_per_s": result["ops_per_s"], "p50_us": result["p50_us"],
                     "p99_us": result["p99_us"],
                     "cpu_us_per_number": per_number(cpu, start, end, requests)})
    with CpuSampler(pids={server.pid: ("redis-server", "server")}) as cpu:
        driver = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.drivers", "redis", str(port), str(outstanding),
             str(seconds)], stdout=subprocess.PIPE, text=True)
        watch(cpu, driver.pid, "redis-driver", "client")
        out, _ = driver.communicate(timeout=seconds + 60)
    if driver.returncode != 0:
        raise RuntimeError(f"the redis driver exited {driver.returncode}")
    r = json.loads(out.strip().splitlines()[-1])
    rows.append({"system": "Redis INCR, unreplicated: pipelined driver",
                 "outstanding": outstanding,
                 "shape": f"1 connection x {outstanding} pipelined",
                 "numbers_per_s": r["ops_per_s"], "p50_us": r["p50_us"], "p99_us": r["p99_us"],
                 "cpu_us_per_number": per_number(cpu, r["window_start_unix"],
                                                 r["window_end_unix"], int(r["ops"]))})
    return rows


def redis_rows(totals: list[int], seconds: float) -> list[Row]:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(server).exists():
        console.print("[yellow]redis-server not installed: skipping Redis")
        return []
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_port(port)
        for total in totals:
            console.print(f"Redis INCR: {total} outstanding")
            rows += bench_redis(proc, port, total, seconds)
    finally:
        proc.kill()
        proc.wait()
    return rows


# ---- mason -----------------------------------------------------------------------------------

def mason_rows(totals: list[int], seconds: float) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="mason-alt-") as tmp:
        for total in totals:
            processes, each = split_evenly(total, PER_PROCESS)
            console.print(f"mason: {processes} x {each} outstanding")
            m = bench_mason(each, seconds, Path(tmp), processes)
            roles = dict(m["cpu_us_per_op"])
            if roles:
                roles["server"] = roles["all"] - roles.get("client", 0.0)
            rows.append({"system": "mason, 1 sequencer + 1 group of 3", "outstanding": total,
                         "shape": f"{procs(processes)} x {each}",
                         "numbers_per_s": m["ops_per_s"], "p50_us": m["p50_us"],
                         "p99_us": m["p99_us"], "cpu_us_per_number": roles})
    return rows


# ---- the report ------------------------------------------------------------------------------

def fmt(value: object, spec: str = ",.0f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "n/a"


def ratios(rows: list[Row]) -> list[Row]:
    """Per total outstanding: mason's numbers/s over each other system's."""
    out = []
    for total in sorted({int(r["outstanding"]) for r in rows}):
        at = [r for r in rows if r["outstanding"] == total]
        mason = next((r for r in at if r["system"].startswith("mason")), None)
        if mason is None:
            continue
        for r in at:
            if r is not mason and r["numbers_per_s"]:
                out.append({"outstanding": total, "over": r["system"],
                            "mason_over": mason["numbers_per_s"] / r["numbers_per_s"]})
    return out


def table(rows: list[Row]) -> str:
    lines = ["| system | outstanding | load | numbers/s | p50 us | p99 us "
             "| server CPU us/number | load generator CPU us/number | checked |",
             "|" + "---|" * 9]
    for r in rows:
        cpu = r.get("cpu_us_per_number") or {}
        lines.append(
            f"| {r['system']} | {r['outstanding']} | {r['shape']} | "
            f"{fmt(r['numbers_per_s'])} | {fmt(r['p50_us'])} | {fmt(r['p99_us'])} | "
            f"{fmt(cpu.get('server'), ',.1f')} | {fmt(cpu.get('client'), ',.1f')} | "
            f"{r.get('check', '-')} |")
    lines += ["", "mason's numbers/s over each system's at the same outstanding total:", "",
              "| outstanding | system | mason / system |", "|---|---|---|"]
    for q in ratios(rows):
        lines.append(f"| {q['outstanding']} | {q['over']} | {q['mason_over']:.2f} |")
    return "\n".join(lines) + "\n"


BENCHES: dict[str, Callable[[list[int], float], list[Row]]] = {
    "etcd": lambda totals, seconds: [] if etcd_missing() else etcd_rows(totals, seconds),
    "zookeeper": zookeeper_rows, "redis": redis_rows, "mason": mason_rows,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--outstanding", type=int, nargs="+", default=list(OUTSTANDING),
                        help="outstanding requests in all, per point")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every system this many times, one after the other, and "
                             "keep each point's median (for a machine shared with other work)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    if any(t <= 0 for t in args.outstanding) or args.seconds <= 0 or args.rounds <= 0:
        sys.exit("error: --outstanding, --seconds and --rounds must be positive")
    signal.signal(signal.SIGTERM, _exit_on_term)
    if "etcd" in args.systems and etcd_missing():
        console.print(f"[yellow]etcd needs {', '.join(etcd_missing())}: skipping it "
                      "(`make bench` installs them)")
    args.out.mkdir(parents=True, exist_ok=True)
    measured: list[Row] = []
    try:
        for round_ in range(args.rounds):
            for system in args.systems:
                if args.rounds > 1:
                    console.print(f"round {round_ + 1} of {args.rounds}: {system}")
                measured += BENCHES[system](args.outstanding, args.seconds)
    except (RuntimeError, SpecError, ValueError, etcd_load.ProtoError) as exc:
        sys.exit(f"error: {exc}")
    rows = medians(measured)
    rows.sort(key=lambda r: (r["outstanding"], SYSTEMS.index(system_key(r))))
    ratio_rows: list[dict[str, object]] = [{"ratio": q} for q in ratios(rows)]
    write_report(args.out, "alternatives", "Gap-free increasing numbers: the alternatives",
                 args.seconds,
                 "Every server and load generator on this machine, one system at a time. "
                 "etcd: every Put to one key is a number (its revision), sent by raw gRPC "
                 "calls from several load-generator processes to the leader; ZooKeeper: "
                 "every sequential create is one (its parent's next sequence number, one "
                 "parent per load-generator process; the JVM warmed up by an unmeasured run "
                 "first); Redis INCR is unreplicated, the upper reference; mason: one "
                 "sequencer and one group of three proxies, its Raft log written but not "
                 "fsynced (`--durable off`, the default), while etcd and ZooKeeper fsync "
                 "before they answer unless their data is on tmpfs or forceSync=no. CPU per "
                 "number: user + system CPU of the system's processes (server) and of its "
                 "load generators, over the measured window (for redis-benchmark, its whole "
                 "run), divided by the numbers handed out in it. On a machine of few cores "
                 "the load generators compete with the servers for them: the two CPU "
                 "columns show what each side takes."
                 + (f" Each row: the median of {args.rounds} rounds by numbers/s (all of "
                    "them in numbers_per_s_rounds)." if args.rounds > 1 else ""),
                 [*rows, *ratio_rows], table(rows))


def medians(measured: list[Row]) -> list[Row]:
    """One row per system and outstanding total, in the order first measured: the round
    with the median numbers/s (the lower middle one of an even count), with every
    round's numbers/s beside it."""
    points: dict[tuple[str, int], list[Row]] = {}
    for row in measured:
        points.setdefault((row["system"], row["outstanding"]), []).append(row)
    rows = []
    for same in points.values():
        ranked = sorted(same, key=lambda r: float(r["numbers_per_s"]))
        median = dict(ranked[(len(ranked) - 1) // 2])
        if len(same) > 1:
            median["numbers_per_s_rounds"] = [r["numbers_per_s"] for r in same]
        rows.append(median)
    return rows


def system_key(row: Row) -> str:
    name = str(row["system"]).lower()
    return next((s for s in SYSTEMS if name.startswith(s)), "mason")


if __name__ == "__main__":
    main()
