"""The failure schedule of a run and the log of what was injected when.

Times are seconds after the clients' warm-up, as the original's --kill_leader and
--kill_sequencer. `faults.log` records each event as `unix_ms event target`, with
`measure_start`/`measure_end` markers, so plots can mark the kills on the time axis.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from orchestrator.spec import ExperimentSpec


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after warm-up
    event: str  # kill_leader | kill_sequencer | kill_backup | kill_follower | ..._mid_batch
    group: int = 0

    @property
    def signal(self) -> int:
        """kill -9, except mid-batch: SIGUSR1 arms the leader to die at the exact point."""
        return signal.SIGUSR1 if self.event == "kill_leader_mid_batch" else signal.SIGKILL


def schedule(spec: ExperimentSpec) -> list[Fault]:
    planned = []
    if spec.kill_leader >= 0:
        planned.append(Fault(spec.kill_leader, "kill_leader", 0))
    if spec.kill_sequencer >= 0:
        planned.append(Fault(spec.kill_sequencer, "kill_sequencer"))
    if spec.kill_backup >= 0:
        planned.append(Fault(spec.kill_backup, "kill_backup"))
    if spec.kill_follower >= 0:
        planned.append(Fault(spec.kill_follower, "kill_follower", 0))
    if spec.kill_leader_mid_batch >= 0:
        planned.append(Fault(spec.kill_leader_mid_batch, "kill_leader_mid_batch", 0))
    return sorted(planned, key=lambda f: f.at)


class FaultLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def mark(self, event: str, target: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a")
        line = f"{time.time_ns() // 1_000_000} {event} {target}"
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


REPLICA_FAULTS = ("kill_leader", "kill_follower", "kill_leader_mid_batch")


def seeded_schedule(seed: int, expduration: float) -> dict[str, float]:
    """A reproducible random failure schedule for soak runs: which faults, and when.

    At most one replica of group 0 dies (a group of three survives one failure; two would
    take its majority, and with it availability), and/or the sequencer dies once (there is
    one backup). Times fall in the first four fifths of the measured window, so every run
    also shows recovery. The result maps spec fields to seconds.
    """
    import random

    rng = random.Random(seed)
    kinds = []
    if rng.random() < 0.8:
        kinds.append(rng.choice(REPLICA_FAULTS))
    if not kinds or rng.random() < 0.5:
        kinds.append("kill_sequencer")
    latest = expduration * 0.8
    return {kind: round(rng.uniform(0.5, latest), 2) for kind in kinds}
