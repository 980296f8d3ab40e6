"""analysis.logcheck: a clean run passes; every kind of corruption fails with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.logcheck import Verdict, check_log
from nodes import wire
from nodes.logserver.layout import LAYOUT_FILE, LogLayout, read_layout, write_layout
from nodes.logserver.store import LogStore
from nodes.logserver.values import digest, entry_value
from nodes.metrics import ClientSummary, NoopRecorder, SeqnumRecorder, write_summary

SIZE = 64
# Two chains of two replicas: chain 0 = even positions, chain 1 = odd ones.
CHAINS = [["ls-0-0", "ls-1-0"], ["ls-0-1", "ls-1-1"]]


class Run:
    """A hand-built run: what each replica holds, what each client and noop recorded.

    The clean log: positions 0..9. Client 5 (reqids 0..4) owns 0, 2, 3, 5, 7; client 6
    (reqids 0..2) owns 1, 4, 6; noops own 8 and 9.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stores = {name: LogStore([c], 2) for c, names in enumerate(CHAINS)
                       for name in names}
        self.clients: dict[str, tuple[int, list[tuple[int, int]]]] = {
            "client-0-0": (5, [(0, 0), (1, 2), (2, 3), (3, 5), (4, 7)]),
            "client-0-1": (6, [(0, 1), (1, 4), (2, 6)]),
        }
        self.noops = [8, 9]
        for cid, ops in self.clients.values():
            for reqid, p in ops:
                self.put(p, wire.ENTRY_DATA, entry_value(cid, reqid, SIZE))
        for p in self.noops:
            self.put(p, wire.ENTRY_HOLE, b"")

    def put(self, position: int, kind: int, data: bytes, only: str | None = None) -> None:
        c = position % 2
        for name in CHAINS[c]:
            if only is None or name == only:
                self.stores[name].chains[c].entries[position] = (kind, data)

    def drop(self, position: int, only: str | None = None) -> None:
        c = position % 2
        for name in CHAINS[c]:
            if only is None or name == only:
                del self.stores[name].chains[c].entries[position]

    def write(self, dumps: list[str] | None = None) -> Path:
        write_layout(self.path / LAYOUT_FILE,
                     LogLayout(nchains=2, replication=2, chains=CHAINS, entry_size=SIZE))
        for name, st in self.stores.items():
            if dumps is None or name in dumps:
                st.dump(self.path / f"{name}.entries")
        for name, (cid, ops) in self.clients.items():
            with SeqnumRecorder(self.path / f"{name}.seqnums", cid, 1) as r:
                for i, (reqid, p) in enumerate(ops):
                    r.record(reqid, 1_000_000 + i, [1], [p])
            write_summary(self.path / f"{name}.summary.json",
                          ClientSummary(name, cid, len(ops), len(ops), 0, 1000, 0, 0, 0))
        with NoopRecorder(self.path / "proxy-0-0.noops", 1) as n:
            for p in self.noops:
                n.record(2_000_000, [1], [p])
        return self.path


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def failed(v: Verdict, reason: str) -> None:
    assert not v.ok, "\n".join(v.lines())
    assert reason in v.reason, v.reason
    assert v.lines()[-1].startswith("log: FAILED")


def test_clean_run_passes(run):
    v = check_log(run.write())
    assert v.ok, "\n".join(v.lines())
    assert (v.positions, v.chains, v.dumps, v.appends, v.noops) == (10, 2, 4, 8, 2)
    assert (v.data, v.holes, v.trimmed) == (8, 2, 0)
    assert v.lines()[-1] == "log: OK"
    assert "violations: none" in v.lines()


def test_repeated_records_count_once(run):
    run.clients["client-0-0"][1].append((4, 7))  # the same answer recorded twice
    run.noops.append(9)  # a noop re-recorded by a new leader
    v = check_log(run.write())
    assert v.ok, v.reason
    assert (v.appends, v.noops, v.repeated) == (8, 2, 2)


def test_a_killed_replica_leaves_no_dump_and_is_not_required(run):
    v = check_log(run.write(dumps=["ls-0-0", "ls-1-0", "ls-1-1"]))
    assert v.ok, v.reason
    assert v.dumps == 3


