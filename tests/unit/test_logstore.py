"""nodes.logserver.store: write-once positions, fills, trims, seals, refusals, dumps."""

from __future__ import annotations

import pytest

from nodes import wire
from nodes.logserver.dump import (
    DATA,
    HOLE,
    TRIMMED,
    DumpFormatError,
    Held,
    read_dump,
)
from nodes.logserver.store import LogStore, prefill_value
from nodes.logserver.values import digest

W, R, T, S = wire.LogWrite, wire.LogRead, wire.LogTrim, wire.LogSeal
DATA_K, HOLE_K = wire.ENTRY_DATA, wire.ENTRY_HOLE


def store(**kw: int) -> LogStore:
    """Chains 0 and 2 of a 4-chain log: positions 0, 2, 4, 6, 8, ... live here."""
    return LogStore([0, 2], 4, **{"max_entry_bytes": 16, "capacity": 100, **kw})


def state(s: LogStore) -> tuple[object, ...]:
    snap = s.snapshot("x")
    return snap.chains, snap.entries, s.entries


def test_write_then_read():
    s = store()
    assert s.handle(W(0, 0, 4, DATA_K, b"abc")).status == wire.LOG_OK
    r = s.handle(R(0, 0, 4))
    assert (r.status, r.position, r.kind, r.data) == (wire.LOG_OK, 4, DATA_K, b"abc")
    assert s.handle(R(0, 0, 8)).status == wire.LOG_UNWRITTEN
    assert (s.writes, s.reads, s.refused, s.entries) == (1, 2, 0, 1)


def test_write_once_refuses_other_content_with_the_existing_entry():
    s = store()
    s.handle(W(2, 0, 6, DATA_K, b"first"))
    r = s.handle(W(2, 0, 6, DATA_K, b"second"))
    assert (r.status, r.kind, r.data) == (wire.LOG_WRITTEN, DATA_K, b"first")
    r = s.handle(W(2, 0, 6, HOLE_K, b""))
    assert (r.status, r.kind, r.data) == (wire.LOG_WRITTEN, DATA_K, b"first")
    assert s.handle(R(2, 0, 6)).data == b"first"
    assert s.refused == 2


def test_identical_rewrite_is_ok_so_a_writer_can_redrive():
    s = store()
    assert s.handle(W(0, 0, 0, DATA_K, b"same")).status == wire.LOG_OK
    assert s.handle(W(0, 0, 0, DATA_K, b"same")).status == wire.LOG_OK
    assert (s.entries, s.refused) == (1, 0)


def test_fill_is_a_write_once_hole():
    s = store()
    assert s.handle(W(0, 0, 8, HOLE_K, b"")).status == wire.LOG_OK
    r = s.handle(R(0, 0, 8))
    assert (r.status, r.kind) == (wire.LOG_OK, HOLE_K)
    assert s.handle(W(0, 0, 8, HOLE_K, b"")).status == wire.LOG_OK  # a second fill
    r = s.handle(W(0, 0, 8, DATA_K, b"late"))
    assert (r.status, r.kind, r.data) == (wire.LOG_WRITTEN, HOLE_K, b"")
    # ... and a fill of a written position loses to the data.
    s.handle(W(0, 0, 12, DATA_K, b"won"))
    r = s.handle(W(0, 0, 12, HOLE_K, b""))
    assert (r.status, r.kind, r.data) == (wire.LOG_WRITTEN, DATA_K, b"won")


def test_trim_one_position_frees_it_and_refuses_it_afterwards():
    s = store()
    s.handle(W(0, 0, 4, DATA_K, b"x"))
    s.handle(W(0, 0, 8, DATA_K, b"y"))
    assert s.handle(T(0, 0, 4, False)).status == wire.LOG_OK
    assert s.entries == 1
    assert s.handle(R(0, 0, 4)).status == wire.LOG_TRIMMED
    assert s.handle(W(0, 0, 4, DATA_K, b"x")).status == wire.LOG_TRIMMED
    # An unwritten position can be trimmed too: nobody may fill it later.
    assert s.handle(T(0, 0, 12, False)).status == wire.LOG_OK
    assert s.handle(W(0, 0, 12, HOLE_K, b"")).status == wire.LOG_TRIMMED
    assert s.handle(R(0, 0, 8)).data == b"y"


