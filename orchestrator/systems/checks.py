"""The verdicts a system's `check` gives over a finished run's records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Check:
    ok: bool
    lines: list[str]  # what to print; the last says the verdict ("contiguity: OK")

    @property
    def headline(self) -> str:
        return self.lines[-1] if self.lines else ""


def contiguity(run_dir: Path) -> Check:
    """Every number (log position) handed out is owned once: the clients' .seqnums and the
    replicas' .noops files (analysis.contiguity)."""
    from analysis.contiguity import check_run
    from analysis.datfiles import DatFormatError

    try:
        verdict = check_run(run_dir)
    except (DatFormatError, ValueError) as exc:
        return Check(False, [f"contiguity: FAILED (unreadable records: {exc})"])
    return Check(verdict.ok, verdict.lines())


def shared_log(run_dir: Path) -> Check:
    """Every acknowledged append is in the log with its bytes on every replica of its chain
    (analysis.logcheck over layout.json and the log servers' dumps)."""
    from analysis.logcheck import check_log

    verdict = check_log(run_dir)
    return Check(verdict.ok, verdict.lines())


def linearizability(run_dir: Path) -> Check:
    """Every znode's recorded operations fit one sequential order that respects real time
    (analysis.linearizability over the clients' .history files); none recorded: no verdict."""
    from analysis.linearizability import HISTORY_SUFFIX, check_file
    from analysis.runfiles import run_files
    from nodes.zk.history import HistoryFormatError

    if not run_files(run_dir, f"*{HISTORY_SUFFIX}"):
        return Check(True, ["linearizability: not recorded (run with --record-seqnums)"])
    try:
        verdict = check_file(run_dir)
    except HistoryFormatError as exc:
        return Check(False, [f"linearizability: FAILED (unreadable history: {exc})"])
    # A run has hundreds of znodes: name only those that failed (`masonctl
    # check-linearizable` lists every one).
    failed = [line for key in verdict.keys if not key.ok for line in key.lines()]
    return Check(verdict.ok, failed + verdict.lines()[-1:])


def zk_shards(run_dir: Path) -> Check:
    """Every ZK-Mason shard replica executed its space's numbers once each, in order; the
    replicas of a shard agree on each number; a majority reached the highest number handed
    out (analysis.zkshards over the replicas' .exec files)."""
    from analysis.zkshards import check_run

    verdict = check_run(run_dir)
    return Check(verdict.ok, verdict.lines())
