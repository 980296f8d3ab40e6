"""Runs an experiment end to end for the CLI and prints what a researcher looks at first."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from orchestrator import render, systems
from orchestrator.experiment import Experiment, RunFailed, RunMachines
from orchestrator.hosts import HostError, LocalHost
from orchestrator.placement import MachineSlot
from orchestrator.spec import ExperimentSpec, SpecError


@dataclass(frozen=True)
class RunResult:
    """How a run ended: the exit status `masonctl run` gives, and for a failure its one-line
    cause, the failed process's log tail, and whether running it again may help."""

    code: int
    cause: str = ""
    tail: str = ""
    retryable: bool = False

    @property
    def ok(self) -> bool:
        return self.code == 0

    @classmethod
    def of(cls, exc: RunFailed) -> RunResult:
        return cls(1, str(exc), exc.tail, exc.retryable)


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


LATEST = "latest"  # <results root>/latest: a symlink to the last `masonctl run`


def link_latest(results: Path) -> None:
    """Point `latest` beside the run at it (relative, replaced atomically). A file or folder
    a user named `latest` is left alone. Not for a suite's runs: its directory holds runs
    only, and globs such as `*/done` would see the link as one more."""
    link = results.parent / LATEST
    if results.name == LATEST or not results.is_dir():
        return
    if link.exists() and not link.is_symlink():
        return
    tmp = results.parent / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(results.name)
    tmp.replace(link)


def execute_local(spec: ExperimentSpec, results: Path, console: Console) -> None:
    """Run every role on this machine; raises RunFailed/HostError. No summary printed."""
    host = LocalHost(python=spec.python or sys.executable, workdir=str(results))
    try:
        machines = RunMachines.local(spec, results.resolve(), host)
        Experiment(spec, machines, results, console, provenance()).run()
    finally:
        host.close()


def _clients(spec: ExperimentSpec) -> str:
    return (f"{spec.nclients * spec.nclient_threads} client process(es) x "
            f"{spec.client_concurrency} outstanding")


def _headline(spec: ExperimentSpec, where: str) -> str:
    system = systems.get(spec.system)
    return (f"[bold]{spec.name}[/]: {spec.system}, {system.describe(spec)}, {_clients(spec)}, "
            f"{system.workload(spec)}, {spec.expduration:g} s measured ({where})")


def run_local(spec: ExperimentSpec, results: Path, out: Console, err: Console) -> RunResult:
    if results.exists() and any(results.iterdir()):
        cause = f"{results} already holds a run; choose another --outdir"
        err.print(f"[bold red]error:[/] {cause}")
        return RunResult(2, cause)
    out.print(_headline(spec, "all local"))
    try:
        execute_local(spec, results, out)
    except RunFailed as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return RunResult.of(exc)
    except (HostError, SpecError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return RunResult(1, str(exc))
    return report(spec, results, out)


def run_remote(
    spec: ExperimentSpec,
    machines: RunMachines,
    results: Path,
    out: Console,
    err: Console,
    retries: int = 0,
) -> RunResult:
    """Run on testbed machines over SSH; a run whose node fails to start is retried."""
    import shutil

    system = systems.get(spec.system)
    for attempt in range(retries + 1):
        try:
            for rundir in {(s.name, s.rundir) for s in machines.slots}:
                host = machines.hosts[rundir[0]]
                host.run(["rm", "-rf", rundir[1]], check=False)
            experiment = Experiment(spec, machines, results, out, provenance())
            out.print(
                f"[bold]{spec.name}[/]: {spec.system} on {len(machines.slots)} machine(s), "
                f"{system.describe(spec)}, {_clients(spec)}, {spec.expduration:g} s measured"
                + (f" (attempt {attempt + 1} of {retries + 1})" if attempt else "")
            )
            experiment.run()
            break
        except RunFailed as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            if exc.tail:
                err.print(exc.tail, style="dim", markup=False, highlight=False, soft_wrap=True)
            if not exc.retryable or attempt == retries:
                return RunResult.of(exc)
            shutil.rmtree(results, ignore_errors=True)
            err.print("retrying the run")
        except (HostError, SpecError) as exc:
            err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            return RunResult(1, str(exc))
    return report(spec, results, out)


def dry_run(spec: ExperimentSpec, slots: list[MachineSlot], out: Console,
            err: Console) -> RunResult:
    """Place every process and render (so validate) every config; start nothing. Prints a
    row per process in start order and, for the Corfu systems, the chains."""
    from rich.table import Table

    from nodes.config import ConfigError

    system = systems.get(spec.system)
    try:
        placement = system.place(spec, slots)
        for proc in placement.procs:
            render.render(proc.kind, proc.context)
    except (SpecError, ConfigError) as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return RunResult(1, str(exc))
    out.print(_headline(spec, "dry run: nothing started"))
    table = Table(show_edge=False, pad_edge=False)
    for column in ("process", "kind", "machine", "listens on"):
        table.add_column(column, no_wrap=True)
    for kind in system.start_order:
        for proc in placement.by_kind(kind):
            listen = proc.context.get("listen")
            where = f"{listen['host']}:{listen['port']}" if listen else "-"
            table.add_row(proc.name, kind, proc.machine, where)
    out.print(table)
    if placement.log is not None:
        for c, chain in enumerate(placement.log.chains):
            out.print(f"chain {c}: {' -> '.join(chain)}")
    return RunResult(0)


def report(spec: ExperimentSpec, results: Path, out: Console) -> RunResult:
    """Merge the clients' files, print throughput, percentiles and the system's verdicts."""
    from analysis.aggregate import merge_machine_dats, summarize_run
    from analysis.datfiles import DatFormatError

    try:
        merge_machine_dats(results)
        summary = summarize_run(results)
    except (DatFormatError, ValueError) as exc:
        cause = f"cannot summarise {results}: {exc}"
        out.print(f"[bold red]error:[/] {cause}")
        return RunResult(1, cause)
    out.print(f"results: {results}")
    out.print(f"throughput: {summary.throughput_ops:,.0f} ops/s")
    out.print(
        "latency (us): "
        f"p50 {summary.p50_us:.0f}  p99 {summary.p99_us:.0f}  "
        f"p99.9 {summary.p999_us:.0f}  p99.99 {summary.p9999_us:.0f}"
    )
    if not spec.record_seqnums:
        out.print("contiguity: not checked (run with --record-seqnums)")
        return RunResult(0)
    failed = ""
    for check in systems.get(spec.system).check(results):
        for line in check.lines:
            out.print(line)
        if not check.ok and not failed:
            failed = check.headline
    return RunResult(1, failed) if failed else RunResult(0)
