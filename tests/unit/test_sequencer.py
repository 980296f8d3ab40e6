"""The sequencer's counters and at-most-once table (nodes/sequencer/counters.py)."""

import pytest

from nodes.sequencer.counters import Counters
from nodes.wire import MAX_BATCH_COUNT, SEQ_OK, SEQ_PRUNED, SEQ_STALE_TERM, SeqReply, SeqRequest


def req(srid, counts, group=0, term=1, floor=0):
    return SeqRequest(group=group, term=term, srid=srid, counts=counts, floor=floor, epoch=1)


def test_ranges_are_consecutive_in_every_space_and_start_at_zero():
    seq = Counters(nspaces=2, epoch=1)
    first = seq.handle(req(1, [3, 1]))
    second = seq.handle(req(2, [2, 5]))
    assert first.lasts == [2, 0]  # ranges [0,2] and [0,0]
    assert second.lasts == [4, 5]  # ranges [3,4] and [1,5]
    assert not first.retx and not second.retx


def test_a_retransmitted_srid_gets_the_same_ranges_and_moves_no_counter():
    seq = Counters(nspaces=1, epoch=1)
    seq.handle(req(1, [4]))
    again = seq.handle(req(1, [4]))
    assert again.retx and again.lasts == [3] and again.counts == [4]
    assert seq.handle(req(2, [1])).lasts == [4]


def test_zero_count_probe_returns_the_old_range_or_seals_an_unseen_srid():
    seq = Counters(nspaces=1, epoch=1)
    seq.handle(req(1, [4]))
    probe_old = seq.handle(req(1, [0], term=2))
    assert probe_old.retx and probe_old.counts == [4] and probe_old.lasts == [3]
    sealed = seq.handle(req(2, [0], term=2))
    assert sealed.counts == [0] and not sealed.retx
    # The old leader's late request for srid 2 cannot get numbers any more.
    late = seq.handle(req(2, [5], term=2))
    assert late.retx and late.counts == [0]
    assert seq.next == [4]


def test_older_terms_are_fenced_after_a_newer_leader_spoke():
    seq = Counters(nspaces=1, epoch=1)
    seq.handle(req(0, [0], term=3))  # the new leader's hello
    stale = seq.handle(req(7, [2], term=2))
    assert stale.status == SEQ_STALE_TERM
    assert seq.next == [0]


def test_hello_reports_the_highest_srid_seen():
    seq = Counters(nspaces=1, epoch=1)
    for srid in (1, 2, 5):
        seq.handle(req(srid, [1]))
    assert seq.handle(req(0, [0], term=2)).max_srid == 5


def test_the_at_most_once_table_is_pruned_below_the_floor():
    seq = Counters(nspaces=1, epoch=1)
    for srid in range(1, 1001):
        seq.handle(req(srid, [1], floor=max(0, srid - 10)))
    # Only srids above the last floor the group announced may stay.
    assert seq.table_size() <= 80
    refused = seq.handle(req(5, [1], floor=990))
    assert refused.status == SEQ_PRUNED
    assert seq.next == [1000]


def test_groups_are_independent():
    seq = Counters(nspaces=1, epoch=1)
    a = seq.handle(req(1, [1], group=0))
    b = seq.handle(req(1, [1], group=1))
    assert a.lasts == [0] and b.lasts == [1] and a.status == b.status == SEQ_OK


def test_a_refused_request_moves_no_counter():
    # The original advanced the spaces before the bad one, then refused: a gap.
    counters = Counters(2, epoch=1)
    for counts in ([5, -1], [5, 2**40], [1, 1, 1]):
        with pytest.raises(ValueError):
            counters.handle(SeqRequest(0, 1, 1, counts, 0, 1))
        assert counters.next == [0, 0]
    assert counters.handle(SeqRequest(0, 1, 1, [5, 1], 0, 1)).lasts == [4, 0]


def test_a_late_retry_of_the_srid_at_the_floor_gets_no_second_range():
    # The floor says every srid up to it is settled in the group's log; the srid equal to
    # the floor is settled too. Probing only far below the floor missed `<` for `<=`.
    seq = Counters(nspaces=1, epoch=1)
    for srid in range(1, 71):
        seq.handle(req(srid, [1]))
    seq.handle(req(71, [1], floor=70))
    assert seq.next == [71]
    late = seq.handle(req(70, [1], floor=70))
    assert late.status == SEQ_PRUNED and late.lasts == []
    assert seq.handle(req(71, [1], floor=70)).lasts == [70]  # srid 71 is still remembered
    assert seq.next == [71]


def reply(srid, status, counts, lasts, retx=False, max_srid=0, group=0, epoch=1):
    return SeqReply(group=group, srid=srid, status=status, counts=counts, lasts=lasts,
                    retx=retx, max_srid=max_srid, epoch=epoch)


