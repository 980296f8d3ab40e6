"""nodes.logserver.chain: the pure view rules behind reconfiguration."""

from __future__ import annotations

from nodes.logserver.chain import View, after_seal, initial_view, sealed_view, survivors_view


def test_initial_view_is_the_configured_chain():
    assert initial_view(3) == View(0, (0, 1, 2))


def test_survivors_keep_their_order_in_the_next_epoch():
    v = initial_view(3)
    assert survivors_view(v, 0) == View(1, (1, 2))  # the head failed: the middle leads
    assert survivors_view(v, 1) == View(1, (0, 2))
    assert survivors_view(v, 2) == View(1, (0, 1))  # the tail failed: the middle is tail
    assert survivors_view(View(4, (2,)), 2) == View(5, ())


def test_only_a_newer_sealed_view_is_adopted():
    v = View(2, (0, 2))
    assert sealed_view(v, 3, [2]) == View(3, (2,))
    assert sealed_view(v, 2, [2]) is None
    assert sealed_view(v, 1, [0, 1, 2]) is None


def test_after_seal_done_when_every_member_took_it():
    assert after_seal(View(1, (1, 2)), [], []) is None


def test_after_seal_drops_members_that_did_not_answer():
    assert after_seal(View(1, (0, 1, 2)), [1], []) == View(2, (0, 2))
    assert after_seal(View(1, (0, 1)), [0, 1], []) == View(2, ())


def test_after_seal_meeting_another_view_goes_above_it_with_the_common_members():
    # Another writer sealed epoch 1 as [0, 1] while this one sealed it as [1, 2].
    assert after_seal(View(1, (1, 2)), [], [(1, [0, 1])]) == View(2, (1,))
    # ... or already went further.
    assert after_seal(View(1, (0, 1, 2)), [], [(5, [0, 2]), (3, [0, 1, 2])]) == View(6, (0, 2))
    # A server never sealed ([] at epoch 0) restricts nothing.
    assert after_seal(View(1, (0, 1)), [], [(0, [])]) == View(2, (0, 1))
