"""Received-number bitmaps (nodes/bitmap.py)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.bitmap import Bitmap, zero_runs


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
