"""One experiment: configs -> launch -> warm-up -> measured window with faults -> stop -> collect.

The same code drives LocalHost (every role on this machine) and SSHHost (a testbed): it only
uses the `Host` interface. Whatever happens (a node that fails to start, ^C, a bug), every
process the run started is stopped before `run` returns or raises.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from analysis.runfiles import subdir_for
from nodes.logserver.layout import LAYOUT_FILE, write_layout
from nodes.status import LEADER, parse_role
from orchestrator import fault_plan, faults, leftovers, nemesis, pinning, render, systems, watch
from orchestrator.hosts import Host, HostError, LocalHost
from orchestrator.placement import MachineSlot, Placement, Proc
from orchestrator.spec import ExperimentSpec, to_toml
from orchestrator.systems import PROCESS_KINDS

POLL = 0.05


@contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Hold a SIGINT (^C) that arrives inside the block until the block has finished."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


class RunFailed(Exception):
    """The experiment could not run; the message is one line naming the cause.

    `tail` holds the end of the failed process's log, `retryable` tells whether running
    the same experiment again may help (a node that failed to start or died)."""

    def __init__(self, message: str, tail: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.tail = tail
        self.retryable = retryable


@dataclass
class Launched:
    proc: Proc
    host: Host
    rundir: str
    killed: bool = False  # by the fault schedule: its death is expected

    def path(self, suffix: str) -> str:
        return f"{self.rundir}/{self.proc.name}{suffix}"

    @property
    def is_client(self) -> bool:
        return PROCESS_KINDS[self.proc.kind].client


@dataclass
class RunMachines:
    """The machines an experiment may use and the Host that reaches each (machines.Cluster
    is the testbed's list of machines; this is what one run uses of it)."""

    slots: list[MachineSlot]
    hosts: dict[str, Host]  # machine name -> host
    pin: bool = False  # each node process on a core of its own (orchestrator/pinning.py)

    @classmethod
    def remote(cls, machines: list[tuple[str, str, int]], hosts: dict[str, Host],
               run_name: str, pin: bool = True) -> RunMachines:
        """Testbed machines (name, role, index), each writing under its own workdir."""
        slots = []
        for name, role, index in machines:
            host = hosts[name]
            slots.append(MachineSlot(name, role, index, host.address,
                                     f"{host.workdir}/runs/{run_name}"))
        return cls(slots, hosts, pin)

    @classmethod
    def local(cls, spec: ExperimentSpec, rundir: Path, host: Host) -> RunMachines:
        """Every logical machine the system needs is this one, on 127.0.0.1."""
        slots = []
        for role, count in systems.get(spec.system).machines_needed(spec).items():
            for i in range(count):
                slots.append(MachineSlot(f"{role}-{i}", role, i, host.address, str(rundir)))
        return cls(slots, {s.name: host for s in slots})


class Experiment:
    def __init__(
        self,
        spec: ExperimentSpec,
        machines: RunMachines,
        results: Path,
        console: Console,
        provenance: dict[str, object] | None = None,
    ) -> None:
        self.spec = spec
        self.system = systems.get(spec.system)
        self.machines = machines
        self.results = results
        self.console = console
        self.provenance = provenance or {}
        self.placement: Placement = self.system.place(spec, machines.slots)
        self.running: list[Launched] = []
        self.fault_log = faults.FaultLog(results / "faults.log")
        self.nemesis = nemesis.Nemesis(self, fault_plan.planned(spec))
        self.restarts: list[faults.PendingRestart] = []
        self.pinning = pinning.Pinning()

    # ---- the whole run ---------------------------------------------------------------
    def run(self) -> None:
        self.refuse_held_ports()  # before anything is written: the same run may follow
        self.results.mkdir(parents=True, exist_ok=True)
        if self.machines.pin:
            self.pin()
        (self.results / "experiment.toml").write_text(
            to_toml(self.spec, self.provenance, {"pinning": self.pinning_record()}))
        if self.placement.log is not None:
            write_layout(self.results / LAYOUT_FILE, self.placement.log)
        if self.nemesis.pending:
            schedule = fault_plan.dump(self.nemesis.pending)
            (self.results / fault_plan.SCHEDULE_FILE).write_text(schedule)
        try:
            self.nemesis.prepare()
            self.ship_configs()
            for kind in self.system.start_order:
                if PROCESS_KINDS[kind].client:
                    self.system.wait_ready(self)
                self.start(kind)
            self.measure()
        finally:
            self.nemesis.teardown()  # paused processes must wake to stop
            self.stop_all()
            self.fault_log.close()
        self.collect()

    # ---- launching ----------------------------------------------------------------------
    def refuse_held_ports(self) -> None:
        """Stop before starting anything when nodes an earlier run left behind listen on
        ports this run needs (any other program there makes the node that cannot bind
        fail the run, naming the port)."""
        wanted: dict[int, tuple[Host, set[int]]] = {}
        for proc in self.placement.procs:
            host = self.host_of(proc)
            wanted.setdefault(id(host), (host, set()))[1].update(leftovers.listen_ports(proc))
        held = [h for host, ports in wanted.values()
                for h in leftovers.holders(host, host.name, ports) if h.name]
        if held:
            remote = any(not isinstance(host, LocalHost) for host, _ in wanted.values())
            raise RunFailed(leftovers.held_ports_message(held, remote))

    def pin(self) -> None:
        """Give every process a core of its machine (one each while the cores last)."""
        procs: dict[str, list[str]] = {}
        hosts: dict[str, Host] = {}
        for proc in self.placement.procs:
            host = self.host_of(proc)
            procs.setdefault(host.name, []).append(proc.name)
            hosts[host.name] = host
        try:
            self.pinning = pinning.plan(procs, hosts)
        except pinning.PinningError as exc:
            raise RunFailed(f"{exc} (--no-pin runs unpinned)") from None
        for line in self.pinning.crowded:
            self.console.print(f"[yellow]pinning: {line}")

    def pinning_record(self) -> dict[str, object]:
        """experiment.toml's [pinning]: whether processes were pinned, and where."""
        if not self.machines.pin:
            return {"enabled": False}
        return {"enabled": True, "tool": pinning.TOOL, "cores": self.pinning.cores}

    def host_of(self, proc: Proc) -> Host:
        return self.machines.hosts[proc.machine]

    def rundir_of(self, proc: Proc) -> str:
        """Where the process's config, log, pid and data files go on its machine."""
        return next(s.outdir(proc.kind) for s in self.machines.slots if s.name == proc.machine)

    def ship_configs(self) -> None:
        made: set[tuple[str, str]] = set()
        for proc in self.placement.procs:
            host, rundir = self.host_of(proc), self.rundir_of(proc)
            if (host.name, rundir) not in made:
                host.makedirs(rundir)
                made.add((host.name, rundir))
            text = render.render(proc.kind, proc.context)
            host.write_text(f"{rundir}/{proc.name}.toml", text)

    def start(self, kind: str) -> None:
        procs = self.placement.by_kind(kind)
        launched = []
        for proc in procs:
            entry = Launched(proc, self.host_of(proc), self.rundir_of(proc))
            # A ^C between the spawn and the bookkeeping would orphan a node that no
            # stop_all could find: the interrupt waits until the process is on record.
            with interrupt_deferred():
                self.spawn(entry)
                self.running.append(entry)
            launched.append(entry)
        self.wait_until(
            lambda: all(e.host.exists(e.path(".ready")) for e in launched),
            timeout=60.0,
            what=f"{len(launched)} {kind} process(es) to start",
            watch=launched,
        )

    def spawn(self, entry: Launched) -> None:
        """Start the entry's process; its log is appended to, so a restart keeps the first
        incarnation's lines."""
        argv = [*self.pinning.prefix(entry.host.name, entry.proc.name),
                entry.host.python, "-m", entry.proc.module, "--config", entry.path(".toml")]
        try:
            entry.host.spawn(argv, log_path=entry.path(".log"), pid_path=entry.path(".pid"))
        except HostError as exc:
            raise RunFailed(f"cannot start {entry.proc.name}: {exc}", retryable=True) from None

    def restart(self, entry: Launched) -> None:
        """Start a process the fault schedule killed again, with the same config and output
        directory; from now on its death is unexpected again."""
        with interrupt_deferred():
            self.spawn(entry)
            entry.killed = False
        self.fault_log.mark("restart", entry.proc.name)
        self.console.print(f"fault: restart -> {entry.proc.name}")

    def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str,
        watch: list[Launched],
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.check_alive(watch)
            if time.monotonic() > deadline:
                raise RunFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(POLL)

    def check_alive(self, watch: list[Launched]) -> None:
        for entry in watch:
            if entry.killed or entry.host.alive(entry.path(".pid")):
                continue
            if entry.host.exists(entry.path(".ready")) and entry.is_client:
                code = entry.host.exit_code(entry.path(".pid"))
                if code in (0, None):
                    continue
            raise RunFailed(f"{entry.proc.name} on {entry.host.name} died: {self.cause(entry)}",
                            tail=entry.host.tail(entry.path(".log"), 15), retryable=True)

    def cause(self, entry: Launched) -> str:
        tail = entry.host.tail(entry.path(".log"), 20).splitlines()
        for line in reversed(tail):
            if "error:" in line.lower():
                return line.strip()
        if tail:
            return tail[-1].strip()
        code = entry.host.exit_code(entry.path(".pid"))
        return f"exited with status {code}" if code is not None else "no output"

    def replica_role(self, entry: Launched) -> tuple[str, int] | None:
        """(role, term) from a proxy's .role file (nodes.status), None when unreadable."""
        try:
            return parse_role(entry.host.read_text(entry.path(".role")))
        except HostError:
            return None

    def leader_of(self, group: int) -> Launched | None:
        best: tuple[int, Launched] | None = None
        for entry in self.running:
            if entry.proc.kind != "proxy" or entry.proc.group != group or entry.killed:
                continue
            role = self.replica_role(entry)
            if role is not None and role[0] == LEADER and (best is None or role[1] > best[0]):
                best = (role[1], entry)
        return None if best is None else best[1]

    def groups(self) -> list[int]:
        return sorted({p.group for p in self.placement.by_kind("proxy")})

    def wait_for_leaders(self) -> None:
        groups = self.groups()
        proxies = [e for e in self.running if e.proc.kind == "proxy"]
        self.wait_until(
            lambda: all(self.leader_of(g) is not None for g in groups),
            timeout=60.0,
            what=f"a leader in each of {len(groups)} group(s)",
            watch=proxies,
        )

    # ---- the measured run -----------------------------------------------------------------
    def measure(self) -> None:
        spec = self.spec
        clients = [e for e in self.running if e.is_client]
        others = [e for e in self.running if not e.is_client]
        start = time.monotonic()
        measure_start = start + spec.warmup
        total = spec.warmup + spec.expduration + spec.cooldown
        schedule = faults.schedule(spec, self.system.fault_events)
        deadline = start + total + 60.0
        marked_start = marked_end = False
        live = watch.LiveLine([(e.host, e.path(".series")) for e in clients], start)
        # A terminal gets the bar with the live line beside it; a pipe or a file gets the
        # live line as a plain line once a second.
        plain = not self.console.is_terminal
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),  # room for the live line on 80 columns
            TextColumn("{task.fields[live]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            disable=plain,
        ) as progress:
            task = progress.add_task(self.spec.name, total=total, live="warm-up")
            while not all(not e.host.alive(e.path(".pid")) for e in clients):
                now = time.monotonic()
                elapsed = now - start
                phase = ("warm-up" if now < measure_start else
                         "measuring" if now < measure_start + spec.expduration else
                         "cool-down" if elapsed < total else "draining")
                line = live.text(now, phase, self.fault_log.injected)
                progress.update(task, completed=min(elapsed, total), live=line)
                if plain and live.plain_due(now):
                    self.console.print(f"{self.spec.name}: {line}", highlight=False,
                                       markup=False, soft_wrap=True)
                if not marked_start and now >= measure_start:
                    self.fault_log.mark("measure_start", "clients")
                    marked_start = True
                if not marked_end and now >= measure_start + spec.expduration:
                    self.fault_log.mark("measure_end", "clients")
                    marked_end = True
                while schedule and now >= measure_start + schedule[0].at:
                    self.inject(schedule.pop(0))
                for entry in faults.take_due(self.restarts, now):
                    self.restart(entry)
                self.nemesis_due(now - measure_start)
                self.check_alive(clients + others)
                if now > deadline:
                    raise RunFailed("clients did not finish within 60 s of the planned end")
                time.sleep(POLL)
        for entry in clients:
            code = entry.host.exit_code(entry.path(".pid"))
            if code not in (0, None):
                raise RunFailed(f"{entry.proc.name} exited with status {code}: "
                                f"{self.cause(entry)}")

    def nemesis_due(self, elapsed: float) -> None:
        try:
            self.nemesis.due(elapsed)
        except nemesis.NemesisError as exc:
            raise RunFailed(str(exc)) from None

    def inject(self, fault: faults.Fault) -> None:
        targets = faults.targets(self, fault)
        if not targets:
            self.console.print(f"[yellow]fault {fault.event}: no target alive; skipped")
            return
        how = "kill -9" if fault.signal == signal.SIGKILL else "arm mid-batch exit of"
        for target in targets:
            target.killed = True
            target.host.signal(target.path(".pid"), fault.signal)
            self.fault_log.mark(fault.event, target.proc.name)
            self.console.print(f"fault: {fault.event} -> {how} {target.proc.name}")
        self.restarts.extend(faults.plan_restarts(self.spec, targets, time.monotonic()))
        if self.spec.restart_after >= 0:
            for target in targets:
                if target.proc.kind not in faults.RESTARTABLE:
                    self.console.print(f"[yellow]{target.proc.name} stays down: a "
                                       f"{target.proc.kind} would come back empty")

    # ---- stopping and collecting ------------------------------------------------------------
    def stop_all(self) -> None:
        """SIGTERM, then SIGKILL for whatever has not exited 10 s later; the system's
        `stop_first` kinds stage by stage before everything else."""
        stages = [[e for e in self.running if e.proc.kind == kind]
                  for kind in self.system.stop_first]
        stages.append([e for e in self.running if e.proc.kind not in self.system.stop_first])
        for stage in stages:
            self._stop(stage)

    def _stop(self, entries: list[Launched]) -> None:
        live = [e for e in entries if e.host.alive(e.path(".pid"))]
        for entry in live:
            entry.host.signal(entry.path(".pid"), signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        while live and time.monotonic() < deadline:
            live = [e for e in live if e.host.alive(e.path(".pid"))]
            time.sleep(POLL)
        for entry in live:
            entry.host.signal(entry.path(".pid"), signal.SIGKILL)

    def collect(self) -> None:
        """Every machine's run directory into the results, each folder into the same
        folder there (client processes' files into clients/)."""
        seen: set[tuple[str, str]] = set()
        for entry in self.running:
            key = (entry.host.name, entry.rundir)
            if key in seen:
                continue
            seen.add(key)
            try:
                entry.host.fetch_dir(entry.rundir,
                                     self.results / subdir_for(entry.is_client))
            except HostError as exc:
                self.console.print(f"[yellow]warning: {exc}")
