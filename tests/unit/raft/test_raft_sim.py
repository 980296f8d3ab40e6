"""Randomised, deterministic simulation of Raft groups of three and five nodes.

``RAFT_SIM_SEEDS`` sets how many seeds run (default 2000) and ``RAFT_SIM_SEED_START``
where they start, e.g. for a soak::

    RAFT_SIM_SEEDS=100000 RAFT_SIM_SEED_START=5000 pytest tests/unit/raft/test_raft_sim.py

A failing seed is reported with its scenario, the last events and the command that
replays it with a full trace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from nodes.raft import Entry, RaftLog, RaftNode, VoteRequest, VoteResponse

from .sim import (
    Checker,
    InvariantViolation,
    LivenessFailure,
    Scenario,
    Sim,
    SimFailure,
    main,
    run_seed,
    scenario_for,
)

SEEDS = int(os.environ.get("RAFT_SIM_SEEDS", "2000"))
START = int(os.environ.get("RAFT_SIM_SEED_START", "0"))
CHUNK = 100
CHUNKS = [(lo, min(lo + CHUNK, START + SEEDS)) for lo in range(START, START + SEEDS, CHUNK)]


@pytest.mark.parametrize(
    ("lo", "hi"), CHUNKS, ids=[f"seeds_{lo:06d}-{hi - 1:06d}" for lo, hi in CHUNKS]
)
def test_random_seeds_keep_raft_safe_and_live(lo: int, hi: int) -> None:
    failures = []
    for seed in range(lo, hi):
        try:
            run_seed(seed)
        except SimFailure as e:
            failures.append(str(e))
            if len(failures) == 3:
                break
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_simulation_is_deterministic() -> None:
    def fingerprint(seed: int) -> Any:
        sim = run_seed(seed)
        logs = [
            [(e.index, e.term, e.data) for e in sim.nodes[i].storage.log.entries] for i in sim.ids
        ]
        return sim.slot, sim.stats, logs, [sim.sms[i].digest for i in sim.ids]

    for seed in (3, 4, 5):
        assert fingerprint(seed) == fingerprint(seed)


def test_simulation_exercises_every_fault() -> None:
    """Guard against a simulator that silently stopped injecting faults."""
    total: dict[str, int] = {}
    wire = 0
    for seed in range(60):
        sim = run_seed(seed)
        wire += sim.sc.wire
        for k, v in sim.stats.items():
            total[k] = total.get(k, 0) + v
    for key in (
        "lost",
        "duplicated",
        "elections",
        "snapshots",
        "compactions",
        "crashes",
        "partitions",
        "one_way_cuts",
        "reordered",
    ):
        assert total[key] > 10, (key, total)
    assert total["proposed"] > 1000 and wire > 5
    assert {scenario_for(s).n for s in range(3)} == {3, 5}


# ---------------------------------------------------------------- the checker can fail


def _log(*terms: int, offset: int = 0, data: bytes = b"x") -> RaftLog:
    log = RaftLog()
    log.offset = offset
    log.entries = [Entry(t, offset + 1 + k, data) for k, t in enumerate(terms)]
    return log


def test_checker_catches_two_leaders_in_one_term() -> None:
    chk = Checker()
    chk.observe_leader(1, 3)
    chk.observe_leader(1, 3)  # the same leader again is fine
    chk.observe_leader(2, 4)
    with pytest.raises(InvariantViolation, match="election safety"):
        chk.observe_leader(2, 3)


def test_checker_catches_logs_that_do_not_match() -> None:
    chk = Checker()
    chk.observe_log(1, _log(1, 1, 2))
    chk.observe_log(2, _log(1, 1))
    with pytest.raises(InvariantViolation, match="log matching"):
        chk.observe_log(3, _log(1, 1, 2, data=b"other"))
    # Same (index, term) but a different predecessor is caught too.
    chk = Checker()
    chk.observe_log(1, _log(1, 1, 2))
    with pytest.raises(InvariantViolation, match="log matching"):
        chk.observe_log(2, _log(1, 2, 2))


def test_checker_sees_a_rewritten_log_of_the_same_length() -> None:
    chk = Checker()
    log = _log(1, 1, 2)
    chk.observe_log(1, log)
    chk.observe_log(2, _log(1, 1, 2))
    log.entries[1:] = [Entry(1, 2, b"y"), Entry(2, 3, b"x")]
    with pytest.raises(InvariantViolation):
        chk.observe_log(1, log)


def test_checker_catches_a_leader_missing_a_committed_entry() -> None:
    chk = Checker()
    chk.observe_log(1, _log(1, 1))
    chk.observe_commit(1, 1, 2, _log(1, 1))
    with pytest.raises(InvariantViolation, match="leader completeness"):
        chk.observe_leader(2, 2, _log(1))
    # ... also when the commit is observed after the leader took over.
    chk = Checker()
    chk.observe_leader(2, 5, _log(1, 5))
    with pytest.raises(InvariantViolation, match="leader completeness"):
        chk.observe_commit(1, 3, 2, _log(1, 3))


def test_checker_allows_a_stale_leader_to_lack_later_commits() -> None:
    chk = Checker()
    chk.observe_leader(2, 2, _log(1, 2))
    chk.observe_commit(1, 3, 2, _log(1, 3))  # committed in term 3; leader of 2 is older


def test_checker_catches_diverging_state_machines() -> None:
    chk = Checker()
    chk.observe_applied(1, 5, 1234)
    chk.observe_applied(2, 5, 1234)
    with pytest.raises(InvariantViolation, match="state machine safety"):
        chk.observe_applied(3, 5, 999)
    chk.observe_commit(1, 1, 2, _log(1, 1))
    with pytest.raises(InvariantViolation, match="state machine safety"):
        chk.observe_commit(2, 2, 2, _log(1, 2))


# ---------------------------------------------------------------- the simulator can fail


@pytest.fixture
def always_grant_votes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def grant(self: RaftNode, m: VoteRequest) -> None:
        self._msgs.append(VoteResponse(self.id, m.frm, self.term, True))

    monkeypatch.setattr(RaftNode, "_handle_vote_request", grant)
    yield


def test_simulator_catches_a_node_that_votes_twice(always_grant_votes: None) -> None:
    failures = []
    for seed in range(40):
        try:
            run_seed(seed)
        except SimFailure as e:
            failures.append(e)
    assert failures
    assert any(isinstance(e.__cause__, InvariantViolation) for e in failures)
    report = str(failures[0])
    assert "seed=" in report and "replay: python -m tests.unit.raft.sim" in report


def test_simulator_catches_a_group_that_never_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RaftNode, "_maybe_commit", lambda self: False)
    with pytest.raises(SimFailure) as info:
        Sim(Scenario.from_seed(1, 3)).run()
    assert isinstance(info.value.__cause__, LivenessFailure)


def test_replay_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["7", "--nodes", "5"]) == 0
    assert "seed 7: ok" in capsys.readouterr().out
    assert main(["7", "--trace"]) == 0
    out = capsys.readouterr().out
    assert "deliver" in out and "calm" in out
