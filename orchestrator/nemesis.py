"""The nemesis: carries out a run's fault schedule (orchestrator/fault_plan.py) on the nodes.

- pause/resume: SIGSTOP/SIGCONT of the target process, through its Host;
- partition/heal: iptables DROP rules, by peer address, in our own chain `MASON-NEMESIS`
  (jumped to from INPUT and OUTPUT) on the affected node machines. A heal deletes exactly
  the rules its partition added; the teardown removes the chain and its jumps, so nothing
  of ours stays even after a failed run (every run with network faults also clears a
  chain a crashed controller may have left, before it starts);
- latency/clear: a netem qdisc on the interface that holds the node's address;
- kills: kill -9 as the kill_* flags (orchestrator/faults.py).

Each start and end is written to faults.log (`pause_leader proxy-0-0` ... `resume
proxy-0-0`). Network faults need the nodes on distinct addresses and root on them (sudo -n
for another login): a local run, where every process shares 127.0.0.1, refuses them in one
line before anything starts; pauses and kills work everywhere.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nodes.status import LEADER, parse_role
from orchestrator import fault_plan, faults
from orchestrator.fault_plan import Event
from orchestrator.hosts import Host, HostError
from orchestrator.spec import SpecError

if TYPE_CHECKING:
    from orchestrator.experiment import Experiment, Launched

CHAIN = "MASON-NEMESIS"
HOOKS = ("INPUT", "OUTPUT")
TAG = "mason-nemesis"


class NemesisError(HostError):
    """A fault could not be injected or undone; the message is one line naming the host."""


# ---- commands (pure: what runs on a node) -----------------------------------------------------


def iptables(*args: str) -> list[str]:
    return ["iptables", "-w", "5", *args]


def chain_teardown() -> list[tuple[list[str], bool]]:
    """Remove our jumps, rules and chain; each step may fail when already gone."""
    return ([(iptables("-D", hook, "-j", CHAIN), False) for hook in HOOKS]
            + [(iptables("-F", CHAIN), False), (iptables("-X", CHAIN), False)])


def chain_setup() -> list[tuple[list[str], bool]]:
    """A fresh chain of ours (whatever an earlier run left removed first), jumped to
    first from INPUT and OUTPUT."""
    return chain_teardown() + [(iptables("-N", CHAIN), True)] + [
        (iptables("-I", hook, "1", "-j", CHAIN), True) for hook in HOOKS]


def cut_rules(peers: list[str], oneway: bool, label: str) -> list[list[str]]:
    """Rule specs (for `-A` and `-D`) dropping what comes from the peers and, unless
    one-way, what goes to them. In the chain both hooks visit, `-s peer` only matches
    arriving packets and `-d peer` only leaving ones."""
    comment = ["-m", "comment", "--comment", f"{TAG} {label}"]
    listed = ",".join(peers)
    rules = [[CHAIN, "-s", listed, *comment, "-j", "DROP"]]
    if not oneway:
        rules.append([CHAIN, "-d", listed, *comment, "-j", "DROP"])
    return rules


def netem_add(iface: str, delay_ms: int) -> list[str]:
    return ["tc", "qdisc", "replace", "dev", iface, "root", "netem", "delay", f"{delay_ms}ms"]


def netem_del(iface: str) -> list[str]:
    return ["tc", "qdisc", "del", "dev", iface, "root"]


def interface_of(ip_addr_output: str, address: str) -> str | None:
    """The interface holding `address` in `ip -o -4 addr show` output."""
    from orchestrator.provision import parse_ip_addr

    return next((a.iface for a in parse_ip_addr(ip_addr_output) if a.ip == address), None)


def privileged(host: Host, argv: list[str]) -> list[str]:
    """argv as root: as it is for root logins, through `sudo -n` otherwise."""
    return argv if getattr(host, "user", "root") == "root" else ["sudo", "-n", *argv]


# Runs on the node with its Python: the commands of one fault in one round trip (a remote
# command costs a connection's round trips; a fault's rules must land together). argv[1] is
# a JSON list of [argv, must_succeed]; the first failure that matters ends it with its
# reason on stderr; stdout is the node's clock (unix ms) when the last command ended, then
# that command's output.
_BATCH = r"""
import json, subprocess, sys, time
out = ""
for argv, must in json.loads(sys.argv[1]):
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)
    except OSError as exc:
        if must:
            sys.exit("%s: %s" % (argv[0], exc.strerror))
        continue
    if must and done.returncode:
        lines = done.stderr.strip().splitlines() or ["exit status %d" % done.returncode]
        sys.exit("%s: %s" % (" ".join(argv[:2]), lines[-1]))
    out = done.stdout
