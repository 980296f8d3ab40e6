"""Client-driven chain replication over log servers, with sealing and reconfiguration.

Used by Corfu clients and CorfuMason proxy leaders. A `ChainClient` holds one
nodes.rpc.Peer per distinct log-server endpoint and, per chain, a `View`: an epoch and the
live members (indices into the chain's configured replica list, head first).

* write: member after member, head to tail, each awaited; done only when the tail
  acknowledged. A replica that answers LOG_OK, or LOG_WRITTEN with exactly the content
  being written (a re-driven write), counts as written.
* read: from the tail of the view (a tail-acknowledged write is readable at once).
* a replica that does not answer within `timeout_s` (connection lost, refused, silent) is
  failed: the chain is reconfigured (every surviving member sealed at epoch + 1 with the
  survivors as members) and the operation restarts from the new head; re-driving a write is
  idempotent. LOG_SEALED means another writer reconfigured first: its view is adopted and
  the operation restarts. With no member left the answer is LOG_UNAVAILABLE.

There is no configuration service (as in the original Corfu branch): concurrent
reconfigurations by different writers are reconciled by the seals themselves. A seal that
meets another view at the same or a higher epoch moves on to a strictly higher epoch with
only the members both views keep, so views only shrink and every server in a view was sealed
at that view's epoch. Members dropped from a view are sealed best effort too, so a replica
wrongly suspected refuses stale readers instead of answering from old state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nodes import wire
from nodes.config import ChainConfig, Endpoint
from nodes.logserver.layout import chain_of
from nodes.rpc import CallTimeout, Conn, ConnectionLost, Handler, Peer

log = logging.getLogger("mason.chain")

MAX_ROUNDS = 64  # restarts of one operation before it gives up with LOG_UNAVAILABLE


@dataclass(frozen=True)
class View:
    """A chain's configuration: `members` are indices into its replica list, head first."""

    epoch: int
    members: tuple[int, ...]


@dataclass(frozen=True)
class LogResult:
    """The answer to one chain operation.

    status: LOG_OK (written to every member / the entry read), LOG_WRITTEN (the head holds
    other content, given in kind/data), LOG_UNWRITTEN, LOG_TRIMMED, LOG_BAD (data = the
    server's reason), LOG_UNAVAILABLE (no member of the chain left) or LOG_DIVERGED (a
    replica after the head holds other content than the head: a broken chain).
    kind/data: the entry read, adopted or found in the way.
    """

    status: int
    position: int
    kind: int = wire.ENTRY_DATA
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == wire.LOG_OK


# ---- views: pure ---------------------------------------------------------------------


def initial_view(replicas: int) -> View:
    return View(0, tuple(range(replicas)))


def survivors_view(view: View, failed: int) -> View:
    """The view after replica `failed` (a replica index, a member of `view`) stopped
    answering: the next epoch, the other members in their order."""
    return View(view.epoch + 1, tuple(m for m in view.members if m != failed))


def sealed_view(view: View, epoch: int, members: Sequence[int]) -> View | None:
    """The view to adopt from a LOG_SEALED answer (a server's epoch and members), or None
    when it is not newer than `view`."""
    if epoch <= view.epoch:
        return None
    return View(epoch, tuple(members))


def after_seal(
    target: View, failed: Sequence[int], refusals: Sequence[tuple[int, Sequence[int]]]
) -> View | None:
    """What to seal next after sealing `target` at its members: None when every member took
    it; otherwise a view above every epoch met, keeping the members of `target` that answered
    and that every refusing server's view (epoch, members) still holds."""
    if not failed and not refusals:
        return None
    epoch = max([target.epoch] + [e for e, _ in refusals]) + 1
    keep = [m for m in target.members if m not in failed]
    for _, members in refusals:
        if members:  # [] = a server never sealed: it restricts nothing
            keep = [m for m in keep if m in members]
    return View(epoch, tuple(keep))


# ---- the client ----------------------------------------------------------------------


def _unexpected(conn: Conn, rid: int, msg: Any) -> None:
    conn.abort(f"unexpected {type(msg).__name__} from a log server")


