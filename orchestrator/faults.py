"""The failure schedule of a run and the log of what was injected when.

Times are seconds after the clients' warm-up, as the original's --kill_leader and
--kill_sequencer. Which events a run may have is its system's (`System.fault_events`);
which processes an event kills is said here, once for every system. `faults.log` records
each event as `unix_ms event target`, with `measure_start`/`measure_end` markers, so plots
can mark the kills on the time axis. With `--restart_after S` a killed process is started
again S seconds later (`restart target` in `faults.log`).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from orchestrator.fault_plan import END_EVENT
from orchestrator.spec import ExperimentSpec

if TYPE_CHECKING:
    from orchestrator.experiment import Experiment, Launched


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after warm-up
    event: str  # a kill_* field of the spec: kill_leader, kill_sequencer, kill_logserver, ...
    group: int = 0

    @property
    def signal(self) -> int:
        """kill -9, except mid-batch: SIGUSR1 arms the leader to die at the exact point."""
        return signal.SIGUSR1 if self.event == "kill_leader_mid_batch" else signal.SIGKILL


def schedule(spec: ExperimentSpec, events: tuple[str, ...]) -> list[Fault]:
    """The faults the spec asks for among `events`, earliest first (group 0's, where a
    fault is a group's)."""
    planned = [Fault(float(getattr(spec, event)), event, 0) for event in events
               if getattr(spec, event) >= 0]
    return sorted(planned, key=lambda f: f.at)


def targets(run: Experiment, fault: Fault) -> list[Launched]:
    """The live processes a fault kills now (none: nothing to kill is alive)."""
    alive = [e for e in run.running if not e.killed]
    if fault.event in ("kill_leader", "kill_leader_mid_batch"):
        leaders = [run.leader_of(fault.group)]
    elif fault.event == "kill_all_leaders":
        leaders = [run.leader_of(group) for group in run.groups()]
    elif fault.event == "kill_follower":
        leader = run.leader_of(fault.group)
        return [e for e in alive if e.proc.kind == "proxy" and e.proc.group == fault.group
                and e is not leader][:1]
    elif fault.event in ("kill_sequencer", "kill_backup"):
        # The sequencer of epoch 1, or the first standby (epoch 2), by placement order.
        index = 0 if fault.event == "kill_sequencer" else 1
        sequencers = [p.name for p in run.placement.by_kind("sequencer")][index:index + 1]
        return [e for e in alive if e.proc.name in sequencers]
    elif fault.event == "kill_zk_server":
        # One replica of shard `group` (ZK-Mason): its shard goes on with the other two.
        return [e for e in alive if e.proc.kind == "zkshard" and e.proc.group == fault.group][:1]
    elif fault.event == "kill_logserver":
        # The head of chain 0: its writers must go on with the rest of the chain.
        log = run.placement.log
        head = log.chains[0][0] if log is not None else None
        return [e for e in alive if e.proc.name == head]
    else:
        raise ValueError(f"no target rule for fault {fault.event!r}")
    return [leader for leader in leaders if leader is not None]


# ---- restarts (--restart_after) ------------------------------------------------------------

# Kinds that come back: a replica replays its Raft file and catches up, a sequencer comes
# back as a standby of a later epoch. A log server would come back empty, and its chain has
# been reconfigured without it: it stays down. So does a ZK-Mason shard replica, which
# keeps its partial tree in memory only.
RESTARTABLE = ("proxy", "sequencer")


@dataclass
class PendingRestart:
    due: float  # time.monotonic() at which to start it again
    target: Launched


def plan_restarts(spec: ExperimentSpec, killed: list[Launched], now: float) -> list[PendingRestart]:
    """Restarts owed for the processes a fault just killed (none without --restart_after)."""
    if spec.restart_after < 0:
        return []
    return [PendingRestart(now + spec.restart_after, t) for t in killed
            if t.proc.kind in RESTARTABLE]


def take_due(pending: list[PendingRestart], now: float) -> list[Launched]:
    """Remove and return the targets whose restart is due and that are really gone (a
    process armed to die mid-batch may still be alive: its restart waits)."""
    due = [p for p in pending if p.due <= now and not p.target.host.alive(p.target.path(".pid"))]
    for p in due:
        pending.remove(p)
    return [p.target for p in due]


# Lines of faults.log that are not a fault being injected: markers, restarts, and the
# ends of faults that last.
NOT_INJECTED = frozenset({"measure_start", "measure_end", "restart", *END_EVENT.values()})


class FaultLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self.injected: list[str] = []  # the faults so far, by event, for the live line

    def mark(self, event: str, target: str, unix_ms: int | None = None) -> None:
        """Record an event now, or at unix_ms (when a node said when it took effect)."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a")
        when = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
        line = f"{when} {event} {target}"
        self._file.write(line + "\n")
        self._file.flush()
        if event not in NOT_INJECTED:
            self.injected.append(event)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

