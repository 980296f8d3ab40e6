"""The failure schedule of a run and the log of what was injected when.

Times are seconds after the clients' warm-up, as the original's --kill_leader and
--kill_sequencer. `faults.log` records each event as `unix_ms event target`, with
`measure_start`/`measure_end` markers, so plots can mark the kills on the time axis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.spec import ExperimentSpec


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after warm-up
    event: str  # kill_leader | kill_sequencer
    group: int = 0


def schedule(spec: ExperimentSpec) -> list[Fault]:
    planned = []
    if spec.kill_leader >= 0:
        planned.append(Fault(spec.kill_leader, "kill_leader", 0))
    if spec.kill_sequencer >= 0:
        planned.append(Fault(spec.kill_sequencer, "kill_sequencer"))
    return sorted(planned, key=lambda f: f.at)


class FaultLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[str] = []
        self._file = None

    def mark(self, event: str, target: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a")
        line = f"{time.time_ns() // 1_000_000} {event} {target}"
        self.events.append(line)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
