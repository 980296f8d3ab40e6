"""ZK-Mason's answers and watch events on the proxy replica that holds the sessions.

An operation's answer comes back in the leader's reply (the shards' result); the shards'
watch events come straight from the shard replicas. ZooKeeper promises that a client sees
a watch event before any answer that reflects the change, so an answer is held until this
replica has every event its shards had sent here before answering (the answer's floors).
Every replica of a shard sends the same events (they execute the same numbers with the
same interest), each until this replica acknowledged it, and after a reconnection the
unacknowledged ones first (nodes/zkshard/outbox.py): so each shard replica's events arrive
here in order without a gap, and an event numbered no higher than the highest taken from
its shard was taken already. Only a shard whose every replica is gone can keep an event
from coming, so the wait is bounded (EVENT_WAIT_S).

The other way round, an event can overtake the answer of the read that left its watch (the
shard sends events here directly, answers go through the leader): a change right after the
read, at a number above the answer's floor, arrives while the watch is not in the table yet.
So the recent events of every shard are kept, with who heard each change, and an answer
that leaves a watch replays the events above its floor against that watch alone: the
change fires it now, or uses it up silently when the session already heard that change
(its watch on the path was then the same watch, as in ZooKeeper).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from nodes import wire
from nodes.services.zkmason import Answer, decode_answer
from nodes.zk.codes import Err
from nodes.zk.machine import Applied, Change
from nodes.zk.requests import Txn
from nodes.zk.results import ErrorResult
from nodes.zk.watches import watched_path

if TYPE_CHECKING:
    from nodes.zkserver.listener import ZkListener

log = logging.getLogger("mason.zk")

EVENT_WAIT_S = 1.0
RECENT_EVENTS = 1024  # per shard: events kept for answers they overtook
_changes_decoder = msgspec.msgpack.Decoder(list[Change])


class Held:
    __slots__ = ("key", "answer", "txn", "timer")

    def __init__(self, key: tuple[int, int], answer: Answer, txn: Txn | None) -> None:
        self.key = key
        self.answer = answer
        self.txn = txn
        self.timer: asyncio.TimerHandle | None = None


class ShardAnswers:
    def __init__(self, listener: ZkListener) -> None:
        self.listener = listener
        self.nshards = len(listener.conf.zk_shards)
        self.loop = asyncio.get_running_loop()
        self.txns: dict[tuple[int, int], Txn] = {}  # what this replica's clients asked
        # This replica's own operations (setWatches' reads): whom their answer goes to.
        self.calls: dict[tuple[int, int], Callable[[Applied], None]] = {}
        self.seen: dict[int, int] = {}  # shard -> highest event number taken
        # shard -> its recent events: (number, [(change, the sessions that heard it)])
        self.recent: dict[int, deque[tuple[int, list[tuple[Change, set[int]]]]]] = {}
        self.held: list[Held] = []
        self.last_zxid = 0
        self.events = 0
        self.bad = 0

    def asked(self, client_id: int, reqid: int, txn: Txn) -> None:
        self.txns[(client_id, reqid)] = txn

    def on_answer_call(self, client_id: int, reqid: int,
                       answered: Callable[[Applied], None]) -> None:
        self.calls[(client_id, reqid)] = answered

    def forget(self, client_id: int) -> None:
        for key in [k for k in self.txns if k[0] == client_id]:
            del self.txns[key]

    def on_answer(self, key: tuple[int, int], payload: bytes) -> None:
        txn = self.txns.pop(key, None)
        try:
            answer = decode_answer(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.bad += 1
            log.error("an answer for %s that does not decode: %s", key, exc)
            answered = self.calls.pop(key, None)
            if answered is not None:  # whoever waits on it must not wait for ever
                answered(Applied(ErrorResult(Err.SYSTEM_ERROR), [], [], self.last_zxid))
            return
        self.last_zxid = max(self.last_zxid, answer.zxid)
        held = Held(key, answer, txn)
        if self.ready(answer):
            self.deliver(held)
            return
        held.timer = self.loop.call_later(EVENT_WAIT_S, self.give_up, held)
        self.held.append(held)

    def ready(self, answer: Answer) -> bool:
        seen = self.seen
        return all(seen.get(shard, -1) >= floor for shard, floor in answer.floors)

    def give_up(self, held: Held) -> None:
        if held in self.held:
            log.warning("answer %s released without its watch events", held.key)
            self.held.remove(held)
            self.deliver(held)

    def deliver(self, held: Held) -> None:
        if held.timer is not None:
            held.timer.cancel()
        listener = self.listener
        answer = held.answer
        applied = Applied(answer.result, [], [], answer.zxid)
        answered = self.calls.pop(held.key, None)
        if answered is not None:
            answered(applied)
            self.catch_up(held)
            return
        client_id, reqid = held.key
        conn = listener.conns.get(client_id)
        if conn is None:
            return
        if held.txn is not None:
            for n in listener.watches_after(held.txn, applied):
                listener.deliver(n)
            self.catch_up(held)
        conn.applied(reqid, applied)

    def catch_up(self, held: Held) -> None:
        """The events that overtook this answer, for the watch it left (if any)."""
        txn = held.txn
        path = watched_path(txn.request) if txn is not None else None
        if txn is None or path is None:
            return
        only = (txn.session, path)
        listener = self.listener
        for shard, floor in held.answer.floors:
            for number, changes in self.recent.get(shard, ()):
                if number <= floor:
                    continue
                for change, heard in changes:
                    for n in listener.watch_table.trigger([change], only):
                        if n.session not in heard:
                            heard.add(n.session)
                            listener.deliver(n)

    def on_events(self, msg: wire.ShardEvents) -> None:
        if msg.shard >= self.nshards:
            self.bad += 1
            log.error("watch events from shard %d of %d", msg.shard, self.nshards)
            return
        if msg.number <= self.seen.get(msg.shard, -1):
            return  # another replica of the shard sent it first, or this one sent it again
        try:
            changes = _changes_decoder.decode(msg.changes)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.bad += 1
            log.error("watch events from shard %d that do not decode: %s", msg.shard, exc)
            return
        self.seen[msg.shard] = msg.number
        self.events += 1
        listener = self.listener
        kept: list[tuple[Change, set[int]]] = []
        for change in changes:
            fired = listener.watch_table.trigger([change])
            kept.append((change, {n.session for n in fired}))
            for n in fired:
                listener.deliver(n)
        recent = self.recent.setdefault(msg.shard, deque(maxlen=RECENT_EVENTS))
        recent.append((msg.number, kept))
        if self.held:
            waiting, self.held = self.held, []
            for held in waiting:
                if self.ready(held.answer):
                    self.deliver(held)
                else:
                    self.held.append(held)
