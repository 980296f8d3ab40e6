"""A shard replica's watch events on their way to one proxy replica, kept until that
replica acknowledged them.

An event sent on a connection that is down is gone: the first events after a start, before
the proxy replica listens or while the connection backs off, and those in flight when it
breaks. The proxy replica takes each (shard, number) once, from whichever replica of the
shard it comes first, and drops any number not above the highest it took; so one replica
whose event was dropped while a later one of its got through could make every replica's
copy of the dropped one look like a duplicate, and a watch would never fire.

So each event goes out as a call, stays here until the proxy replica's reply (`wire.Ack`,
sent once it took the event), and every (re)connection first sends again everything still
here, in number order, before any newer event: a proxy replica gets each shard replica's
events without a gap, which is what its dedup relies on.

A proxy replica that is gone for good (its host died) would make this grow for ever; past
`limit` events the oldest are dropped, with a warning: such a replica lost its sessions'
connections, and with them their watches, anyway.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from nodes import wire
from nodes.config import Endpoint
from nodes.rpc import Conn, Peer

log = logging.getLogger("mason.zkshard")

OUTBOX_LIMIT = 1 << 14  # unacknowledged events kept per proxy replica


def _ignore(conn: Conn, rid: int, msg: object) -> None:
    """Proxy replicas only reply on these connections."""


class EventOutbox:
    def __init__(self, endpoint: Endpoint, name: str, limit: int = OUTBOX_LIMIT) -> None:
        self.name = name
        self.limit = max(1, limit)
        self.pending: OrderedDict[int, wire.ShardEvents] = OrderedDict()  # number -> event
        self.dropped = 0
        self.peer = Peer(endpoint.host, endpoint.port, _ignore, name=name,
                         on_connect=self._connected)

    def start(self) -> EventOutbox:
        self.peer.start()
        return self

    def stop(self) -> None:
        self.peer.stop()

    def send(self, event: wire.ShardEvents) -> None:
        if event.number in self.pending:
            return  # already on its way (event numbers only grow: never happens)
        self.pending[event.number] = event
        if len(self.pending) > self.limit:
            _, oldest = self.pending.popitem(last=False)
            if not self.dropped:
                log.warning("%s: over %d events unacknowledged, dropping from %d on",
                            self.name, self.limit, oldest.number)
            self.dropped += 1
        self._call(self.peer.conn, event)

    def _connected(self, conn: Conn) -> None:
        if self.pending:
            log.info("%s: connected, sending the %d events not acknowledged", self.name,
                     len(self.pending))
        for event in list(self.pending.values()):
            self._call(conn, event)

    def _call(self, conn: Conn | None, event: wire.ShardEvents) -> None:
        if conn is None or conn.closed:
            return  # kept: sent again on the next connection

        def acked(reply: object) -> None:
            # Anything else (the connection was lost): kept for the next connection.
            if isinstance(reply, wire.Ack) and self.pending.get(event.number) is event:
                del self.pending[event.number]

        conn.call_cb(event, acked)
