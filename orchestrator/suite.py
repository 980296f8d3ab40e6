"""masonctl suite: run every point x trial of a suite, resumably, retrying failed starts.

Each run goes to ``<results>/<suite>/<point>-t<trial>/``. A run that ends with every
client's results gets a ``done`` marker; a later invocation skips it, so a suite stopped
by ^C (or a lost SSH session) resumes where it stopped. A directory without a marker is
an interrupted run: it is deleted and run again. A run whose processes did not all start
or finish is deleted and retried (``--retries``), as the original ``run_suite.sh`` did
when a client failed to start; every failed attempt is appended to ``failures.log``.
A run that measured everything but whose verdict failed (a contiguity violation) is kept
with a ``failed`` marker and not retried: a retry would hide a real fault.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import msgspec.toml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from analysis.runfiles import run_files
from analysis.suite_table import DONE, FAILED, SUITE_RECORD
from orchestrator.remote import RemoteOptions
from orchestrator.runner import RunResult
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.sweep import Expansion, Point
from suites.loader import SuiteError

FAILURES_LOG = "failures.log"
RUN_LOG = "masonctl.log"  # what `masonctl run` would have printed for this run
RETRY_PAUSE_S = 1.0


@dataclass(frozen=True)
class Run:
    point: Point
    trial: int

    @property
    def name(self) -> str:
        return f"{self.point.name}-t{self.trial}"


@dataclass
class Attempt:
    """How one attempt at a run ended. ``measured``: every client's results are there, so
    a failure is the verdict's, not a process that failed to start."""

    ok: bool
    measured: bool
    reason: str = ""
    seconds: float = 0.0


# One function runs one spec into one directory; a remote runner (machine_info.txt over
# SSH) plugs in here without the suite logic changing.
RunOne = Callable[[ExperimentSpec, Path], Attempt]


@dataclass
class Outcome:
    ran: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    interrupted: bool = False


# ---- choosing the runs ----------------------------------------------------------------------


def select(points: list[Point], only: str | None) -> list[Point]:
    """Points whose names match any of the comma-separated shell patterns in ``only``."""
    if not only:
        return points
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(p.name, pattern) for p in points):
            names = ", ".join(p.name for p in points[:4]) + (", ..." if len(points) > 4 else "")
            raise SuiteError(f"--only {pattern!r} matches no point (points: {names})")
    return [p for p in points if any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns)]


def plan(points: list[Point], trials: int) -> list[Run]:
    """Trial-major: every point once before any point twice, so that a sweep stopped half
    way has all its points, and slow drift of the machines spreads over all of them."""
    return [Run(point, trial) for trial in range(1, trials + 1) for point in points]


def state_of(run_dir: Path) -> str:
    """done | failed | partial (a directory without a marker: interrupted) | new."""
    if (run_dir / DONE).is_file():
        return "done"
    if (run_dir / FAILED).is_file():
        return "failed"
    return "partial" if run_dir.exists() else "new"


# ---- running one experiment locally ---------------------------------------------------------


def client_results(spec: ExperimentSpec, run_dir: Path) -> tuple[int, int]:
    """(client processes that left a summary, client processes run): the original counted
    the client dat files to see whether a client had failed to start."""
    found = len(run_files(run_dir, "client-*-*.summary.json"))
    return found, spec.nclients * spec.nclient_threads


def run_locally(spec: ExperimentSpec, run_dir: Path) -> Attempt:
    """One experiment with every role on this machine, its output kept in the run dir."""
    from orchestrator.runner import run_local

    buffer = io.StringIO()
    console = Console(file=buffer, width=200, highlight=False, no_color=True)
    start = time.monotonic()
    result = run_local(spec, run_dir, console, console)
    return _attempt(spec, run_dir, result, buffer.getvalue(), time.monotonic() - start)


def _attempt(spec: ExperimentSpec, run_dir: Path, result: RunResult, text: str,
             seconds: float) -> Attempt:
    """The suite's view of a run: the runner's cause, and whether every client measured."""
    if run_dir.is_dir():
        (run_dir / RUN_LOG).write_text(text)
    found, expected = client_results(spec, run_dir)
    measured = found >= expected
    if not result.ok:
        reason = result.cause or f"exit status {result.code}"
    elif not measured:
        reason = f"only {found} of {expected} client processes left results"
    else:
        reason = ""
    return Attempt(result.ok and measured, measured, reason, seconds)


