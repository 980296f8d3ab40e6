"""analysis.contiguity: a clean run passes; each kind of fault fails with its own reason."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.contiguity import NO_SEQNUMS, SpaceStats, check_run
from nodes.metrics import ClientSummary, NoopRecorder, SeqnumRecorder, write_summary

# An operation as recorded: (reqid, [(count, last) per space]).
Op = tuple[int, Sequence[tuple[int, int]]]


def write_client(
    run: Path,
    name: str,
    cid: int,
    ops: Sequence[Op],
    nspaces: int,
    unanswered: int = 0,
    summary: bool = True,
) -> None:
    with SeqnumRecorder(run / f"{name}.seqnums", cid, nspaces) as r:
        for i, (reqid, ranges) in enumerate(ops):
            r.record(reqid, 1_000_000 + i, [c for c, _ in ranges], [last for _, last in ranges])
    if summary:
        write_summary(
            run / f"{name}.summary.json",
            ClientSummary(name, cid, len(ops), len(ops), 0, 1000, 0, 0, unanswered),
        )


def write_noops(run: Path, name: str, noops: Sequence[Sequence[tuple[int, int]]], n: int) -> None:
    with NoopRecorder(run / f"{name}.noops", n) as r:
        for i, ranges in enumerate(noops):
            r.record(2_000_000 + i, [c for c, _ in ranges], [last for _, last in ranges])


def clean_run(run: Path) -> None:
    """Two spaces. Space 0 hands out 0..9, space 1 hands out 0..5.

    space 0: client 1 gets 0, 1..2, 5;  client 2 gets 3..4, 9;  noops own 6..8.
    space 1: client 1 gets 0 (reqid 0), nothing (reqid 1), 1..2 (reqid 2);
             client 2 gets 3, 4;  noop owns 5.
    Client 1 receives reqid 2's answer twice (identical): counted, not a duplicate.
    """
    write_client(
        run,
        "client-0-0",
        1,
        [
            (0, [(1, 0), (1, 0)]),
            (1, [(2, 2), (0, 0)]),
            (2, [(1, 5), (2, 2)]),
            (2, [(1, 5), (2, 2)]),  # the same answer delivered again
        ],
        nspaces=2,
    )
    write_client(run, "client-1-0", 2, [(0, [(2, 4), (1, 3)]), (1, [(1, 9), (1, 4)])], 2)
    write_noops(run, "proxy-0-0", [[(3, 8), (0, 0)], [(0, 0), (1, 5)]], 2)


def test_clean_run_passes(tmp_path: Path) -> None:
    clean_run(tmp_path)
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    assert v.reason == ""
    assert v.lines()[-1] == "contiguity: OK"
    assert (v.clients, v.operations, v.repeated_answers, v.noops) == (2, 5, 1, 2)
    s0, s1 = v.spaces
    # space 0: ops 1+2+1 (client 1) + 2+1 (client 2) = 7 numbers, noops 3 -> 0..9
    assert (s0.max, s0.op_numbers, s0.noop_numbers, s0.distinct) == (9, 7, 3, 10)
    # space 1: ops 1+0+2 + 1+1 = 5, noop 1 -> 0..5
    assert (s1.max, s1.op_numbers, s1.noop_numbers, s1.distinct) == (5, 5, 1, 6)
    assert s0.gaps == [] and s0.duplicates == [] and v.fifo_violation_count == 0


def test_gap_fails(tmp_path: Path) -> None:
    # Space 0 numbers: 0, 1, 4..5, 9 -> missing 2..3 and 6..8 (5 numbers).
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)]), (1, [(1, 1)]), (2, [(2, 5)])], 1)
    write_noops(tmp_path, "proxy-0-0", [[(1, 9)]], 1)
    v = check_run(tmp_path)
    assert not v.ok
    assert v.reason == "gap in space 0: 5 numbers missing"
    assert v.spaces[0].gaps == [(2, 3), (6, 8)]
    assert v.spaces[0].missing == 5
    assert v.lines()[-1] == "contiguity: FAILED (gap in space 0: 5 numbers missing)"
    assert "  first gaps: 2..3, 6..8" in v.lines()


def test_gap_at_zero(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(2, 3)])], 1)  # 2..3: 0 and 1 missing
    v = check_run(tmp_path)
    assert v.spaces[0].gaps == [(0, 1)]
    assert "gap in space 0" in v.reason


def test_duplicate_fails_and_names_holders(tmp_path: Path) -> None:
    # client 1: 0..2, 3;  client 2: 3..4 (3 again);  noop: 2 (again). Distinct 0..4 = 5,
    # handed out 3+1+2+1 = 7 -> 2 duplicated, no gap.
    write_client(tmp_path, "client-0-0", 1, [(0, [(3, 2)]), (1, [(1, 3)])], 1)
    write_client(tmp_path, "client-1-0", 2, [(0, [(2, 4)])], 1)
    write_noops(tmp_path, "proxy-1-2", [[(1, 2)]], 1)
    v = check_run(tmp_path)
    assert not v.ok
    s = v.spaces[0]
    assert (s.missing, s.duplicated, s.distinct, s.max) == (0, 2, 5, 4)
    assert v.reason == "duplicates in space 0: 2 extra"
    assert [n for n, _ in s.duplicates] == [2, 3]
    assert s.duplicates[0][1] == ["client 1 reqid 0", "noop #1 in proxy-1-2.noops"]
    assert s.duplicates[1][1] == ["client 1 reqid 1", "client 2 reqid 0"]


def test_fifo_inversion_fails(tmp_path: Path) -> None:
    # Client 1's reqid 1 got 0 while reqid 0 got 1: contiguous, but against reqid order.
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 1)]), (1, [(1, 0)])], 1)
    v = check_run(tmp_path)
    assert not v.ok
    assert v.spaces[0].ok
    assert v.reason == "1 FIFO violations"
    (f,) = v.fifo_violations
    assert (f.client_id, f.space, f.reqid_before, f.reqid) == (1, 0, 0, 1)
    assert f.detail == "space 0: reqid 0 got 1 but later reqid 1 got 0"


def test_fifo_skips_empty_spaces_and_overlapping_ranges_fail(tmp_path: Path) -> None:
    # Space 1 is empty for reqid 1, so reqid 0 (space 1: 0) and 2 (space 1: 1) are compared.
    # Space 0: reqid 1 gets 1..3 and reqid 2 gets 3..4: overlap -> FIFO and duplicate.
    write_client(
        tmp_path,
        "client-0-0",
        1,
        [(0, [(1, 0), (1, 0)]), (1, [(3, 3), (0, 0)]), (2, [(2, 4), (1, 1)])],
        2,
    )
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 1
    assert v.fifo_violations[0].space == 0
    assert v.spaces[1].ok
    assert v.spaces[0].duplicated == 1


def test_same_reqid_different_numbers_fails(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)]), (0, [(1, 1)])], 1)
    v = check_run(tmp_path)
    assert not v.ok
    assert v.reason == "1 FIFO violations"
    (f,) = v.fifo_violations
    assert f.space == -1
    assert f.detail == "reqid 0 answered twice with different numbers: (0) and (1)"


def test_unanswered_client_fails(tmp_path: Path) -> None:
    clean_run(tmp_path)
    write_client(tmp_path, "client-2-0", 7, [], 2, unanswered=3)
    v = check_run(tmp_path)
    assert not v.ok
    assert v.reason == "3 unanswered operations at 1 clients"
    assert v.unanswered == {7: 3}
    assert "client 7: 3 operations never answered" in v.lines()


def test_missing_summary_fails(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)])], 1, summary=False)
    v = check_run(tmp_path)
    assert not v.ok
    assert v.reason == "1 clients without a summary"


def test_no_seqnums(tmp_path: Path) -> None:
    (tmp_path / "client-0-0.dat").write_text("1,2,3,4,5,0\n")
    v = check_run(tmp_path)
    assert v.ok is False
    assert v.reason == NO_SEQNUMS == "no seqnums recorded (run with --record-seqnums)"
    assert v.problems == [f"{tmp_path}: no *.seqnums files"]
    assert v.lines()[-1] == "contiguity: FAILED (no seqnums recorded (run with --record-seqnums))"


def test_unreadable_records_fail_with_the_line(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)])], 1)
    with open(tmp_path / "client-0-0.seqnums", "a") as f:
        f.write("1 1000 1")  # a client killed in the middle of a write
    v = check_run(tmp_path)
    assert v.ok is False
    assert v.reason == "unreadable records in client-0-0.seqnums"
    assert v.problems == [
        f"{tmp_path}/client-0-0.seqnums:3: expected 4 columns for 1 spaces, got 3"
    ]


def test_disagreeing_space_counts(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)])], 1)
    write_noops(tmp_path, "proxy-0-0", [[(1, 1), (1, 0)]], 2)
    v = check_run(tmp_path)
    assert not v.ok and v.reason == "files disagree on the number of spaces"


def test_noop_recorded_twice_by_two_leaders_is_not_a_duplicate(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)]), (1, [(1, 3)])], 1)
    write_noops(tmp_path, "proxy-0-0", [[(2, 2)]], 1)
    write_noops(tmp_path, "proxy-0-1", [[(2, 2)]], 1)  # the new leader re-records 1..2
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    assert v.repeated_noops == 1 and v.noops == 1


def test_sealed_space_u64_last_is_no_number(tmp_path: Path) -> None:
    # A seal answer in a space whose counter is still 0 carries last = 2^64 - 1, count 0.
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0), (1, 0)])], 2)
    write_noops(tmp_path, "proxy-0-0", [[(1, 1), (0, 2**64 - 1)]], 2)
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    assert v.spaces[0].max == 1 and v.spaces[1].max == 0


def write_big_client(
    path: Path, cid: int, reqid: np.ndarray, counts: np.ndarray, lasts: np.ndarray
) -> None:
    n = reqid.size
    cols = [reqid, np.full(n, 1_700_000_000_000_000) + reqid]
    for s in range(counts.shape[1]):
        cols += [counts[:, s], lasts[:, s]]
    table = np.column_stack(cols).astype(np.int64)
    with open(path, "w") as f:
        f.write(f"# client_id {cid} spaces {counts.shape[1]}\n")
        np.savetxt(f, table, fmt="%d")


def test_five_million_numbers(tmp_path: Path) -> None:
    """4 clients x 250,000 ops, 5 numbers each in space 0 (5,000,000) and 1 in space 1.

    Operation k (0-based, over all clients round-robin: client k % 4, reqid k // 4) gets
    space 0 numbers 5k..5k+4 and space 1 number k; the run's numbers are then exactly
    0..4,999,999 and 0..999,999, rising with reqid per client.
    """
    clients, per = 4, 250_000
    for c in range(clients):
        k = np.arange(per, dtype=np.int64) * clients + c
        counts = np.column_stack([np.full(per, 5), np.ones(per, dtype=np.int64)])
        lasts = np.column_stack([5 * k + 4, k])
        write_big_client(tmp_path / f"client-{c}-0.seqnums", c, k // clients, counts, lasts)
        write_summary(
            tmp_path / f"client-{c}-0.summary.json",
            ClientSummary(f"client-{c}-0", c, per, per, 0, 1000, 0, 0, 0),
        )
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    assert v.operations == 1_000_000
    assert (v.spaces[0].max, v.spaces[0].distinct) == (4_999_999, 5_000_000)
    assert (v.spaces[1].max, v.spaces[1].distinct) == (999_999, 1_000_000)

    # Remove one operation's 5 numbers from the middle: the checker finds exactly that gap.
    victim = tmp_path / "client-2-0.seqnums"
    lines = victim.read_text().splitlines(keepends=True)
    del lines[1 + 1000]  # client 2, reqid 1000 = op k = 4002 -> 20010..20014 and 4002
    victim.write_text("".join(lines))
    v = check_run(tmp_path)
    assert not v.ok
    assert v.spaces[0].gaps == [(20010, 20014)]
    assert v.spaces[1].gaps == [(4002, 4002)]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=40),
    owners=st.data(),
)
def test_any_partition_of_the_numbers_passes_and_a_lost_range_is_found(
    sizes: list[int], owners: st.DataObject
) -> None:
    """Cut 0..N-1 into consecutive ranges and hand each to one of 3 clients (in number order,
    so reqids rise with numbers) or to a noop: the run is contiguous. Losing any range but
    the last one leaves exactly that range as the only gap (losing the last one only lowers
    the maximum, which no record can reveal)."""
    who = [owners.draw(st.integers(min_value=0, max_value=3)) for _ in sizes]
    lost = owners.draw(st.integers(min_value=0, max_value=len(sizes) - 1))
    for drop in (None, lost):
        with tempfile.TemporaryDirectory() as d:
            run = Path(d)
            ops: dict[int, list[Op]] = {0: [], 1: [], 2: []}
            noops: list[list[tuple[int, int]]] = []
            last = -1
            for i, (n, w) in enumerate(zip(sizes, who, strict=True)):
                last += n
                if i == drop:
                    continue
                if w == 3:
                    noops.append([(n, last)])
                else:
                    ops[w].append((len(ops[w]), [(n, last)]))
            for c in range(3):
                write_client(run, f"client-0-{c}", c, ops[c], 1)
            write_noops(run, "proxy-0-0", noops, 1)
            v = check_run(run)
            if drop is None or drop == len(sizes) - 1:
                assert v.ok, v.lines()
            else:
                hi = sum(sizes[: drop + 1]) - 1
                assert v.spaces[0].gaps == [(hi - sizes[drop] + 1, hi)]
                assert v.reason.startswith("gap in space 0")


# ---- corruptions the checker once let through -----------------------------------------------


def write_group_noops(run: Path, name: str, group: int, noops, n: int = 1) -> None:
    with NoopRecorder(run / f"{name}.noops", n, group) as r:
        for i, ranges in enumerate(noops):
            r.record(2_000_000 + i, [c for c, _ in ranges], [last for _, last in ranges])


def recorded_client(run: Path, ops, recorded: int) -> None:
    """One client of one space whose summary says how many records it wrote."""
    with SeqnumRecorder(run / "client-0-0.seqnums", 1, 1) as r:
        for reqid, last in ops:
            r.record(reqid, 1_000_000 + reqid, [1], [last])
    write_summary(run / "client-0-0.summary.json",
                  ClientSummary("client-0-0", 1, recorded, recorded, 0, 1000, 0, 0, 0,
                                recorded=recorded))


def test_a_dropped_record_of_the_highest_number_fails(tmp_path: Path) -> None:
    # The client answered reqids 0..3 (numbers 0..3) and says so; the record of reqid 3 is
    # gone, so 0..2 alone would look contiguous.
    recorded_client(tmp_path, [(0, 0), (1, 1), (2, 2)], recorded=4)
    v = check_run(tmp_path)
    assert not v.ok and "client 1 records incomplete" in v.reason
    assert any("3 records, its summary says 4" in p for p in v.problems)
    recorded_client(tmp_path, [(0, 0), (1, 1), (2, 2), (3, 3)], recorded=4)
    assert check_run(tmp_path).ok


def test_a_noop_committed_twice_by_one_group_fails(tmp_path: Path) -> None:
    recorded_client(tmp_path, [(0, 0)], recorded=1)
    # Every replica of group 0 recorded the noop owning 1..2: one noop, seen three times.
    for replica in range(3):
        write_group_noops(tmp_path, f"proxy-{replica}-0", 0, [[(2, 2)]])
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    assert (v.noops, v.repeated_noops) == (1, 2)
    # One replica's file holds it twice: the group committed those numbers twice.
    write_group_noops(tmp_path, "proxy-0-0", 0, [[(2, 2)], [(2, 2)]])
    v = check_run(tmp_path)
    assert not v.ok and "1 noops committed twice by one replica" in v.reason
    assert "duplicates in space 0" in v.reason


def test_the_same_noop_committed_by_two_groups_fails(tmp_path: Path) -> None:
    recorded_client(tmp_path, [(0, 0)], recorded=1)
    write_group_noops(tmp_path, "proxy-0-0", 0, [[(2, 2)]])
    write_group_noops(tmp_path, "proxy-3-0", 1, [[(2, 2)]])  # another group, same numbers
    v = check_run(tmp_path)
    assert not v.ok and "duplicates in space 0" in v.reason


# ---- exact reports, record order, repeats ---------------------------------------------------


def test_the_report_of_a_clean_run_line_by_line(tmp_path: Path) -> None:
    clean_run(tmp_path)
    assert check_run(tmp_path).lines() == [
        "records: 2 clients, 5 operations (1 repeated answers), 2 noops (0 repeated)",
        "space 0: max 9, 7 op + 3 noop numbers, contiguous",
        "space 1: max 5, 5 op + 1 noop numbers, contiguous",
        "FIFO: OK (2 clients)",
        "contiguity: OK",
    ]


def test_the_report_of_a_broken_run_line_by_line(tmp_path: Path) -> None:
    # Space 0 is contiguous (0..2). Space 1: client 1 gets 0, 2, 1..2; client 2 gets 4..5,
    # then -1..0 (below 0: left out). Valid numbers 0, 2, 1..2, 4..5: 3 missing, 2 held
    # twice (by reqid 2's 1..2, sorted first, and reqid 1's 2). Both clients' later reqids
    # got lower numbers in space 1: two FIFO violations.
    write_client(
        tmp_path, "client-0-0", 1,
        [(0, [(1, 0), (1, 0)]), (1, [(1, 1), (1, 2)]), (2, [(1, 2), (2, 2)])], 2,
    )
    write_client(tmp_path, "client-1-0", 2, [(0, [(0, 0), (2, 5)]), (1, [(0, 0), (2, 0)])], 2)
    v = check_run(tmp_path)
    assert v.lines() == [
        "records: 2 clients, 5 operations (0 repeated answers), 0 noops (0 repeated)",
        "space 0: max 2, 3 op + 0 noop numbers, contiguous",
        "space 1: max 5, 8 op + 0 noop numbers, 1 missing, 1 duplicated",
        "  1 ranges reach below 0",
        "  first gaps: 3",
        "  duplicate 2: client 1 reqid 2; client 1 reqid 1",
        "FIFO: 2 violations",
        "  client 1: space 1: reqid 1 got 2 but later reqid 2 got 1..2",
        "  client 2: space 1: reqid 0 got 4..5 but later reqid 1 got -1..0",
        "contiguity: FAILED (2 FIFO violations; gap in space 1: 1 numbers missing; "
        "duplicates in space 1: 1 extra; space 1: 1 ranges below 0)",
    ]


def test_records_out_of_reqid_order_in_the_file_are_sorted_first(tmp_path: Path) -> None:
    # Answers are recorded as they arrive: reqid 2 before 1, reqid 1 of client 2 before 0.
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)]), (2, [(1, 3)]), (1, [(1, 1)])], 1)
    write_client(tmp_path, "client-1-0", 2, [(1, [(1, 4)]), (0, [(1, 2)])], 1)
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    # Now client 1's reqid 1 gets 3 and reqid 2 gets 1: found however the file is ordered.
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)]), (2, [(1, 1)]), (1, [(1, 3)])], 1)
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 1
    assert v.fifo_violations[0].detail == "space 0: reqid 1 got 3 but later reqid 2 got 1"


def test_fifo_is_checked_per_client_among_several(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)]), (1, [(1, 3)])], 1)
    write_client(tmp_path, "client-1-0", 2, [(0, [(1, 2)]), (1, [(1, 1)])], 1)  # inverted
    write_client(tmp_path, "client-2-0", 3, [(0, [(1, 4)]), (1, [(1, 5)])], 1)
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 1
    (f,) = v.fifo_violations
    assert (f.client_id, f.space, f.reqid_before, f.reqid) == (2, 0, 0, 1)


def test_repeats_of_several_reqids_and_clients_are_each_dropped(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)])], 1)
    # Client 2: reqid 0 twice alike, reqid 1 twice differently, reqid 2 twice alike.
    write_client(
        tmp_path, "client-1-0", 2,
        [(0, [(1, 1)]), (0, [(1, 1)]), (1, [(1, 2)]), (1, [(1, 3)]), (2, [(1, 4)]),
         (2, [(1, 4)])],
        1,
    )
    v = check_run(tmp_path)
    assert (v.operations, v.repeated_answers, v.fifo_violation_count) == (5, 2, 1)
    (f,) = v.fifo_violations
    assert (f.client_id, f.space, f.reqid_before, f.reqid) == (2, -1, 1, 1)
    assert f.detail == "reqid 1 answered twice with different numbers: (2) and (3)"


def test_repeated_answers_of_two_clients_keep_each_client_in_reqid_order(tmp_path: Path) -> None:
    # Client 1's reqid 1 (2, recorded twice) comes after its reqid 0 (3): a violation.
    # Client 2's reqid 0 (1, twice) and reqid 1 (4) are in order. 0 is a noop.
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 3)]), (1, [(1, 2)]), (1, [(1, 2)])], 1)
    write_client(tmp_path, "client-1-0", 2, [(0, [(1, 1)]), (0, [(1, 1)]), (1, [(1, 4)])], 1)
    write_noops(tmp_path, "proxy-0-0", [[(1, 0)]], 1)
    v = check_run(tmp_path)
    assert (v.repeated_answers, v.fifo_violation_count) == (2, 1)
    assert v.fifo_violations[0].detail == "space 0: reqid 0 got 3 but later reqid 1 got 2"


def test_negative_and_huge_ids_are_still_ordered_by_client_then_reqid(tmp_path: Path) -> None:
    # Client 1's reqid -1 got 1, its reqid 0 got 0: a violation, whatever the packing.
    write_client(tmp_path, "client-0-0", 0, [(5, [(1, 2)])], 1)
    write_client(tmp_path, "client-1-0", 1, [(-1, [(1, 1)]), (0, [(1, 0)])], 1)
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 1 and v.fifo_violations[0].client_id == 1
    # Ids too wide to pack client and reqid in one int64 key (3 + 62 bits): clients 0 and 4
    # must not be mixed up. Client 4's later reqid got the lower number.
    for p in tmp_path.iterdir():
        p.unlink()
    k = 2**61
    write_client(tmp_path, "client-0-0", 0, [(k, [(1, 2)]), (k + 1, [(1, 3)])], 1)
    write_client(tmp_path, "client-1-0", 4, [(k, [(1, 1)]), (k + 1, [(1, 0)])], 1)
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 1 and v.fifo_violations[0].client_id == 4


def test_no_noops_and_no_answers_repeat_nothing(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [], 1)
    v = check_run(tmp_path)
    assert v.ok and (v.repeated_answers, v.repeated_noops, v.operations) == (0, 0, 0)


def test_noop_identity_is_group_and_every_range(tmp_path: Path) -> None:
    recorded_client(tmp_path, [(0, 0)], recorded=1)
    # Group 0's replicas: X = (2 numbers, last 2) seen twice, Y = (1, 3) seen twice, an empty
    # noop (count 0) in both files, and Z = (3, 6) beside X in one file only.
    write_group_noops(tmp_path, "proxy-0-0", 0, [[(0, 5)], [(2, 2)], [(1, 3)], [(3, 6)]])
    write_group_noops(tmp_path, "proxy-1-0", 0, [[(1, 3)], [(0, 5)], [(2, 2)]])
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    assert (v.noops, v.repeated_noops) == (5, 2)


def test_noops_alike_but_for_one_count_are_two_noops(tmp_path: Path) -> None:
    recorded_client(tmp_path, [(0, 0)], recorded=1)
    write_group_noops(tmp_path, "proxy-0-0", 0, [[(2, 5)]])  # 4..5
    write_group_noops(tmp_path, "proxy-1-0", 0, [[(3, 5)], [(1, 2)]])  # 3..5, 2: 1 missing
    v = check_run(tmp_path)
    assert (v.noops, v.repeated_noops) == (3, 0)
    assert (v.spaces[0].duplicated, v.spaces[0].missing) == (2, 1)


def test_a_repeat_found_after_a_different_noop_of_the_same_file(tmp_path: Path) -> None:
    recorded_client(tmp_path, [(0, 0)], recorded=1)
    # In file 0 the repeated noop is line 1, and file 1 holds it too: seen once per file.
    write_group_noops(tmp_path, "proxy-0-0", 0, [[(1, 1)], [(2, 3)]])
    write_group_noops(tmp_path, "proxy-1-0", 0, [[(2, 3)]])
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    assert v.repeated_noops == 1


def test_every_double_commit_within_a_file_is_counted(tmp_path: Path) -> None:
    recorded_client(tmp_path, [(0, 0)], recorded=1)
    write_group_noops(tmp_path, "proxy-0-0", 0, [[(1, 1)], [(1, 2)]])
    # File 1 holds noop 1 once (a repeat of file 0's) and noop 2 three times.
    write_group_noops(tmp_path, "proxy-1-0", 0, [[(1, 1)], [(1, 2)], [(1, 2)], [(1, 2)]])
    v = check_run(tmp_path)
    assert v.reason.startswith("2 noops committed twice by one replica;")
    assert v.repeated_noops == 2


def test_two_spaces_noops_of_two_groups_on_one_number_name_both(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0), (1, 0)])], 2)
    with NoopRecorder(tmp_path / "proxy-0-0.noops", 2, 0) as r:
        r.record(1, [1, 1], [1, 2])
    with NoopRecorder(tmp_path / "proxy-3-0.noops", 2, 1) as r:
        r.record(1, [1, 1], [1, 1])
    v = check_run(tmp_path)
    assert v.spaces[0].duplicates == [
        (1, ["noop #1 in proxy-0-0.noops", "noop #1 in proxy-3-0.noops"])
    ]
    # Across two spaces the noops of one group are compared on all their ranges.
    for p in tmp_path.glob("*.noops"):
        p.unlink()
    with NoopRecorder(tmp_path / "proxy-0-0.noops", 2, 0) as r:
        r.record(1, [1, 1], [1, 2])  # A
        r.record(2, [1, 1], [2, 2])  # B: differs from A in space 0 only
    with NoopRecorder(tmp_path / "proxy-1-0.noops", 2, 0) as r:
        r.record(1, [1, 1], [1, 2])  # A again
    v = check_run(tmp_path)
    assert v.repeated_noops == 1


def test_a_space_without_numbers_and_one_with_only_invalid_ranges(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0), (0, 0), (2, 0)])], 3)
    v = check_run(tmp_path)
    assert v.spaces[1:] == [
        SpaceStats(1, -1, 0, 0, 0, 0, 0),
        SpaceStats(2, -1, 2, 0, 0, 0, 0, invalid=1),
    ]
    assert v.lines()[2:4] == [
        "space 1: max -1, 0 op + 0 noop numbers, contiguous",
        "space 2: max -1, 2 op + 0 noop numbers, 0 missing, 0 duplicated",
    ]


def test_a_range_of_no_numbers_is_not_a_range_whatever_its_last(tmp_path: Path) -> None:
    # Space 1 of reqid 1 and of the noop: count 0 with last 5. Space 1 holds 0..1 only.
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0), (2, 1)]), (1, [(1, 1), (0, 5)])], 2)
    write_noops(tmp_path, "proxy-0-0", [[(1, 2), (0, 5)]], 2)
    v = check_run(tmp_path)
    assert v.ok, v.lines()
    assert (v.spaces[1].max, v.spaces[1].op_numbers, v.spaces[1].noop_numbers) == (1, 2, 0)


def test_a_reqid_answered_twice_in_two_spaces_is_shown_with_both_answers(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0), (2, 1)]), (0, [(1, 1), (0, 0)])], 2)
    v = check_run(tmp_path)
    (f,) = v.fifo_violations
    # In the order of their ranges (counts first): (1, -) has fewer numbers in space 1.
    assert f.detail == "reqid 0 answered twice with different numbers: (1, -) and (0, 0..1)"


def test_fifo_in_a_later_space_when_an_earlier_one_has_a_single_range(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0), (1, 1)]), (1, [(0, 0), (1, 0)])], 2)
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 1 and v.fifo_violations[0].space == 1


def test_overlapping_answers_to_one_reqid_are_one_violation_not_two(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)])], 1)
    write_client(tmp_path, "client-1-0", 2, [(1, [(2, 3)]), (1, [(1, 3)])], 1)  # 2..3 and 3
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 1 and v.fifo_violations[0].space == -1


def test_a_violation_names_the_reqids_and_ranges_on_both_sides(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)]), (1, [(1, 1)]), (2, [(1, 2)])], 1)
    write_client(tmp_path, "client-1-0", 2, [(5, [(2, 10)]), (6, [(3, 8)])], 1)  # 9..10, 6..8
    v = check_run(tmp_path)
    (f,) = v.fifo_violations
    assert (f.client_id, f.space, f.reqid_before, f.reqid) == (2, 0, 5, 6)
    assert f.detail == "space 0: reqid 5 got 9..10 but later reqid 6 got 6..8"


def test_at_most_ten_fifo_violations_are_reported_and_all_are_counted(tmp_path: Path) -> None:
    # 12 reqids in falling order: 11 violations.
    write_client(tmp_path, "client-0-0", 1, [(r, [(1, 11 - r)]) for r in range(12)], 1)
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 11 and len(v.fifo_violations) == 10
    # Also when a reqid answered twice takes the first place.
    write_client(
        tmp_path, "client-0-0", 1, [(0, [(1, 12)]), *[(r, [(1, 11 - r)]) for r in range(12)]], 1
    )
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 12 and len(v.fifo_violations) == 10
    assert v.fifo_violations[0].space == -1


def test_a_number_held_many_times_names_four_holders_and_counts_the_rest(tmp_path: Path) -> None:
    # Number 0 is held by 4 clients, number 1 by 5, number 2 by 6.
    for cid in range(6):
        ops = [(0, [(3, 2)])] if cid < 4 else [(0, [(6 - cid, 2)])]
        write_client(tmp_path, f"client-{cid}-0", cid, ops, 1)
    v = check_run(tmp_path)
    four = [f"client {c} reqid 0" for c in range(4)]
    assert v.spaces[0].duplicates == [(0, four), (1, [*four, "1 more"]), (2, [*four, "2 more"])]


def test_more_than_ten_thousand_duplicate_ranges(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(10_001, 10_000)])], 1)
    write_client(tmp_path, "client-1-0", 2, [(r, [(1, r)]) for r in range(10_001)], 1)
    v = check_run(tmp_path)
    assert v.spaces[0].duplicated == 10_001
    assert [n for n, _ in v.spaces[0].duplicates] == list(range(10))


def test_at_most_ten_violations_even_when_ten_reqids_were_answered_twice(tmp_path: Path) -> None:
    ops: list[Op] = []
    for r in range(10):  # each answered twice, differently
        ops += [(r, [(1, 2 * r)]), (r, [(1, 2 * r + 1)])]
    ops += [(10, [(1, 21)]), (11, [(1, 20)])]  # and one inversion
    write_client(tmp_path, "client-0-0", 1, ops, 1)
    v = check_run(tmp_path)
    assert v.fifo_violation_count == 11 and len(v.fifo_violations) == 10
    assert {f.space for f in v.fifo_violations} == {-1}


def test_summaries_unreadable_twice_or_without_records(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)])], 1, summary=False)
    write_client(tmp_path, "client-1-0", 2, [(0, [(1, 1)])], 1, summary=False)
    (tmp_path / "client-0-0.summary.json").write_text("{")
    write_summary(tmp_path / "client-1-0.summary.json",
                  ClientSummary("client-1-0", 2, 1, 1, 0, 1000, 0, 0, 2))
    # A client that answered nothing left a summary and no records.
    write_summary(tmp_path / "client-2-0.summary.json",
                  ClientSummary("client-2-0", 3, 0, 0, 0, 1000, 0, 0, 0, recorded=0))
    v = check_run(tmp_path)
    assert v.reason == ("unreadable summary; 2 unanswered operations at 1 clients; "
                        "1 clients without a summary")
    assert len(v.problems) == 2 and "client-0-0.summary.json" in v.problems[0]
    assert v.problems[1] == "no summary.json for clients 1"


def test_records_beyond_a_summary_of_zero_fail(tmp_path: Path) -> None:
    recorded_client(tmp_path, [(0, 0)], recorded=0)
    v = check_run(tmp_path)
    assert v.reason == "client 1 records incomplete"
    assert v.problems == ["client 1: 1 records, its summary says 0"]


def test_unanswered_operations_of_a_client_add_up_over_its_summaries(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)])], 1, unanswered=2)
    write_summary(tmp_path / "client-0-1.summary.json",
                  ClientSummary("client-0-1", 1, 0, 0, 0, 1000, 0, 0, 3))
    write_client(tmp_path, "client-1-0", 2, [(0, [(1, 1)])], 1, summary=False)
    write_client(tmp_path, "client-2-0", 3, [(0, [(1, 2)])], 1, summary=False)
    v = check_run(tmp_path)
    assert v.unanswered == {1: 5}
    assert v.problems == ["no summary.json for clients 2, 3"]


def test_files_disagreeing_on_spaces_are_named(tmp_path: Path) -> None:
    write_client(tmp_path, "client-0-0", 1, [(0, [(1, 0)])], 1)
    write_noops(tmp_path, "proxy-0-0", [[(1, 1), (1, 0)]], 2)
    v = check_run(tmp_path)
    assert v.ok is False and v.problems == ["spaces per file: [1, 2]"]