def test_prefix_trim():
    s = store()
    for p in (0, 4, 8, 12, 16):
        s.handle(W(0, 0, p, DATA_K, bytes([p])))
    s.handle(W(2, 0, 2, DATA_K, b"other chain"))
    s.handle(T(0, 0, 16, False))
    assert s.handle(T(0, 0, 9, True)).status == wire.LOG_OK  # below 9: 0, 4, 8
    for p in (0, 4, 8):
        assert s.handle(R(0, 0, p)).status == wire.LOG_TRIMMED
        assert s.handle(W(0, 0, p, DATA_K, bytes([p]))).status == wire.LOG_TRIMMED
    assert s.handle(R(0, 0, 12)).data == bytes([12])
    assert s.handle(R(2, 0, 2)).data == b"other chain"  # a prefix trim is per chain
    assert s.entries == 2  # 12 on chain 0, 2 on chain 2
    assert s.handle(T(0, 0, 4, True)).status == wire.LOG_OK  # a lower prefix changes nothing
    assert s.handle(R(0, 0, 8)).status == wire.LOG_TRIMMED
    # A prefix far beyond the entries: freed by scanning the entries, not the range.
    assert s.handle(T(0, 0, 10**9, True)).status == wire.LOG_OK
    assert s.handle(R(0, 0, 12)).status == wire.LOG_TRIMMED
    assert s.snapshot("x").entries == {2: Held(2, DATA, digest(b"other chain"))}


def test_seal_refuses_older_epochs_with_the_new_view():
    s = store()
    s.handle(W(0, 0, 0, DATA_K, b"a"))
    s.handle(W(0, 0, 8, DATA_K, b"b"))
    r = s.handle(S(0, 1, [1, 2]))
    assert (r.status, r.epoch, r.members, r.tail) == (wire.LOG_OK, 1, [1, 2], 8)
    for old in (W(0, 0, 4, DATA_K, b"c"), R(0, 0, 0), T(0, 0, 0, False), T(0, 0, 4, True)):
        r = s.handle(old)
        assert (r.status, r.epoch, r.members) == (wire.LOG_SEALED, 1, [1, 2])
    assert s.handle(W(0, 1, 4, DATA_K, b"c")).status == wire.LOG_OK
    assert s.handle(R(0, 1, 0)).data == b"a"
    # The other chain of this server is not sealed.
    assert s.handle(W(2, 0, 2, DATA_K, b"d")).status == wire.LOG_OK
    assert s.handle(S(2, 0, [])).tail == 2


def test_seal_epochs():
    s = store()
    assert s.handle(S(0, 3, [0, 1])).status == wire.LOG_OK
    r = s.handle(S(0, 3, [0, 1]))  # the same seal again: idempotent
    assert (r.status, r.members, r.tail) == (wire.LOG_OK, [0, 1], -1)
    r = s.handle(S(0, 3, [1]))  # the same epoch, another view: refused
    assert (r.status, r.epoch, r.members) == (wire.LOG_SEALED, 3, [0, 1])
    r = s.handle(S(0, 2, [1]))  # an older epoch: refused
    assert (r.status, r.epoch, r.members) == (wire.LOG_SEALED, 3, [0, 1])
    assert s.handle(S(0, 5, [1])).status == wire.LOG_OK
    assert s.handle(W(0, 6, 0, DATA_K, b"newer epoch")).status == wire.LOG_OK
    assert s.refused == 2