def runner_for(remote: RemoteOptions | None) -> RunOne:
    if remote is None:
        return run_locally
    return lambda spec, run_dir: run_remotely(remote, spec, run_dir)


def run_remotely(remote: RemoteOptions, spec: ExperimentSpec, run_dir: Path) -> Attempt:
    """One experiment on the testbed machines of machine_info.txt, over SSH."""
    from orchestrator.remote import Testbed

    buffer = io.StringIO()
    console = Console(file=buffer, width=200, highlight=False, no_color=True)
    start = time.monotonic()
    try:
        bed = Testbed(remote)
    except SpecError as exc:
        raise SuiteError(str(exc)) from None
    try:
        result = bed.run(spec, run_dir, console, console)
    finally:
        bed.close()
    return _attempt(spec, run_dir, result, buffer.getvalue(), time.monotonic() - start)


# ---- the suite directory's record -----------------------------------------------------------


def record_of(exp: Expansion, trials: int, overrides: dict[str, Any]) -> dict[str, Any]:
    text = exp.suite.path.read_bytes()
    return {
        "suite": exp.suite.name,
        "system": exp.suite.system,
        "variant": exp.variant or "",
        "scale": "local" if exp.local else "machines",
        "file": str(exp.suite.path),
        "file_sha256": hashlib.sha256(text).hexdigest(),
        "overrides": overrides,
        "trials": trials,
        "points": [p.name for p in exp.points],
    }


def write_record(suite_dir: Path, record: dict[str, Any], console: Console) -> None:
    """Keep what defined the runs; warn when a resume would mix differently defined runs."""
    path = suite_dir / SUITE_RECORD
    if path.is_file():
        try:
            old = msgspec.toml.decode(path.read_bytes())
        except msgspec.DecodeError:
            old = {}
        keys = ("file_sha256", "overrides", "scale", "variant")
        changed = [k for k in keys if old.get(k) != record[k]]
        if changed:
            console.print(f"[yellow]warning:[/] {path} was written for different "
                          f"{', '.join(changed)}; finished runs are kept as they are")
    suite_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.toml.encode(record))


# ---- the sweep --------------------------------------------------------------------------------


def run_suite(
    suite_dir: Path,
    runs: list[Run],
    run_one: RunOne,
    retries: int,
    console: Console,
    retry_pause: float = RETRY_PAUSE_S,
) -> Outcome:
    outcome = Outcome()
    todo = []
    for run in runs:
        state = state_of(suite_dir / run.name)
        if state in ("done", "failed"):
            outcome.skipped += 1
            if state == "failed":
                outcome.failed.append(run.name)
        else:
            todo.append(run)
    if outcome.skipped:
        console.print(f"resuming: {outcome.skipped} of {len(runs)} runs already finished")
    if not todo:
        return outcome
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
               TextColumn("{task.fields[now]}"))
    width = max(len(r.name) for r in todo)
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(suite_dir.name, total=len(todo), now="")
        status = _Status(bar, width)
        try:
            for run in todo:
                ok = _one_run(suite_dir, run, run_one, (retries, retry_pause), bar, task,
                              status)
                (outcome.ran if ok else outcome.failed).append(run.name)
                bar.advance(task)
        except KeyboardInterrupt:
            # The run in progress has no marker: the next invocation deletes and redoes it.
            outcome.interrupted = True
        bar.update(task, now="")
    return outcome


@dataclass
class _Status:
    """One line per run event, names padded so that the figures line up."""

    bar: Progress
    width: int

    def __call__(self, word: str, style: str, name: str, text: str) -> None:
        pad = " " * (6 - len(word))
        self.bar.console.print(f"[{style}]{word}[/]{pad} {name:<{self.width}}  {text}",
                               soft_wrap=True, highlight=False)


