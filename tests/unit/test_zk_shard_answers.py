"""ZK-Mason's answers on the proxy replica: an event that overtakes the answer of the read
that left its watch still fires that watch, once (nodes/zkserver/shard_answers.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import msgspec

from nodes import wire
from nodes.services.zkmason import Answer, encode_answer
from nodes.zk.codes import EventType
from nodes.zk.machine import Applied, Change
from nodes.zk.requests import Exists, Txn
from nodes.zk.results import StatResult
from nodes.zk.stat import Stat
from nodes.zk.watches import Notification, WatchTable
from nodes.zkserver.shard_answers import ShardAnswers

SESSION = 5
CHANGED = EventType.NODE_DATA_CHANGED


class Listener(SimpleNamespace):
    """What ShardAnswers uses of a listener: the watch table and where notifications go."""

    def __init__(self) -> None:
        super().__init__(conf=SimpleNamespace(zk_shards=[[], []]), conns={},
                         watch_table=WatchTable(), delivered=[])

    def deliver(self, n: Notification) -> None:
        self.delivered.append(n)


def _event(shard: int, number: int, *changes: Change) -> wire.ShardEvents:
    return wire.ShardEvents(shard, number, msgspec.msgpack.encode(list(changes)))


def _read_answered(answers: ShardAnswers, reqid: int, floor: int) -> None:
    """An internal exists(watch) of SESSION on /a whose answer registers the data watch."""
    table = answers.listener.watch_table

    def register(applied: Applied) -> None:
        table.add_data(SESSION, "/a")

    answers.on_answer_call(1, reqid, register)
    answers.asked(1, reqid, Txn(SESSION, 0, Exists("/a", watch=True)))
    stat = Stat(1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1)
    answers.on_answer((1, reqid), encode_answer(Answer(StatResult(stat), 9, [(0, floor)])))


def test_an_event_that_overtook_the_answer_fires_the_watch_it_left_once() -> None:
    async def run() -> None:
        listener = Listener()
        answers = ShardAnswers(listener)  # type: ignore[arg-type]
        answers.on_events(_event(0, 7, Change(CHANGED, "/a")))
        assert listener.delivered == []  # no watch yet: the read's answer is on its way
        _read_answered(answers, 0, floor=3)  # the read ran before 7: 7 fires its watch
        assert listener.delivered == [Notification(SESSION, CHANGED, "/a")]
        assert listener.watch_table.count(SESSION) == 0
        # The same change again for another read before it: heard already, so the watch
        # (the same one, in ZooKeeper) is used up without a second notification.
        _read_answered(answers, 1, floor=3)
        assert listener.delivered == [Notification(SESSION, CHANGED, "/a")]
        assert listener.watch_table.count(SESSION) == 0
        # A read after the change (its floor covers 7): the watch waits for the next one.
        _read_answered(answers, 2, floor=7)
        assert listener.watch_table.data == {"/a": {SESSION}}
        assert len(listener.delivered) == 1
        answers.on_events(_event(1, 8, Change(CHANGED, "/b")))  # not its path
        answers.on_events(_event(0, 9, Change(CHANGED, "/a")))
        assert listener.delivered == [Notification(SESSION, CHANGED, "/a")] * 2

    asyncio.run(run())