BAD = [
    pytest.param(W(1, 0, 1, DATA_K, b"x"), "chain 1 is not held", id="chain-not-held"),
    pytest.param(W(0, 0, -4, DATA_K, b"x"), "negative position", id="negative-position"),
    pytest.param(W(0, 0, 2, DATA_K, b"x"), "belongs to chain 2", id="wrong-chain"),
    pytest.param(W(0, 0, 4, DATA_K, b"x" * 17), "17 bytes", id="too-large"),
    pytest.param(W(0, 0, 4, 7, b"x"), "neither data nor hole", id="bad-kind"),
    pytest.param(W(0, 0, 400, DATA_K, b"x"), "full", id="full"),
    pytest.param(W(0, -1, 4, DATA_K, b"x"), "negative epoch", id="negative-epoch"),
    pytest.param(R(3, 0, 3), "chain 3 is not held", id="read-chain-not-held"),
    pytest.param(R(0, 0, 6), "belongs to chain 2", id="read-wrong-chain"),
    pytest.param(R(0, 0, -8), "negative position", id="read-negative"),
    pytest.param(T(0, 0, 5, False), "belongs to chain 1", id="trim-wrong-chain"),
    pytest.param(T(0, 0, -1, True), "negative position", id="prefix-negative"),
    pytest.param(T(0, 0, 404, False), "full", id="trim-beyond-capacity"),
    pytest.param(S(0, -1, [0]), "negative epoch", id="seal-negative-epoch"),
    pytest.param(S(0, 1, [0, 0]), "not distinct", id="seal-duplicate-members"),
    pytest.param(S(0, 1, [-1]), "not distinct", id="seal-negative-member"),
    pytest.param(S(1, 1, [0]), "chain 1 is not held", id="seal-chain-not-held"),
]


@pytest.mark.parametrize("msg, reason", BAD)
def test_every_refusal_leaves_the_state_unchanged(msg, reason):
    s = store()
    s.handle(W(0, 0, 4, DATA_K, b"kept"))
    s.handle(W(0, 0, 8, HOLE_K, b""))
    s.handle(T(0, 0, 12, False))
    before = state(s)
    r = s.handle(msg)
    assert r.status == wire.LOG_BAD
    assert reason in r.data.decode()
    assert state(s) == before
    assert s.refused == 1


def test_capacity_is_refused_never_wrapped():
    s = LogStore([1], 2, capacity=3)  # slots 0..2: positions 1, 3, 5
    for p in (1, 3, 5):
        assert s.handle(W(1, 0, p, DATA_K, b"%d" % p)).status == wire.LOG_OK
    r = s.handle(W(1, 0, 7, DATA_K, b"7"))
    assert r.status == wire.LOG_BAD and r.data.startswith(b"full")
    assert [s.handle(R(1, 0, p)).data for p in (1, 3, 5)] == [b"1", b"3", b"5"]


def test_prefill():
    s = LogStore([1, 3], 4, prefill=10)
    assert s.entries == 5  # 1, 5, 9 and 3, 7
    for p in (1, 5, 9, 3, 7):
        r = s.handle(R(p % 4, 0, p))
        assert (r.status, r.kind, r.data) == (wire.LOG_OK, DATA_K, prefill_value(p))
    assert s.handle(R(1, 0, 13)).status == wire.LOG_UNWRITTEN
    assert s.handle(W(1, 0, 5, DATA_K, prefill_value(5))).status == wire.LOG_OK
    assert s.handle(W(1, 0, 5, DATA_K, b"other")).status == wire.LOG_WRITTEN
    assert s.handle(S(1, 1, [0])).tail == 9
    assert len({prefill_value(p) for p in range(10)}) == 10


def test_bad_construction():
    with pytest.raises(ValueError, match="capacity"):
        LogStore([0], 2, capacity=4, prefill=9)  # slot 4 of chain 0
    with pytest.raises(ValueError, match="not one of"):
        LogStore([2], 2)
    with pytest.raises(ValueError, match="at least one chain"):
        LogStore([], 2)


