"""One ZooKeeper session over asyncio, lean enough to drive a server at full speed.

The handshake sends a ConnectRequest (session 0 for a new session); requests then go out
pipelined, coalesced into one write per loop turn, each with the next xid. ZooKeeper
answers a connection's requests in the order they were sent, so a reply must carry the xid
at the head of the in-flight queue; anything else is a protocol error and the connection
is dropped. Pings (xid -2) go out when nothing was sent for a third of the negotiated
session timeout; notifications (xid -1) are counted and otherwise ignored.

Connection loss (the peer closes, a reply out of order, a request unanswered for
`request_timeout_ms`, nothing heard for two thirds of the session timeout): every request
in flight is handed back to the owner (`on_lost`, in send order), and the session
reconnects to the next server of the list with its session id and password, after a
backoff that doubles from 50 ms to 1 s. A server that refuses the session (timeout <= 0:
it expired) gets a fresh session. Requests submitted while disconnected wait for the
handshake. `close` sends closeSession and waits (bounded) for its answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from nodes.zk import wire
from nodes.zk.codes import XID_NOTIFICATION, XID_PING
from nodes.zk.jute import JuteError, Reader

log = logging.getLogger("mason.zkclient")

ReplyHandler = Callable[[Any, wire.ReplyHeader, Reader], None]
LostHandler = Callable[[list[Any]], None]

_PING_FRAME = wire.encode_request(XID_PING, wire.PingRequest())
_MAX_XID = 0x7FFFFFFF
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 1.0


class _Protocol(asyncio.Protocol):
    """Feeds one TCP connection's bytes to its session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.splitter = wire.FrameSplitter()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; both write alike.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.splitter.feed(data)
        except wire.FrameError as exc:
            self.session.drop(self, f"bad frame: {exc}")
            return
        for frame in frames:
            if not self.session.frame(self, frame):
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.drop(self, f"connection lost ({exc or 'closed by the server'})")


class _Closed:
    """The token of the closeSession request."""

    def __init__(self) -> None:
        self.answered = asyncio.Event()


