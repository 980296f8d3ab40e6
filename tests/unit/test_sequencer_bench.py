"""The sequencer benchmark's bookkeeping: a synthetic leader's floor, the leaders' spread
over driver processes and the projection of groups per sequencer (benchmarks/)."""

import pytest

from benchmarks.seq_leaders import SridWindow
from benchmarks.sequencer import ceilings, groups_carried, split


def test_the_floor_follows_answers_in_order():
    w = SridWindow()
    srids = [w.issue() for _ in range(4)]
    assert srids == [1, 2, 3, 4] and w.floor == 0
    for srid in srids:
        w.answered(srid)
        assert w.floor == srid


def test_the_floor_never_passes_a_srid_still_in_flight():
    w = SridWindow()
    for _ in range(5):
        w.issue()
    w.answered(2)
    w.answered(3)
    assert w.floor == 0  # srid 1 is unanswered: it is not settled
    w.answered(1)
    assert w.floor == 3  # and 2, 3 answered before it follow at once
    w.answered(5)
    assert w.floor == 3
    w.answered(4)
    assert w.floor == 5


def test_an_answer_for_a_srid_not_in_flight_is_refused():
    w = SridWindow()
    w.issue()
    with pytest.raises(ValueError):
        w.answered(2)  # never issued
    w.answered(1)
    with pytest.raises(ValueError):
        w.answered(1)  # answered twice
    assert w.floor == 1


def test_leaders_are_spread_evenly_over_at_most_the_drivers():
    assert split(1, 4) == [1]
    assert split(4, 4) == [1, 1, 1, 1]
    assert split(6, 4) == [2, 2, 1, 1]
    assert split(64, 4) == [16, 16, 16, 16]
    assert sum(split(13, 3)) == 13


def test_a_group_sends_one_request_per_batch():
    # 110k ops/s in batches of 80 is 1375 requests/s: 137,500 requests/s carry 100 groups.
    assert groups_carried(137_500, 110_000, 80) == pytest.approx(100)
    assert groups_carried(137_500, 110_000, 1) == pytest.approx(1.25)
    with pytest.raises(ValueError):
        groups_carried(1000, 0, 80)
    with pytest.raises(ValueError):
        groups_carried(1000, 1000, 0)


def test_the_ceiling_per_load_is_the_lowest_over_batch_sizes():
    rows = [{"outstanding": 4, "leaders": 4, "batch": 1, "requests_per_s": 900.0},
            {"outstanding": 4, "leaders": 4, "batch": 16, "requests_per_s": 800.0},
            {"outstanding": 4, "leaders": 16, "batch": 1, "requests_per_s": 1200.0},
            {"outstanding": 1, "leaders": 4, "batch": 1, "requests_per_s": 300.0},
            {"outstanding": 1, "leaders": 4, "batch": 16, "requests_per_s": None}]
    assert ceilings(rows) == {(4, 4): 800.0, (4, 16): 1200.0, (1, 4): 300.0}
