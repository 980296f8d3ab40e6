"""A replica's ZooKeeper client port: its connections, the sessions attached here, their
watches, and the keep-alive that carries client liveness into the log.

Every replica listens (ZooKeeper clients connect to any server of the ensemble and move to
another when theirs fails). A connection's transactions go through the group's log
(submitter.py); when this replica applies an entry, the listener fires the watches of the
sessions attached here, closes connections whose session the entry closed, and hands the
entry's result to the connection that asked, if it is here.

Sessions live in the replicated state; liveness gets there through the log: every half
tick this replica logs a Ping for each session it heard from, and the leader logs a Tick
carrying its clock, which expires every session silent for longer than its timeout, on
every replica at the same log position. Watches are per replica, as ZooKeeper's are per
server: a client that moves re-registers them with setWatches (ZK-Mason's replicas, which
hold no tree, decide them at the shards: rewatch.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from nodes.config import ProxyConfig
from nodes.proxy.entries import OpRecord
from nodes.services.rsmkeeper import RsmKeeperService, encode_txn
from nodes.services.zkmason import GROUP_LOCAL, ZkMasonService, encode_op
from nodes.zk import requests as rq
from nodes.zk.fourletter import ServerFacts
from nodes.zk.machine import Applied, ZkStateMachine
from nodes.zk.watches import Notification, WatchTable
from nodes.zkserver.connection import ZkConnection
from nodes.zkserver.shard_answers import ShardAnswers
from nodes.zkserver.submitter import Submitter

if TYPE_CHECKING:
    from nodes.proxy.replica import Replica

log = logging.getLogger("mason.zk")

_CLIENT_BITS = 24  # connections per process before ids wrap into the next nonce


class ZkListener:
    def __init__(self, replica: Replica, conf: ProxyConfig) -> None:
        service = replica.service
        if not isinstance(service, (RsmKeeperService, ZkMasonService)):
            raise ValueError(f"a ZooKeeper port needs the rsmkeeper or zkmason service, not "
                             f"{service.name}")
        self.replica = replica
        self.service = service
        self.conf = conf
        # ZK-Mason's replicas hold no tree: every read goes to the shards.
        self.local_reads = conf.zk_local_reads and not isinstance(service, ZkMasonService)
        self.max_frame = conf.zk_max_frame
        self.keepalive_s = conf.zk_tick_ms / 2000
        self.submitter = Submitter(replica)
        # Client ids: a random nonce per process, so no two processes (nor two lives of one
        # replica) ever share one, and a counter per connection.
        self.nonce = secrets.randbits(38)
        self.next_client = 1
        self.system_client = self.new_client_id()  # this replica's pings and ticks
        self.submitter.register(self.system_client)
        self.system_reqid = 0
        self.conns: dict[int, ZkConnection] = {}  # client id -> connection
        self.sessions: dict[int, ZkConnection] = {}  # session -> its connection here
        self.watch_table = WatchTable()
        self.heard_from: set[int] = set()
        self.quiet = False
        self.received = 0
        self.sent = 0
        self.server: asyncio.AbstractServer | None = None
        self.shards: ShardAnswers | None = None
        if isinstance(service, ZkMasonService):
            self.shards = ShardAnswers(self)
            service.listen(self.on_applied, self.on_restored, self.on_closed)
            replica.on_shard_events = self.shards.on_events
            self.submitter.answered = self.shards.on_answer
        else:
            service.listen(self.on_applied, self.on_restored)

    @property
    def machine(self) -> ZkStateMachine:
        return self.service.machine

    async def start(self) -> None:
        endpoint = self.conf.zk_listen
        assert endpoint is not None
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: ZkConnection(self), endpoint.host,
                                               endpoint.port)
        self.submitter.start()
        loop.create_task(self.keepalive())
        log.info("ZooKeeper clients on %s:%d (%s reads)", endpoint.host, endpoint.port,
                 "local" if self.local_reads else "linearizable")

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.conns.values()):
            conn.close()

    # ---- connections and sessions ---------------------------------------------------------

    def new_client_id(self) -> int:
        client_id = (self.nonce << _CLIENT_BITS) | (self.next_client & ((1 << _CLIENT_BITS) - 1))
        self.next_client += 1
        return client_id

    def opened(self, conn: ZkConnection) -> None:
        self.conns[conn.client_id] = conn
        self.submitter.register(conn.client_id)

    def closed(self, conn: ZkConnection) -> None:
        self.conns.pop(conn.client_id, None)
        self.submitter.forget(conn.client_id)
        if self.shards is not None:
            self.shards.forget(conn.client_id)
        if conn.session and self.sessions.get(conn.session) is conn:
            del self.sessions[conn.session]
            # As a ZooKeeper server does: watches die with the connection; a client that
            # reconnects sends them again (setWatches).
            self.watch_table.drop_session(conn.session)

    def attached(self, conn: ZkConnection) -> None:
        """The connection's session is created or re-attached here."""
        older = self.sessions.get(conn.session)
        self.sessions[conn.session] = conn
        if older is not None and older is not conn:
            older.close("its session moved to a newer connection")

    def heard(self, session: int) -> None:
        if session:
            self.heard_from.add(session)

    # ---- into the log ----------------------------------------------------------------------

    def submit(self, client_id: int, reqid: int, session: int, request: rq.Request) -> None:
        txn = rq.Txn(session, 0, request)
        if self.shards is not None:
            if not isinstance(request, GROUP_LOCAL):
                self.shards.asked(client_id, reqid, txn)  # answered by the shards
            payload = encode_op(txn, self.conf.zk_origin)
        else:
            payload = encode_txn(txn)
        self.submitter.submit(client_id, reqid, payload)

    def submit_own(self, session: int, request: rq.Request) -> int:
        reqid = self.system_reqid
        self.system_reqid += 1
        self.submit(self.system_client, reqid, session, request)
        return reqid

    def submit_internal(self, session: int, request: rq.Request,
                        answered: Callable[[Applied], None]) -> None:
        """ZK-Mason: an operation of `session` that this replica asks for itself; its answer
        goes to `answered`, not to a client."""
        assert self.shards is not None
        reqid = self.submit_own(session, request)
        self.shards.on_answer_call(self.system_client, reqid, answered)

    def quiesce(self) -> None:
        """A clean stop: no more pings and ticks from this replica."""
        self.quiet = True

    async def keepalive(self) -> None:
        while not self.quiet:
            await asyncio.sleep(self.keepalive_s)
            if self.quiet:
                return
            heard, self.heard_from = self.heard_from, set()
            for session in sorted(heard):
                if session in self.sessions:
                    self.submit_own(session, rq.Ping())
            if self.replica.serving():
                self.submit_own(0, rq.Tick())

    # ---- out of the log --------------------------------------------------------------------

    def on_applied(self, op: OpRecord, txn: rq.Txn, applied: Applied) -> None:
        """Every committed transaction, in log order, on this replica."""
        self.submitter.applied(op.client_id, op.reqid)
        conn = self.conns.get(op.client_id)
        if conn is not None:
            fired = self.watches_after(txn, applied)
        else:
            fired = self.watch_table.trigger(applied.changes)
            for session in applied.closed_sessions:
                self.watch_table.drop_session(session)
        for n in fired:
            self.deliver(n)
        for session in applied.closed_sessions:
            holder = self.sessions.get(session)
            if holder is not None and holder is not conn:
                holder.close(f"session 0x{session:x} closed")
        if conn is not None:
            conn.applied(op.reqid, applied)

    def on_closed(self, sessions: list[int]) -> None:
        """ZK-Mason: the entry closed these sessions (expired or closed by their client)."""
        for session in sessions:
            self.watch_table.drop_session(session)
            holder = self.sessions.get(session)
            if holder is not None and not holder.closing_session:
                holder.close(f"session 0x{session:x} closed")

    def zxid(self) -> int:
        """The zxid for reply headers: the latest this replica knows."""
        if self.shards is not None:
            return self.shards.last_zxid
        return self.machine.last_zxid

    def watches_after(self, txn: rq.Txn, applied: Applied) -> list[Notification]:
        return self.watch_table.after_apply(txn, applied)

    def deliver(self, n: Notification) -> None:
        conn = self.sessions.get(n.session)
        if conn is not None:
            conn.notify(n)

    def on_restored(self) -> None:
        """A snapshot replaced the state: sessions it no longer has lose their connection."""
        for session, conn in list(self.sessions.items()):
            if session not in self.machine.sessions:
                conn.close(f"session 0x{session:x} is not in the installed snapshot")

    # ---- four-letter words -----------------------------------------------------------------

    def facts(self) -> ServerFacts:
        machine = self.machine
        role = self.replica.role_name()
        endpoint = self.conf.zk_listen
        return ServerFacts(
            mode="leader" if role == "leader" else "follower",
            node_count=len(machine.tree),
            zxid=machine.last_zxid,
            connections=len(self.conns),
            outstanding=len(self.submitter.pending),
            received=self.received,
            sent=self.sent,
            watch_count=sum(self.watch_table.count(s) for s in self.sessions),
            ephemerals_count=sum(len(machine.tree.ephemerals_of(s))
                                 for s in machine.sessions.sessions),
            client_port=endpoint.port if endpoint else 0,
            tick_time_ms=machine.sessions.tick_ms,
            min_session_timeout_ms=2 * machine.sessions.tick_ms,
            max_session_timeout_ms=20 * machine.sessions.tick_ms,
            server_id=self.conf.replica,
            host=endpoint.host if endpoint else "",
            clients=tuple(f"/{c.peer}[1]" for c in self.conns.values()),
        )
