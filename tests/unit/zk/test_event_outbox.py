"""Watch events from a shard replica to a proxy replica (nodes/zkshard/outbox.py), over real
sockets: none is lost to a connection that is down, each is sent until acknowledged, and a
proxy replica gets each shard replica's events in order without a gap.

The bug: events were cast, and a cast on a connection that is not up is dropped. Right after
start the shard replicas are still backing off towards proxy replicas that listen later, so
the events of the first operations went nowhere and their watches never fired.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from nodes import rpc, runtime, wire
from nodes.config import Endpoint, ZkShardConfig
from nodes.zk.codes import EventType
from nodes.zk.machine import Change
from nodes.zk.requests import Create, GetData, Request, SetData, Txn
from nodes.zkshard import server
from nodes.zkshard.outbox import EventOutbox
from tests.conftest import free_port

DEADLINE_S = 10.0
enc = msgspec.msgpack.Encoder()
changes_of = msgspec.msgpack.Decoder(list[Change]).decode


class Proxy:
    """A proxy replica's side of the event connections: takes events, acknowledges them
    (or, with ack=False, never does)."""

    def __init__(self, ack: bool = True) -> None:
        self.ack = ack
        self.got: list[int] = []
        self.events: list[wire.ShardEvents] = []
        self.arrived = asyncio.Event()
        self.conns: list[rpc.Conn] = []

    def handle(self, conn: rpc.Conn, rid: int, msg: object) -> None:
        if conn not in self.conns:
            self.conns.append(conn)
        if isinstance(msg, wire.ShardEvents):
            self.got.append(msg.number)
            self.events.append(msg)
            self.arrived.set()
            if self.ack and rid:
                conn.reply(rid, wire.Ack())

    async def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        while not done():
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"timed out waiting for {what}; got {self.got}"
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass


def event(number: int) -> wire.ShardEvents:
    return wire.ShardEvents(0, number, enc.encode([Change(EventType.NODE_DATA_CHANGED,
                                                          f"/n{number}")]))


def test_events_sent_while_nothing_listens_arrive_in_order_once_it_does() -> None:
    async def scenario() -> None:
        port = free_port()
        outbox = EventOutbox(Endpoint("127.0.0.1", port), "shard->proxy").start()
        proxy = Proxy()
        listening = None
        try:
            for n in (3, 5, 8):
                outbox.send(event(n))  # nothing listens: the connection is down
            listening = await rpc.serve("127.0.0.1", port, proxy.handle)
            await proxy.until(lambda: len(proxy.got) >= 3, "the events sent while down")
            outbox.send(event(9))
            await proxy.until(lambda: 9 in proxy.got, "an event sent once up")
            await proxy.until(lambda: not outbox.pending, "every acknowledgement")
            assert proxy.got == [3, 5, 8, 9]
        finally:
            outbox.stop()
            if listening is not None:
                listening.close()

    asyncio.run(scenario())


def test_what_was_not_acknowledged_goes_again_first_on_the_next_connection() -> None:
    async def scenario() -> None:
        port = free_port()
        silent = Proxy(ack=False)
        listening = await rpc.serve("127.0.0.1", port, silent.handle)
        outbox = EventOutbox(Endpoint("127.0.0.1", port), "shard->proxy").start()
        try:
            await outbox.peer.wait_up(DEADLINE_S)
            outbox.send(event(1))
            outbox.send(event(2))
            await silent.until(lambda: silent.got == [1, 2], "the first sending")
            assert list(outbox.pending) == [1, 2]  # not acknowledged: kept
            # The connection breaks (the proxy's end closes it); events sent meanwhile wait.
            listening.close()
            for conn in silent.conns:
                conn.close()
            outbox.send(event(4))
            acking = Proxy()
            listening = await rpc.serve("127.0.0.1", port, acking.handle)
            await acking.until(lambda: len(acking.got) >= 3, "the events sent again")
            assert acking.got[:3] == [1, 2, 4]  # in order, the older ones first
            await acking.until(lambda: not outbox.pending, "every acknowledgement")
            # Acknowledged ones are never sent again: a new connection sends nothing.
            for conn in acking.conns:
                conn.close()
            assert await outbox.peer.wait_up(DEADLINE_S)
            outbox.send(event(6))
            await acking.until(lambda: 6 in acking.got, "the next event")
            assert acking.got == [1, 2, 4, 6]
        finally:
            outbox.stop()
            listening.close()

    asyncio.run(scenario())


def test_a_proxy_replica_gone_for_good_keeps_only_the_newest_events() -> None:
    async def scenario() -> None:
        outbox = EventOutbox(Endpoint("127.0.0.1", free_port()), "shard->gone", limit=2)
        for n in range(5):
            outbox.send(event(n))
        assert list(outbox.pending) == [3, 4] and outbox.dropped == 3

    asyncio.run(scenario())


def test_a_shard_replica_delivers_a_watch_event_fired_before_the_proxy_listened(tmp_path) -> None:
    """The whole shard replica process's code (server.run) in this process: a watching read
    and a change executed while its proxy replica does not listen yet; the event reaches that
    replica once it does."""

    async def scenario() -> None:
        shard_port, proxy_port = free_port(), free_port()
        conf = ZkShardConfig(name="server-0", outdir=str(tmp_path), nspaces=1,
                             listen=Endpoint("127.0.0.1", shard_port), shard=0, replica=0,
                             proxies=[Endpoint("127.0.0.1", proxy_port)], record_exec=False)
        stop = runtime.Stop()
        shard = asyncio.get_running_loop().create_task(server.run(conf, stop))
        leader = rpc.Peer("127.0.0.1", shard_port, lambda c, r, m: None, name="leader").start()
        proxy = Proxy()
        listening = None
        try:
            assert await leader.wait_up(DEADLINE_S)
            ops: list[Request] = [Create("/w", b"0"), GetData("/w", watch=True),
                                  SetData("/w", b"1")]
            for number, request in enumerate(ops):
                reply = await leader.call(wire.ShardCall(
                    0, number, number, wire.SHARD_EXEC, 7, number, 0,
                    enc.encode(Txn(1, 1000, request, number + 1))), DEADLINE_S)
                assert isinstance(reply, wire.ShardReply) and reply.status == wire.SHARD_OK
            assert reply.event_floor == 2  # the change's event was sent (into the void)
            listening = await rpc.serve("127.0.0.1", proxy_port, proxy.handle)
            await proxy.until(lambda: 2 in proxy.got, "the watch event of number 2")
            (sent,) = proxy.events
            assert changes_of(sent.changes) == [Change(EventType.NODE_DATA_CHANGED, "/w")]
        finally:
            stop.event.set()
            await asyncio.wait_for(shard, DEADLINE_S)
            leader.stop()
            if listening is not None:
                listening.close()

    asyncio.run(scenario())
