"""Runs an experiment end to end for the CLI and prints what a researcher looks at first."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from orchestrator.experiment import Cluster, Experiment, RunFailed
from orchestrator.hosts import HostError, LocalHost
from orchestrator.spec import ExperimentSpec, SpecError


def software_version() -> str:
    """The exact code that ran, recorded with the results."""
    here = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def provenance() -> dict[str, object]:
    return {
        "version": software_version(),
        "python": platform.python_version(),
        "controller": platform.node(),
    }


def execute_local(spec: ExperimentSpec, results: Path, console: Console) -> None:
    """Run every role on this machine; raises RunFailed/HostError. No summary printed."""
    host = LocalHost(python=spec.python or sys.executable, workdir=str(results))
    try:
        cluster = Cluster.local(spec, results.resolve(), host)
        Experiment(spec, cluster, results, console, provenance()).run()
    finally:
        host.close()


def run_local(spec: ExperimentSpec, results: Path, out: Console, err: Console) -> int:
    if results.exists() and any(results.iterdir()):
        err.print(f"[bold red]error:[/] {results} already holds a run; choose another --outdir")
        return 2
    out.print(
        f"[bold]{spec.name}[/]: {spec.system}, {spec.ngroups} group(s) of 3, "
        f"{spec.nclients * spec.nclient_threads} client process(es) x "
        f"{spec.client_concurrency} outstanding, {spec.nsequence_spaces} space(s), "
        f"{spec.expduration:g} s measured (all local)"
    )
    try:
        execute_local(spec, results, out)
    except (RunFailed, HostError, SpecError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 1
    return report(spec, results, out)


def run_remote(
    spec: ExperimentSpec,
    cluster: Cluster,
    results: Path,
    out: Console,
    err: Console,
    retries: int = 0,
) -> int:
    """Run on testbed machines over SSH; a run whose node fails to start is retried."""
    import shutil

    for attempt in range(retries + 1):
        try:
            for rundir in {(s.name, s.rundir) for s in cluster.slots}:
                host = cluster.hosts[rundir[0]]
                host.run(["rm", "-rf", rundir[1]], check=False)
            experiment = Experiment(spec, cluster, results, out, provenance())
            out.print(
                f"[bold]{spec.name}[/]: {spec.system} on {len(cluster.slots)} machine(s), "
                f"{spec.ngroups} group(s) of 3, {spec.nclients * spec.nclient_threads} client "
                f"process(es) x {spec.client_concurrency} outstanding, "
                f"{spec.expduration:g} s measured"
                + (f" (attempt {attempt + 1} of {retries + 1})" if attempt else "")
            )
            experiment.run()
            break
        except RunFailed as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            if exc.tail:
                err.print(exc.tail, style="dim", markup=False, highlight=False, soft_wrap=True)
            if not exc.retryable or attempt == retries:
                return 1
            shutil.rmtree(results, ignore_errors=True)
            err.print("retrying the run")
        except (HostError, SpecError) as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            return 1
    return report(spec, results, out)


def report(spec: ExperimentSpec, results: Path, out: Console) -> int:
    """Merge the clients' files, print throughput, percentiles and the contiguity verdict."""
    from analysis.aggregate import merge_machine_dats, summarize_run
    from analysis.contiguity import check_run
    from analysis.datfiles import DatFormatError

    try:
        merge_machine_dats(results)
        summary = summarize_run(results)
    except (DatFormatError, ValueError) as exc:
        out.print(f"[bold red]error:[/] cannot summarise {results}: {exc}")
        return 1
    out.print(f"results: {results}")
    out.print(f"throughput: {summary.throughput_ops:,.0f} ops/s")
    out.print(
        "latency (us): "
        f"p50 {summary.p50_us:.0f}  p99 {summary.p99_us:.0f}  "
        f"p99.9 {summary.p999_us:.0f}  p99.99 {summary.p9999_us:.0f}"
    )
    if not spec.record_seqnums:
        out.print("contiguity: not checked (run with --record-seqnums)")
        return 0
    try:
        verdict = check_run(results)
    except (DatFormatError, ValueError) as exc:
        out.print(f"contiguity: FAILED (unreadable records: {exc})")
        return 1
    lines = verdict.lines()
    for line in lines[:-1] if verdict.ok else lines:
        out.print(line)
    if verdict.ok:
        out.print(lines[-1])
    return 0 if verdict.ok else 1