def test_a_replica_dropped_by_a_reconfiguration_is_not_required(run):
    run.drop(7, only="ls-0-1")  # written after ls-0-1 left the chain
    run.stores["ls-1-1"].chains[1].epoch = 1
    run.stores["ls-1-1"].chains[1].members = [1]
    v = check_log(run.write())
    assert v.ok, v.reason
    assert (v.dumps, v.dropped) == (3, 1)


def test_trimmed_positions_are_present_but_not_compared(run):
    for name in CHAINS[1]:
        run.stores[name].handle(wire.LogTrim(1, 0, 4, True))  # 1 and 3
    run.stores["ls-0-0"].handle(wire.LogTrim(0, 0, 2, False))  # only one replica
    v = check_log(run.write())
    assert v.ok, v.reason
    assert (v.trimmed, v.data) == (2, 6)


def test_a_missing_position_fails(run):
    run.drop(3, only="ls-1-1")
    v = check_log(run.write())
    failed(v, "1 positions missing")
    assert "position 3: missing on ls-1-1" in v.examples[0]


def test_a_position_nobody_wrote_fails(run):
    run.put(11, wire.ENTRY_HOLE, b"")  # 10 was never written: a gap below 11
    failed(check_log(run.write()), "1 positions missing")


def test_a_partial_write_beyond_the_records_fails(run):
    run.put(11, wire.ENTRY_DATA, b"head only", only="ls-0-1")
    run.put(10, wire.ENTRY_HOLE, b"")
    failed(check_log(run.write()), "1 positions missing")


def test_replicas_disagreeing_fails(run):
    run.put(6, wire.ENTRY_DATA, b"something else", only="ls-1-0")
    v = check_log(run.write())
    failed(v, "1 positions where replicas disagree")
    # Position 6's append is then not proven either.
    assert "1 appends not holding their bytes" in v.reason
    assert any("position 6: replicas disagree" in e for e in v.examples)


def test_wrong_bytes_fail(run):
    run.put(5, wire.ENTRY_DATA, entry_value(5, 99, SIZE))  # on both replicas
    v = check_log(run.write())
    failed(v, "1 appends not holding their bytes")
    assert "missing" not in v.reason and "disagree" not in v.reason
    assert any("position 5: client 5 reqid 3 appended" in e for e in v.examples)


def test_bytes_of_another_client_fail(run):
    run.put(1, wire.ENTRY_DATA, entry_value(5, 0, SIZE))  # client 6's position, 5's bytes
    failed(check_log(run.write()), "1 appends not holding their bytes")


def test_a_hole_where_an_append_was_acknowledged_fails(run):
    run.put(4, wire.ENTRY_HOLE, b"")
    v = check_log(run.write())
    failed(v, "1 appends not holding their bytes")
    assert any("log holds hole" in e for e in v.examples)


def test_an_acknowledged_append_missing_everywhere_fails(run):
    run.drop(2)
    failed(check_log(run.write()), "1 appends not holding their bytes")


def test_data_where_a_noop_was_recorded_fails(run):
    run.put(9, wire.ENTRY_DATA, b"x")
    failed(check_log(run.write()), "1 noops not holding a hole")


def test_a_position_owned_twice_fails(run):
    run.noops.append(7)  # client 5 reqid 4 owns 7
    v = check_log(run.write())
    failed(v, "1 positions owned twice")
    assert any("owned by client 5 reqid 4 and a noop" in e for e in v.examples)
    run.clients["client-0-1"][1].append((3, 7))
    failed(check_log(run.write()), "1 positions owned twice")


def test_non_rising_positions_fail(run):
    # Client 5's reqids 2 and 3 swap positions, and the log agrees with the records.
    run.clients["client-0-0"] = (5, [(0, 0), (1, 2), (2, 5), (3, 3), (4, 7)])
    run.put(5, wire.ENTRY_DATA, entry_value(5, 2, SIZE))
    run.put(3, wire.ENTRY_DATA, entry_value(5, 3, SIZE))
    v = check_log(run.write())
    failed(v, "1 FIFO violations")
    assert v.reason == "1 FIFO violations"
    assert any("reqid 2 at 5 but later reqid 3 at 3" in e for e in v.examples)


def test_one_reqid_at_two_positions_fails(run):
    run.clients["client-0-1"][1].append((2, 8))
    v = check_log(run.write())
    assert "FIFO violations" in v.reason and "owned twice" in v.reason


