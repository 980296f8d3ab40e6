"""`<name>.exec`: the numbers one shard replica executed, in the order it executed them, for
the per-shard checker (analysis/zkshards.py). Writer and reader live here together.

One line per run: `first last kind client_id reqid`, where kind is `o` (one operation: first
== last) or `n` (a noop over [first, last]); consecutive noops are merged into one run. A
replica that executes correctly writes runs that start at 0 and follow each other without
gap or overlap; the checker verifies that rather than trusting it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

OP = "o"
NOOP = "n"


@dataclass(frozen=True, slots=True)
class Run:
    first: int
    last: int
    kind: str  # OP or NOOP
    client_id: int = 0
    reqid: int = 0


class ExecLogError(ValueError):
    """A line that is not a run; the message names the file and line."""


class ExecWriter:
    """Appends runs, merging consecutive noops; flushed by the caller's schedule."""

    def __init__(self, path: Path) -> None:
        self.file: TextIO = open(path, "a", encoding="ascii")  # noqa: SIM115 - long-lived
        self.noop: tuple[int, int] | None = None  # a noop run not written yet

    def op(self, number: int, client_id: int, reqid: int) -> None:
        self._flush_noop()
        self.file.write(f"{number} {number} {OP} {client_id} {reqid}\n")

    def noop_run(self, first: int, last: int) -> None:
        if self.noop is not None and self.noop[1] + 1 == first:
            self.noop = (self.noop[0], last)
            return
        self._flush_noop()
        self.noop = (first, last)

    def flush(self) -> None:
        self._flush_noop()
        self.file.flush()

    def close(self) -> None:
        self.flush()
        self.file.close()

    def _flush_noop(self) -> None:
        if self.noop is not None:
            first, last = self.noop
            self.file.write(f"{first} {last} {NOOP} 0 0\n")
            self.noop = None


def read(path: Path) -> Iterator[Run]:
    with open(path, encoding="ascii", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            try:
                if len(parts) != 5 or parts[2] not in (OP, NOOP):
                    raise ValueError("expected: first last o|n client reqid")
                first, last, client_id, reqid = (int(parts[0]), int(parts[1]),
                                                 int(parts[3]), int(parts[4]))
                if first < 0 or last < first or (parts[2] == OP and last != first):
                    raise ValueError(f"bad range {first}..{last}")
            except ValueError as exc:
                raise ExecLogError(f"{path}:{lineno}: {exc}") from None
            yield Run(first, last, parts[2], client_id, reqid)
