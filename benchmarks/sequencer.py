"""`make bench`: how many requests one sequencer process serves, and so how many groups.

One real sequencer (`python -m nodes.sequencer --config ...`, its config rendered by the
orchestrator's template, started afresh for every point) against 1, 4, 16 and 64
synthetic group leaders (benchmarks/seq_leaders.py: the real wire protocol, hello first,
a floor that follows the answers), each with 4 requests in flight (4 share a frame when
the sequencer answers a burst) and then with 1 (every request its own frame), asking for
1, 16 or 256 numbers per request in one space. The leaders run in up to DRIVERS driver
processes. The sequencer's own CPU over the measured window comes from /proc, so each row
shows whether the sequencer (CPU near 100%) or the drivers set the pace.
Writes bench-results/sequencer.json and bench-results/sequencer.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cpu import proc_cpu_s
from benchmarks.run import free_port, write_report
from nodes.metrics import LatencyHistogram
from nodes.wire import MAX_BATCH_COUNT
from orchestrator.render import render

LEADERS = (1, 4, 16, 64)
BATCHES = (1, 16, 256)
OUTSTANDING = (4, 1)  # requests in flight per leader
DRIVERS = 4  # driver processes at most (never more than leaders)
NSPACES = 1
WARMUP_S = 0.5  # from every leader loaded to the measured window
REPO = Path(__file__).resolve().parent.parent

# One group of three on this machine at saturation (benchmarks/reference/core.md, 4 client
# processes x 64 outstanding): the load the projection divides the ceiling by.
GROUP_OPS_PER_S = 340_000
GROUP_OPS_PER_BATCH = 100


def groups_carried(ceiling_rps: float, group_ops_per_s: float, ops_per_batch: float) -> float:
    """How many groups, each serving `group_ops_per_s` operations in batches of
    `ops_per_batch` (one sequencer request per batch), one sequencer answering at most
    `ceiling_rps` requests per second carries."""
    if group_ops_per_s <= 0 or ops_per_batch <= 0:
        raise ValueError("a group's load and batch size must be positive")
    return ceiling_rps / (group_ops_per_s / ops_per_batch)


def ceilings(rows: list[dict[str, object]],
             key: str = "requests_per_s") -> dict[tuple[int, int], float]:
    """Per (outstanding, leaders), the lowest `key` (requests/s) over the batch sizes: the
    request rate the sequencer sustains whatever numbers each request asks for."""
    out: dict[tuple[int, int], float] = {}
    for r in rows:
        outstanding, leaders, rps = r["outstanding"], r["leaders"], r[key]
        if rps is None:
            continue
        assert isinstance(outstanding, int) and isinstance(leaders, int)
        assert isinstance(rps, (int, float))
        where = (outstanding, leaders)
        out[where] = min(out.get(where, rps), rps)
    return out


class Sequencer:
    """A sequencer process started the way the orchestrator starts one."""

    def __init__(self, run_dir: Path, profile: Path | None) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.name = "sequencer-0"
        self.run_dir = run_dir
        config = run_dir / f"{self.name}.toml"
        config.write_text(render("sequencer", {
            "name": self.name, "outdir": str(run_dir), "nspaces": NSPACES, "epoch": 1,
            "sequencers": 1, "standby": False, "groups": {},
            "listen": {"host": "127.0.0.1", "port": self.port},
        }))
        env = dict(os.environ)
        if profile is not None:
            env["MASON_PROFILE"] = str(profile)
        self.log = (run_dir / f"{self.name}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nodes.sequencer", "--config", str(config)],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        ready = run_dir / f"{self.name}.ready"
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"error: the sequencer did not start; see {self.log.name}")
            time.sleep(0.02)

    def cpu_s(self) -> float:
        cpu = proc_cpu_s(self.proc.pid)
        if cpu is None:
            raise SystemExit("error: the sequencer died during the run")
        return cpu

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a clean stop writes the profile
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def split(leaders: int, drivers: int) -> list[int]:
    """Leaders per driver process, as even as possible."""
    n = min(leaders, drivers)
    return [leaders // n + (1 if k < leaders % n else 0) for k in range(n)]


def point(leaders: int, batch: int, seconds: float, drivers: int, outstanding: int,
          run_dir: Path, profile: Path | None) -> dict[str, object]:
    seq = Sequencer(run_dir, profile)
    procs: list[subprocess.Popen[str]] = []
    try:
        first = 0
        hists = [run_dir / f"driver-{k}.hist" for k in range(min(leaders, drivers))]
        for n, hist_path in zip(split(leaders, drivers), hists, strict=True):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "benchmarks.seq_leaders", str(seq.port), str(first),
                 str(n), str(outstanding), str(batch), str(hist_path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO))
            first += n
        for p in procs:  # every leader connected, greeted and with its requests in flight
            assert p.stdout is not None
            if p.stdout.readline().strip() != "loaded":
                raise SystemExit("error: a leader driver failed to load the sequencer")
        start = time.time() + WARMUP_S
        end = start + seconds
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"{start:.6f} {end:.6f}\n")
            p.stdin.flush()
        time.sleep(max(0.0, start - time.time()))
        seq_cpu0 = seq.cpu_s()
        drv_cpu0 = sum(proc_cpu_s(p.pid) or 0.0 for p in procs)
        time.sleep(max(0.0, end - time.time()))
        seq_cpu = seq.cpu_s() - seq_cpu0
        drv_cpu = sum(proc_cpu_s(p.pid) or 0.0 for p in procs) - drv_cpu0
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=60)
            if p.returncode != 0:
                raise SystemExit(f"error: a leader driver failed (exit {p.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        seq.stop()
    errors = [e for r in results for e in r["errors"]]
    if errors:
        raise SystemExit(f"error: the sequencer answered wrongly: {errors[0]}")
    hist = LatencyHistogram()
    for hist_path in hists:
        hist.merge(LatencyHistogram.read(hist_path))
    requests = sum(r["requests"] for r in results)
    rps = requests / seconds
    p50, p99 = hist.percentiles((0.5, 0.99))
    return {
        "leaders": leaders, "batch": batch, "outstanding": outstanding,
        "drivers": len(results), "requests_per_s": rps,
        "numbers_per_s": rps * batch * NSPACES, "p50_us": p50, "p99_us": p99,
        "seq_cpu_pct": 100 * seq_cpu / seconds,
        "seq_cpu_us_per_req": 1e6 * seq_cpu / requests if requests else None,
        # What one whole core would serve at this cost per request: the ceiling free of
        # whatever else the machine runs (the drivers, other processes).
        "requests_per_cpu_s": requests / seq_cpu if seq_cpu > 0 else None,
        "drivers_cpu_pct": 100 * drv_cpu / seconds,
    }


def fmt(value: object, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict[str, object]]) -> str:
    lines = ["| outstanding | leaders | batch | requests/s | numbers/s | p50 us | p99 us "
             "| sequencer CPU % | sequencer CPU us/request "
             "| requests per sequencer CPU-second | drivers CPU % |", "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['outstanding']} | {r['leaders']} | {r['batch']} | "
            f"{fmt(r['requests_per_s'])} | {fmt(r['numbers_per_s'])} | {fmt(r['p50_us'])} | "
            f"{fmt(r['p99_us'])} | {fmt(r['seq_cpu_pct'])} | "
            f"{fmt(r['seq_cpu_us_per_req'], '.1f')} | {fmt(r['requests_per_cpu_s'])} | "
            f"{fmt(r['drivers_cpu_pct'])} |")
    return "\n".join(lines) + "\n"


def projection(rows: list[dict[str, object]], group_ops: float, group_batch: float) -> str:
    per_group = group_ops / group_batch
    measured, per_cpu = ceilings(rows), ceilings(rows, "requests_per_cpu_s")

    def groups(rps: float | None) -> str:
        return "-" if rps is None else f"{groups_carried(rps, group_ops, group_batch):.0f}"

    lines = [f"\nA group serving {group_ops:,.0f} ops/s in batches of {group_batch:g} ops "
             f"sends {per_group:,.0f} requests/s. Per leader count, the lowest requests/s "
             "over the batch sizes, measured and per CPU-second of the sequencer (what it "
             "serves with a core of its own), and the groups of that load it carries:\n",
             "| outstanding | leaders | requests/s measured | groups "
             "| requests per CPU-second | groups |", "|---|---|---|---|---|---|"]
    for (outstanding, leaders), rps in sorted(measured.items(), reverse=True):
        cpu_rps = per_cpu.get((outstanding, leaders))
        lines.append(f"| {outstanding} | {leaders} | {rps:,.0f} | {groups(rps)} | "
                     f"{fmt(cpu_rps)} | {groups(cpu_rps)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per point")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--leaders", type=int, nargs="*", default=list(LEADERS))
    parser.add_argument("--batches", type=int, nargs="*", default=list(BATCHES),
                        help="numbers per request (one space)")
    parser.add_argument("--outstanding", type=int, nargs="*", default=list(OUTSTANDING),
                        help="requests in flight per leader")
    parser.add_argument("--drivers", type=int, default=DRIVERS,
                        help="driver processes the leaders are spread over, at most")
    parser.add_argument("--group-ops", type=float, default=GROUP_OPS_PER_S,
                        help="one group's ops/s at saturation, for the projection")
    parser.add_argument("--group-batch", type=float, default=GROUP_OPS_PER_BATCH,
                        help="ops per batch of that group, for the projection")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write each point's sequencer profile (cProfile) here")
    args = parser.parse_args(argv)
    if (args.seconds <= 0 or args.drivers < 1 or any(n < 1 for n in args.outstanding)
            or any(n < 1 for n in args.leaders)
            or any(b < 1 or b > MAX_BATCH_COUNT for b in args.batches)):
        raise SystemExit("error: seconds, leaders, batches, outstanding and drivers must be "
                         f"positive (batches at most {MAX_BATCH_COUNT})")
    try:
        groups_carried(1.0, args.group_ops, args.group_batch)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="sequencer-bench-") as tmp:
        for outstanding in args.outstanding:
            for leaders in args.leaders:
                for batch in args.batches:
                    where = f"o{outstanding}-l{leaders}-b{batch}"
                    print(f"{outstanding} outstanding x {leaders} leaders, batch {batch}",
                          file=sys.stderr, flush=True)
                    rows.append(point(
                        leaders, batch, args.seconds, args.drivers, outstanding,
                        Path(tmp) / where, None if args.profile is None else args.profile / where))
    write_report(
        args.out, "sequencer", "One sequencer's ceiling", args.seconds,
        f"One sequencer process, {NSPACES} sequence space; synthetic group leaders "
        f"(benchmarks/seq_leaders.py) with the given requests outstanding each, spread over up "
        f"to {args.drivers} driver processes; numbers/s = requests/s x batch x {NSPACES} "
        "space. CPU from /proc over the measured window; requests per sequencer CPU-second: "
        "what it serves with a core of its own, free of what else the machine runs.", rows,
        table(rows) + projection(rows, args.group_ops, args.group_batch))

if __name__ == "__main__":
    main()
