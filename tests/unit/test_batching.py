"""Leader-side batching and client-determined order (nodes/proxy/batching.py).

The cases mirror the original's proxy tests: an out-of-order reqid is parked and joins
once the gap is filled; an operation whose predecessor waits for the sequencer in a
closed batch is parked until that batch's answer arrives.
"""

import pytest

from nodes.proxy.batching import Admission, Batch, Op, split_ranges


def op(client, reqid, counts=(1,)):
    return Op(client, reqid, list(counts), None, 0)


def test_in_order_operations_join_the_open_batch():
    adm = Admission(1, {}, 0)
    assert adm.admit(op(1, 0)) and adm.admit(op(1, 1))
    assert [o.reqid for o in adm.open.ops] == [0, 1]


def test_an_out_of_order_reqid_is_parked_until_the_gap_fills():
    adm = Admission(1, {}, 0)
    assert not adm.admit(op(1, 1))
    assert adm.parked_count == 1
    assert adm.admit(op(1, 0))
    assert adm.release() == 1
    assert [o.reqid for o in adm.open.ops] == [0, 1]


def test_a_successor_of_an_unsequenced_batch_waits_for_its_answer():
    sequenced: dict[int, int] = {}
    adm = Admission(1, sequenced, 0)
    adm.admit(op(7, 0))
    closed = adm.close()
    assert not adm.admit(op(7, 1))  # reqid 0 is waiting for the sequencer
    assert adm.release() == 0
    split_ranges(closed, [9])
    sequenced[7] = 0  # the answer for the closed batch arrived
    assert adm.release() == 1
    assert [o.reqid for o in adm.open.ops] == [1]


def test_ranges_are_split_over_operations_in_batch_order():
    adm = Admission(2, {}, 0)
    adm.admit(op(1, 0, (1, 2)))
    adm.admit(op(2, 0, (3, 0)))
    batch = adm.close()
    assert batch.totals == [4, 2]
    split_ranges(batch, [103, 51])  # space 0 gets [100,103], space 1 gets [50,51]
    assert [o.lasts for o in batch.ops] == [[100, 51], [103, 51]]


def test_requeued_operations_go_first():
    adm = Admission(1, {}, 0)
    old = [op(1, 0), op(1, 1)]
    adm.admit(op(2, 0))
    adm.requeue_front(old)
    assert [(o.client_id, o.reqid) for o in adm.open.ops] == [(1, 0), (1, 1), (2, 0)]
    assert adm.open.totals == [3]


def test_a_parked_operation_already_sequenced_is_dropped_not_batched():
    # Client 1 is sequenced up to reqid 3; reqid 5 waits for 4. Then 4 and 5 are sequenced
    # another way (a batch that was already out): the parked 5 is a duplicate at the mark.
    sequenced = {1: 3}
    adm = Admission(1, sequenced, 0)
    assert not adm.admit(op(1, 5))
    sequenced[1] = 5
    adm.release()
    assert adm.parked_count == 0 and not adm.parked and not adm.open.ops


def test_a_batch_carries_each_operation_whole_to_its_answer():
    # What the replica logs and answers comes from the op: its ids, counts, range, payload,
    # and where to answer. An op rebuilt from the log has no one waiting and no payload.
    conn = object()
    adm = Admission(1, {}, 0)
    adm.admit(Op(3, 0, [2], conn, 17, b"data"))
    adm.admit(Op(3, 1, [1], None, 0))
    batch = adm.close()
    first, second = batch.ops
    assert first.lasts is None and second.lasts is None  # no range before the answer
    split_ranges(batch, [12])  # [10,11] and [12,12]
    assert (first.client_id, first.reqid, first.counts, first.lasts, first.conn, first.rid,
            first.payload) == (3, 0, [2], [11], conn, 17, b"data")
    assert (second.reqid, second.lasts, second.conn, second.rid, second.payload) == (
        1, [12], None, 0, b"")


def test_an_answer_for_a_different_number_of_spaces_is_refused_before_any_op_gets_a_range():
    adm = Admission(2, {}, 0)
    adm.admit(op(1, 0, (1, 1)))
    batch = adm.close()
    for lasts in ([5], [5, 6, 7]):
        with pytest.raises(ValueError):
            split_ranges(batch, lasts)
        assert batch.ops[0].lasts is None


def test_batches_take_consecutive_ids_from_the_first_one_and_a_requeue_keeps_the_id():
    adm = Admission(1, {}, 5)
    assert adm.open.batch_id == 5
    adm.admit(op(1, 0))
    sent = adm.close()
    assert (sent.batch_id, adm.open.batch_id, adm.next_batch_id) == (5, 6, 7)
    adm.admit(op(2, 0))
    adm.requeue_front(sent.ops)
    assert adm.open.batch_id == 6 and adm.next_batch_id == 7
    assert [(o.client_id, o.reqid) for o in adm.open.ops] == [(1, 0), (2, 0)]
    # Batches the admission opens are client batches, never a new leader's probe.
    assert adm.close().probe is False and adm.open.probe is False


def test_a_batch_knows_each_clients_highest_reqid_whatever_order_they_were_added():
    batch = Batch(0, 1)
    for client, reqid in ((1, 2), (1, 1), (2, 0)):
        batch.add(op(client, reqid))
    assert batch.top == {1: 2, 2: 0}


def test_release_counts_every_operation_it_moves_or_drops():
    sequenced = {1: 3}
    adm = Admission(1, sequenced, 0)
    assert adm.release() == 0  # nothing parked: nothing to move, no batch grew
    for reqid in (6, 5, 9, 8):
        assert not adm.admit(op(1, reqid))
    assert adm.parked_count == 4
    assert not adm.admit(op(2, 1))
    assert adm.parked_count == 5
    assert adm.admit(op(1, 4))
    assert adm.release() == 2  # 5 and 6 join after 4; 8 and 9 still wait for 7
    assert adm.parked_count == 3
    assert [o.reqid for o in adm.open.ops] == [4, 5, 6]
    sequenced[1] = 9  # 7..9 were sequenced another way: the parked 8 and 9 are duplicates
    adm.close()
    assert adm.release() == 2
    assert adm.parked_count == 1 and list(adm.parked) == [2] and not adm.open.ops
