"""Round-robin epochs and the record that keeps a restarted sequencer off its old epoch."""

from __future__ import annotations

import pytest

from nodes.sequencer.epochs import EpochRecord, next_owned


@pytest.mark.parametrize(("first", "stride", "above", "want"), [
    (2, 2, 1, 2),  # B's first takeover: the sequencer of epoch 1 died
    (1, 2, 2, 3),  # A restarted after epoch 1, B (epoch 2) died: A serves 3
    (1, 2, 1, 3),  # A never serves 1 again, whatever a group reports
    (3, 3, 1, 3),  # the second standby of three, asked when epoch 2's owner is dead too
    (2, 3, 4, 5),
    (1, 1, 0, 1),
])
def test_next_owned_epoch(first, stride, above, want):
    assert next_owned(first, stride, above) == want


def test_bad_ownership_is_refused():
    # The sequencer reports this message as its one-line start error.
    with pytest.raises(ValueError, match="^bad epoch ownership: first 0, stride 2$"):
        next_owned(0, 2, 0)
    with pytest.raises(ValueError, match="^bad epoch ownership: first 1, stride 0$"):
        next_owned(1, 0, 0)


def test_a_claim_survives_a_restart_and_never_goes_back(tmp_path):
    path = tmp_path / "sequencer-0.epoch"
    first = EpochRecord(path)
    assert not first.restarted
    first.claim(1)
    again = EpochRecord(path)
    assert again.restarted and again.highest == 1
    with pytest.raises(ValueError, match="not above"):
        again.claim(1)
    again.claim(3)
    assert again.highest == 3
    with pytest.raises(ValueError, match="^epoch 2 is not above the claimed 3$"):
        again.claim(2)  # the same incarnation never goes back either
    again.claim(5)
    assert EpochRecord(path).highest == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sequencer-0.epoch"]


def test_a_garbled_record_is_a_clear_error(tmp_path):
    path = tmp_path / "s.epoch"
    path.write_text("three\n")
    with pytest.raises(ValueError, match="not an epoch number"):
        EpochRecord(path)


def test_a_long_garbled_record_is_quoted_cut_short(tmp_path):
    # The start error stays one short line whatever the file holds.
    path = tmp_path / "s.epoch"
    path.write_text("x" * 40 + "tail")
    with pytest.raises(ValueError) as refused:
        EpochRecord(path)
    assert str(refused.value) == f"{path}: not an epoch number: {'x' * 40!r}"