sys.stdout.write("%d\n%s" % (time.time() * 1000, out))
"""


@dataclass(frozen=True)
class Done:
    unix_ms: int  # the node's clock when the last command ended: when the fault took effect
    stdout: str  # the last command's


def batch(host: Host, commands: list[tuple[list[str], bool]]) -> Done:
    """Run the commands (as root) on host in one round trip. NemesisError names the host
    and the first command that had to succeed and failed."""
    import json

    plan = [[privileged(host, argv), must] for argv, must in commands]
    try:
        out = host.run([host.python, "-c", _BATCH, json.dumps(plan)]).stdout
    except HostError as exc:
        raise NemesisError(str(exc)) from None
    clock, _, rest = out.partition("\n")
    if not clock.isdigit():
        raise NemesisError(f"{host.name}: the fault batch answered {clock[:40]!r}")
    return Done(int(clock), rest)


# ---- carrying out a schedule ---------------------------------------------------------------------


@dataclass
class Active:
    """An injected fault still to undo."""

    event: Event
    target: str  # the name faults.log gives it
    do: dict[str, list[list[str]]] = field(default_factory=dict)  # machine -> commands
    undo: dict[str, list[list[str]]] = field(default_factory=dict)
    resume: list[Launched] = field(default_factory=list)  # processes to SIGCONT


def needs_distinct_addresses(run: Experiment, events: list[Event]) -> None:
    """SpecError (one line) when the schedule has network faults but the node machines
    share an address (a local run), where an address rule would cut everything."""
    network = [e.kind for e in events if e.kind in fault_plan.NETWORK]
    if not network:
        return
    addresses = {slot.address for slot in run.machines.slots}
    if len(addresses) < len(run.machines.slots):
        raise SpecError(f"--{network[0]} needs the nodes on distinct addresses (a testbed "
                        "run): a local run puts every process on one address; pauses and "
                        "kills work locally")


class Nemesis:
    def __init__(self, run: Experiment, events: list[Event]) -> None:
        needs_distinct_addresses(run, events)
        self.run = run
        self.pending = sorted(events, key=lambda e: e.at)
        self.active: list[Active] = []
        self.network = [e.kind for e in events if e.kind in fault_plan.NETWORK]
        self.chains: list[str] = []  # machines holding our chain
        self.interfaces: dict[str, str] = {}  # machine -> the interface of its address

    # ---- the schedule's clock -----------------------------------------------------------------
    def prepare(self) -> None:
        """Before the run: our chain on every machine a partition may touch (what a crashed
        controller left there goes first), and the interfaces latency would slow."""
        if not self.network:
            return
        machines = self.network_machines()
        self.chains = machines
        self.each({m: chain_setup() for m in machines})
        if any(kind in fault_plan.LATENCIES for kind in self.network):
            found = self.each({m: [(["ip", "-o", "-4", "addr", "show"], True)]
                               for m in machines})
            for machine, done in found.items():
                address = self.run.machines.hosts[machine].address
                iface = interface_of(done.stdout, address)
                if iface is None:
                    raise NemesisError(f"{machine}: no interface holds {address}")
                self.interfaces[machine] = iface

    def due(self, elapsed: float) -> None:
        """Start the events whose time has come and end the intervals that are over
        (`elapsed`: seconds since the warm-up ended)."""
        for active in [a for a in self.active if elapsed >= a.event.end]:
            self.end(active)
        while self.pending and elapsed >= self.pending[0].at:
            self.start(self.pending.pop(0))

    def teardown(self) -> None:
        """End every fault still in force and remove our chains; never raises (it runs in
        the run's `finally`), reporting what it could not undo."""
        for active in list(self.active):
            try:
                self.end(active)
            except HostError as exc:
                self.run.console.print(f"[yellow]warning: {exc}")
        try:
            self.each({m: chain_teardown() for m in self.chains})
        except HostError as exc:
            self.run.console.print(f"[yellow]warning: {exc}")
        self.chains = []

    # ---- one event ------------------------------------------------------------------------------
    def start(self, event: Event) -> None:
        """Inject one event. Its line in faults.log carries the moment it took effect: a
        signal's once sent, a rule's by the clock of the node that took it (the last one,
        when several did), not when a slow round trip got back."""
        if event.kind in fault_plan.KILLS:
            self.kill(event)
            return
        active = self.plan(event)
        if active is None:
            return self.skipped(event)
        self.active.append(active)
        for entry in active.resume:
            entry.host.signal(entry.path(".pid"), signal.SIGSTOP)
        try:
            done = self.each({m: [(argv, True) for argv in cmds]
                              for m, cmds in active.do.items()})
        except NemesisError as exc:
            if event.kind in fault_plan.LATENCIES:
                raise NemesisError(f"tc netem (the kernel may lack sch_netem): {exc}") from None
            raise
        self.mark(event.kind, active.target, done)

    def plan(self, event: Event) -> Active | None:
        """What injecting the event takes now (None: its target is not alive)."""
        kind = event.kind
        if kind in fault_plan.PAUSES:
            paused = self.pause_target(event)
            return None if paused is None else Active(event, paused.proc.name, resume=[paused])
        if kind == "partition_sequencer":
            group = self.live(lambda e: e.proc.kind == "proxy" and e.proc.group == event.group)
            sequencers = self.addresses(self.live(lambda e: e.proc.kind == "sequencer"))
            if not group or not sequencers:
                return None
            cut = f"group-{event.group}"
            rules = cut_rules(sequencers, False, f"{kind} {cut}")
            return self.rules(Active(event, cut), {e.proc.machine: rules for e in group})
        leader = self.run.leader_of(event.group)
        if leader is None:
            return None
        active = Active(event, leader.proc.name)
        if kind in fault_plan.LATENCIES:
            iface = self.interfaces[leader.proc.machine]
            active.do[leader.proc.machine] = [netem_add(iface, event.delay_ms)]
            active.undo[leader.proc.machine] = [netem_del(iface)]
            return active
        followers = self.live(lambda e: e.proc.kind == "proxy"
                              and e.proc.group == event.group and e is not leader)
        if not followers:
            return None
        rules = cut_rules(self.addresses(followers), kind == "partition_oneway",
                          f"{kind} {active.target}")
        return self.rules(active, {leader.proc.machine: rules})

    def end(self, active: Active) -> None:
        self.active.remove(active)
        for entry in active.resume:
            entry.host.signal(entry.path(".pid"), signal.SIGCONT)
        done = self.each({m: [(argv, True) for argv in cmds] for m, cmds in active.undo.items()})
        self.mark(active.event.end_event, active.target, done)

    def kill(self, event: Event) -> None:
        if event.kind == "kill_sequencer":
            target = self.serving_sequencer()
            targets = [] if target is None else [target]
        else:
            targets = faults.targets(self.run, faults.Fault(event.at, event.kind, event.group))
        if not targets:
            return self.skipped(event)
        for entry in targets:
            entry.killed = True
            entry.host.signal(entry.path(".pid"), signal.SIGKILL)
            self.mark(event.kind, entry.proc.name)
        # --restart_after brings them back as it does the kill flags' (the schedule's
        # invariant counts a kill as lasting, so a restart only adds margin).
        self.run.restarts.extend(faults.plan_restarts(self.run.spec, targets, time.monotonic()))

    # ---- targets -----------------------------------------------------------------------------
    def live(self, which: Callable[[Launched], bool]) -> list[Launched]:
        return [e for e in self.run.running if not e.killed and which(e)]

    def addresses(self, entries: list[Launched]) -> list[str]:
        return sorted({e.host.address for e in entries})

    def pause_target(self, event: Event) -> Launched | None:
        if event.kind == "pause_sequencer":
            return self.serving_sequencer()
        leader = self.run.leader_of(event.group)
        if event.kind == "pause_leader":
            return leader
        followers = self.live(lambda e: e.proc.kind == "proxy" and e.proc.group == event.group
                              and e is not leader)
        return followers[0] if followers else None

    def serving_sequencer(self) -> Launched | None:
        """The live sequencer of the highest epoch that serves (its .role file says so)."""
        best: tuple[int, Launched] | None = None
        for entry in self.live(lambda e: e.proc.kind == "sequencer"):
            try:
                role = parse_role(entry.host.read_text(entry.path(".role")))
            except HostError:
                continue
            if role is not None and role[0] == LEADER and (best is None or role[1] > best[0]):
                best = (role[1], entry)
        return None if best is None else best[1]

    def network_machines(self) -> list[str]:
        kinds = {"proxy", "sequencer"}
        return sorted({p.machine for p in self.run.placement.procs if p.kind in kinds})

    # ---- network state ---------------------------------------------------------------------------
    def rules(self, active: Active, rules: dict[str, list[list[str]]]) -> Active:
        """Each machine's rules to add and, for the heal, to delete."""
        for machine, machine_rules in rules.items():
            active.do[machine] = [iptables("-A", *rule) for rule in machine_rules]
            active.undo[machine] = [iptables("-D", *rule) for rule in machine_rules]
        return active

    def each(self, plan: dict[str, list[tuple[list[str], bool]]]) -> dict[str, Done]:
        """Run each machine's commands, the machines in parallel; how each ended."""
        from concurrent.futures import ThreadPoolExecutor

        hosts = self.run.machines.hosts
        with ThreadPoolExecutor(max_workers=max(1, len(plan))) as pool:
            futures = {m: pool.submit(batch, hosts[m], commands) for m, commands in plan.items()}
            return {m: future.result() for m, future in futures.items()}

    # ---- the record ------------------------------------------------------------------------------
    def mark(self, event: str, target: str, done: dict[str, Done] | None = None) -> None:
        when = max((d.unix_ms for d in done.values()), default=None) if done else None
        self.run.fault_log.mark(event, target, when)
        self.run.console.print(f"fault: {event} {target}")

    def skipped(self, event: Event) -> None:
        self.run.console.print(f"[yellow]fault {event.kind}: no target alive; skipped")
