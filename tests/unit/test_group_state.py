"""The replicated group state (nodes/proxy/group_state.py)."""

import pytest

from nodes import wire
from nodes.proxy.entries import (
    NOOP_CLIENT,
    BatchEntry,
    OpRecord,
    SwitchSequencer,
    decode,
    encode,
    fill_records,
)
from nodes.proxy.group_state import GroupState
from nodes.services import Refused


def batch(srid, batch_id, ops, acks=(), noop=False):
    return BatchEntry(srid, batch_id, [OpRecord(c, r, [1], [n]) for c, r, n in ops],
                      list(acks), noop)


def test_committed_answers_are_kept_until_the_client_acks_them():
    state = GroupState(1, 1, "h", 1)
    state.apply(batch(1, 0, [(5, 0, 10), (5, 1, 11)]))
    assert state.answer(5, 1) == ([11], 1)
    state.apply(batch(2, 1, [], acks=[(5, 0)]))
    assert state.answer(5, 0) is None and state.answer(5, 1) == ([11], 1)
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
    assert copy.answer(1, 0) == ([0, 0], 1)
    assert copy.unsettled_srids(3) == [2]
    assert (copy.epoch, copy.seq_host, copy.seq_port) == (2, "backup", 9)


def test_entries_round_trip_through_their_encoding():
    entry = batch(3, 2, [(1, 2, 3)], acks=[(1, 1)])
    assert decode(encode(entry)) == entry


def test_a_fresh_group_has_settled_nothing_and_owes_nothing():
    state = GroupState(2, 1, "h", 1)
    assert state.unsettled_srids(2) == [1, 2]  # a new leader probes from srid 1
    assert (state.max_srid, state.next_batch_id) == (0, 0)
    assert (state.ops_committed, state.noops_committed, state.noop_numbers) == (0, 0, [0, 0])
    assert state.owed is None
    assert state.answer(9, 0) is None and not state.already_acked(9, 0)
    # Without a service of its own the group serves mason over its spaces.
    assert state.service.admit(wire.OpRequest(9, 0, 0, -1, [1, 2])) == [1, 2]
    with pytest.raises(Refused):
        state.service.admit(wire.OpRequest(9, 0, 0, -1, [1]))


def test_answers_are_kept_per_operation_and_freed_by_the_highest_ack_only():
    state = GroupState(1, 1, "h", 1)
    state.apply(batch(1, 0, [(5, 0, 10), (5, 1, 11), (5, 2, 12)]))
    assert [state.answer(5, r) for r in (0, 1, 2)] == [([10], 1), ([11], 1), ([12], 1)]
    state.apply(batch(2, 1, [], acks=[(5, 1)]))
    assert [state.answer(5, r) for r in (0, 1, 2)] == [None, None, ([12], 1)]
    state.apply(batch(3, 2, [], acks=[(5, 0), (6, -1)]))  # an older ack; "none yet"
    assert state.already_acked(5, 1) and not state.already_acked(5, 2)
    assert state.acked == {5: 1}
    # A late duplicate of an acked operation commits but keeps no answer.
    state.apply(BatchEntry(4, 3, [OpRecord(5, 1, [1], [13])], []))
    assert state.answer(5, 1) is None and state.results == {5: {2: ([12], 1)}}


def test_a_clients_sequenced_mark_never_goes_back():
    state = GroupState(1, 1, "h", 1)
    state.apply(batch(1, 0, [(2, 3, 0)]))
    state.apply(batch(2, 1, [(2, 1, 1)]))
    assert state.sequenced == {2: 3}


def test_only_a_newer_epoch_switches_the_sequencer_and_a_switch_owes_nothing():
    state = GroupState(1, 2, "h", 1)
    state.apply(SwitchSequencer(2, "other", 2))
    assert (state.epoch, state.seq_host, state.seq_port) == (2, "h", 1)
    assert state.owed is None
    state.apply(SwitchSequencer(3, "backup", 9))
    assert (state.epoch, state.seq_host, state.seq_port) == (3, "backup", 9)


def test_the_settled_srids_kept_above_the_floor_are_only_those_above_it():
    state = GroupState(1, 1, "h", 1)
    for srid in (1, 2, 4, 6, 5):
        state.apply(batch(srid, srid, []))
    assert state.srid_floor == 2 and state.srids_above == {4, 5, 6}
    assert state.max_srid == 6
    state.apply(batch(2, 9, []))  # an srid at the floor again settles nothing new
    assert state.srid_floor == 2 and state.srids_above == {4, 5, 6}


def test_the_next_batch_id_follows_the_highest_logged_one():
    state = GroupState(1, 1, "h", 1)
    state.apply(batch(1, 3, []))
    assert state.next_batch_id == 4
    state.apply(batch(2, 1, []))
    assert state.next_batch_id == 4