class ChainClient:
    def __init__(
        self,
        config: ChainConfig,
        handler: Handler | None = None,
        name: str = "",
        timeout_s: float = 1.0,
    ) -> None:
        if not config.chains or any(not c for c in config.chains):
            raise ValueError("a log needs at least one chain, each of at least one replica")
        self.config = config
        self.nchains = len(config.chains)
        self.handler = handler or _unexpected
        self.name = name
        self.timeout_s = timeout_s
        self.views = [initial_view(len(c)) for c in config.chains]
        self.reconfigurations = 0
        self._peers: dict[Endpoint, Peer] = {}
        self._locks = [asyncio.Lock() for _ in config.chains]

    # ---- connections ------------------------------------------------------------------

    def start(self) -> ChainClient:
        """Connect to every log server (in the background, reconnecting); needs a loop."""
        for chain in self.config.chains:
            for ep in chain:
                if ep not in self._peers:
                    label = f"{self.name}->{ep.host}:{ep.port}" if self.name else ""
                    self._peers[ep] = Peer(ep.host, ep.port, self.handler, name=label).start()
        return self

    async def connect(self, timeout_s: float) -> bool:
        """Wait until every log server is connected; False when some is not by then."""
        ups = await asyncio.gather(*(p.wait_up(timeout_s) for p in self._peers.values()))
        return all(ups)

    def close(self) -> None:
        for peer in self._peers.values():
            peer.stop()

    def view(self, chain: int) -> View:
        return self.views[chain]

    def chain_of(self, position: int) -> int:
        return chain_of(position, self.nchains)

    # ---- operations -------------------------------------------------------------------

    async def write(self, position: int, kind: int, data: bytes) -> LogResult:
        """Write the entry on every member, head to tail; LOG_OK once the tail has it."""
        c = self.chain_of(position)
        for _ in range(MAX_ROUNDS):
            view = self.views[c]
            if not view.members:
                return LogResult(wire.LOG_UNAVAILABLE, position)
            for i, r in enumerate(view.members):
                reply = await self._call(c, r, wire.LogWrite(c, view.epoch, position, kind, data))
                if reply is None:
                    await self._reconfigure(c, view, r)
                    break
                if reply.status == wire.LOG_OK:
                    continue
                if reply.status == wire.LOG_WRITTEN:
                    if reply.kind == kind and reply.data == data:
                        continue
                    status = wire.LOG_WRITTEN if i == 0 else wire.LOG_DIVERGED
                    if i:
                        log.error("chain %d position %d: replica %d holds other content than"
                                  " the head", c, position, r)
                    return LogResult(status, position, reply.kind, reply.data)
                if reply.status == wire.LOG_SEALED:
                    self._adopt_view(c, reply)
                    break
                return LogResult(reply.status, position, reply.kind, reply.data)
            else:
                return LogResult(wire.LOG_OK, position, kind, data)
        return LogResult(wire.LOG_UNAVAILABLE, position)

    async def fill(self, position: int) -> LogResult:
        """Mark the position a hole (write-once: LOG_WRITTEN when someone wrote it first)."""
        return await self.write(position, wire.ENTRY_HOLE, b"")

    async def read(self, position: int) -> LogResult:
        """The entry at `position` from the tail: LOG_OK with kind/data, LOG_UNWRITTEN,
        LOG_TRIMMED, ..."""
        return await self._read(position, tail=True)

    async def adopt(self, position: int) -> LogResult:
        """Copy the head's entry at `position` down the rest of the chain (after a write
        answered LOG_WRITTEN). LOG_OK with the entry once the tail has it."""
        found = await self._read(position, tail=False)
        if not found.ok:
            return found
        return await self.write(position, found.kind, found.data)

    async def trim(self, position: int, prefix: bool = False) -> LogResult:
        """Trim one position on every member of its chain, or (prefix) every position below
        `position` on every chain."""
        if not prefix:
            return await self._trim(self.chain_of(position), position, False)
        results = await asyncio.gather(
            *(self._trim(c, position, True) for c in range(self.nchains)))
        return next((r for r in results if not r.ok), LogResult(wire.LOG_OK, position))

    # ---- internals ----------------------------------------------------------------------

    async def _read(self, position: int, tail: bool) -> LogResult:
        c = self.chain_of(position)
        for _ in range(MAX_ROUNDS):
            view = self.views[c]
            if not view.members:
                return LogResult(wire.LOG_UNAVAILABLE, position)
            r = view.members[-1] if tail else view.members[0]
            reply = await self._call(c, r, wire.LogRead(c, view.epoch, position))
            if reply is None:
                await self._reconfigure(c, view, r)
            elif reply.status == wire.LOG_SEALED:
                self._adopt_view(c, reply)
            else:
                return LogResult(reply.status, position, reply.kind, reply.data)
        return LogResult(wire.LOG_UNAVAILABLE, position)

    async def _trim(self, c: int, position: int, prefix: bool) -> LogResult:
        for _ in range(MAX_ROUNDS):
            view = self.views[c]
            if not view.members:
                return LogResult(wire.LOG_UNAVAILABLE, position)
            for r in view.members:
                reply = await self._call(c, r, wire.LogTrim(c, view.epoch, position, prefix))
                if reply is None:
                    await self._reconfigure(c, view, r)
                    break
                if reply.status == wire.LOG_SEALED:
                    self._adopt_view(c, reply)
                    break
                if reply.status != wire.LOG_OK:
                    return LogResult(reply.status, position, reply.kind, reply.data)
            else:
                return LogResult(wire.LOG_OK, position)
        return LogResult(wire.LOG_UNAVAILABLE, position)

    async def _call(self, chain: int, replica: int, msg: Any) -> wire.LogReply | None:
        """The replica's reply, or None when it gives none within the timeout."""
        peer = self._peers[self.config.chains[chain][replica]]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            left = deadline - loop.time()
            if left <= 0 or not (peer.up or await peer.wait_up(left)):
                return None
            try:
                reply = await peer.call(msg, max(deadline - loop.time(), 0.001))
            except CallTimeout:
                return None
            except ConnectionLost:
                # The connection dropped; a live server is reconnected within the deadline.
                await asyncio.sleep(min(0.01, max(deadline - loop.time(), 0)))
                continue
            return reply if isinstance(reply, wire.LogReply) else None

    def _adopt_view(self, c: int, reply: wire.LogReply) -> None:
        newer = sealed_view(self.views[c], reply.epoch, reply.members)
        if newer is not None:
            log.info("chain %d: adopting epoch %d members %s", c, newer.epoch,
                     list(newer.members))
            self.views[c] = newer

    async def _reconfigure(self, c: int, used: View, failed: int) -> None:
        """Replica `failed` of view `used` did not answer: seal the survivors at a new epoch
        (unless someone already moved the chain past `used`)."""
        async with self._locks[c]:
            if self.views[c] != used:
                return
            target = survivors_view(used, failed)
            log.warning("chain %d: replica %d failed in epoch %d; sealing epoch %d with %s",
                        c, failed, used.epoch, target.epoch, list(target.members))
            for _ in range(MAX_ROUNDS):
                if not target.members:
                    break
                seal = wire.LogSeal(c, target.epoch, list(target.members))
                replies = await asyncio.gather(*(self._call(c, m, seal) for m in target.members))
                down = [m for m, rep in zip(target.members, replies, strict=True)
                        if rep is None or rep.status not in (wire.LOG_OK, wire.LOG_SEALED)]
                refusals = [(rep.epoch, rep.members) for rep in replies
                            if rep is not None and rep.status == wire.LOG_SEALED]
                following = after_seal(target, down, refusals)
                if following is None:
                    break
                log.warning("chain %d: sealing epoch %d met failures %s / views %s; sealing"
                            " epoch %d with %s", c, target.epoch, down, refusals,
                            following.epoch, list(following.members))
                target = following
            if target.epoch >= self.views[c].epoch:  # a newer view adopted meanwhile stays
                self.views[c] = target
            self.reconfigurations += 1
            self._seal_dropped(c, target)

    def _seal_dropped(self, c: int, view: View) -> None:
        """Best effort, unanswered: replicas outside the view learn it, so a replica that was
        only suspected refuses stale requests rather than serving old state."""
        seal = wire.LogSeal(c, view.epoch, list(view.members))
        for r, ep in enumerate(self.config.chains[c]):
            if r not in view.members:
                self._peers[ep].cast(seal)