def test_dump_round_trip(tmp_path):
    s = store()
    s.handle(W(0, 0, 0, DATA_K, b"zero"))
    s.handle(W(0, 0, 4, DATA_K, b"four"))
    s.handle(W(0, 0, 8, HOLE_K, b""))
    s.handle(W(0, 0, 12, DATA_K, b"twelve"))
    s.handle(T(0, 0, 12, False))
    s.handle(T(0, 0, 3, True))
    s.handle(W(2, 0, 6, DATA_K, b"six"))
    s.handle(S(2, 4, [2, 0]))
    path = tmp_path / "logserver-0-1.entries"
    s.dump(path)
    d = read_dump(path)
    assert d.name == "logserver-0-1"
    snap = s.snapshot("logserver-0-1")
    assert (d.chains, d.entries) == (snap.chains, snap.entries)
    assert d.entries == {
        4: Held(0, DATA, digest(b"four")),
        8: Held(0, HOLE, "-"),
        12: Held(0, TRIMMED, "-"),
        6: Held(2, DATA, digest(b"six")),
    }
    assert (d.chains[0].prefix, d.chains[2].epoch, d.chains[2].members) == (3, 4, [2, 0])
    assert d.state_of(0, 0) == Held(0, TRIMMED, "-")  # below the prefix
    assert d.state_of(16, 0) is None
    assert d.state_of(1, 1) is None  # a chain it does not hold
    text = path.read_text()
    assert text.startswith("# mason log-server entries of logserver-0-1\n")
    assert "chain 2 epoch 4 members 2,0 prefix 0\n2 6 data " in text


@pytest.mark.parametrize("body, what", [
    ("0 4 data abc\n", "no 'chain' line"),
    ("chain 0 epoch 0 members - prefix 0\n0 4 data\n", "expected 'chain position"),
    ("chain 0 epoch 0 members - prefix 0\n0 4 blob abc\n", "kind 'blob'"),
    ("chain 0 epoch 0 members - prefix 0\n0 4 hole abc\n", "a hole line with digest"),
    ("chain 0 epoch 0 members - prefix 0\n0 4 data -\n", "a data line with digest"),
    ("chain 0 epoch 0 members - prefix 0\n0 4 hole -\n0 4 hole -\n", "listed twice"),
    ("chain 0 epoch x members - prefix 0\n", "invalid literal"),
    ("chain 0 epoch 1 members 1,,2 prefix 0\n", "invalid literal"),
    ("chain 0 members - epoch 0 prefix 0\n", "expected 'chain <c>"),
    ("chain 0 epoch 0 members - prefix 0\n0 -4 hole -\n", "negative"),
])
def test_dump_reader_names_the_bad_line(tmp_path, body, what):
    path = tmp_path / "x.entries"
    path.write_text("# mason log-server entries of x\n" + body)
    with pytest.raises(DumpFormatError, match=what) as err:
        read_dump(path)
    assert "x.entries:" in str(err.value)


SIZES = "^nchains and capacity must be positive, sizes not negative$"


@pytest.mark.parametrize("chains, nchains, kw, message", [
    pytest.param([0], 0, {}, SIZES, id="no-chains-in-the-log"),
    pytest.param([0], -1, {}, SIZES, id="negative-nchains"),
    pytest.param([0], 1, {"capacity": 0}, SIZES, id="no-capacity"),
    pytest.param([0], 1, {"max_entry_bytes": -1}, SIZES, id="negative-entry-size"),
    pytest.param([0], 1, {"prefill": -1}, SIZES, id="negative-prefill"),
    pytest.param([], 2, {}, "^a log server holds at least one chain$", id="holds-nothing"),
    pytest.param([0], 1, {"max_entry_bytes": 63, "prefill": 1},
                 "^prefilled entries of 64 bytes exceed the limit$", id="prefill-too-large"),
])
def test_bad_construction_says_what_is_wrong(chains, nchains, kw, message):
    # The log server turns these into its one-line start-up error.
    with pytest.raises(ValueError, match=message):
        LogStore(chains, nchains, **kw)


