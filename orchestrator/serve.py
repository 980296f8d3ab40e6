"""`masonctl serve`: start a system's servers on this machine and keep them up for clients
of your own (kazoo, zkCli) until interrupted; then stop every process it started.

The same Experiment does the work as for `masonctl run` (placement, configs, start order,
readiness, stop), without clients and without a measured window.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from orchestrator import systems
from orchestrator.experiment import POLL, Experiment, RunFailed, RunMachines
from orchestrator.hosts import HostError, LocalHost
from orchestrator.runner import provenance
from orchestrator.spec import ExperimentSpec, to_toml


@contextmanager
def served(spec: ExperimentSpec, results: Path, console: Console,
           stop: threading.Event | None = None) -> Iterator[Experiment | None]:
    """The system's servers up on this machine, ready for clients: yields the running
    Experiment (None when `stop` was set before they all started); stops them on exit.
    Raises RunFailed or HostError as a run does."""
    system = systems.get(spec.system)
    host = LocalHost(python=spec.python or sys.executable, workdir=str(results))
    run: Experiment | None = None
    try:
        machines = RunMachines.local(spec, results.resolve(), host)
        run = Experiment(spec, machines, results, console, provenance())
        results.mkdir(parents=True, exist_ok=True)
        (results / "experiment.toml").write_text(to_toml(spec, run.provenance))
        run.ship_configs()
        for kind in system.start_order:
            if stop is not None and stop.is_set():
                yield None
                return
            run.start(kind)
        system.wait_ready(run)
        yield run
    finally:
        if run is not None:
            run.stop_all()
        host.close()


def serve_local(spec: ExperimentSpec, results: Path, out: Console, err: Console) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit status."""
    system = systems.get(spec.system)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with served(spec, results, out, stop) as run:
            if run is None:
                return 130
            out.print(f"{spec.system} serving ({system.describe(spec)}); logs in {results}")
            for line in system.serve_notes(run.placement):
                out.print(line, soft_wrap=True, highlight=False)
            # The connect string alone on the last line, for scripts to read.
            out.print(system.connect_string(run.placement), soft_wrap=True, highlight=False)
            sys.stdout.flush()
            warned: set[str] = set()
            while not stop.wait(POLL * 5):
                for entry in run.running:
                    name = entry.proc.name
                    if name not in warned and not entry.host.alive(entry.path(".pid")):
                        warned.add(name)
                        err.print(f"[yellow]warning:[/] {name} exited "
                                  f"({time.strftime('%H:%M:%S')}); the others keep serving")
            out.print("stopping")
            return 0
    except RunFailed as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        if exc.tail:
            err.print(exc.tail, style="dim", markup=False, highlight=False, soft_wrap=True)
        return 1
    except HostError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
