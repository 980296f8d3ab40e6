"""The shard replica's ordered engine (nodes/zkshard/engine.py), without sockets: numbers
execute strictly in order, each once; noops advance the order; duplicates never run twice;
a held transaction stops everything after it until its decision; bad calls are refused
before any state changes."""

from __future__ import annotations

import msgspec

from nodes import wire
from nodes.zk.coordinate import TxnRun
from nodes.zk.requests import Create, GetData, SetData, Txn
from nodes.zk.results import CreateResult, DataResult, Result
from nodes.zk.shard_machine import ShardMachine, ViewReply
from nodes.zk.shards import shard_of
from nodes.zkshard.engine import Engine

enc = msgspec.msgpack.Encoder()
result_of = msgspec.msgpack.Decoder(Result).decode


def engine(shard: int = 0, nshards: int = 1) -> tuple[Engine, list[tuple[int, int, list]]]:
    events: list[tuple[int, int, list]] = []
    return Engine(ShardMachine(shard, nshards), nproxies=2, cache_size=8,
                  send_event=lambda o, n, c: events.append((o, n, c))), events


def call(number: int, kind: int, txn: Txn | None = None, *, last: int | None = None,
         client: int = 7, reqid: int = 0, origin: int = -1, shard: int = 0,
         view: bytes = b"", body: bytes | None = None) -> wire.ShardCall:
    return wire.ShardCall(shard, number, number if last is None else last, kind, client, reqid,
                          origin, enc.encode(txn) if body is None and txn else body or b"",
                          view)


def txn(request: object, zxid: int) -> Txn:
    return Txn(1, 1000, request, zxid)  # type: ignore[arg-type]


def test_numbers_run_in_order_and_noops_advance_it() -> None:
    e, _ = engine()
    answers: dict[int, wire.ShardReply] = {}
    e.receive(call(2, wire.SHARD_EXEC, txn(SetData("/a", b"2"), 3), reqid=2),
              lambda r: answers.__setitem__(2, r))
    e.receive(call(1, wire.SHARD_NOOP, last=1, client=-1), lambda r: None)
    assert e.cursor == 0 and not answers  # 0 is missing: nothing after it runs
    e.receive(call(0, wire.SHARD_EXEC, txn(Create("/a", b"1"), 1), reqid=1),
              lambda r: answers.__setitem__(0, r))
    assert e.cursor == 3
    assert isinstance(result_of(answers[0].body), CreateResult)
    assert result_of(answers[2].body) != result_of(answers[0].body)
    assert e.machine.tree.get("/a").data == b"2"


def test_a_duplicate_never_runs_twice_and_is_answered_from_what_was_kept() -> None:
    e, _ = engine()
    create = call(0, wire.SHARD_EXEC, txn(Create("/a", b"1"), 1))
    first: list[wire.ShardReply] = []
    again: list[wire.ShardReply] = []
    e.receive(create, first.append)
    e.receive(create, again.append)
    assert e.cursor == 1 and e.executed_ops == 1
    assert again[0].body == first[0].body  # the same answer, not NodeExists


def test_a_number_owned_by_another_operation_is_refused() -> None:
    e, _ = engine()
    e.receive(call(3, wire.SHARD_EXEC, txn(Create("/a"), 4), reqid=1), lambda r: None)
    got: list[wire.ShardReply] = []
    e.receive(call(3, wire.SHARD_NOOP, client=-1), got.append)
    assert got[0].status == wire.SHARD_BAD and e.refused == 1
    e.receive(call(0, wire.SHARD_EXEC, txn(Create("/b"), 1), shard=1), got.append)
    assert got[1].status == wire.SHARD_BAD  # not this replica's shard
    e.receive(call(0, wire.SHARD_EXEC, body=b"\xc1garbage"), got.append)
    assert got[2].status == wire.SHARD_BAD and e.cursor == 0
    e.receive(call(0, wire.SHARD_EXEC, txn(Create("/b"), 1), origin=5), got.append)
    assert got[3].status == wire.SHARD_BAD  # only two proxies


def test_a_held_transaction_stops_the_shard_until_its_decision() -> None:
    nshards = 2
    # A create whose parent and node live on different shards.
    name = next(f"/p/c{i}" for i in range(64) if shard_of(f"/p/c{i}", 2) != shard_of("/p", 2))
    shard = shard_of("/p", nshards)
    e, _ = engine(shard, nshards)
    e.receive(call(0, wire.SHARD_EXEC, txn(Create("/p"), 1), shard=shard), lambda r: None)
    t = txn(Create(name, b"x"), 2)
    run = TxnRun(t, nshards)
    wanted = run.wanted()
    views: list[wire.ShardReply] = []
    e.receive(call(1, wire.SHARD_HOLD, t, shard=shard, view=enc.encode(wanted[shard])),
              views.append)
    later: list[wire.ShardReply] = []
    e.receive(call(2, wire.SHARD_EXEC, txn(GetData("/p"), 3), shard=shard, reqid=9),
              later.append)
    assert e.held is not None and e.cursor == 1 and not later
    run.feed(shard, msgspec.msgpack.decode(views[0].body, type=ViewReply))
    other = ShardMachine(1 - shard, nshards)
    run.feed(1 - shard, other.views(wanted[1 - shard]))
    outcome = run.outcome()
    e.receive(call(1, wire.SHARD_DECIDE, shard=shard, body=enc.encode(outcome)), lambda r: None)
    assert e.held is None and e.cursor == 3
    got = result_of(later[0].body)
    assert isinstance(got, DataResult) and got.stat.numChildren == 1


def test_a_watched_change_is_sent_to_the_proxy_holding_the_watch() -> None:
    e, events = engine()
    e.receive(call(0, wire.SHARD_EXEC, txn(Create("/w"), 1)), lambda r: None)
    e.receive(call(1, wire.SHARD_EXEC, txn(GetData("/w", watch=True), 2), origin=1),
              lambda r: None)
    answers: list[wire.ShardReply] = []
    e.receive(call(2, wire.SHARD_EXEC, txn(SetData("/w", b"1"), 3)), lambda r: None)
    e.receive(call(3, wire.SHARD_EXEC, txn(GetData("/w"), 4), origin=1), answers.append)
    assert [(o, n) for o, n, _ in events] == [(1, 2)]
    assert answers[0].event_floor == 2  # the answer waits for that event at the proxy
    e.receive(call(4, wire.SHARD_EXEC, txn(SetData("/w", b"2"), 5)), lambda r: None)
    assert len(events) == 1  # a one-shot watch: interest went with its event
