"""Leader-side batching and client-determined order (nodes/proxy/batching.py).

The cases mirror the original's proxy tests: an out-of-order reqid is parked and joins
once the gap is filled; an operation whose predecessor waits for the sequencer in a
closed batch is parked until that batch's answer arrives.
"""

from nodes.proxy.batching import Admission, Op, split_ranges


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
