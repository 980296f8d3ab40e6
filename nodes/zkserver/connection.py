"""One ZooKeeper client connection to a replica: framing, the handshake, and replies in
request order.

Replies leave in the order the requests came (ZooKeeper clients take a reordered xid for a
lost connection): every request takes a slot at the back of the connection's queue, and
slots leave from the front only. A transaction's slot fills when this replica applies it
from the log; a request this replica serves itself (ping, setWatches, a local read, an
error found before the log) is computed when its slot reaches the front, so it sees every
earlier request of the same connection applied. A slot may also hold a place that sends
nothing (ZK-Mason's setWatches: later replies wait there until every watch is decided).
Watch notifications do not queue: they go out as soon as the entry that fires them is
applied, before the replies that entry fills.

A connection that breaks the framing (a length over the limit or below zero, a request
without a header, a bad handshake) is closed alone; a request whose body does not parse is
answered with MarshallingError.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from nodes.zk import fourletter, mapping, wire
from nodes.zk import requests as rq
from nodes.zk.codes import XID_SET_WATCHES, Err, WatcherType
from nodes.zk.jute import JuteError
from nodes.zk.machine import Applied
from nodes.zk.results import ErrorResult, SessionResult, ZkError
from nodes.zk.watches import Notification
from nodes.zkserver.rewatch import rewatch_at_shards

if TYPE_CHECKING:
    from nodes.zkserver.listener import ZkListener

log = logging.getLogger("mason.zk")


class Slot:
    """One reply's place in the connection's order."""

    __slots__ = ("frame", "compute", "close_after")

    def __init__(self, frame: bytes | None = None,
                 compute: Callable[[], bytes | None] | None = None) -> None:
        self.frame = frame
        self.compute = compute  # run when the slot reaches the front
        self.close_after = False


class LogSlot(Slot):
    """A transaction's reply, filled when it is applied here."""

    __slots__ = ("xid", "body")

    def __init__(self, xid: int, body: wire.Record) -> None:
        super().__init__()
        self.xid = xid
        self.body = body