def _one_run(suite_dir: Path, run: Run, run_one: RunOne, retry: tuple[int, float],
             bar: Progress, task: Any, status: _Status) -> bool:
    run_dir = suite_dir / run.name
    retries, pause = retry
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        if run_dir.exists():
            if attempt == 1:
                status("redo", "yellow", run.name, "(interrupted earlier: deleted)")
            shutil.rmtree(run_dir)
        tag = f" (attempt {attempt}/{attempts})" if attempt > 1 else ""
        bar.update(task, now=f"running {run.name}{tag}")
        result = run_one(run.point.spec(run.name), run_dir)
        if result.ok:
            line = _summary_line(run_dir)
            (run_dir / DONE).write_text(f"{line}\n")
            status("done", "green", run.name, f"{line}  ({result.seconds:.1f} s)")
            return True
        _log_failure(suite_dir, run.name, attempt, attempts, result.reason)
        if result.measured:
            (run_dir / FAILED).write_text(result.reason + "\n")
            status("FAILED", "bold red", run.name, f"{result.reason} (kept: the run measured; "
                   "delete its directory to run it again)")
            return False
        shutil.rmtree(run_dir, ignore_errors=True)
        if attempt < attempts:
            status("retry", "yellow", run.name,
                   f"attempt {attempt}/{attempts} failed: {result.reason}")
            # A moment for what the failed attempt left behind (sockets closing, a slow
            # node exiting) to clear before the same ports are used again.
            time.sleep(pause)
    status("FAILED", "bold red", run.name, f"after {attempts} attempts: {result.reason}")
    return False


def _summary_line(run_dir: Path) -> str:
    from analysis.aggregate import summarize_run

    s = summarize_run(run_dir)
    return (f"{s.throughput_ops:>11,.0f} ops/s  p50 {s.p50_us:>7,.0f} µs  "
            f"p99 {s.p99_us:>7,.0f} µs  p99.99 {s.p9999_us:>7,.0f} µs")


