"""Files a node process leaves for the orchestrator and the tests: writer and reader together.

- `<name>.role`: a proxy replica's part in its group and its Raft term, rewritten on every
  change (`leader 7`), so the orchestrator can find a group's leader to kill.
- `<name>.progress.json`: a proxy replica's Raft progress (term, commit and applied index,
  whether it restarted from its Raft file), rewritten a few times a second, so a test can
  tell when a restarted replica has caught up.
- `<name>.node.json`: the final summary a server process (sequencer, proxy, log server)
  writes on a clean stop: counters that tests and the orchestrator read instead of log lines.

Clients keep their own `<name>.summary.json` (nodes/metrics.py), which analysis/ reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Generic, TypeVar

import msgspec

from nodes.metrics import write_atomic

FOLLOWER, GAINING, LEADER = "follower", "gaining", "leader"
ROLES = (FOLLOWER, GAINING, LEADER)


def role_path(outdir: str | Path, name: str) -> Path:
    return Path(outdir) / f"{name}.role"


def write_role(outdir: str | Path, name: str, role: str, term: int) -> None:
    write_atomic(role_path(outdir, name), f"{role} {term}\n".encode())


def parse_role(text: str) -> tuple[str, int] | None:
    """(role, term) from a .role file's text, or None when it is not one."""
    parts = text.split()
    if len(parts) != 2 or parts[0] not in ROLES or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


class NodeSummary(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A server process's last word. Fields a role does not have stay at their defaults."""

    name: str
    role: str  # sequencer | proxy | logserver
    group: int = -1
    replica: int = -1
    final_role: str = ""  # proxies: follower | gaining | leader
    term: int = 0
    ops_committed: int = 0
    noops_committed: int = 0
    noop_numbers: list[int] = []
    bitmap_bases: list[int] = []
    numbers_committed_twice: int = 0
    epoch: int = 0
    counters: list[int] = []  # sequencers: the next number of each space
    writes: int = 0  # log servers
    reads: int = 0
    refused: int = 0  # log servers: requests answered with an error status
    entries: int = 0  # log servers: positions holding an entry or a hole


class ReplicaProgress(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    restarted: bool  # this incarnation replayed a Raft file an earlier one wrote
    role: str
    term: int
    commit: int
    applied: int
    first_index: int
    last_index: int
    snapshots_restored: int  # state machine rebuilt from a snapshot (own file or leader's)


StatusT = TypeVar("StatusT", NodeSummary, ReplicaProgress)


class _JsonFile(Generic[StatusT]):
    """`<name><suffix>` in a node's output directory: one Struct as JSON, written atomically."""

    def __init__(self, suffix: str, kind: type[StatusT]) -> None:
        self.suffix = suffix
        self.kind: type[StatusT] = kind

    def path(self, outdir: str | Path, name: str) -> Path:
        return Path(outdir) / f"{name}{self.suffix}"

    def write(self, outdir: str | Path, record: StatusT) -> None:
        write_atomic(self.path(outdir, record.name), msgspec.json.encode(record) + b"\n")

    def read(self, path: str | Path) -> StatusT:
        """Raises ValueError with a one-line reason when the file is not a `kind`."""
        try:
            return msgspec.json.decode(Path(path).read_bytes(), type=self.kind)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"{path}: {exc}") from None


_SUMMARY = _JsonFile(".node.json", NodeSummary)
_PROGRESS = _JsonFile(".progress.json", ReplicaProgress)
summary_path, write_summary, read_summary = _SUMMARY.path, _SUMMARY.write, _SUMMARY.read
progress_path, write_progress, read_progress = _PROGRESS.path, _PROGRESS.write, _PROGRESS.read