def test_inputs_that_prove_nothing_fail(run, tmp_path):
    failed(check_log(tmp_path), f"no usable {LAYOUT_FILE}")
    failed(check_log(run.write(dumps=[])), "no log server left a dump")
    for p in run.path.glob("*.entries"):
        p.unlink()
    failed(check_log(run.write(dumps=["ls-0-0", "ls-1-0"])),
           "chain 1: no replica of its final view left a dump")


def test_inconsistent_inputs_fail(run):
    path = run.write()
    (path / "stranger.entries").write_text("# mason log-server entries of stranger\n")
    failed(check_log(path), "stranger.entries is from no log server")
    (path / "stranger.entries").unlink()
    (path / "ls-0-0.entries").write_text("chain 0 epoch 0 members - prefix 0\n0 0 blob x\n")
    v = check_log(path)
    failed(v, "unreadable dump ls-0-0.entries")
    assert "ls-0-0.entries:2" in v.problems[0]
    run.write()
    (path / "ls-0-0.entries").write_text("chain 1 epoch 0 members - prefix 0\n")
    failed(check_log(path), "chain 0: dumps of ls-0-0 do not hold it")
    run.write()
    (path / "client-0-0.seqnums").write_text("# client_id 5 spaces 1\n0 1 2 3\n")
    failed(check_log(path), "client-0-0.seqnums: reqid 0 owns 2 positions")
    (path / "client-0-0.seqnums").write_text("# client_id 9 spaces 1\n")
    failed(check_log(path), "client-0-0.seqnums says client 9, its summary 5")
    (path / "client-0-0.seqnums").write_text("# client_id 5 spaces 1\n0 x 1 2\n")
    failed(check_log(path), "unreadable records")


def test_layout_round_trip_and_refusals(tmp_path):
    layout = LogLayout(nchains=2, replication=2, chains=CHAINS, entry_size=32)
    write_layout(tmp_path / LAYOUT_FILE, layout)
    assert read_layout(tmp_path / LAYOUT_FILE) == layout
    for text, what in [
        ('{"nchains": 3, "replication": 2, "chains": [["a", "b"]]}', "1 chains listed"),
        ('{"nchains": 1, "replication": 2, "chains": [["a", "a"]]}', "not 2 distinct"),
        ('{"nchains": 1, "replication": 1, "chains": [["a"]], "extra": 1}', "unknown field"),
        ('{"nchains": 0, "replication": 1, "chains": []}', "must be positive"),
        ("not json", "malformed"),
    ]:
        (tmp_path / LAYOUT_FILE).write_text(text)
        with pytest.raises(ValueError, match=what):
            read_layout(tmp_path / LAYOUT_FILE)
    with pytest.raises(ValueError, match="not 2 distinct"):
        LogLayout(nchains=1, replication=2, chains=[["a"]])


# ---- exact counts and reports: each violation counted once per position ---------------------


def d(cid: int, reqid: int) -> str:
    """The digest client `cid`'s append `reqid` must leave in the log."""
    return digest(entry_value(cid, reqid, SIZE))


def test_missing_positions_are_counted_and_reported_line_by_line(run):
    run.drop(3, only="ls-1-1")  # one replica lacks 3
    run.drop(5)  # no replica holds 5
    v = check_log(run.write())
    assert (v.missing, v.wrong_data, v.disagreeing, v.data, v.holes) == (2, 2, 0, 6, 2)
    assert v.lines() == [
        "log: 10 positions on 2 chains, 4 chain replicas compared (0 dropped from their chain)",
        "records: 8 appends, 2 noop positions (0 repeated records)",
        "entries: 6 data, 2 holes, 0 trimmed",
        "violations: 2 missing, 2 appends without their bytes",
        "  position 3: missing on ls-1-1",
        "  position 5: missing on ls-0-1, ls-1-1",
        f"  position 3: client 5 reqid 2 appended {d(5, 2)}, log holds nothing agreed",
        f"  position 5: client 5 reqid 3 appended {d(5, 3)}, log holds nothing agreed",
        "log: FAILED (2 positions missing; 2 appends not holding their bytes)",
    ]
    assert v.ok is False