def _log_failure(suite_dir: Path, name: str, attempt: int, attempts: int, reason: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with (suite_dir / FAILURES_LOG).open("a") as log:
        log.write(f"{stamp} {name} attempt {attempt}/{attempts}: {reason}\n")


# ---- the dry run -------------------------------------------------------------------------------


# Short column heads for the fields a sweep usually varies.
_HEADS = {"nsequence_spaces": "spaces", "nproxies": "proxies", "nproxy_leaders": "groups",
          "nclients": "clients", "nclient_threads": "client procs",
          "client_concurrency": "conc.", "nservers": "servers", "nzk_servers": "servers"}


def runs_table(suite_dir: Path, runs: list[Run], swept: list[str]) -> Table:
    """The runs with the fields the suite's loops set, seconds per run, and each state."""
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("run", no_wrap=True)
    for key in swept:
        table.add_column(_HEADS.get(key, key), justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("state")
    for run in runs:
        p = run.point.params
        table.add_row(run.name, *(f"{p[k]:g}" for k in swept), f"{_window(run.point):g}",
                      state_of(suite_dir / run.name))
    return table


# ---- the command --------------------------------------------------------------------------------

# Seconds a local run spends outside its warm-up/measure/cool-down window (start, leader
# election, stop, checks): only for the time estimate printed before a sweep.
_RUN_OVERHEAD_S = 4.0


@dataclass
class SuiteOptions:
    name: str
    variant: str | None = None
    trials: int | None = None
    dry_run: bool = False
    results: Path = Path("results")
    only: str | None = None
    retries: int = 2
    sets: list[str] = field(default_factory=list)
    machine_info: Path | None = None
    user: str | None = None
    identity: str | None = None
    known_hosts: Path | None = None
    accept_new_host_keys: bool = False
    testbed_dir: Path | None = None


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set FIELD=VALUE``: the value is read as a TOML value (2, 1.5, true), else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise SuiteError(f"--set {item!r}: expected FIELD=VALUE")
        try:
            value = msgspec.toml.decode(f"v = {text.strip()}".encode())["v"]
        except msgspec.DecodeError:
            value = text.strip()
        out[key.strip()] = value
    return out


def command(opts: SuiteOptions, out: Console) -> int:
    """Expand, then print the runs (--dry-run) or run them; SuiteError for bad input."""
    from orchestrator.sweep import expand
    from suites.loader import find_suite, load_suite

    suite = load_suite(find_suite(opts.name))
    capacity = None
    if opts.machine_info is not None:
        capacity = _capacity(opts.machine_info)
    remote = None
    if opts.machine_info is not None:
        remote = RemoteOptions(opts.machine_info, opts.user, opts.identity, opts.known_hosts,
                               opts.accept_new_host_keys, opts.testbed_dir, retries=0)
    run_one = None if opts.dry_run else runner_for(remote)
    if opts.retries < 0:
        raise SuiteError(f"--retries must be 0 or more, not {opts.retries}")
    trials = opts.trials if opts.trials is not None else suite.data.suite.trials
    if trials < 1:
        raise SuiteError(f"--trials must be at least 1, not {trials}")
    overrides = parse_sets(opts.sets)
    exp = expand(suite, opts.variant, capacity, overrides)
    if not exp.points:
        if not exp.dropped:
            raise SuiteError(f"{suite.path}: the suite expands to no point")
        point, why = exp.dropped[0]
        raise SuiteError(f"no point of suite {suite.name} fits the machines in "
                         f"{opts.machine_info} (the first, {point.name}, {why})")
    points = select(exp.points, opts.only)
    runs = plan(points, trials)
    suite_dir = opts.results / exp.results_name
    scale = "scaled for this machine" if capacity is None else (
        f"scaled to {opts.machine_info}")
    seconds = sum(_window(r.point) + _RUN_OVERHEAD_S for r in runs)
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    out.print(f"suite {exp.results_name}: {_n(len(points), 'point')} x "
              f"{_n(trials, 'trial')} = {_n(len(runs), 'run')} ({scale}), about {took}; "
              f"results in {suite_dir}", soft_wrap=True)
    if exp.dropped:
        name, why = exp.dropped[0][0].name, exp.dropped[0][1]
        out.print(f"dropped {_n(len(exp.dropped), 'point')} that do not fit, e.g. {name}: "
                  f"{why}", soft_wrap=True)
    if run_one is None:
        swept = [f for dim in suite.data.dims for f in dim.scale]
        out.print(runs_table(suite_dir, runs, swept))
        return 0
    write_record(suite_dir, record_of(exp, trials, overrides), out)
    outcome = run_suite(suite_dir, runs, run_one, opts.retries, out)
    _write_csvs(suite_dir, out)
    if outcome.interrupted:
        out.print(f"interrupted: run the same command again to resume ({suite_dir})")
        return 130
    out.print(f"{_n(len(outcome.ran), 'run')} done now, {outcome.skipped} earlier, "
              f"{len(outcome.failed)} failed")
    if outcome.failed:
        out.print(f"failed: {', '.join(outcome.failed)} (see {suite_dir / FAILURES_LOG})",
                  soft_wrap=True)
        return 1
    faulty = [r for r in runs if any(k.startswith("kill_") and v >= 0
                                     for k, v in r.point.params.items())]
    if faulty:  # a failure experiment: its figure is throughput over time, per run
        out.print(f"figures: masonctl plot recovery {suite_dir / faulty[0].name}",
                  soft_wrap=True)
    else:
        out.print(f"figures: masonctl plot suite {suite_dir}", soft_wrap=True)
    return 0


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _window(point: Point) -> float:
    p = point.params
    return float(p["warmup"] + p["expduration"] + p["cooldown"])


def _capacity(machine_info: Path) -> Any:
    from orchestrator.machines import MachineListError, read_machine_info
    from orchestrator.sweep import Capacity

    try:
        cluster = read_machine_info(machine_info)
    except MachineListError as exc:
        raise SuiteError(str(exc)) from None
    return Capacity.from_counts(cluster.counts())


def _write_csvs(suite_dir: Path, out: Console) -> None:
    from analysis.suite_table import SuiteTableError, suite_runs, write_suite_csvs

    if not suite_runs(suite_dir):
        return
    try:
        runs_csv, medians_csv, table, medians = write_suite_csvs(suite_dir)
    except SuiteTableError as exc:
        out.print(f"[yellow]warning:[/] no CSV written: {exc}")
        return
    out.print(f"wrote {runs_csv} ({_n(len(table), 'run')}) and {medians_csv} "
              f"({_n(len(medians), 'point')})", soft_wrap=True)
