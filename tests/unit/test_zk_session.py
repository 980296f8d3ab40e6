"""The load generator's ZooKeeper session (nodes/zkclient/session.py) against a scripted
server on a real socket: replies matched in order, an out-of-order reply drops the
connection and the session re-attaches with its id and password, idle sessions ping."""

from __future__ import annotations

import asyncio
from typing import Any

from nodes.zk import wire
from nodes.zk.codes import XID_PING, Op
from nodes.zk.jute import Reader
from nodes.zkclient.session import Session

SESSION_ID = 0x1234
PASSWD = b"p" * 16


class ScriptedServer:
    """Accepts handshakes (granting SESSION_ID with `timeout_ms`) and keeps every request
    frame; `answer` replies to chosen xids of the latest connection."""

    def __init__(self, timeout_ms: int = 30_000) -> None:
        self.timeout_ms = timeout_ms
        self.connects: list[wire.ConnectRequest] = []
        self.requests: list[tuple[int, int]] = []  # (xid, opcode)
        self.writer: asyncio.StreamWriter | None = None
        self.got = asyncio.Condition()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = wire.FrameSplitter()
        fresh = True
        while data := await reader.read(65536):
            for frame in splitter.feed(data):
                async with self.got:
                    if fresh:
                        fresh = False
                        req = wire.decode_connect_request(frame)
                        self.connects.append(req)
                        self.writer = writer
                        writer.write(wire.accept_connect(req, self.timeout_ms, SESSION_ID,
                                                         PASSWD))
                    else:
                        r = Reader(frame)
                        self.requests.append((r.read_int(), r.read_int()))
                    self.got.notify_all()

    async def wait(self, what: Any, timeout: float = 5.0) -> None:
        async with self.got:
            await asyncio.wait_for(self.got.wait_for(what), timeout)

    def answer(self, xid: int) -> None:
        assert self.writer is not None
        self.writer.write(wire.reply_frame(xid, 7, 0))


def session(port: int, replies: list[Any], lost: list[Any], **kw: int) -> Session:
    return Session([("127.0.0.1", port)], 0, name="t",
                   session_timeout_ms=kw.get("session_timeout_ms", 30_000),
                   request_timeout_ms=kw.get("request_timeout_ms", 10_000),
                   on_reply=lambda token, header, body: replies.append((token, header.xid)),
                   on_lost=lost.extend)


def test_replies_in_order_then_an_out_of_order_one_reattaches_the_session() -> None:
    async def scenario() -> None:
        server = ScriptedServer()
        port = await server.start()
        replies: list[Any] = []
        lost: list[Any] = []
        s = session(port, replies, lost)
        s.start()
        assert await s.wait_connected(5)
        assert server.connects[0].session_id == 0
        for token in ("a", "b", "c"):
            s.submit(wire.GetDataRequest("/k", False), token)
        await server.wait(lambda: len(server.requests) == 3)
        assert [op for _, op in server.requests] == [Op.GET_DATA] * 3
        first, second, third = (xid for xid, _ in server.requests)
        server.answer(first)

        async def answered() -> None:
            while not replies:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(answered(), 5)
        assert replies == [("a", first)]
        server.answer(third)  # skips `second`: ZooKeeper never does that
        await server.wait(lambda: len(server.connects) == 2)
        assert lost == ["b", "c"]  # handed back in send order, for the owner to resend
        again = server.connects[1]
        assert (again.session_id, again.passwd) == (SESSION_ID, PASSWD)
        assert await s.wait_connected(5)
        assert s.reconnects == 1 and s.opened == 1
        await s.close(0.2)
        server.server.close()

    asyncio.run(scenario())


def test_an_idle_session_pings_at_a_third_of_its_timeout() -> None:
    async def scenario() -> None:
        server = ScriptedServer(timeout_ms=300)
        port = await server.start()
        s = session(port, [], [], session_timeout_ms=300)
        s.start()
        assert await s.wait_connected(5)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await server.wait(lambda: (XID_PING, Op.PING) in server.requests, timeout=2.0)
        assert loop.time() - t0 < 0.3  # before the server would have expired it
        await s.close(0.2)
        server.server.close()

    asyncio.run(scenario())