def test_committed_operations_and_noops_are_counted():
    state = GroupState(2, 1, "h", 1)
    state.apply(BatchEntry(1, 0, [OpRecord(1, 0, [1, 1], [0, 0]), OpRecord(1, 1, [1, 0], [1, 0])],
                           []))
    state.apply(BatchEntry(2, 1, [OpRecord(NOOP_CLIENT, 0, [3, 0], [4, 0])], [], noop=True))
    state.apply(BatchEntry(3, 2, [OpRecord(2, 0, [0, 1], [4, 1])], []))
    state.apply(BatchEntry(4, 3, [OpRecord(NOOP_CLIENT, 0, [1, 2], [5, 3])], [], noop=True))
    assert (state.ops_committed, state.noops_committed, state.noop_numbers) == (3, 2, [4, 2])


def test_followers_truncate_their_bitmaps_to_the_leaders_bases():
    state = GroupState(1, 1, "h", 1, block=8)
    state.apply(BatchEntry(1, 0, [OpRecord(1, 0, [10], [9])], [], gc_bases=[8]))
    assert state.bases() == [8] and state.bitmaps[0].as_int() == 0b11


def marked(state):
    return [bitmap.as_int() for bitmap in state.bitmaps]


def test_a_batch_marks_the_one_range_its_operations_own_in_every_space():
    state = GroupState(2, 1, "h", 1)
    state.apply(BatchEntry(1, 0, [OpRecord(1, 0, [1, 2], [10, 21]),
                                  OpRecord(1, 1, [2, 0], [12, 21]),
                                  OpRecord(2, 0, [1, 1], [13, 22])], []))
    assert marked(state) == [0b1111 << 10, 0b111 << 20]  # [10,13] and [20,22]
    state.apply(BatchEntry(2, 1, [OpRecord(3, 0, [3, 0], [16, 22])], []))
    assert marked(state) == [0b1111111 << 10, 0b111 << 20]  # [14,16] joins; space 1 as was
    assert [b.duplicates for b in state.bitmaps] == [0, 0]


def test_a_fills_noops_mark_only_their_own_disjoint_ranges():
    state = GroupState(1, 1, "h", 1)
    state.apply(BatchEntry(0, 0, fill_records([[(0, 1), (5, 6)]], 1), [], noop=True,
                           fill_id=1))
    assert marked(state) == [0b1100011]


def rich_state(nspaces=2):
    state = GroupState(nspaces, 1, "h", 1, block=8)
    state.apply(BatchEntry(1, 0, [OpRecord(1, 0, [1, 1], [0, 0]), OpRecord(1, 1, [2, 0], [2, 0]),
                                  OpRecord(2, 0, [1, 1], [3, 1])], []))
    state.apply(BatchEntry(3, 2, [OpRecord(NOOP_CLIENT, 0, [1, 1], [4, 2])], [], noop=True))
    state.apply(BatchEntry(0, 3, fill_records([[(5, 9)], []], 2), [], noop=True, fill_id=7))
    state.apply(BatchEntry(4, 4, [], [(1, 0)], gc_bases=[8, 0]))
    state.apply(SwitchSequencer(2, "backup", 9))
    return state


def test_a_snapshot_restores_every_part_of_the_state():
    copy = GroupState(2, 5, "x", 0, block=8)
    copy.restore(rich_state().snapshot())
    assert copy.results == {1: {1: ([2, 0], 1)}, 2: {0: ([3, 1], 1)}}
    assert (copy.acked, copy.sequenced) == ({1: 0}, {1: 1, 2: 0})
    assert (copy.srid_floor, copy.srids_above, copy.max_srid) == (1, {3, 4}, 4)
    assert copy.next_batch_id == 5
    assert (copy.epoch, copy.seq_host, copy.seq_port) == (2, "backup", 9)
    assert (copy.ops_committed, copy.noops_committed, copy.noop_numbers) == (3, 2, [6, 1])
    # Space 0 owns 0..9 with the block below 8 truncated; space 1 owns 0..2.
    assert copy.bases() == [8, 0] and marked(copy) == [0b11, 0b111]
    assert copy.fills == {7}
    retried = BatchEntry(0, 5, fill_records([[(5, 9)], []], 2), [], noop=True, fill_id=7)
    assert copy.apply(retried) == [] and copy.noops_committed == 2


def test_a_snapshot_for_another_number_of_spaces_is_refused():
    with pytest.raises(ValueError):
        GroupState(1, 1, "h", 1, block=8).restore(rich_state().snapshot())


def test_a_clients_ack_reaches_the_service_with_its_client_and_reqid():
    from nodes.services.zkmason import ZkMasonService, encode_op
    from nodes.zk.requests import GetData, Txn

    service = ZkMasonService(1, clock=lambda: 1000)
    state = GroupState(1, 1, "h", 1, service=service)
    read = encode_op(Txn(0, 0, GetData("/k")), -1)
    ops = [OpRecord(7, r, [1], [r], read) for r in range(3)] + [OpRecord(8, 0, [1], [3], read)]
    state.apply(BatchEntry(1, 1, ops, []))
    for call in service.pending():
        service.done(call)
    # The next entry reports them done, and client 7 has its answers up to reqid 1.
    state.apply(BatchEntry(2, 2, [], [(7, 1)], notes=service.take_notes()))
    assert service.call_of(7, 0) is None and service.call_of(7, 1) is None
    assert service.call_of(7, 2) is not None  # not acknowledged yet
    assert service.call_of(8, 0) is not None  # another client's
