"""The linearizability checker (analysis/linearizability.py) on histories with known
verdicts: hand-built ones, simulated correct registers (with and without a leader kill),
the same corrupted on purpose, and small random histories decided by brute force."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.linearizability import (
    LINEARIZABLE,
    UNDECIDED,
    VIOLATION,
    apply,
    check_key,
    check_operations,
)
from benchmarks.register_sim import (
    INITIAL,
    NEVER_WRITTEN,
    Outage,
    corrupt_pairing,
    corrupt_value,
    corrupt_version_skip,
    ok_gets,
    pairable_gets,
    simulate,
)
from nodes.zk.history import Operation, Outcome, VersionedData

K = "/k"
START = VersionedData(b"x", 0)


def op(process: int, kind: str, start: int, end: int | None, *, value: bytes | None = None,
       version: int | None = None, got: tuple[bytes, int] | int | None = None,
       error: str | None = None, path: str = K) -> Operation:
    """An operation on `path`: `end` None = unknown outcome; `error` = a definite failure;
    `got` = a get's (data, version) or a set's new version."""
    if kind == "set" and version is None:
        version = -1
    if end is None:
        outcome = Outcome.UNKNOWN
    elif error is not None:
        outcome = Outcome.FAIL
    else:
        outcome = Outcome.OK
    result = None
    if isinstance(got, tuple):
        result = VersionedData(*got)
    elif isinstance(got, int):
        assert value is not None
        result = VersionedData(value, got)
    return Operation(process, start, kind, path, start, end, outcome, value, version,
                     result, error)


def status(ops: list[Operation], initial: VersionedData | None = START) -> str:
    return check_key(K, ops, initial).status


# ---- hand-built histories ----------------------------------------------------------------


@pytest.mark.parametrize("a_first", [True, False])
def test_concurrent_sets_may_take_effect_in_either_order(a_first: bool) -> None:
    va, vb = (1, 2) if a_first else (2, 1)
    last = b"b" if a_first else b"a"
    ops = [op(1, "set", 0, 10, value=b"a", got=va),
           op(2, "set", 5, 15, value=b"b", got=vb),
           op(3, "get", 20, 30, got=(last, 2))]
    assert status(ops) == LINEARIZABLE


@pytest.mark.parametrize("second,read,verdict", [
    ((5, 15), (20, 30), VIOLATION),  # both sets done before the read: it must see b
    ((20, 30), (25, 50), LINEARIZABLE),  # the read overlaps the second set
])
def test_a_read_of_the_first_of_two_sets(second: tuple[int, int], read: tuple[int, int],
                                         verdict: str) -> None:
    ops = [op(1, "set", 0, 10, value=b"a", got=1),
           op(2, "set", *second, value=b"b", got=2),
           op(3, "get", *read, got=(b"a", 1))]
    assert status(ops) == verdict


def test_read_of_data_never_written_is_a_violation() -> None:
    ops = [op(1, "set", 0, 10, value=b"a", got=1),
           op(2, "get", 5, 15, got=(b"zz", 1))]
    assert status(ops) == VIOLATION


def test_stale_read_after_a_completed_write_is_a_violation_and_named() -> None:
    stale = op(3, "get", 40, 50, got=(b"a", 1))
    ops = [op(1, "set", 0, 10, value=b"a", got=1),
           op(2, "set", 20, 30, value=b"b", got=2),
           stale]
    verdict = check_key(K, ops, START)
    assert verdict.status == VIOLATION
    assert [o.value for o, _ in verdict.linearized] == [b"a"]
    assert verdict.linearized[-1][1] == VersionedData(b"a", 1)
    assert verdict.blocking == ops[1]
    [(_, answer)] = verdict.candidates
    assert answer.startswith("v2, but then nothing could answer " + stale.describe())
    assert any(line.startswith("  cannot place: p2") for line in verdict.lines())


def test_lost_update_two_conditional_sets_on_one_version_is_a_violation() -> None:
    both_read = [op(1, "get", 0, 5, got=(b"x", 0)), op(2, "get", 0, 5, got=(b"x", 0))]
    lost = [op(1, "set", 10, 20, value=b"a", version=0, got=1),
            op(2, "set", 12, 22, value=b"b", version=0, got=1)]
    assert status(both_read + lost) == VIOLATION
    one_loses = [lost[0], op(2, "set", 12, 22, value=b"b", version=0, error="bad_version")]
    assert status(both_read + one_loses) == LINEARIZABLE


def test_unknown_write_may_take_effect_long_after_its_invocation() -> None:
    ops = [op(1, "set", 0, None, value=b"a"),
           op(2, "set", 10, 20, value=b"b", got=1),
           op(2, "get", 30, 40, got=(b"b", 1)),
           op(3, "get", 50, 60, got=(b"a", 2))]
    assert status(ops) == LINEARIZABLE


def test_unknown_write_may_never_take_effect() -> None:
    ops = [op(1, "set", 0, None, value=b"a"), op(2, "get", 50, 60, got=(b"x", 0))]
    assert status(ops) == LINEARIZABLE


def test_unknown_write_cannot_take_effect_before_its_invocation() -> None:
    ops = [op(2, "get", 0, 5, got=(b"a", 1)), op(1, "set", 10, None, value=b"a")]
    assert status(ops) == VIOLATION


def test_unknown_write_takes_effect_at_most_once() -> None:
    ops = [op(1, "set", 0, None, value=b"a"),
           op(2, "get", 10, 20, got=(b"a", 1)),
           op(2, "set", 30, 40, value=b"b", got=2),
           op(2, "get", 50, 60, got=(b"a", 3))]
    assert status(ops) == VIOLATION


@pytest.mark.parametrize("error", ["bad_version", "not_applied"])
def test_value_of_a_failed_write_observed_is_a_violation(error: str) -> None:
    ops = [op(1, "set", 0, 10, value=b"a", version=5, error=error),
           op(2, "get", 20, 30, got=(b"a", 1))]
    assert status(ops) == VIOLATION


def test_bad_version_needs_a_version_that_differs() -> None:
    wrongly_refused = [op(1, "set", 0, 10, value=b"a", version=0, error="bad_version")]
    assert status(wrongly_refused) == VIOLATION
    refused = [op(1, "set", 0, 10, value=b"a", version=3, error="bad_version")]
    assert status(refused) == LINEARIZABLE


def test_not_applied_failures_and_unknown_reads_are_left_out() -> None:
    ops = [op(1, "set", 0, 10, value=b"a", error="not_applied"),
           op(2, "get", 0, None),
           op(3, "get", 20, 30, got=(b"x", 0))]
    verdict = check_key(K, ops, START)
    assert (verdict.status, verdict.operations, verdict.dropped) == (LINEARIZABLE, 1, 2)


def test_check_sees_the_current_version() -> None:
    write = op(1, "set", 0, 10, value=b"a", got=1)
    assert status([write, op(2, "check", 20, 30, version=1)]) == LINEARIZABLE
    assert status([write, op(2, "check", 20, 30, version=0)]) == VIOLATION
    assert status([write, op(2, "check", 20, 30, version=0, error="bad_version")]) \
        == LINEARIZABLE
    assert status([write, op(2, "check", 20, 30, version=-1)]) == LINEARIZABLE


def test_create_and_delete_on_an_absent_znode() -> None:
    ops = [op(1, "get", 0, 5, error="no_node"),
           op(1, "create", 10, 20, value=b"a"),
           op(2, "get", 30, 40, got=(b"a", 0)),
           op(2, "create", 50, 60, value=b"b", error="node_exists"),
           op(1, "delete", 70, 80, version=0),
           op(2, "set", 90, 100, value=b"c", error="no_node")]
    assert status(ops, initial=None) == LINEARIZABLE
    read_after_delete = ops[:5] + [op(2, "get", 90, 100, got=(b"a", 0))]
    assert status(read_after_delete, initial=None) == VIOLATION


def test_touching_intervals_are_concurrent() -> None:
    write = op(1, "set", 0, 10, value=b"a", got=1)
    assert status([write, op(2, "get", 10, 20, got=(b"x", 0))]) == LINEARIZABLE
    assert status([write, op(2, "get", 11, 20, got=(b"x", 0))]) == VIOLATION


def test_search_budget_ends_undecided_not_linearizable() -> None:
    ops = simulate(5, 200, nclients=4)
    verdict = check_key("/k0", ops, INITIAL, max_steps=10)
    assert verdict.status == UNDECIDED and not verdict.ok
    assert check_operations(ops, {"/k0": INITIAL}, max_steps=10).undecided


# ---- per-znode partitioning --------------------------------------------------------------


def test_a_violation_on_a_small_znode_is_found_beside_a_large_one() -> None:
    large = simulate(1, 3000, nclients=8, paths=("/a",))
    small = simulate(2, 40, nclients=3, paths=("/b",))
    small = corrupt_value(small, ok_gets(small)[-1])
    verdict = check_operations(large + small, {"/a": INITIAL, "/b": INITIAL})
    by_path = {k.path: k for k in verdict.keys}
    assert by_path["/a"].status == LINEARIZABLE and by_path["/a"].operations > 2900
    assert by_path["/b"].status == VIOLATION
    assert not verdict.ok
    assert verdict.lines()[-1] == "linearizability: FAILED on /b"


def test_znodes_start_absent_unless_given() -> None:
    ops = [op(1, "get", 0, 5, got=(b"x", 0), path="/p"),
           op(1, "get", 0, 5, got=(b"x", 0), path="/q")]
    verdict = check_operations(ops, {"/p": START})
    assert [(k.path, k.status) for k in verdict.keys] == [("/p", LINEARIZABLE),
                                                          ("/q", VIOLATION)]


# ---- simulated correct registers, and the same corrupted ---------------------------------

SIM = settings(max_examples=40, deadline=None)
histories: st.SearchStrategy[dict[str, object]] = st.builds(
    dict, seed=st.integers(0, 2**32), nops=st.integers(5, 250),
    nclients=st.integers(1, 6), outstanding=st.integers(1, 3),
    unknown_rate=st.sampled_from([0.0, 0.02, 0.1]))


def _check(ops: list[Operation]) -> str:
    return check_key("/k0", ops, INITIAL).status


def _assert_is_a_linearization(ops: list[Operation]) -> None:
    """The order the checker returns, checked without the checker: every answered
    operation is in it, real time is respected, and replaying it gives every answer."""
    verdict = check_key("/k0", ops, INITIAL)
    assert verdict.status == LINEARIZABLE, "\n".join(verdict.lines())
    order = [o for o, _ in verdict.linearized]
    answered = [o for o in ops if o.outcome is not Outcome.UNKNOWN
                and o.error != "not_applied"]
    assert set(map(id, answered)) <= set(map(id, order))
    for earlier, later in itertools.combinations(order, 2):
        assert later.response_ns is None or later.response_ns >= earlier.invoke_ns
    state: tuple[object, int] | None = INITIAL
    for o in order:
        result, state = apply(state, o.kind, o.value, o.version)
        assert _answers(o, result)


def _answers(o: Operation, result: tuple[object, ...]) -> bool:
    if o.outcome is Outcome.UNKNOWN:
        return True
    if o.outcome is Outcome.FAIL:
        return result == (o.error,)
    if o.kind == "get":
        assert o.result is not None
        return result == ("ok", o.result.value, o.result.version)
    if o.kind == "set":
        assert o.result is not None
        return result == ("ok", o.result.version)
    return result == ("ok",)


@SIM
@given(histories)
def test_simulated_register_histories_are_linearizable(h: dict[str, object]) -> None:
    _assert_is_a_linearization(simulate(**h))  # type: ignore[arg-type]


@SIM
@given(histories, st.sampled_from(["value", "version", "pairing"]), st.randoms())
def test_simulated_histories_corrupted_are_violations(h: dict[str, object], how: str,
                                                      rnd: random.Random) -> None:
    ops = simulate(**h)  # type: ignore[arg-type]
    if how == "value":
        targets = ok_gets(ops)
        corrupt = corrupt_value
    elif how == "pairing":
        targets = pairable_gets(ops)
        corrupt = corrupt_pairing
    else:
        targets = [i for i, o in enumerate(ops) if o.result is not None]
        corrupt = corrupt_version_skip
    if not targets:
        return
    assert _check(corrupt(ops, rnd.choice(targets))) == VIOLATION


@SIM
@given(st.integers(0, 2**32), st.integers(1, 4), st.floats(0.0, 1.0))
def test_histories_across_a_leader_kill_are_linearizable(seed: int, outstanding: int,
                                                         applied: float) -> None:
    outage = Outage(start=40_000, end=60_000, applied=applied)
    ops = simulate(seed, 400, nclients=5, outstanding=outstanding, outage=outage)
    assert sum(o.outcome is Outcome.UNKNOWN for o in ops) > 0
    _assert_is_a_linearization(ops)


@SIM
@given(st.integers(0, 2**32), st.sampled_from(["value", "version"]), st.randoms())
def test_histories_across_a_leader_kill_corrupted_are_violations(
        seed: int, how: str, rnd: random.Random) -> None:
    ops = simulate(seed, 400, nclients=5, outage=Outage(start=40_000, end=60_000))
    after = [i for i in ok_gets(ops) if ops[i].invoke_ns > 60_000]
    if not after:
        return
    corrupt = corrupt_value if how == "value" else corrupt_version_skip
    assert _check(corrupt(ops, rnd.choice(after))) == VIOLATION


def test_a_read_of_never_written_data_is_named_in_the_verdict() -> None:
    ops = simulate(3, 300, nclients=5, unknown_rate=0.05)
    target = ok_gets(ops)[100]
    verdict = check_key("/k0", corrupt_value(ops, target), INITIAL)
    assert verdict.status == VIOLATION
    assert verdict.blocking is not None
    text = "\n".join(verdict.lines())
    assert NEVER_WRITTEN.decode() in text


# ---- small random histories against brute force ------------------------------------------

KINDS = ["get", "get", "set", "set", "set", "check", "create", "delete"]
ERRORS = {"get": ["no_node"], "set": ["bad_version", "no_node"], "check": ["bad_version"],
          "create": ["node_exists"], "delete": ["bad_version", "no_node"]}


@st.composite
def small_histories(draw: st.DrawFn) -> tuple[list[Operation], VersionedData | None]:
    """Up to 6 operations with arbitrary intervals and arbitrary (mostly wrong) answers,
    on a znode that starts absent or present."""
    ops = []
    for n in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(KINDS))
        start = draw(st.integers(0, 20))
        end = draw(st.none() | st.integers(start, 25))
        value = draw(st.sampled_from([b"a", b"b", b"c"])) if kind in ("set", "create") \
            else None
        version = draw(st.integers(-1, 2)) if kind in ("set", "check", "delete") else None
        error = draw(st.none() | st.sampled_from(ERRORS[kind]))
        got: tuple[bytes, int] | int | None = None
        if error is None and kind == "get":
            got = (draw(st.sampled_from([b"x", b"a", b"b", b"c"])), draw(st.integers(0, 3)))
        elif error is None and kind == "set":
            got = draw(st.integers(0, 3))
        ops.append(op(n, kind, start, end, value=value, version=version, got=got,
                      error=error))
    return ops, draw(st.sampled_from([START, None]))


def brute_force(ops: list[Operation], initial: VersionedData | None) -> bool:
    """Linearizable iff some subset of the unknown-outcome writes, with every answered
    operation, has an order that respects real time and gives every answer."""
    answered = [o for o in ops if o.outcome is not Outcome.UNKNOWN]
    unknown = [o for o in ops if o.outcome is Outcome.UNKNOWN and o.kind not in ("get", "check")]
    for k in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, k):
            for order in itertools.permutations(answered + list(chosen)):
                if any(b.response_ns is not None and b.response_ns < a.invoke_ns
                       for a, b in itertools.combinations(order, 2)):
                    continue
                state: tuple[object, int] | None = initial
                fine = True
                for o in order:
                    result, state = apply(state, o.kind, o.value, o.version)
                    if not _answers(o, result):
                        fine = False
                        break
                if fine:
                    return True
    return False


@settings(max_examples=500, deadline=None)
@given(small_histories())
def test_small_histories_agree_with_brute_force(
        history: tuple[list[Operation], VersionedData | None]) -> None:
    ops, initial = history
    expected = LINEARIZABLE if brute_force(ops, initial) else VIOLATION
    assert status(ops, initial) == expected


# ---- the sequential model against the replicated ZooKeeper tree ---------------------------

register_ops = st.lists(st.one_of(
    st.tuples(st.just("create"), st.sampled_from([b"a", b"b"]), st.none()),
    st.tuples(st.just("set"), st.sampled_from([b"c", b"d"]), st.integers(-1, 3)),
    st.tuples(st.just("get"), st.none(), st.none()),
    st.tuples(st.just("check"), st.none(), st.integers(-1, 3)),
    st.tuples(st.just("delete"), st.none(), st.integers(-1, 3))), max_size=30)


@settings(max_examples=150, deadline=None)
@given(register_ops)
def test_the_model_answers_as_the_zookeeper_tree_does(
        ops: list[tuple[str, bytes | None, int | None]]) -> None:
    from nodes.zk import requests as rq
    from nodes.zk import results as rs
    from nodes.zk.codes import Err
    from nodes.zk.machine import ZkStateMachine

    names = {Err.NO_NODE: "no_node", Err.BAD_VERSION: "bad_version",
             Err.NODE_EXISTS: "node_exists"}
    machine = ZkStateMachine()
    state: tuple[object, int] | None = None
    for clock, (kind, value, version) in enumerate(ops, start=1):
        request: rq.Request
        if kind == "create":
            assert value is not None
            request = rq.Create(K, value)
        elif kind == "set":
            assert value is not None and version is not None
            request = rq.SetData(K, value, version)
        elif kind == "get":
            request = rq.GetData(K, False)
        elif kind == "check":
            assert version is not None
            request = rq.Multi([rq.Check(K, version)])
        else:
            assert version is not None
            request = rq.Delete(K, version)
        got = machine.apply(rq.Txn(0, clock, request)).result
        if isinstance(got, rs.MultiResult):
            got = got.results[0]
        if isinstance(got, rs.ErrorResult):
            answer: tuple[object, ...] = (names[got.err],)
        elif isinstance(got, rs.DataResult):
            answer = ("ok", got.data, got.stat.version)
        elif kind == "set":
            assert isinstance(got, rs.StatResult)
            answer = ("ok", got.stat.version)
        else:
            answer = ("ok",)
        expected, state = apply(state, kind, value, version)
        assert answer == expected, (kind, value, version)


# ---- what a verdict says -----------------------------------------------------------------


def test_a_violation_report_names_the_prefix_the_blocked_operation_and_the_candidates() -> None:
    stale = op(3, "get", 40, 50, got=(b"a", 1))
    first = op(1, "set", 0, 10, value=b"a", got=1)
    blocked = op(2, "set", 20, 30, value=b"b", got=2)
    check_ok = op(11, "check", 22, 70, version=1, error="bad_version")
    wrong_read = op(12, "get", 25, 70, got=(b"q", 3))
    at_deadline = op(7, "check", 30, 60, version=5)
    early, late = op(8, "set", 2, None, value=b"d"), op(10, "set", 25, None, value=b"f")
    ops = [stale, first, early,  # the stale read is listed before the operation it blocks
           op(4, "set", 5, None, value=b"c", version=7),  # would change nothing: inert
           op(9, "set", 6, None, value=b"e", version=0),  # so would this one
           late, blocked, at_deadline, check_ok, wrong_read,
           op(5, "get", 1, None), op(13, "check", 1, None, version=2),  # left out
           op(6, "set", 3, 4, value=b"g", error="not_applied")]  # left out
    verdict = check_key(K, ops, START)
    assert (verdict.operations, verdict.unknown, verdict.dropped, verdict.inert) == (10, 4, 3, 2)
    but = f", but then nothing could answer {stale.describe()} (it needs version 1)"
    assert verdict.lines() == [
        "/k: 10 operations (4 of unknown outcome, 3 left out), NOT linearizable",
        "  longest linearizable prefix: 1 operations, leaving data 'a' at version 1",
        f"    ... {first.describe()}",
        f"  cannot place: {blocked.describe()}",
        # answered operations first, by invocation; then those of unknown outcome
        f"    candidate {blocked.describe()}; the register answers v2{but}",
        f"    candidate {check_ok.describe()}; the register answers ok",
        f"    candidate {wrong_read.describe()}; the register answers ('a', v1)",
        f"    candidate {at_deadline.describe()}; the register answers bad_version",
        f"    candidate {early.describe()}; the register answers v2{but}",
        f"    candidate {late.describe()}; the register answers v2{but}",
        "    (2 writes of unknown outcome would change nothing there)"]


def test_a_write_that_strands_a_read_of_version_0_is_named() -> None:
    write = op(1, "set", 0, 10, value=b"a", got=1)
    read = op(2, "get", 20, 30, got=(b"x", 0))
    lines = check_key(K, [write, read, op(3, "check", 20, 30, version=0)], START).lines()
    assert lines[1:] == [
        "  longest linearizable prefix: 0 operations, leaving the initial state",
        f"  cannot place: {write.describe()}",
        f"    candidate {write.describe()}; the register answers v1, but then nothing could "
        f"answer {read.describe()} (it needs version 0)"]


def test_with_deletes_versions_may_go_back_and_no_write_is_said_to_strand_a_read() -> None:
    ops = [op(1, "set", 0, 10, value=b"a", got=1),
           op(2, "set", 20, 30, value=b"b", got=2),
           op(3, "get", 40, 50, got=(b"a", 1)),
           op(4, "delete", 60, 70, version=9, error="bad_version")]
    refused = check_key(K, ops, START)  # a delete that failed deletes nothing
    assert refused.lines()[3:] == [
        f"  cannot place: {ops[1].describe()}",
        f"    candidate {ops[1].describe()}; the register answers v2, but then nothing could "
        f"answer {ops[2].describe()} (it needs version 1)"]
    ops[3] = op(4, "delete", 60, 70)
    again = op(5, "get", 40, 50, got=(b"a", 1))  # a second stale read, the same
    deleted = check_key(K, [*ops, again], START)
    assert deleted.lines()[1:] == [
        "  longest linearizable prefix: 2 operations, leaving data 'b' at version 2",
        f"    ... {ops[0].describe()}",
        f"    ... {ops[1].describe()}",
        f"  cannot place: {ops[2].describe()}",
        f"    candidate {ops[2].describe()}; the register answers ('b', v2)",
        f"    candidate {again.describe()}; the register answers ('b', v2)"]


def test_a_prefix_that_ends_absent_says_so() -> None:
    ops = [op(1, "delete", 0, 10), op(2, "get", 20, 30, got=(b"x", 0))]
    assert check_key(K, ops, START).lines()[1:] == [
        "  longest linearizable prefix: 1 operations, leaving the znode absent",
        f"    ... {ops[0].describe()}",
        f"  cannot place: {ops[1].describe()}",
        f"    candidate {ops[1].describe()}; the register answers no_node"]


@pytest.mark.parametrize("reads", [10, 12])
def test_a_long_report_shows_the_last_three_placed_and_ten_candidates(reads: int) -> None:
    writes = [op(1, "set", 10 * i, 10 * i + 5, value=bytes([97 + i]), got=i + 1)
              for i in range(5)]
    bad = [op(2 + i, "get", 60, 100, got=(b"z", 9)) for i in range(reads)]
    lines = check_key(K, writes + bad, START).lines()
    assert lines[:6] == [
        f"/k: {5 + reads} operations, NOT linearizable",
        "  longest linearizable prefix: 5 operations, leaving data 'e' at version 5",
        *(f"    ... {w.describe()}" for w in writes[2:]),
        f"  cannot place: {bad[0].describe()}"]
    listed = [f"    candidate {b.describe()}; the register answers ('e', v5)" for b in bad[:10]]
    assert lines[6:] == listed + (["    and 2 more candidates"] if reads == 12 else [])


def test_the_summary_line_counts_znodes_and_operations() -> None:
    ops = [op(1, "set", 0, 10, value=b"a", got=1), op(2, "set", 5, None, value=b"b"),
           op(3, "get", 1, None), op(1, "get", 0, 5, got=(b"x", 0), path="/q")]
    verdict = check_operations(ops, {K: START, "/q": START})
    assert verdict.lines() == [
        "/k: 2 operations (1 of unknown outcome, 1 left out), linearizable (1 steps)",
        "/q: 1 operations, linearizable (1 steps)",
        "linearizability: OK (2 znodes, 3 operations)"]


def test_violations_outrank_undecided_znodes_in_the_summary() -> None:
    big = simulate(5, 200, nclients=4)
    bad = [op(1, "get", 0, 5, got=(b"y", 0), path=p) for p in ("/a", "/b")]
    verdict = check_operations(big + bad, {"/k0": INITIAL}, max_steps=10)
    assert verdict.lines()[-1] == "linearizability: FAILED on /a, /b"
    assert not verdict.undecided
    other = simulate(6, 200, nclients=4, paths=("/k1",))
    open_ = check_operations(big + other, {"/k0": INITIAL, "/k1": INITIAL}, max_steps=10)
    assert open_.undecided and not open_.ok
    assert open_.lines()[-1] == "linearizability: UNDECIDED on /k0, /k1"
    assert open_.lines()[0] == f"/k0: 200 operations, UNDECIDED: no verdict within " \
        f"{open_.keys[0].steps} steps"


def test_operations_of_another_znode_or_kind_are_refused() -> None:
    other = op(1, "get", 0, 5, got=(b"x", 0), path="/q")
    with pytest.raises(ValueError) as refused:
        check_key(K, [other], START)
    assert str(refused.value) == f"{other.describe()} is not on /k"
    with pytest.raises(ValueError, match="^unknown operation kind 'watch'$"):
        apply((b"x", 0), "watch", None, None)


def test_the_linearization_carries_the_znode_after_each_operation() -> None:
    ops = [op(1, "set", 0, 10, value=b"a", version=5, error="bad_version"),
           op(2, "set", 20, 30, value=b"b", version=0, got=1),
           op(3, "delete", 40, 50, version=1)]
    verdict = check_key(K, ops, START)
    assert verdict.ok
    assert [after for _, after in verdict.linearized] == [START, VersionedData(b"b", 1), None]


# ---- the reductions: sound, and what keeps the search small ------------------------------


def test_a_version_may_be_read_again_after_a_delete() -> None:
    # Versions only rise without deletes; with one, a read of version 0 may follow a write
    # that raised the version past 0.
    ops = [op(1, "set", 0, 10, value=b"a", got=1),
           op(2, "delete", 20, 30),
           op(3, "create", 40, 45, value=b"b"),
           op(4, "get", 50, 60, got=(b"b", 0))]
    assert status(ops) == LINEARIZABLE
    refused_delete = [*ops[:1], op(2, "delete", 20, 30, version=7, error="bad_version"),
                      *ops[2:]]
    assert status(refused_delete) == VIOLATION


def test_of_interchangeable_unknown_writes_the_first_invoked_is_tried() -> None:
    # Listed before it, an identical write invoked too late to explain the read must not
    # stand in for the one invoked in time.
    ops = [op(1, "set", 50, None, value=b"a"),
           op(2, "set", 0, None, value=b"a"),
           op(3, "get", 10, 20, got=(b"a", 1))]
    assert status(ops) == LINEARIZABLE


def test_identical_unknown_writes_may_all_take_effect() -> None:
    ops = [op(i, "set", 0, None, value=b"a") for i in range(3)]
    assert status([*ops, op(5, "get", 10, 20, got=(b"a", 3))]) == LINEARIZABLE
    assert status([*ops, op(5, "get", 10, 20, got=(b"a", 4))]) == VIOLATION


def test_answered_writes_are_tried_before_writes_of_unknown_outcome() -> None:
    # Many unknown outcomes: trying those writes first takes nearly twice the steps.
    ops = simulate(3, 150, nclients=5, unknown_rate=0.3)
    assert check_key("/k0", ops, INITIAL, max_steps=250).status == LINEARIZABLE


def test_a_budget_of_exactly_the_steps_needed_decides() -> None:
    ops = simulate(3, 120, nclients=5, unknown_rate=0.1)
    needed = check_key("/k0", ops, INITIAL).steps
    assert check_key("/k0", ops, INITIAL, max_steps=needed).status == LINEARIZABLE
    assert check_key("/k0", ops, INITIAL, max_steps=needed - 1).status == UNDECIDED


def _concurrent_reads() -> list[Operation]:
    # Eight reads that may each go anywhere in [0, 100], a write beside them, and a read of
    # data never written: the search has to try everything before it says so.
    return [*(op(i, "get", 0, 100, got=(b"x", 0)) for i in range(8)),
            op(20, "set", 0, 100, value=b"a", got=1), op(21, "get", 200, 300, got=(b"z", 5))]


def _concurrent_checks() -> list[Operation]:
    return [*(op(i, "check", 0, 100, version=0) for i in range(8)),
            op(20, "set", 0, 100, value=b"a", got=1), op(21, "get", 200, 300, got=(b"z", 5))]


def _unread_unknown_writes() -> list[Operation]:
    # Eight writes of unknown outcome of data nobody read: one class of writes.
    return [*(op(i, "set", 0, None, value=b"w%d" % i) for i in range(8)),
            op(20, "get", 50, 60, got=(b"z", 20))]


def _read_unknown_writes() -> list[Operation]:
    # Six writes of unknown outcome, each of data that it alone wrote and that one read
    # returned at one version: each can only take effect at that version.
    return [*(op(i, "set", 0, None, value=b"p%d" % i) for i in range(6)),
            *(op(10 + i, "get", 10 * i + 10, 10 * i + 15, got=(b"p%d" % i, i + 1))
              for i in range(6)),
            # refused writes of the same data write nothing: the pins hold
            *(op(20 + i, "set", 0, 5, value=b"p%d" % i, version=99, error="bad_version")
              for i in range(6)),
            op(30, "get", 200, 300, got=(b"z", 9))]


def _unread_data_of_answered_writes() -> list[Operation]:
    # The data of answered writes that no read returned is unread data too.
    return [*(op(i, "set", 0, None, value=b"w%d" % i) for i in range(8)),
            *(op(10 + i, "set", 100 + 10 * i, 105 + 10 * i, value=b"w%d" % i, got=i + 1)
              for i in range(3)),
            op(20, "get", 500, 600, got=(b"z", 20))]


@pytest.mark.parametrize(("history", "budget"), [
    (_concurrent_reads, 40), (_concurrent_checks, 40), (_unread_unknown_writes, 40),
    (_read_unknown_writes, 60), (_unread_data_of_answered_writes, 60)])
def test_the_reductions_keep_the_search_small(history, budget: int) -> None:
    # Without the reduction each of these takes several times the budget.
    assert check_key(K, history(), START, max_steps=budget).status == VIOLATION


def test_a_report_names_the_version_a_stranded_write_or_check_needs() -> None:
    first = op(1, "set", 0, 10, value=b"a", got=1)
    late_set = op(2, "set", 20, 30, value=b"b", got=1)
    late_check = op(3, "check", 20, 30, version=0)
    for late in (late_set, late_check):
        assert check_key(K, [first, late], START).lines()[1:] == [
            "  longest linearizable prefix: 0 operations, leaving the initial state",
            f"  cannot place: {first.describe()}",
            f"    candidate {first.describe()}; the register answers v1, but then nothing "
            f"could answer {late.describe()} (it needs version 0)"]


def test_a_check_of_any_version_waits_for_no_version() -> None:
    ops = [op(1, "set", 0, 10, value=b"a", got=1), op(2, "set", 20, 30, value=b"b", got=2),
           op(3, "check", 40, 50, version=-1)]
    assert status(ops) == LINEARIZABLE


@pytest.mark.parametrize("initial", [START, None])
def test_data_written_twice_may_take_effect_at_a_version_no_read_saw(
        initial: VersionedData | None) -> None:
    # b"x" is the initial data, or created: the unknown write of b"x" is not the only
    # writer of it, so the reads of b"x" do not pin where it takes effect.
    created = [] if initial else [op(9, "create", 0, 2, value=b"x")]
    ops = [*created, op(1, "get", 3, 5, got=(b"x", 0)),
           op(2, "set", 6, None, value=b"x"),
           op(3, "set", 10, 20, value=b"b", got=2)]  # the unknown write took effect as v1
    assert status(ops, initial) == LINEARIZABLE


# ---- the search's effort on fixed histories ----------------------------------------------
# Each reduction only drops branches, so these histories keep their verdicts (checked
# against brute force or known by construction) whatever the search does; the step counts
# are the search's effort on them as it stands. A change that needs more steps is a
# regression of the reductions; one that needs fewer may lower the numbers.


def _seeded_small_history(rnd: random.Random) -> tuple[list[Operation], VersionedData | None]:
    """As small_histories draws them, from a seeded generator."""
    ops = []
    for n in range(rnd.randint(1, 6)):
        kind = rnd.choice(KINDS)
        start = rnd.randint(0, 20)
        end = None if rnd.random() < 0.3 else rnd.randint(start, 25)
        value = rnd.choice([b"a", b"b", b"c"]) if kind in ("set", "create") else None
        version = rnd.randint(-1, 2) if kind in ("set", "check", "delete") else None
        error = rnd.choice(ERRORS[kind]) if rnd.random() < 0.3 else None
        got: tuple[bytes, int] | int | None = None
        if error is None and kind == "get":
            got = (rnd.choice([b"x", b"a", b"b", b"c"]), rnd.randint(0, 3))
        elif error is None and kind == "set":
            got = rnd.randint(1, 3)
        ops.append(op(n, kind, start, end, value=value, version=version, got=got,
                      error=error))
    return ops, rnd.choice([START, None])


def test_small_seeded_histories_agree_with_brute_force_within_a_step_budget() -> None:
    rnd = random.Random(7)
    steps = 0
    for _ in range(400):
        ops, initial = _seeded_small_history(rnd)
        verdict = check_key(K, ops, initial)
        assert verdict.status == (LINEARIZABLE if brute_force(ops, initial) else VIOLATION)
        steps += verdict.steps
    assert steps <= 1096


@pytest.mark.parametrize(("ops", "budget", "corrupted_budget"), [
    pytest.param(simulate(11, 400, nclients=5, outstanding=3,
                          outage=Outage(start=40_000, end=60_000, applied=0.5)), 994, 1173,
                 id="a leader kill"),
    pytest.param(simulate(12, 300, nclients=6, unknown_rate=0.2), 733, 1896,
                 id="many unknown outcomes"),
])
def test_simulated_histories_within_a_step_budget(ops: list[Operation], budget: int,
                                                   corrupted_budget: int) -> None:
    assert check_key("/k0", ops, INITIAL, max_steps=budget).status == LINEARIZABLE
    corrupted = corrupt_value(ops, ok_gets(ops)[-5])
    assert check_key("/k0", corrupted, INITIAL,
                     max_steps=corrupted_budget).status == VIOLATION


def test_the_prefix_reported_is_the_longest_and_the_first_found_of_its_length() -> None:
    # The search places set a and the read of it, fails, and then tries the unknown write
    # first: a shorter prefix, found later.
    write, read = op(1, "set", 0, 10, value=b"a", got=1), op(3, "get", 20, 30, got=(b"a", 1))
    ops = [write, op(2, "set", 0, None, value=b"b"), read, op(4, "get", 40, 50, got=(b"z", 9))]
    assert [o for o, _ in check_key(K, ops, START).linearized] == [write, read]
    # Set a and set b each make a prefix of one; set a's is found first. (The delete, of a
    # version never reached, turns off the version reduction, which would cut both.)
    a, b = op(1, "set", 0, 10, value=b"a", got=1), op(2, "set", 0, 10, value=b"b", got=1)
    verdict = check_key(K, [a, b, op(3, "delete", 20, 30, version=7)], START)
    assert [o for o, _ in verdict.linearized] == [a] and verdict.blocking == b


@pytest.mark.parametrize("ops", [
    pytest.param([op(0, "set", 9, 38, value=b"a", got=1),
                  op(1, "delete", 5, 24),
                  op(2, "check", 15, 38, version=0, error="bad_version")], id="set-check-delete"),
    pytest.param([op(0, "delete", 22, 22),
                  op(1, "set", 24, 33, value=b"d", got=1),
                  op(2, "create", 17, 39, value=b"b"),
                  op(3, "delete", 5, 40)], id="delete-create-set-delete"),
])
def test_histories_that_need_the_search_to_back_up_are_linearizable(
        ops: list[Operation]) -> None:
    # Found by random search: the first order tried fails, and the search must back up
    # over a write and its neighbours in the list of calls and returns without losing any.
    assert brute_force(ops, START)
    assert status(ops) == LINEARIZABLE


@pytest.mark.parametrize(("initial", "ops", "budget"), [
    pytest.param(START, [
        op(0, "set", 6, None, value=b"d", version=1), op(1, "set", 24, None, value=b"c"),
        op(2, "get", 10, 25, got=(b"c", 3)), op(3, "set", 19, None, value=b"d"),
        op(4, "create", 21, None, value=b"c"),
        op(5, "set", 20, 39, value=b"a", version=1, got=2),
        op(6, "set", 22, 27, value=b"a", version=0, got=4), op(7, "delete", 2, None),
        op(8, "delete", 17, 30)], 585, id="memo"),
    pytest.param(START, [
        op(0, "set", 19, 30, value=b"b", version=-1, error="bad_version"),
        op(1, "create", 16, 35, value=b"d", error="node_exists"),
        op(2, "delete", 8, 13, version=0), op(3, "delete", 2, None),
        op(4, "set", 26, None, value=b"a", version=2), op(5, "get", 2, 25, got=(b"a", 3)),
        op(6, "create", 5, None, value=b"b"), op(7, "create", 10, 14, value=b"d"),
        op(8, "get", 6, 28, got=(b"a", 2))], 54, id="dead observer"),
    pytest.param(None, [
        op(0, "create", 13, None, value=b"c"), op(1, "get", 11, 39, error="no_node"),
        op(2, "set", 7, 15, value=b"d", version=2, got=2), op(3, "delete", 11, 20),
        op(4, "get", 10, 22, got=(b"x", 0)), op(5, "create", 13, 34, value=b"a"),
        op(6, "set", 26, 37, value=b"a", version=0, got=3),
        op(7, "create", 4, None, value=b"b")], 29, id="backing up"),
])
def test_violations_found_within_a_step_budget(initial: VersionedData | None,
                                               ops: list[Operation], budget: int) -> None:
    # Random histories on which the memo of dead configurations, giving up a configuration
    # where an observer meets one, and keeping the set of placed operations right when
    # backing up each save steps.
    assert status(ops, initial) == VIOLATION
    assert check_key(K, ops, initial, max_steps=budget).status == VIOLATION