class Session:
    def __init__(self, servers: list[tuple[str, int]], first: int, *, name: str,
                 session_timeout_ms: int, request_timeout_ms: int,
                 on_reply: ReplyHandler, on_lost: LostHandler) -> None:
        if not servers:
            raise ValueError("a session needs at least one server")
        self.servers = servers
        self.server = first % len(servers)
        self.name = name
        self.requested_timeout_ms = session_timeout_ms
        self.request_timeout_ns = request_timeout_ms * 1_000_000
        self.on_reply = on_reply
        self.on_lost = on_lost
        self.session_id = 0
        self.passwd = bytes(wire.PASSWD_LEN)
        self.timeout_ms = session_timeout_ms  # negotiated at each handshake
        self.last_zxid = 0
        self.next_xid = 1
        self.inflight: deque[tuple[int, Any, int]] = deque()  # (xid, token, sent ns)
        self.backlog: list[tuple[wire.Record, Any]] = []  # submitted while disconnected
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.proto: _Protocol | None = None
        self.connected = asyncio.Event()
        self.handshaking = False
        self.closing = False
        self.last_sent_ns = 0
        self.last_heard_ns = 0
        self.backoff_s = 0.0
        # Counters for the run's records.
        self.reconnects = 0
        self.opened = 0  # sessions the server created for us (re-attaches not counted)
        self.expired = 0
        self.notifications = 0
        self.loop = asyncio.get_running_loop()
        self.keeper: asyncio.Task[None] | None = None

    # ---- connecting --------------------------------------------------------------------

    def start(self) -> None:
        self.keeper = self.loop.create_task(self._keep_alive())
        self.loop.create_task(self._connect())

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.connected.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    async def _connect(self) -> None:
        while not self.closing:
            host, port = self.servers[self.server]
            try:
                _, proto = await asyncio.wait_for(
                    self.loop.create_connection(lambda: _Protocol(self), host, port),
                    max(1.0, self.request_timeout_ns / 1e9))
            except (OSError, asyncio.TimeoutError) as exc:
                log.debug("%s: cannot connect to %s:%d: %s", self.name, host, port, exc)
                await self._back_off()
                continue
            if self.closing:
                if proto.transport is not None:
                    proto.transport.close()
                return
            self.proto = proto
            self.handshaking = True
            self.last_heard_ns = self.last_sent_ns = time.monotonic_ns()
            request = wire.ConnectRequest(wire.PROTOCOL_VERSION, self.last_zxid,
                                          self.requested_timeout_ms, self.session_id,
                                          self.passwd, False)
            body = request.pack()
            assert proto.transport is not None
            proto.transport.write(len(body).to_bytes(4, "big") + body)
            return

    async def _back_off(self) -> None:
        self.server = (self.server + 1) % len(self.servers)
        self.backoff_s = min(_BACKOFF_MAX_S, max(_BACKOFF_FIRST_S, self.backoff_s * 2))
        await asyncio.sleep(self.backoff_s)

    def _handshake(self, frame: bytes) -> None:
        resp = wire.decode_connect_response(frame)
        if resp.timeout <= 0:
            # The server no longer knows the session: start a new one.
            log.warning("%s: session 0x%x expired; opening a new session", self.name,
                        self.session_id)
            self.expired += 1
            self.session_id = 0
            self.passwd = bytes(wire.PASSWD_LEN)
            self.drop(self.proto, "session expired")
            return
        if resp.session_id != self.session_id:
            self.opened += 1
            if self.session_id:
                log.warning("%s: session 0x%x re-attached as 0x%x", self.name,
                            self.session_id, resp.session_id)
        self.session_id, self.passwd = resp.session_id, resp.passwd
        self.timeout_ms = resp.timeout
        self.handshaking = False
        self.backoff_s = 0.0
        self.connected.set()
        backlog, self.backlog = self.backlog, []
        for body, token in backlog:
            self.submit(body, token)

    # ---- sending -----------------------------------------------------------------------

    def submit(self, body: wire.Record, token: Any) -> None:
        """Send one request; `on_reply(token, ...)` gets its answer, or `on_lost` the token
        back when the connection drops first."""
        if not self.connected.is_set():
            self.backlog.append((body, token))
            return
        xid = self.next_xid
        self.next_xid = xid + 1 if xid < _MAX_XID else 1
        now = time.monotonic_ns()
        self.inflight.append((xid, token, now))
        self.out.append(wire.encode_request(xid, body))
        self.last_sent_ns = now
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        proto = self.proto
        if self.out and proto is not None and proto.transport is not None:
            proto.transport.write(b"".join(self.out))
        self.out.clear()

    # ---- receiving ---------------------------------------------------------------------

    def frame(self, proto: _Protocol, frame: bytes) -> bool:
        """One frame from the server; False when it ended the connection."""
        if proto is not self.proto:
            return False
        self.last_heard_ns = time.monotonic_ns()
        try:
            if self.handshaking:
                self._handshake(frame)
                return self.proto is proto
            header, body = wire.decode_reply_header(frame)
        except JuteError as exc:
            self.drop(proto, f"malformed reply: {exc}")
            return False
        xid = header.xid
        if xid == XID_PING:
            return True
        if xid == XID_NOTIFICATION:
            self.notifications += 1
            return True
        if not self.inflight or self.inflight[0][0] != xid:
            head = self.inflight[0][0] if self.inflight else None
            self.drop(proto, f"reply xid {xid} out of order (expected {head})")
            return False
        _, token, _ = self.inflight.popleft()
        if header.zxid > self.last_zxid:
            self.last_zxid = header.zxid
        if isinstance(token, _Closed):
            token.answered.set()
            return False
        self.on_reply(token, header, body)
        return self.proto is proto

    def drop(self, proto: _Protocol | None, reason: str) -> None:
        """The connection is gone or unusable: hand back what was in flight, reconnect."""
        if proto is None or proto is not self.proto:
            return
        self.proto = None
        self.handshaking = False
        self.connected.clear()
        if proto.transport is not None:
            proto.transport.abort()
        lost = [token for _, token, _ in self.inflight]
        self.inflight.clear()
        self.out.clear()
        if self.closing:
            return
        self.reconnects += 1
        host, port = self.servers[self.server]
        log.warning("%s: %s:%d: %s; %d request(s) in flight, reconnecting", self.name,
                    host, port, reason, len(lost))
        if lost:
            self.on_lost(lost)
        self.loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        await self._back_off()
        await self._connect()

    async def _keep_alive(self) -> None:
        """Pings when idle; drops a connection whose head request or whose server has been
        silent too long."""
        while not self.closing:
            third_ns = max(self.timeout_ms, 30) * 1_000_000 // 3
            await asyncio.sleep(min(third_ns / 1e9, self.request_timeout_ns / 3e9))
            proto = self.proto
            if proto is None:
                continue
            now = time.monotonic_ns()
            if now - self.last_heard_ns > 2 * third_ns:
                self.drop(proto, f"nothing heard for {2 * third_ns // 1_000_000} ms")
            elif self.inflight and now - self.inflight[0][2] > self.request_timeout_ns:
                self.drop(proto, f"no answer for {self.request_timeout_ns // 1_000_000} ms")
            elif not self.handshaking and now - self.last_sent_ns >= third_ns:
                self.out.append(_PING_FRAME)
                self.last_sent_ns = now
                self._flush()

    # ---- closing -----------------------------------------------------------------------

    async def close(self, timeout_s: float = 2.0) -> bool:
        """closeSession, answered or not within timeout_s; True when it was answered.
        Requests still in flight are abandoned (the owner counts them unanswered)."""
        answered = False
        # From here a lost connection is not re-established: the server closes it itself
        # right after answering closeSession.
        self.closing = True
        if self.connected.is_set() and self.proto is not None:
            token = _Closed()
            self.submit(wire.CloseSessionRequest(), token)
            try:
                await asyncio.wait_for(token.answered.wait(), timeout_s)
                answered = True
            except asyncio.TimeoutError:
                pass
        if self.keeper is not None:
            self.keeper.cancel()
        proto, self.proto = self.proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
        self.connected.clear()
        return answered
