"""A sequencer takeover whose first group cannot commit the fill: another group carries it.

Real processes under load (`masonctl run`, two groups of three). The test plays the
faults itself, in an order it can wait on:

1. numbers are handed out to a group that never logs them (as a leader that dies before it
   logs, when the sequencer dies before a successor can probe them): a hole below what the
   groups keep committing, so the standby has holes to fill;
2. group 1 is paused, so the takeover, once the sequencer is killed, waits at its switch;
3. once group 0 switched (its leader answers a collect of the new epoch), group 0's two
   other replicas are paused: it keeps a leader (for a while) but no majority;
4. group 1 resumes: the standby switches it, collects both groups and must fill.

The fill used to go through group 0 only, so every group's failover waited for group 0's
majority. Now the standby finds that group 0 cannot commit and commits the fill through
group 1 while group 0 is still without its majority; group 0 never commits it, and the
checker finds every number of every space held exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from analysis.datfiles import DatFormatError, read_faults, read_noops
from nodes import wire
from nodes.config import ProxyConfig, SequencerConfig, load
from nodes.sequencer.recovery import PROBE_PATIENCE
from tests.conftest import REPO, free_port_block, wait_for
from tests.faults.test_failover import LOAD, assert_contiguous
from tests.faults.timing import SLACK, TAKEOVER_S, run_length
from tests.line import call_once

NOBODY = 99  # a group id no proxy has: what the sequencer hands it is never logged
NEW_EPOCH = 2
# Group 1 must be paused before the sequencer dies: the test needs a poll or two for it.
KILL_AT = 2.0
# A leader cut off from its followers steps down after one to two election timeouts: long
# enough that group 0's collect still reaches its leader after step 3.
ELECTION_TIMEOUT_MS = 1000
# The takeover (one probe of group 0 longer), then group 0's election once it is whole.
DURATION = run_length(KILL_AT, TAKEOVER_S + SLACK * PROBE_PATIENCE
                      + SLACK * 2 * ELECTION_TIMEOUT_MS / 1000)


def measuring(run_dir: Path) -> bool:
    try:
        return any(e.event == "measure_start" for e in read_faults(run_dir / "faults.log"))
    except (OSError, DatFormatError):
        return False


def pid_of(run_dir: Path, name: str) -> int:
    return int((run_dir / f"{name}.pid").read_text())


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        os.kill(pid, sig)


def process_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat ("T": stopped by a signal)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def switched_leader(ports: dict[int, int]) -> int | None:
    """The replica leading a group that applied its switch to the new epoch, if any: a
    collect of that epoch is read-only and answered ok only then."""
    for port in ports.values():
        try:
            reply = call_once(port, wire.CollectRequest(NEW_EPOCH))
        except OSError:
            continue
        if isinstance(reply, wire.CollectReply) and reply.ok:
            return reply.leader
    return None


def serving(port: int) -> bool:
    """A standby's counters leave zero only when its takeover is done."""
    try:
        reply = call_once(port, wire.Heartbeat(NEW_EPOCH))
    except OSError:
        return False  # the run is over: it never served in time
    return isinstance(reply, wire.HeartbeatReply) and any(reply.counters)


def test_the_fill_goes_to_group_1_while_group_0_has_no_majority(tmp_path):
    run_dir = tmp_path / "fill"
    masonctl = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", "run", *LOAD,
         "--expduration", str(DURATION), "--kill_sequencer", str(KILL_AT),
         "--election_timeout_ms", str(ELECTION_TIMEOUT_MS),
         "--base_port", str(free_port_block(24)), "--outdir", run_dir.name,
         "--results", str(tmp_path)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)},
    )
    paused: list[int] = []
    try:
        wait_for(lambda: measuring(run_dir), 120, "the measured window")
        sequencer = load(run_dir / "sequencer-0.toml", SequencerConfig)
        standby = load(run_dir / "sequencer-1.toml", SequencerConfig)
        assert sequencer.listen is not None and standby.listen is not None
        replicas: dict[int, dict[int, tuple[int, int]]] = {}  # group -> replica -> pid, port
        for path in sorted(run_dir.glob("proxy-*.toml")):
            conf = load(path, ProxyConfig)
            assert conf.listen is not None
            replicas.setdefault(conf.group, {})[conf.replica] = (
                pid_of(run_dir, conf.name), conf.listen.port)
        assert sorted(replicas) == [0, 1] and all(len(g) == 3 for g in replicas.values())

        # 1. A hole: numbers owned by nobody, below what both groups commit next.
        lost = call_once(sequencer.listen.port,
                         wire.SeqRequest(NOBODY, 1, 1, [3, 3], 0, 1))
        assert isinstance(lost, wire.SeqReply) and lost.status == wire.SEQ_OK
        assert not serving(standby.listen.port), "a takeover before any fault"
        # 2. Group 1 paused before the sequencer dies: the takeover waits at its switch.
        group1 = [pid for pid, _ in replicas[1].values()]
        paused += group1
        signal_all(group1, signal.SIGSTOP)
        # 3. Group 0 switched; then it loses its majority (its leader stays, for now).
        ports0 = {r: port for r, (_, port) in replicas[0].items()}
        found: list[int] = []

        def group0_switched() -> bool:
            leader = switched_leader(ports0)
            if leader is not None:
                found.append(leader)
            return leader is not None

        wait_for(group0_switched, 60, "group 0 to switch to the standby's epoch")
        others = [pid for r, (pid, _) in replicas[0].items() if r != found[0]]
        paused += others
        signal_all(others, signal.SIGSTOP)
        # 4. Group 1 back: the takeover must finish while group 0 has no majority.
        signal_all(group1, signal.SIGCONT)
        wait_for(lambda: serving(standby.listen.port), 30,
                 "the standby to serve while group 0 has no majority")
        assert [process_state(pid) for pid in others] == ["T", "T"]  # paused throughout
        signal_all(others, signal.SIGCONT)
        paused.clear()
        output, _ = masonctl.communicate(timeout=240)
    finally:
        for pid in paused:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if masonctl.poll() is None:
            # ^C: the run stops every node it started (they run in sessions of their own).
            masonctl.send_signal(signal.SIGINT)
            try:
                masonctl.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                masonctl.kill()
                masonctl.communicate()
    assert_contiguous(run_dir, output, masonctl.returncode)
    # The lost numbers became fill noops of group 1 and of group 1 alone.
    holders = {}
    for path in run_dir.glob("proxy-*.noops"):
        noops = read_noops(path)
        for space, last in enumerate(lost.lasts):
            mask = (noops.lasts[:, space] >= last) & \
                (noops.lasts[:, space] - noops.counts[:, space] < last)
            if mask.any():
                holders.setdefault(noops.group, set()).add(space)
    assert holders == {1: {0, 1}}, holders