class ZkConnection(asyncio.Protocol):
    def __init__(self, listener: ZkListener) -> None:
        self.listener = listener
        self.client_id = listener.new_client_id()
        self.splitter = wire.FrameSplitter(listener.max_frame)
        self.transport: asyncio.WriteTransport | None = None
        self.peer = ""
        self.session = 0
        self.connect: wire.ConnectRequest | None = None
        self.handshaking = False
        self.handshake: LogSlot | None = None
        self.early: list[bytes] = []  # frames that arrived before the handshake finished
        self.queue: deque[Slot] = deque()
        self.waiting: dict[int, Slot] = {}  # reqid -> the slot its applied entry fills
        self.next_reqid = 0
        self.closed = False
        self.closing_session = False  # its client asked to close the session

    # ---- the socket ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # replies are small and latency-bound
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.listener.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.closed(self)

    def close(self, why: str = "") -> None:
        if why:
            log.info("closing ZooKeeper connection %s: %s", self.peer, why)
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def write(self, frame: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(frame)
            self.listener.sent += 1

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            frames = self.splitter.feed(data)
        except wire.FrameError as exc:
            self.close(str(exc))
            return
        if self.splitter.command is not None:
            self.write_raw(fourletter.answer(self.splitter.command, self.listener.facts()))
            self.close()
            return
        for frame in frames:
            if self.closed:
                return
            self.listener.received += 1
            if self.connect is None:
                self.on_connect(frame)
            elif self.handshaking:
                self.early.append(frame)
            else:
                self.on_frame(frame)

    def write_raw(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    # ---- the handshake -------------------------------------------------------------------

    def on_connect(self, frame: bytes) -> None:
        try:
            self.connect = req = wire.decode_connect_request(frame)
        except JuteError as exc:
            self.close(f"bad handshake: {exc}")
            return
        self.handshaking = True
        slot = self.handshake = LogSlot(0, wire.PingRequest())
        self.queue.append(slot)
        if req.session_id == 0:
            self.submit(slot, 0, rq.CreateSession(_int32(req.timeout)))
        else:
            # Through the log: this replica then knows the session as the leader did, and
            # the session is touched before it could expire.
            self.submit(slot, req.session_id, rq.Ping())

    def handshake_applied(self, slot: LogSlot, applied: Applied) -> None:
        req = self.connect
        assert req is not None
        machine = self.listener.machine
        result = applied.result
        if isinstance(result, SessionResult):
            sid, timeout, passwd = result.session, result.timeout_ms, result.password
        else:
            sid, passwd = req.session_id, req.passwd
            session = machine.sessions.get(sid)
            if (isinstance(result, ErrorResult) or session is None
                    or not machine.sessions.verify(sid, passwd)):
                slot.frame = wire.refuse_connect(req)
                slot.close_after = True
                self.handshaking = False
                return
            timeout = session.timeout_ms
        slot.frame = wire.accept_connect(req, timeout, sid, passwd)
        self.session = sid
        self.listener.attached(self)
        self.handshaking = False
        early, self.early = self.early, []
        for frame in early:
            self.on_frame(frame)

    # ---- requests ------------------------------------------------------------------------

    def submit(self, slot: Slot, session: int, request: rq.Request) -> None:
        reqid = self.next_reqid
        self.next_reqid += 1
        self.waiting[reqid] = slot
        self.listener.submit(self.client_id, reqid, session, request)

    def local(self, compute: Callable[[], bytes | None]) -> None:
        self.queue.append(Slot(compute=compute))
        self.flush()

    def on_frame(self, frame: bytes) -> None:
        try:
            req = wire.decode_request(frame)
        except wire.BodyError as exc:
            xid = exc.xid
            self.local(lambda: wire.error_reply(xid, self.zxid(), Err.MARSHALLING_ERROR))
            return
        except JuteError as exc:
            self.close(str(exc))
            return
        self.listener.heard(self.session)
        body, xid = req.body, req.xid
        if isinstance(body, wire.PingRequest):
            self.local(lambda: wire.ping_reply(self.zxid()))
        elif isinstance(body, wire.AuthRequest):
            self.local(lambda: wire.reply_frame(xid, self.zxid()))
        elif isinstance(body, wire.SetWatchesRequest):
            if self.listener.shards is not None:
                self.set_watches_at_shards(body)
            else:
                self.local(lambda: self.set_watches(body))
        elif isinstance(body, wire.CheckWatchesRequest):
            self.local(lambda: self.remove_watches(xid, body))
        elif isinstance(body, wire.WhoAmIRequest):
            host = self.peer.rsplit(":", 1)[0]
            self.local(lambda: wire.reply_frame(xid, self.zxid(), 0,
                                                wire.who_am_i_body([("ip", host)])))
        elif isinstance(body, wire.Unimplemented):
            self.local(lambda: wire.error_reply(xid, self.zxid(), Err.UNIMPLEMENTED))
        else:
            self.on_tree_request(xid, body)

    def on_tree_request(self, xid: int, body: wire.Record) -> None:
        try:
            request = mapping.to_request(body)
        except ZkError as exc:
            err = exc.err
            self.local(lambda: wire.error_reply(xid, self.zxid(), err))
            return
        if self.listener.local_reads and isinstance(request, mapping.LOCAL_READS):
            self.local(lambda: self.read_here(xid, body, request))
            return
        slot = LogSlot(xid, body)
        self.queue.append(slot)
        if isinstance(request, rq.CloseSession):
            slot.close_after = True
            self.closing_session = True
        self.submit(slot, self.session, request)

    def read_here(self, xid: int, body: wire.Record, request: rq.Request) -> bytes:
        applied = self.listener.machine.read(self.session, request)
        self.listener.watches_after(rq.Txn(self.session, 0, request), applied)
        return mapping.reply(xid, applied.zxid, body, applied.result)

    def set_watches(self, body: wire.SetWatchesRequest) -> bytes:
        machine = self.listener.machine
        fired = self.listener.watch_table.set_watches(self.session, mapping.set_watches(body),
                                                     machine.stat)
        for n in fired:
            self.notify(n)
        return wire.reply_frame(XID_SET_WATCHES, self.zxid())

    def set_watches_at_shards(self, body: wire.SetWatchesRequest) -> None:
        """ZK-Mason: each watch is decided at its path's shard (rewatch.py). The reply goes
        out at once, as ZooKeeper's does; the replies after it wait until every watch is
        decided, so the client sees a notification fired on reconnect before any later
        reply (ZooKeeper sends those notifications before it reads the next request)."""
        decided = Slot()

        def start() -> bytes:
            rewatch_at_shards(self.listener, self, mapping.set_watches(body),
                              lambda: self.fill(decided))
            return wire.reply_frame(XID_SET_WATCHES, self.zxid())

        # Started when it reaches the front: every earlier request of this connection has
        # been answered, so the reads come after them, as ZooKeeper checks after them.
        self.queue.append(Slot(compute=start))
        self.queue.append(decided)
        self.flush()

    def fill(self, slot: Slot, frame: bytes = b"") -> None:
        """A slot's reply is known (b"": a place in the order that sends nothing)."""
        slot.frame = frame
        self.flush()

    def remove_watches(self, xid: int, body: wire.CheckWatchesRequest) -> bytes:
        try:
            kind = WatcherType(body.watcher_type)
        except ValueError:
            return wire.error_reply(xid, self.zxid(), Err.BAD_ARGUMENTS)
        only_check = not isinstance(body, wire.RemoveWatchesRequest)
        found = self.listener.watch_table.remove(self.session, body.path, kind,
                                                 only_check=only_check)
        return wire.reply_frame(xid, self.zxid(), 0 if found else Err.NO_WATCHER)

    def zxid(self) -> int:
        return self.listener.zxid()

    # ---- answers -------------------------------------------------------------------------

    def applied(self, reqid: int, applied: Applied) -> None:
        """Our transaction `reqid` is applied here: fill its slot."""
        slot = self.waiting.pop(reqid, None)
        if not isinstance(slot, LogSlot):
            return
        if slot is self.handshake:
            self.handshake = None
            self.handshake_applied(slot, applied)
        else:
            slot.frame = mapping.reply(slot.xid, applied.zxid, slot.body, applied.result)
        self.flush()

    def notify(self, n: Notification) -> None:
        self.write(wire.notification_frame(n.type, n.path))

    def flush(self) -> None:
        queue = self.queue
        while queue and not self.closed:
            head = queue[0]
            if head.frame is None:
                compute, head.compute = head.compute, None
                if compute is None:
                    return
                head.frame = compute()  # may flush again: this slot then holds that one
            queue.popleft()
            if head.frame:
                self.write(head.frame)
            if head.close_after:
                self.close()


def _int32(n: int) -> int:
    return max(-(2**31), min(2**31 - 1, n))