def test_the_smallest_good_sizes_are_taken():
    s = LogStore([0], 1, capacity=1, max_entry_bytes=0)
    assert s.handle(W(0, 0, 0, HOLE_K, b"")).status == wire.LOG_OK
    assert s.handle(W(0, 0, 1, HOLE_K, b"")).data == b"full: slot 1 is beyond the capacity of 1"
    # Prefill up to the last slot, with entries exactly as large as the limit.
    s = LogStore([0], 2, capacity=4, max_entry_bytes=64, prefill=8)  # 0, 2, 4, 6
    assert s.entries == 4 and s.handle(R(0, 0, 6)).data == prefill_value(6)


def test_an_entry_may_be_exactly_as_large_as_the_limit():
    s = store()
    assert s.handle(W(0, 0, 4, DATA_K, b"x" * 16)).status == wire.LOG_OK
    default = LogStore([0], 1)  # the chain configuration's default limit
    assert default.handle(W(0, 0, 0, DATA_K, b"x" * 4096)).status == wire.LOG_OK
    assert default.handle(W(0, 0, 1, DATA_K, b"x" * 4097)).status == wire.LOG_BAD


def test_requests_are_counted_by_type():
    s = store()
    for p in (0, 4, 4):
        s.handle(W(0, 0, p, DATA_K, b"%d" % p))
    s.handle(W(0, 0, 4, DATA_K, b"other"))
    s.handle(R(0, 0, 0))
    s.handle(T(0, 0, 0, False))
    assert (s.writes, s.reads, s.refused, s.entries) == (4, 1, 1, 1)


def test_something_that_is_not_a_log_request_is_a_programming_error():
    s = store()
    with pytest.raises(TypeError, match="^not a log request: LogReply$"):
        s.handle(wire.LogReply(wire.LOG_OK, 0, 0))  # type: ignore[arg-type]
    assert (s.writes, s.reads, s.refused) == (0, 0, 0)


def test_every_reply_names_the_position_and_the_chains_epoch():
    s = store()
    s.handle(S(0, 3, [1, 0]))
    Reply = wire.LogReply
    assert s.handle(W(0, 3, 4, DATA_K, b"abc")) == Reply(wire.LOG_OK, 4, 3)
    assert s.handle(W(0, 3, 4, DATA_K, b"abc")) == Reply(wire.LOG_OK, 4, 3)
    assert s.handle(W(0, 3, 4, DATA_K, b"new")) == Reply(wire.LOG_WRITTEN, 4, 3, DATA_K, b"abc")
    assert s.handle(R(0, 3, 4)) == Reply(wire.LOG_OK, 4, 3, DATA_K, b"abc")
    assert s.handle(R(0, 3, 8)) == Reply(wire.LOG_UNWRITTEN, 8, 3)
    assert s.handle(T(0, 3, 8, False)) == Reply(wire.LOG_OK, 8, 3)
    assert s.handle(R(0, 3, 8)) == Reply(wire.LOG_TRIMMED, 8, 3)
    assert s.handle(W(0, 3, 8, HOLE_K, b"")) == Reply(wire.LOG_TRIMMED, 8, 3)
    assert s.handle(W(0, 2, 12, DATA_K, b"x")) == Reply(wire.LOG_SEALED, 12, 3, members=[1, 0])
    assert s.handle(T(0, 2, 12, False)) == Reply(wire.LOG_SEALED, 12, 3, members=[1, 0])
    # A seal names no position (-1) and tells the highest position written here.
    assert s.handle(S(0, 2, [0])) == Reply(wire.LOG_SEALED, -1, 3, members=[1, 0], tail=4)
    assert s.handle(S(0, 4, [1])) == Reply(wire.LOG_OK, -1, 4, members=[1], tail=4)
    assert s.handle(T(0, 4, 12, True)) == Reply(wire.LOG_OK, 12, 4)


