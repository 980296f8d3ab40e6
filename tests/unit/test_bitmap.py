"""Received-number bitmaps (nodes/bitmap.py)."""

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.bitmap import Bitmap, union, zero_runs


def test_ranges_grow_the_bitmap_by_whole_blocks():
    b = Bitmap(64)
    b.set_range(0, 9)
    b.set_range(200, 201)
    assert len(b.bits) == 4 * 8  # 256 numbers: four blocks of 64
    assert b.head_count() == 10 and b.highest() == 201


def test_truncate_drops_the_head_block_and_ignores_numbers_below_the_base():
    b = Bitmap(64)
    b.set_range(0, 70)
    b.truncate()
    assert b.base == 64 and b.head_count() == 7
    b.set_range(10, 20)  # below the base: already accounted for
    assert b.head_count() == 7 and b.duplicates == 0


def test_a_number_committed_twice_is_counted():
    b = Bitmap(64)
    b.set_range(5, 9)
    b.set_range(9, 12)
    assert b.duplicates == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 40)), max_size=30))
def test_zero_runs_are_exactly_the_numbers_not_set(ranges):
    b = Bitmap(64)
    expected: set[int] = set()
    for first, span in ranges:
        new = set(range(first, first + span + 1))
        if new & expected:
            continue
        b.set_range(first, first + span)
        expected |= new
    length = b.as_int().bit_length()
    holes = {x for a, z in zero_runs(b.as_int(), length) for x in range(a, z + 1)}
    assert holes == set(range(length)) - expected
    assert b.duplicates == 0


@pytest.mark.parametrize("block", [0, -8, 12, 1])
def test_a_block_size_that_is_not_a_positive_multiple_of_8_is_refused(block):
    message = f"^block size must be a positive multiple of 8, not {block}$"
    with pytest.raises(ValueError, match=message):
        Bitmap(block)


def test_a_range_that_ends_on_the_last_number_of_a_block_does_not_grow_the_bitmap():
    b = Bitmap(64)
    b.set_range(0, 63)
    assert len(b.bits) == 8 and b.head_count() == 64
    b.set_range(64, 64)
    assert len(b.bits) == 16


def test_duplicates_add_up_over_ranges_and_each_is_logged(caplog):
    b = Bitmap(64)
    b.set_range(0, 9)
    with caplog.at_level(logging.ERROR, logger="mason.bitmap"):
        b.set_range(8, 12)  # 8 and 9 again
        b.set_range(12, 12)  # 12 again
    assert b.duplicates == 3
    assert [r.getMessage() for r in caplog.records] == [
        "numbers in [8, 12] committed twice (2)",
        "numbers in [12, 12] committed twice (1)",
    ]


def test_each_truncate_advances_the_base_by_one_block():
    b = Bitmap(64)
    b.set_range(0, 200)
    b.truncate()
    b.truncate()
    assert b.base == 128 and b.head_count() == 64 and b.highest() == 200


def test_truncate_to_stops_at_the_given_base():
    b = Bitmap(64)
    b.set_range(0, 200)
    b.truncate_to(128)
    assert b.base == 128 and b.highest() == 200
    b.truncate_to(128)
    assert b.base == 128


def test_union_aligns_at_the_highest_base():
    # (0, 0b1011): 0, 1, 3; (8, 0b0101): 8, 10. Aligned at 8, the first bitmap adds nothing
    # (its numbers are all below 8) and number 9 stays a hole.
    assert union([(0, (0b1011).to_bytes(2, "little")), (8, (0b0101).to_bytes(1, "little"))]) == (
        8,
        0b0101,
    )
    # (0, 0b1_0000_0000_0010): 1 and 12 (= 8 + 4); (8, 0b0001): 8.
    assert union([(0, (0x1002).to_bytes(2, "little")), (8, b"\x01")]) == (8, 0b10001)
    # Same base: a plain OR, and number 0, held by neither, stays a hole.
    assert union([(16, b"\x02"), (16, b"\x04")]) == (16, 0b110)
