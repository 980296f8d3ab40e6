"""asyncio transport: listeners, reconnecting peers, pipelined calls, deferred replies.

One `Conn` is one TCP connection, symmetric: either side may call, cast or reply.
Outgoing envelopes are queued and written as one frame at the end of the event-loop turn,
so a burst of small messages costs one syscall. Calls carry a per-connection request id;
the handler of a call may answer at once or much later (a proxy answers a client only
after Raft commit) through `Conn.reply`. A frame that cannot be decoded closes its
connection with a logged reason; the process keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from nodes import wire

log = logging.getLogger("mason.rpc")

# handler(conn, request_id, message): request_id is 0 for casts.
Handler = Callable[["Conn", int, Any], None]
ReplyCallback = Callable[[Any], None]


class ConnectionLost(ConnectionError):
    """The connection closed before the reply arrived."""


class CallTimeout(TimeoutError):
    """No reply within the call's deadline."""


class Conn(asyncio.Protocol):
    def __init__(
        self,
        handler: Handler,
        name: str = "",
        on_close: Callable[[Conn], None] | None = None,
    ) -> None:
        self.handler = handler
        self.name = name
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._reader = wire.FrameReader()
        self._out: list[wire.Envelope] = []
        self._flush_scheduled = False
        self._next_rid = 1
        self._pending: dict[int, ReplyCallback] = {}
        self._loop = asyncio.get_event_loop()
        self.peername = ""

    # ---- asyncio.Protocol ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peername = f"{peer[0]}:{peer[1]}" if peer else "?"

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._reader.feed(data)
        except wire.FrameError as exc:
            self.abort(f"corrupt frame from {self.peername}: {exc}")
            return
        handler = self.handler
        pending = self._pending
        for frame in frames:
            for kind, rid, msg in frame:
                if kind == wire.REPLY:
                    callback = pending.pop(rid, None)
                    if callback is not None:
                        callback(msg)
                elif kind == wire.CALL or kind == wire.CAST:
                    handler(self, rid, msg)
                else:
                    self.abort(f"unknown envelope kind {kind} from {self.peername}")
                    return
                if self.closed:
                    return

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        pending, self._pending = self._pending, {}
        lost = ConnectionLost(f"connection to {self.name or self.peername} lost")
        for callback in pending.values():
            callback(lost)
        if self.on_close is not None:
            self.on_close(self)

    # ---- sending --------------------------------------------------------------------
    def _queue(self, envelope: wire.Envelope) -> bool:
        if self.closed:
            return False
        self._out.append(envelope)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or not self._out or self.transport is None:
            self._out.clear()
            return
        out, self._out = self._out, []
        self.transport.write(wire.encode_frame(out))

    def cast(self, msg: Any) -> bool:
        return self._queue((wire.CAST, 0, msg))

    def reply(self, rid: int, msg: Any) -> bool:
        # `_queue` inlined: a server's every answer comes through here.
        if self.closed:
            return False
        self._out.append((wire.REPLY, rid, msg))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return True

    def call_cb(self, msg: Any, callback: ReplyCallback) -> int:
        """Send a call; callback gets the reply message or a ConnectionLost. Returns the id."""
        if self.closed:
            callback(ConnectionLost(f"connection to {self.name or self.peername} is closed"))
            return 0
        rid = self._next_rid
        self._next_rid = rid + 1
        self._pending[rid] = callback
        self._queue((wire.CALL, rid, msg))
        return rid

    def forget(self, rid: int) -> None:
        """Stop waiting for a reply (the caller retransmitted elsewhere)."""
        self._pending.pop(rid, None)

    def call(self, msg: Any, timeout: float | None = None) -> asyncio.Future[Any]:
        """Send a call and return a future for its reply, failing after `timeout` s."""
        fut: asyncio.Future[Any] = self._loop.create_future()
        timer: asyncio.TimerHandle | None = None

        def done(result: Any) -> None:
            if timer is not None:
                timer.cancel()
            if fut.done():
                return
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

        rid = self.call_cb(msg, done)
        if timeout is not None and not fut.done():

            def expire() -> None:
                self.forget(rid)
                if not fut.done():
                    fut.set_exception(CallTimeout(f"no reply within {timeout} s"))

            timer = self._loop.call_later(timeout, expire)
        return fut

    def abort(self, reason: str) -> None:
        if self.closed:
            return
        log.warning("closing connection %s: %s", self.name or self.peername, reason)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self._flush()
            self.transport.close()


async def serve(host: str, port: int, handler: Handler, name: str = "") -> asyncio.Server:
    """Listen for connections; every accepted connection uses `handler`."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: Conn(handler, name=name), host, port, backlog=1024)


class Peer:
    """An outbound connection that reconnects with backoff while the peer is down."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Handler,
        name: str = "",
        min_backoff: float = 0.02,
        max_backoff: float = 0.5,
        on_connect: Callable[[Conn], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.handler = handler
        self.name = name or f"{host}:{port}"
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.on_connect = on_connect
        self.conn: Conn | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> Peer:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        return self

    @property
    def up(self) -> bool:
        return self.conn is not None and not self.conn.closed

    async def wait_up(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.min_backoff
        while not self._stopped:
            lost = loop.create_future()

            def closed(_: Conn, lost: asyncio.Future[None] = lost) -> None:
                if not lost.done():
                    lost.set_result(None)

            try:
                _, conn = await loop.create_connection(
                    lambda: Conn(self.handler, name=self.name, on_close=closed),
                    self.host,
                    self.port,
                )
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = self.min_backoff
            self.conn = conn
            self._connected.set()
            if self.on_connect is not None:
                self.on_connect(conn)
            await lost
            self._connected.clear()
            self.conn = None

    def cast(self, msg: Any) -> bool:
        conn = self.conn
        return conn is not None and conn.cast(msg)

    def call_cb(self, msg: Any, callback: ReplyCallback) -> int:
        conn = self.conn
        if conn is None or conn.closed:
            callback(ConnectionLost(f"{self.name} is not connected"))
            return 0
        return conn.call_cb(msg, callback)

    def call(self, msg: Any, timeout: float | None = None) -> asyncio.Future[Any]:
        conn = self.conn
        if conn is None or conn.closed:
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            fut.set_exception(ConnectionLost(f"{self.name} is not connected"))
            return fut
        return conn.call(msg, timeout)

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
        if self.conn is not None:
            self.conn.close()


def install_uvloop() -> str:
    """Use uvloop when it is installed; returns the loop's name for the log."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