def test_disagreements_and_noops_without_a_hole_are_counted_and_reported(run):
    run.put(6, wire.ENTRY_DATA, b"other", only="ls-1-0")  # client 6 reqid 2's position
    run.put(9, wire.ENTRY_DATA, b"x", only="ls-0-1")  # a noop's position, one replica
    run.put(8, wire.ENTRY_DATA, b"y")  # a noop's position, both replicas
    v = check_log(run.write())
    assert (v.disagreeing, v.wrong_data, v.not_holes, v.missing) == (2, 1, 2, 0)
    assert v.lines()[3:] == [
        "violations: 2 replicas disagree, 1 appends without their bytes, "
        "2 noops without a hole",
        f"  position 6: replicas disagree: ls-0-0 data {d(6, 2)}; ls-1-0 data {digest(b'other')}",
        f"  position 9: replicas disagree: ls-0-1 data {digest(b'x')}; ls-1-1 hole -",
        f"  position 6: client 6 reqid 2 appended {d(6, 2)}, log holds nothing agreed",
        f"  position 8: a noop, log holds data {digest(b'y')}",
        "  position 9: a noop, log holds nothing agreed",
        "log: FAILED (2 positions where replicas disagree; 1 appends not holding their bytes; "
        "2 noops not holding a hole)",
    ]


def test_every_claim_on_a_position_owned_twice_is_checked(run):
    run.noops += [5, 7]  # positions of client 5's reqids 3 and 4: they hold its data
    v = check_log(run.write())
    # The appends' claims hold; the noops' claims on the same positions do not.
    assert (v.owned_twice, v.not_holes, v.wrong_data) == (2, 2, 0)
    assert v.examples == [
        f"position 5: a noop, log holds data {d(5, 3)}",
        f"position 7: a noop, log holds data {d(5, 4)}",
        "position 5: owned by client 5 reqid 3 and a noop",
        "position 7: owned by client 5 reqid 4 and a noop",
    ]
    assert "violations: 2 noops without a hole, 2 owned twice" in v.lines()


@pytest.mark.parametrize(
    ("ops5", "ops6", "found"),
    [
        (  # a reqid of each client acknowledged at two positions
            [(0, 0), (1, 2), (1, 3), (3, 5), (4, 7)], [(0, 1), (0, 4), (2, 6)],
            ["client 5: reqid 1 acknowledged at 2 and 3",
             "client 6: reqid 0 acknowledged at 1 and 4"],
        ),
        (  # falling, then equal positions for rising reqids
            [(0, 2), (1, 0), (2, 3), (3, 3), (4, 7)], [(0, 1), (1, 4), (2, 6)],
            ["client 5: reqid 0 at 2 but later reqid 1 at 0",
             "client 5: reqid 2 at 3 but later reqid 3 at 3"],
        ),
    ],
)
def test_fifo_counts_each_violation(run, ops5, ops6, found):
    run.clients["client-0-0"] = (5, ops5)
    run.clients["client-0-1"] = (6, ops6)
    v = check_log(run.write())
    assert v.fifo_violations == 2
    assert [e for e in v.examples if e.startswith("client")] == found
    assert v.lines()[3].endswith(", 2 FIFO violations")


def test_at_most_five_examples_of_each_kind(run):
    for p in range(6):
        run.drop(p, only=CHAINS[p % 2][0])
    v = check_log(run.write())
    assert (v.missing, v.wrong_data) == (6, 6)
    assert [e.split(":")[0] for e in v.examples] == [f"position {p}" for p in range(5)] * 2


def test_an_empty_log_with_no_records_passes_with_no_positions(run):
    run.stores = {name: LogStore([c], 2) for c, names in enumerate(CHAINS) for name in names}
    run.clients, run.noops = {}, []
    v = check_log(run.write())
    assert v.ok and v.positions == 0 and v.lines()[0].startswith("log: 0 positions")


def test_a_prefix_trim_beyond_every_entry_counts_its_positions(run):
    for c, names in enumerate(CHAINS):
        for name in names:
            run.stores[name].handle(wire.LogTrim(c, 0, 12, True))  # 0..11 trimmed
    v = check_log(run.write())
    assert v.ok, v.reason
    assert (v.positions, v.trimmed, v.data, v.missing) == (12, 12, 0, 0)


