"""The original's recovery weak points, one test each, proving ours does not have them."""

from __future__ import annotations

import asyncio

from nodes import wire
from nodes.bitmap import Bitmap, union, zero_runs
from nodes.config import Endpoint, ProxyConfig
from nodes.proxy import entries
from nodes.proxy.batching import Admission, Batch, Op
from nodes.proxy.group_state import GroupState
from nodes.proxy.replica import Replica
from nodes.sequencer.recovery import plan_fill


def bitmap_with(block: int, *ranges: tuple[int, int]) -> Bitmap:
    b = Bitmap(block)
    for first, last in ranges:
        b.set_range(first, last)
    return b


def test_more_holes_than_waiting_operations_become_noops():
    # The original left "more holes than outstanding operations" as a todo. Here two groups
    # committed scattered numbers, nobody waits, and every hole is still planned.
    a = bitmap_with(64, (0, 3), (10, 12))
    b = bitmap_with(64, (5, 5), (20, 20))
    holes, nexts = plan_fill([([a.base], [bytes(a.bits)]), ([b.base], [bytes(b.bits)])], 1)
    assert holes == [[(4, 4), (6, 9), (13, 19)]]
    assert nexts == [21]
    state = GroupState(1, 2, "h", 1, block=64)
    state.mark_numbers([entries.OpRecord(1, 0, [4], [3])])
    state.apply(entries.BatchEntry(0, 0, entries.fill_records(holes, 1), [], noop=True,
                                   fill_id=2))
    covered = bitmap_with(64, (0, 3), (10, 12), (5, 5), (20, 20))
    for rec in entries.fill_records(holes, 1):
        covered.set_range(rec.lasts[0] - rec.counts[0] + 1, rec.lasts[0])
    assert covered.duplicates == 0 and zero_runs(covered.as_int(), 21) == []


def test_holes_never_go_to_operations_and_respect_spaces():
    # The original gave holes to waiting operations one space at a time, breaking the
    # multi-space atomicity of an operation's numbers. Fill records are single-space noops.
    records = entries.fill_records([[(3, 4)], [(7, 7), (9, 12)]], 2)
    assert all(r.client_id == entries.NOOP_CLIENT for r in records)
    assert [(r.counts, r.lasts) for r in records] == [
        ([2, 0], [4, -1]), ([0, 1], [-1, 7]), ([0, 4], [-1, 12])]


def test_a_retried_fill_is_committed_once():
    state = GroupState(1, 2, "h", 1, block=64)
    fill = entries.BatchEntry(0, 0, entries.fill_records([[(0, 9)]], 1), [], noop=True,
                              fill_id=2)
    assert state.apply(fill)
    assert state.apply(fill) == []  # the backup retried after a lost answer
    assert state.bitmaps[0].duplicates == 0 and state.noops_committed == 1


def test_answers_from_an_older_sequencer_epoch_are_ignored(tmp_path):
    # The original's answer handler did not check which sequencer answered.
    async def scenario() -> tuple[int, bool]:
        conf = ProxyConfig(
            name="p", outdir=str(tmp_path), nspaces=1, group=0, replica=0, peers={},
            sequencer=Endpoint("127.0.0.1", 3),
        )
        replica = Replica(conf)
        replica.raft.campaign()  # a group of one: it wins at once
        replica.won_term = replica.serving_term = replica.raft.term
        assert replica.serving()
        replica.admission = Admission(1, replica.state.sequenced, 0)
        replica.link.accept_epoch = 2  # the group has switched to the backup
        batch = Batch(0, 1)
        batch.add(Op(1, 0, [1], None, 0))
        batch.srid = 1
        replica.link.pending[1] = batch
        before = replica.raft.last_index
        stale = wire.SeqReply(0, 1, wire.SEQ_OK, [1], [0], False, 1, epoch=1)
        replica.link.answered(replica.raft.term, batch, stale)
        fresh = wire.SeqReply(0, 1, wire.SEQ_OK, [1], [0], False, 1, epoch=2)
        after_stale = replica.raft.last_index - before, 1 in replica.link.pending
        replica.link.answered(replica.raft.term, batch, fresh)
        after_fresh = replica.raft.last_index - before, 1 in replica.link.pending
        return after_stale, after_fresh

    (proposed, still_pending), (fresh_proposed, fresh_pending) = asyncio.run(scenario())
    assert proposed == 0 and still_pending
    # The same answer from the accepted epoch is logged: the check is on the epoch alone.
    assert fresh_proposed == 1 and not fresh_pending