@pytest.mark.parametrize("msg, position, epoch, reason", [
    pytest.param(W(0, 3, 4, 7, b"x"), 4, 3, "entry kind 7 is neither data nor hole", id="kind"),
    pytest.param(W(0, 3, 4, DATA_K, b"x" * 17), 4, 3, "entry of 17 bytes exceeds 16",
                 id="too-large"),
    pytest.param(W(0, -1, 4, DATA_K, b"x"), 4, 3, "negative epoch -1", id="negative-epoch"),
    pytest.param(R(0, 3, -8), -8, 3, "negative position -8", id="negative-position"),
    pytest.param(R(0, 3, 6), 6, 3, "position 6 belongs to chain 2", id="wrong-chain"),
    pytest.param(T(0, 3, 400, False), 400, 3, "full: slot 100 is beyond the capacity of 100",
                 id="full"),
    pytest.param(R(1, 3, 5), 5, 0, "chain 1 is not held here", id="not-held"),
    pytest.param(S(1, 3, [0]), -1, 0, "chain 1 is not held here", id="seal-not-held"),
    pytest.param(S(0, -1, [0]), -1, 3, "negative epoch -1", id="seal-negative-epoch"),
    pytest.param(S(0, 4, [0, 0]), -1, 3, "members [0, 0] are not distinct replica indices",
                 id="seal-members"),
])
def test_a_malformed_request_is_answered_with_its_position_the_epoch_and_why(
        msg, position, epoch, reason):
    # The chain's epoch where the chain is held (0 where not); a seal names no position.
    s = store()
    s.handle(S(0, 3, [1, 0]))
    s.handle(W(0, 3, 4, DATA_K, b"kept"))
    before = state(s)
    assert s.handle(msg) == wire.LogReply(wire.LOG_BAD, position, epoch, data=reason.encode())
    assert state(s) == before and s.refused == 1


def test_a_single_trim_at_the_prefix_and_a_prefix_at_a_single_trim_both_hold():
    s = store()
    s.handle(T(0, 0, 8, True))  # 0 and 4 are below the prefix
    assert s.handle(T(0, 0, 8, False)).status == wire.LOG_OK
    assert s.handle(W(0, 0, 8, DATA_K, b"x")).status == wire.LOG_TRIMMED
    s.handle(T(0, 0, 16, False))
    s.handle(T(0, 0, 16, True))  # the prefix lands on the single trim: 16 stays trimmed
    assert s.handle(W(0, 0, 16, DATA_K, b"x")).status == wire.LOG_TRIMMED
    assert s.snapshot("x").entries == {16: Held(0, TRIMMED, "-")}


def test_a_prefix_trim_from_a_prefix_off_the_chains_positions_frees_every_entry_below():
    # Chain 0 of 4 holds 0, 4, 8, ...; the first prefix (9) is none of its positions. The
    # second trim walks the chain's positions from 12: 12 is freed, 16 was never written.
    s = store()
    for p in (0, 4, 8, 12, 20, 24, 28, 32, 36):
        s.handle(W(0, 0, p, DATA_K, b"%d" % p))
    s.handle(T(0, 0, 9, True))
    assert s.entries == 6
    assert s.handle(T(0, 0, 20, True)).status == wire.LOG_OK
    assert s.entries == 5
    assert sorted(s.snapshot("x").entries) == [20, 24, 28, 32, 36]


def test_a_prefix_trim_far_past_few_entries_keeps_the_entry_at_the_prefix():
    s = store()
    s.handle(W(0, 0, 0, DATA_K, b"zero"))
    s.handle(W(0, 0, 200, DATA_K, b"kept"))
    s.handle(T(0, 0, 200, True))  # 50 positions to walk, 2 entries: it scans the entries
    assert s.handle(R(0, 0, 200)).data == b"kept" and s.entries == 1
