"""The replicated group state (nodes/proxy/group_state.py)."""

from nodes.proxy.entries import BatchEntry, OpRecord, SwitchSequencer, decode, encode
from nodes.proxy.group_state import GroupState


def batch(srid, batch_id, ops, acks=(), noop=False):
    return BatchEntry(srid, batch_id, [OpRecord(c, r, [1], [n]) for c, r, n in ops],
                      list(acks), noop)


def test_committed_answers_are_kept_until_the_client_acks_them():
    state = GroupState(1, 1, "h", 1)
    state.apply(batch(1, 0, [(5, 0, 10), (5, 1, 11)]))
    assert state.answer(5, 1) == [11]
    state.apply(batch(2, 1, [], acks=[(5, 0)]))
    assert state.answer(5, 0) is None and state.answer(5, 1) == [11]
    assert state.already_acked(5, 0) and not state.already_acked(5, 1)


def test_done_tracking_does_not_stall_on_gaps_in_batch_ids():
    # Batch ids 1..3 were closed by a leader that died before logging them: the log holds
    # batch 0 and then batch 4. Acks must still free the answers of batch 4.
    state = GroupState(1, 1, "h", 1)
    state.apply(batch(1, 0, [(1, 0, 0)]))
    state.apply(batch(5, 4, [(1, 1, 1)]))
    state.apply(batch(6, 5, [], acks=[(1, 1)]))
    assert state.results[1] == {}
    assert state.next_batch_id == 6


def test_srid_floor_advances_over_settled_srids_and_lists_unsettled_ones():
    state = GroupState(1, 1, "h", 1)
    for srid in (1, 2, 4, 6):
        state.apply(batch(srid, srid, []))
    assert state.srid_floor == 2
    assert state.unsettled_srids(7) == [3, 5, 7]
    state.apply(batch(3, 9, [], noop=True))
    assert state.srid_floor == 4 and state.noops_committed == 1


def test_sequenced_marks_follow_the_log():
    state = GroupState(1, 1, "h", 1)
    state.apply(batch(1, 0, [(2, 0, 0), (2, 1, 1), (3, 4, 2)]))
    assert state.sequenced == {2: 1, 3: 4}


def test_snapshot_round_trip_keeps_everything_a_new_leader_needs():
    state = GroupState(2, 1, "h", 1)
    state.apply(BatchEntry(1, 0, [OpRecord(1, 0, [1, 1], [0, 0])], []))
    state.apply(batch(3, 2, [], noop=True))
    state.apply(SwitchSequencer(2, "backup", 9))
    copy = GroupState(2, 1, "x", 0)
    copy.restore(state.snapshot())
    assert copy.answer(1, 0) == [0, 0]
    assert copy.unsettled_srids(3) == [2]
    assert (copy.epoch, copy.seq_host, copy.seq_port) == (2, "backup", 9)


def test_entries_round_trip_through_their_encoding():
    entry = batch(3, 2, [(1, 2, 3)], acks=[(1, 1)])
    assert decode(encode(entry)) == entry
