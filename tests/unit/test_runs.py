"""Runs: consecutive operations of one client carried, sequenced, logged and answered as
one unit (nodes/wire.py OpRequest.nops), with every operation still owning its own numbers.
"""

from __future__ import annotations

import msgspec
import pytest

from nodes import wire
from nodes.metrics import SeqnumRecorder
from nodes.proxy.batching import Admission, Op, split_ranges
from nodes.proxy.entries import NOOP_CLIENT, BatchEntry, OpRecord, decode, encode
from nodes.proxy.group_state import GroupState


def run(client, reqid, nops, counts=(1,)):
    return Op(client, reqid, list(counts), None, 0, nops=nops)


def test_each_operation_of_a_run_owns_its_own_consecutive_numbers(tmp_path):
    # A run of 3 operations, 2 numbers each in space 0 and 1 in space 1, whose highest
    # numbers are 20 and 7: the client writes each operation's own ranges, tiling the run's.
    with SeqnumRecorder(tmp_path / "c.seqnums", 1, 2) as out:
        out.record_run(4, 99, [2, 1], [20, 7], 3)
    lines = (tmp_path / "c.seqnums").read_text().splitlines()[1:]
    assert lines == ["4 99 2 16 1 5", "5 99 2 18 1 6", "6 99 2 20 1 7"]


def test_a_batch_splits_its_range_over_runs_and_single_operations_in_order():
    adm = Admission(2, {}, 0)
    assert adm.admit(run(1, 0, 4, (1, 2)))
    assert adm.admit(run(2, 0, 1, (3, 0)))
    assert adm.admit(run(1, 4, 2, (1, 2)))
    batch = adm.close()
    assert batch.nops == 7 and batch.totals == [4 + 3 + 2, 8 + 0 + 4]
    assert batch.top == {1: 5, 2: 0}
    split_ranges(batch, [108, 211])  # the batch owns 100..108 and 200..211
    assert [op.lasts for op in batch.ops] == [[103, 207], [106, 207], [108, 211]]


def test_a_run_joins_only_after_the_clients_previous_operation_and_parks_otherwise():
    adm = Admission(1, {}, 0)
    assert not adm.admit(run(1, 3, 2))  # reqids 0..2 not yet seen
    assert adm.admit(run(1, 0, 3))
    assert adm.release() == 1
    assert [(op.reqid, op.nops) for op in adm.open.ops] == [(0, 3), (3, 2)]
    assert adm.open.top[1] == 4


def test_parked_runs_fill_one_batch_up_to_its_limit_and_wait_for_the_next():
    adm = Admission(1, {}, 0, max_ops=8)
    for first in (4, 8, 12):
        assert not adm.admit(run(1, first, 4))
    assert adm.admit(run(1, 0, 4))
    assert adm.release() == 1  # 4 + 4 = 8 operations: the batch is full
    assert adm.open.nops == 8 and adm.parked_count == 2
    adm.close()
    assert adm.release() == 0  # their predecessors wait for the sequencer
    adm.sequenced[1] = 7  # the closed batch's answer arrived (the leader's log_batch)
    assert adm.release() == 2


def test_a_committed_run_is_answered_whole_and_kept_until_all_of_it_is_acked():
    state = GroupState(1, 1, "h", 1)
    state.apply(BatchEntry(1, 0, [OpRecord(5, 0, [1], [9], nops=10),
                                  OpRecord(6, 0, [1], [10])], []))
    assert state.answer(5, 0) == ([9], 10) and state.answer(6, 0) == ([10], 1)
    assert state.sequenced == {5: 9, 6: 0}
    assert state.ops_committed == 11
    assert state.bitmaps[0].highest() == 10 and state.bitmaps[0].duplicates == 0
    state.apply(BatchEntry(2, 1, [], [(5, 8)]))
    assert state.answer(5, 0) == ([9], 10), "one operation of the run is not acked yet"
    state.apply(BatchEntry(3, 2, [], [(5, 9)]))
    assert state.answer(5, 0) is None


def test_a_noop_run_and_a_single_noop_both_count_their_numbers():
    state = GroupState(1, 1, "h", 1)
    state.apply(BatchEntry(1, 0, [OpRecord(NOOP_CLIENT, 0, [1], [4], nops=5)], [], noop=True))
    assert state.noop_numbers == [5]
    assert state.bitmaps[0].highest() == 4


def test_a_run_in_a_snapshot_and_in_the_log_keeps_its_length():
    entry = BatchEntry(1, 0, [OpRecord(5, 0, [2], [15], nops=8)], [])
    assert decode(encode(entry)) == entry
    single = BatchEntry(1, 0, [OpRecord(5, 0, [2], [15])], [])
    assert decode(encode(single)).ops[0].nops == 1
    state = GroupState(1, 1, "h", 1)
    state.apply(entry)
    copy = GroupState(1, 1, "h", 1)
    copy.restore(state.snapshot())
    assert copy.answer(5, 0) == ([15], 8) and copy.sequenced == {5: 7}


@pytest.mark.parametrize("nops", [0, -1, wire.MAX_RUN + 1])
def test_a_run_of_no_operations_or_too_many_is_refused_by_the_decoder(nops):
    frame = msgspec.msgpack.encode([[wire.CALL, 1, ["op", 1, 0, 0, -1, [1], 0, b"", nops]]])
    with pytest.raises(wire.FrameError):
        list(wire.FrameReader().feed(len(frame).to_bytes(4, "big") + frame))
