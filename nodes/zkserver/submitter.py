"""Getting transactions into the group's log from any replica.

ZooKeeper clients never follow redirects, so the replica holding a connection carries its
transactions to the leader itself: a local call when it leads, an OpRequest to the leading
peer otherwise. Each op is (client id, reqid): the client id is one connection's (or this
replica's own, for keep-alive pings and ticks), reqids count up from 0 without gaps, so
the leader's admission dedupes a retransmission (a commit is answered from the group's
state, an op still in flight just takes the newer request) and keeps each client's ops in
order. An op is kept until this replica applies it: a leader that died before answering,
a "not the leader" or silence means sending it again, to whoever leads now; a committed op
is never sent again. Acks (every reqid up to the ack applied here) let the group forget
its answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nodes import wire

if TYPE_CHECKING:
    from nodes.proxy.replica import Replica

log = logging.getLogger("mason.zk")

RESEND_S = 1.0  # an op unanswered this long goes again, to whoever leads then
SCAN_S = 0.05  # how often unsent and unanswered ops are looked at


class Pending:
    __slots__ = ("req", "sent_at", "committed")

    def __init__(self, req: wire.OpRequest) -> None:
        self.req = req
        self.sent_at = 0.0  # 0: send at the next scan
        self.committed = False


class LocalConn:
    """The leader's own ops reach its admission as if from a connection (`reply` only)."""

    def __init__(self, submitter: Submitter) -> None:
        self.submitter = submitter
        self.waiting: dict[int, tuple[int, int]] = {}
        self.next_rid = 1

    def call(self, req: wire.OpRequest) -> int:
        rid = self.next_rid
        self.next_rid += 1
        self.waiting[rid] = (req.client_id, req.reqid)
        return rid

    def reply(self, rid: int, msg: Any) -> bool:
        key = self.waiting.pop(rid, None)
        if key is not None:
            self.submitter.on_reply(key, msg)
        return True


class Submitter:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.group = replica.conf.group
        self.me = replica.conf.replica
        self.loop = asyncio.get_running_loop()
        self.pending: dict[tuple[int, int], Pending] = {}
        # This replica's own clients -> the highest reqid applied here (the others' ops are
        # applied here too, but acking them is their holder's business).
        self.acks: dict[int, int] = {}
        self.ahead: dict[int, set[int]] = {}  # done reqids above a client's ack
        self.local = LocalConn(self)
        self.refused = 0
        # ZK-Mason: an operation's answer comes in the leader's reply (it is the shards'
        # result), not from this replica's log; whoever takes it gets (key, payload).
        self.answered: Callable[[tuple[int, int], bytes], None] | None = None

    def start(self) -> None:
        self.loop.create_task(self.scanner())

    def register(self, client_id: int) -> None:
        self.acks[client_id] = -1

    def submit(self, client_id: int, reqid: int, payload: bytes) -> None:
        req = wire.OpRequest(client_id, reqid, self.group, self.acks.get(client_id, -1), [],
                             kind=wire.OP_ZK, payload=payload)
        pending = Pending(req)
        self.pending[(client_id, reqid)] = pending
        self.send(pending)

    def applied(self, client_id: int, reqid: int) -> None:
        """The op is in this replica's state (or, ZK-Mason, answered here): nothing more to
        send. The ack is the highest reqid with every reqid below it done too: ZK-Mason's
        answers can come out of order (one shard is quicker than two)."""
        self.pending.pop((client_id, reqid), None)
        ack = self.acks.get(client_id)
        if ack is None or reqid <= ack:
            return
        if reqid != ack + 1:
            self.ahead.setdefault(client_id, set()).add(reqid)
            return
        ahead = self.ahead.get(client_id)
        while ahead and reqid + 1 in ahead:
            reqid += 1
            ahead.discard(reqid)
        self.acks[client_id] = reqid

    def forget(self, client_id: int) -> None:
        """A closed connection: its ops still in flight are finished, its ack dropped."""
        self.acks.pop(client_id, None)
        self.ahead.pop(client_id, None)

    def send(self, pending: Pending) -> None:
        replica = self.replica
        leader = replica.raft.leader_id
        pending.sent_at = self.loop.time()
        req = pending.req
        if req.client_id in self.acks:
            req.ack = self.acks[req.client_id]
        if leader == self.me:
            replica.on_op(self.local, self.local.call(req), req)  # type: ignore[arg-type]
            return
        peer = replica.peers.get(leader) if leader is not None else None
        if peer is None:
            pending.sent_at = 0.0
            return
        key = (req.client_id, req.reqid)
        peer.call_cb(req, lambda msg: self.on_reply(key, msg))

    def on_reply(self, key: tuple[int, int], msg: Any) -> None:
        pending = self.pending.get(key)
        if pending is None:
            return
        if isinstance(msg, wire.OpReply) and msg.lasts is not None:
            if msg.status == wire.OP_OK:
                if msg.payload and self.answered is not None:
                    self.applied(*key)
                    self.answered(key, msg.payload)
                    return
                pending.committed = True  # applied here once this replica catches up
                return
            # Only a bug makes the group refuse what this replica built; retrying the same
            # bytes would not help.
            self.refused += 1
            log.error("the group refused ZooKeeper op %s: %s", key,
                      msg.payload.decode(errors="replace"))
            self.pending.pop(key, None)
            return
        pending.sent_at = 0.0  # not the leader, or the connection to it is gone: again soon

    async def scanner(self) -> None:
        while True:
            await asyncio.sleep(SCAN_S)
            waiting = self.local.waiting
            if len(waiting) > 2 * len(self.pending) + 100:
                # The leader answers only the newest send of an op: forget older ones.
                for rid in [r for r, key in waiting.items() if key not in self.pending]:
                    del waiting[rid]
            if not self.pending:
                continue
            now = self.loop.time()
            for pending in list(self.pending.values()):
                if pending.committed:
                    continue
                if pending.sent_at == 0.0 or now - pending.sent_at > RESEND_S:
                    self.send(pending)