def test_noops_commit_and_are_done_without_a_recorder():
    # The original marked a noop batch done only when a recorder acknowledged it, so
    # without PLOT_RECOVERY garbage collection stopped. Here a noop is done when committed.
    state = GroupState(1, 1, "h", 1, block=64)
    state.apply(entries.BatchEntry(1, 0, [entries.OpRecord(entries.NOOP_CLIENT, 0, [5], [4])],
                                   [], noop=True))
    state.apply(entries.BatchEntry(2, 1, [entries.OpRecord(7, 0, [1], [5])], []))
    state.apply(entries.BatchEntry(3, 2, [], [(7, 0)]))
    assert state.noops_committed == 1 and state.srid_floor == 3
    assert state.results[7] == {}
    assert state.bitmaps[0].head_count() == 6


def test_bitmap_union_ignores_bits_below_the_highest_base():
    low = bitmap_with(16, (0, 3))
    high = bitmap_with(16, (16, 17))
    high_base = Bitmap(16)
    high_base.set_range(0, 15)
    high_base.truncate()
    high_base.set_range(18, 18)
    base, merged = union([(low.base, bytes(low.bits)), (high_base.base, bytes(high_base.bits)),
                          (high.base, bytes(high.bits))])
    assert base == 16 and merged == 0b111


def test_a_replica_serves_only_a_term_it_won_and_settled(tmp_path):
    # Before any election Raft's term is 0: "serving" must not mean "term == my term".
    async def scenario() -> list[bool]:
        conf = ProxyConfig(name="p", outdir=str(tmp_path), nspaces=1, group=0, replica=0, peers={},
                           sequencer=Endpoint("127.0.0.1", 3))
        replica = Replica(conf)
        seen = [replica.serving()]
        replica.raft.campaign()  # a group of one: it wins at once, but has not settled
        seen += [replica.leading(), replica.serving()]
        replica.won_term = replica.serving_term = replica.raft.term
        seen.append(replica.serving())
        replica.step_down()
        seen.append(replica.serving())
        return seen

    assert asyncio.run(scenario()) == [False, True, False, True, False]


def test_a_batch_sequenced_but_never_committed_leaves_no_mark_for_a_later_term(tmp_path):
    # The leader noted a batch's operations as sequenced when the sequencer answered; its
    # term ended before the entry committed. A later term must still admit the client's
    # retransmission of that reqid rather than drop it as a duplicate.
    async def scenario() -> tuple[dict[int, int], bool]:
        conf = ProxyConfig(name="p", outdir=str(tmp_path), nspaces=1, group=0, replica=0, peers={},
                           sequencer=Endpoint("127.0.0.1", 3))
        replica = Replica(conf)
        replica.raft.campaign()
        replica.won_term = replica.serving_term = replica.raft.term
        replica.admission = Admission(1, dict(replica.state.sequenced), 0)
        batch = Batch(0, 1)
        batch.add(Op(7, 0, [1], None, 0))
        batch.srid = 1
        reply = wire.SeqReply(0, 1, wire.SEQ_OK, [1], [0], False, 1, epoch=1)
        replica.on_seq_answer(replica.raft.term, batch, reply)
        replica.step_down()  # before the loop ever applied the entry
        committed = dict(replica.state.sequenced)
        again = Admission(1, dict(replica.state.sequenced), 1)
        return committed, again.admit(Op(7, 0, [1], None, 0))

    committed, admitted = asyncio.run(scenario())
    assert committed == {} and admitted