def test_repeats_and_answers_without_a_position(run):
    run.clients["client-0-0"][1].extend([(4, 7), (3, 5)])  # two answers recorded again
    path = run.write()
    v = check_log(path)
    assert v.ok and (v.appends, v.repeated) == (8, 2)
    # An answer that owns no position (count 0) is skipped, not the end of the file.
    lines = (path / "client-0-0.seqnums").read_text().splitlines(keepends=True)
    lines.insert(1, "9 999 0 0\n")
    (path / "client-0-0.seqnums").write_text("".join(lines))
    v = check_log(path)
    assert v.ok and v.appends == 8


def test_bad_records_are_all_reported(run):
    path = run.write()
    (path / "client-0-0.seqnums").write_text("# client_id 5 spaces 1\n0 1 2 3\n1 1 2 4\n")
    v = check_log(path)
    assert v.reason == ("client-0-0.seqnums: reqid 0 owns 2 positions; "
                        "client-0-0.seqnums: reqid 1 owns 2 positions")
    (path / "client-0-0.seqnums").write_text("# client_id 5 spaces 1\n0 1 1 -3\n")
    (path / "proxy-0-0.noops").write_text("# noops spaces 1\n2000000 2 0\n")  # -1 and 0
    v = check_log(path)
    assert v.reason == "2 records of negative positions"
    (path / "client-0-0.seqnums").write_text("# client_id 5 spaces 1\n0 x 1 2\n")
    v = check_log(path)
    assert v.reason == "unreadable records"
    assert len(v.problems) == 1 and "client-0-0.seqnums:2" in v.problems[0]


def test_bad_dumps_are_all_reported(run, tmp_path):
    v = check_log(tmp_path)
    assert v.ok is False and v.reason == f"no usable {LAYOUT_FILE}"
    assert v.problems == [f"{tmp_path / LAYOUT_FILE}: [Errno 2] No such file or directory: "
                          f"'{tmp_path / LAYOUT_FILE}'"]
    v = check_log(run.write(dumps=[]))
    assert v.reason == "no log server left a dump (*.entries)"
    for name in ("a", "b"):
        (tmp_path / f"{name}.entries").write_text(f"# mason log-server entries of {name}\n")
    v = check_log(tmp_path)
    assert v.reason == (f"a.entries is from no log server of {LAYOUT_FILE}; "
                        f"b.entries is from no log server of {LAYOUT_FILE}; "
                        "no log server left a dump (*.entries)")
    for name in ("a", "b"):
        (tmp_path / f"{name}.entries").unlink()
    # Every dumped replica of both chains holds the other chain instead.
    for c, names in enumerate(CHAINS):
        for name in names:
            (tmp_path / f"{name}.entries").write_text(
                f"chain {1 - c} epoch 0 members - prefix 0\n")
    v = check_log(tmp_path)
    assert v.reason == ("chain 0: dumps of ls-0-0, ls-1-0 do not hold it; "
                        "chain 1: dumps of ls-0-1, ls-1-1 do not hold it")
    # Unusable dumps end the check: the records are not even read.
    assert v.lines()[1] == "records: 0 appends, 0 noop positions (0 repeated records)"


def test_a_chain_without_a_replica_of_its_final_view_fails_alone(run):
    for p in run.path.glob("*.entries"):
        p.unlink()
    v = check_log(run.write(dumps=["ls-0-0", "ls-1-0"]))
    assert v.reason == "chain 1: no replica of its final view left a dump"


def test_replicas_dropped_from_both_chains_add_up(run):
    run.drop(7, only="ls-0-1")
    run.drop(6, only="ls-0-0")
    for c in (0, 1):
        st = run.stores[CHAINS[c][1]].chains[c]
        st.epoch, st.members = 1, [1]
    v = check_log(run.write())
    assert v.ok, v.reason
    assert (v.dumps, v.dropped) == (2, 2)


def test_an_acknowledged_append_above_everything_the_log_holds_fails(run):
    run.clients["client-0-0"][1].append((5, 10))  # acknowledged, then lost everywhere
    v = check_log(run.write())
    assert (v.positions, v.missing, v.wrong_data) == (11, 1, 1)
    assert v.reason == "1 positions missing; 1 appends not holding their bytes"
