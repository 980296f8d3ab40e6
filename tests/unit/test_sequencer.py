"""The sequencer's counters and at-most-once table (nodes/sequencer/counters.py)."""

from nodes.sequencer.counters import Counters
from nodes.wire import SEQ_OK, SEQ_PRUNED, SEQ_STALE_TERM, SeqRequest


def req(srid, counts, group=0, term=1, floor=0):
    return SeqRequest(group=group, term=term, srid=srid, counts=counts, floor=floor, epoch=1)


def test_ranges_are_consecutive_in_every_space_and_start_at_zero():
    seq = Counters(nspaces=2)
    first = seq.handle(req(1, [3, 1]))
    second = seq.handle(req(2, [2, 5]))
    assert first.lasts == [2, 0]  # ranges [0,2] and [0,0]
    assert second.lasts == [4, 5]  # ranges [3,4] and [1,5]
    assert not first.retx and not second.retx


def test_a_retransmitted_srid_gets_the_same_ranges_and_moves_no_counter():
    seq = Counters(nspaces=1)
    seq.handle(req(1, [4]))
    again = seq.handle(req(1, [4]))
    assert again.retx and again.lasts == [3] and again.counts == [4]
    assert seq.handle(req(2, [1])).lasts == [4]


def test_zero_count_probe_returns_the_old_range_or_seals_an_unseen_srid():
    seq = Counters(nspaces=1)
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
    seq = Counters(nspaces=1)
    seq.handle(req(0, [0], term=3))  # the new leader's hello
    stale = seq.handle(req(7, [2], term=2))
    assert stale.status == SEQ_STALE_TERM
    assert seq.next == [0]


def test_hello_reports_the_highest_srid_seen():
    seq = Counters(nspaces=1)
    for srid in (1, 2, 5):
        seq.handle(req(srid, [1]))
    assert seq.handle(req(0, [0], term=2)).max_srid == 5


def test_the_at_most_once_table_is_pruned_below_the_floor():
    seq = Counters(nspaces=1)
    for srid in range(1, 1001):
        seq.handle(req(srid, [1], floor=max(0, srid - 10)))
    # Only srids above the last floor the group announced may stay.
    assert seq.table_size() <= 80
    refused = seq.handle(req(5, [1], floor=990))
    assert refused.status == SEQ_PRUNED
    assert seq.next == [1000]


def test_groups_are_independent():
    seq = Counters(nspaces=1)
    a = seq.handle(req(1, [1], group=0))
    b = seq.handle(req(1, [1], group=1))
    assert a.lasts == [0] and b.lasts == [1] and a.status == b.status == SEQ_OK


def test_a_refused_request_moves_no_counter():
    # The original advanced the spaces before the bad one, then refused: a gap.
    import pytest

    from nodes.sequencer.counters import Counters
    from nodes.wire import SeqRequest

    counters = Counters(2)
    for counts in ([5, -1], [5, 2**40], [1, 1, 1]):
        with pytest.raises(ValueError):
            counters.handle(SeqRequest(0, 1, 1, counts, 0, 1))
        assert counters.next == [0, 0]
    assert counters.handle(SeqRequest(0, 1, 1, [5, 1], 0, 1)).lasts == [4, 0]


def test_a_late_retry_of_the_srid_at_the_floor_gets_no_second_range():
    # The floor says every srid up to it is settled in the group's log; the srid equal to
    # the floor is settled too. Probing only far below the floor missed `<` for `<=`.
    seq = Counters(nspaces=1)
    for srid in range(1, 71):
        seq.handle(req(srid, [1]))
    seq.handle(req(71, [1], floor=70))
    assert seq.next == [71]
    late = seq.handle(req(70, [1], floor=70))
    assert late.status == SEQ_PRUNED and late.lasts == []
    assert seq.handle(req(71, [1], floor=70)).lasts == [70]  # srid 71 is still remembered
    assert seq.next == [71]