def test_every_reply_names_its_request_and_the_sequencer_epoch():
    # Each kind of answer in full: the group and srid it answers, the epoch of the sequencer
    # that gave it (the client checks it against the one it asked), and no retx flag unless
    # the ranges are old ones.
    seq = Counters(nspaces=2, epoch=3)
    assert seq.handle(req(1, [3, 1], group=4)) == reply(
        1, SEQ_OK, [3, 1], [2, 0], max_srid=1, group=4, epoch=3)
    assert seq.handle(req(2, [2, 5], group=4)) == reply(
        2, SEQ_OK, [2, 5], [4, 5], max_srid=2, group=4, epoch=3)
    assert seq.handle(req(1, [3, 1], group=4)) == reply(
        1, SEQ_OK, [3, 1], [2, 0], retx=True, max_srid=2, group=4, epoch=3)
    # The hello asks for nothing and learns where every space stands (the last number
    # handed out) and the highest srid the group used.
    assert seq.handle(req(0, [0, 0], group=4, term=2)) == reply(
        0, SEQ_OK, [0, 0], [4, 5], max_srid=2, group=4, epoch=3)
    assert seq.handle(req(3, [1, 1], group=4, term=1)) == reply(
        3, SEQ_STALE_TERM, [1, 1], [], max_srid=2, group=4, epoch=3)
    assert seq.handle(req(2, [1, 1], group=4, term=2, floor=2)) == reply(
        2, SEQ_PRUNED, [1, 1], [], max_srid=2, group=4, epoch=3)
    assert seq.next == [5, 6]


def test_a_new_groups_hello_reports_no_srid_and_nothing_handed_out():
    seq = Counters(nspaces=2, epoch=1)
    assert seq.handle(req(0, [0, 0], term=1)) == reply(0, SEQ_OK, [0, 0], [-1, -1])
    # Term 0 is a term the wire admits: a fresh group's record fences nothing yet.
    assert seq.handle(req(1, [2, 0], group=1, term=0)).lasts == [1, -1]


def test_the_largest_count_a_request_may_carry_is_granted():
    seq = Counters(nspaces=1, epoch=1)
    assert seq.handle(req(1, [MAX_BATCH_COUNT])).lasts == [MAX_BATCH_COUNT - 1]


def test_several_spaces_grant_the_largest_count_in_any_of_them():
    # Several spaces check their counts on a path apart from the one-space one: the largest
    # count is as legal there, whichever space carries it.
    seq = Counters(nspaces=3, epoch=1)
    assert seq.handle(req(1, [MAX_BATCH_COUNT, 0, 1])).lasts == [MAX_BATCH_COUNT - 1, -1, 0]
    assert seq.handle(req(2, [1, 2, MAX_BATCH_COUNT])).lasts == [
        MAX_BATCH_COUNT, 1, MAX_BATCH_COUNT]
    assert seq.next == [MAX_BATCH_COUNT + 1, 2, MAX_BATCH_COUNT + 1]


def test_a_refused_request_says_why():
    seq = Counters(nspaces=2, epoch=1)
    with pytest.raises(ValueError, match=r"^request has 3 spaces, sequencer has 2$"):
        seq.handle(req(1, [1, 1, 1]))
    with pytest.raises(ValueError, match=rf"^a count outside 0\.\.{MAX_BATCH_COUNT}$"):
        seq.handle(req(1, [1, MAX_BATCH_COUNT + 1]))
    assert seq.next == [0, 0] and seq.table_size() == 0


def test_a_sweep_drops_exactly_the_srids_at_or_below_the_floor():
    seq = Counters(nspaces=1, epoch=1)
    for srid in range(1, 101):
        seq.handle(req(srid, [1]))
    seq.handle(req(101, [1], floor=63))  # 63 past the last sweep (none yet): no sweep
    assert seq.table_size() == 101
    seq.handle(req(102, [1], floor=64))  # 64 past it: srids 65..102 stay
    assert seq.table_size() == 38
    seq.handle(req(103, [1], floor=100))  # 36 past the sweep at 64: none
    assert seq.table_size() == 39
    assert seq.handle(req(101, [1], floor=100)).retx  # still remembered above the floor
    assert seq.next == [103]


def test_a_large_table_is_swept_when_the_floor_moves_however_little():
    seq = Counters(nspaces=1, epoch=1)
    for srid in range(1, 4097):
        seq.handle(req(srid, [1]))
    seq.handle(req(4097, [1], floor=1))  # 4096 entries is not too many yet
    assert seq.table_size() == 4097
    seq.handle(req(4098, [1], floor=2))  # 4097 is: srids 3..4098 stay
    assert seq.table_size() == 4096


def test_a_request_that_leaves_the_floor_where_it_was_never_sweeps():
    # A sweep costs the whole table; without a move of the floor it would find nothing new
    # to drop, so even a large table is left alone until the floor moves.
    seq = Counters(nspaces=1, epoch=1)
    for srid in range(1, 4001):
        seq.handle(req(srid, [1]))
    seq.handle(req(4001, [1], floor=10))  # a small move of a small table: no sweep
    for srid in range(4002, 4101):
        seq.handle(req(srid, [1], floor=10))
    assert seq.table_size() == 4100
    seq.handle(req(4101, [1], floor=11))  # the floor moves: srids 12..4101 stay
    assert seq.table_size() == 4090


def test_one_space_refuses_a_count_out_of_range_and_moves_nothing():
    # One space has a path of its own (the common case); it validates as the others do.
    seq = Counters(nspaces=1, epoch=1)
    for count in (-1, MAX_BATCH_COUNT + 1):
        with pytest.raises(ValueError, match=rf"^a count outside 0\.\.{MAX_BATCH_COUNT}$"):
            seq.handle(req(1, [count]))
    with pytest.raises(ValueError, match=r"^request has 2 spaces, sequencer has 1$"):
        seq.handle(req(1, [1, 1]))
    assert seq.next == [0] and seq.table_size() == 0
    assert seq.handle(req(1, [0])).lasts == [-1]  # zero is a count like any other
    assert seq.handle(req(2, [MAX_BATCH_COUNT])).lasts == [MAX_BATCH_COUNT - 1]
