"""A backup sequencer's takeover: switch every group, collect, fill the holes, serve.

1. Switch: every group leader logs `SwitchSequencer(epoch)`; once it is applied the group
   ignores answers from older epochs, so no number of the dead sequencer can enter any
   log after this point.
2. Collect: every group's bitmaps of committed numbers; their union is exactly the set of
   numbers the logs expose.
3. Fill: every hole below the highest committed number of a space is committed as a noop
   by one group, idempotently (fill id = epoch). Holes are never given to waiting
   operations: an operation could receive a number below one its client already holds,
   which would break client-determined order. Waiting operations get fresh numbers.
4. Serve from the first number above the highest committed one in each space. Numbers the
   dead sequencer handed out above that were never exposed by any log and are reused.

Which phases need which groups. Switch and collect need *every* group, each through a
majority of its own: the first number the new epoch hands out must lie above every number
of the old epoch that any group may still commit. Only a group's committed switch fences
it (an old-epoch batch still in the log of a leader without a majority may be committed
by a later leader of that group), and only after it does the group's bitmap hold all it
will ever commit of the old epoch. The dead sequencer, the one other place that knew how
far its numbers went, is gone. So while any group has no majority the takeover cannot
finish, for any group: that is inherent, not a matter of which group fills.

The fill needs only *one* group, and any will do (`carry_fill`, rule in
nodes/sequencer/fill_carrier.py): group 0 first, then the next, skipping groups whose
leader cannot show within `PROBE_PATIENCE` that it can commit, so a group that lost its
majority (or its leader) after collect no longer blocks every group's failover. The one
case left is inherent too: a group that was sent the fill and then lost its majority
before answering may still commit it later, so the takeover waits for that group, lest
two groups commit the same numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from nodes import wire
from nodes.bitmap import union, zero_runs
from nodes.config import Endpoint, SequencerConfig
from nodes.rpc import ConnectionLost, Peer
from nodes.sequencer.fill_carrier import FillCarrier, Outcome

log = logging.getLogger("mason.recovery")

RETRY = 0.02
CALL_TIMEOUT = 1.0  # seconds a group replica has to answer one request
# Seconds a group's leaders get to show that they can commit before the fill is offered to
# the next group: an election's worth (the local default is 300 ms to 600 ms).
PROBE_PATIENCE = 1.0


class Superseded(Exception):
    """A group follows a newer epoch already: this standby must not serve."""


class GroupLink:
    """Reaches whichever replica of a group currently leads it."""

    def __init__(self, group: int, endpoints: list[Endpoint]) -> None:
        self.group = group
        self.peers = [
            Peer(e.host, e.port, lambda c, r, m: None, name=f"group {group} replica {i}").start()
            for i, e in enumerate(endpoints)
        ]
        self.leader = 0
        self.misses = 0

    async def attempt(self, msg: Any, timeout: float = CALL_TIMEOUT) -> tuple[Any, bool]:
        """Send msg once to the replica believed to lead: (its reply or None, whether the
        request left this process at all)."""
        peer = self.peers[self.leader % len(self.peers)]
        if not peer.up:
            return None, False
        try:
            return await peer.call(msg, timeout=timeout), True
        except (ConnectionLost, TimeoutError):
            return None, True

    async def refused(self, reply: Any) -> None:
        """After anything but an ok: follow the leader hint, else move on to the next
        replica after a growing pause. A `stale` answer ends this standby's takeover."""
        if getattr(reply, "stale", False):
            raise Superseded(f"group {self.group} follows a newer sequencer epoch")
        hint = getattr(reply, "leader", -1)
        if isinstance(hint, int) and 0 <= hint < len(self.peers) and hint != self.leader:
            self.leader = hint
            return
        self.leader = (self.leader + 1) % len(self.peers)
        self.misses += 1
        await asyncio.sleep(min(RETRY * self.misses, 0.2))

    async def call(self, msg: Any, accept: type, patience: float | None = None) -> Any:
        """Send msg to the group's leader until it answers ok; follows leader hints. With
        `patience` (seconds), None once it ran out without an ok."""
        loop = asyncio.get_running_loop()
        deadline = None if patience is None else loop.time() + patience
        while True:
            timeout = CALL_TIMEOUT if deadline is None else \
                min(CALL_TIMEOUT, max(deadline - loop.time(), RETRY))
            reply, _ = await self.attempt(msg, timeout)
            if isinstance(reply, accept) and getattr(reply, "ok", False):
                return reply
            await self.refused(reply)
            if deadline is not None and loop.time() >= deadline:
                return None

    def stop(self) -> None:
        for peer in self.peers:
            peer.stop()


def plan_fill(
    reports: list[tuple[list[int], list[bytes]]], nspaces: int
) -> tuple[list[list[tuple[int, int]]], list[int]]:
    """From every group's (bases, bitmaps): the holes per space and where each space resumes.

    A hole is a number below the highest committed one that no group committed; all of
    them become noops, however many operations are waiting.
    """
    holes: list[list[tuple[int, int]]] = []
    nexts: list[int] = []
    for space in range(nspaces):
        base, merged = union([(bases[space], bitmaps[space]) for bases, bitmaps in reports])
        length = merged.bit_length()
        nexts.append(base + length)
        holes.append([(base + a, base + b) for a, b in zero_runs(merged, length)])
    return holes, nexts


def fill_outcome(reply: Any, sent: bool) -> Outcome:
    """What one fill request's answer proves about the group's log."""
    if isinstance(reply, wire.GroupReply) and reply.ok:
        return Outcome.DONE
    if not sent or (isinstance(reply, wire.GroupReply) and reply.untouched):
        return Outcome.REFUSED
    return Outcome.UNKNOWN


async def carry_fill(links: list[GroupLink], fill: wire.FillRequest,
                     carrier: FillCarrier) -> GroupLink:
    """Commit the fill through one group, whichever can; returns that group's link."""
    probe = wire.FillRequest(fill.fill_id, fill.holes, probe=True)
    while True:
        index = carrier.next_group()
        link = links[index]
        if carrier.may_skip() and \
                await link.call(probe, wire.GroupReply, PROBE_PATIENCE) is None:
            log.warning("group %d cannot commit now; the fill goes to the next group",
                        link.group)
            carrier.unavailable(index)
            continue
        carrier.sending(index)
        reply, sent = await link.attempt(fill)
        outcome = fill_outcome(reply, sent)
        carrier.answered(index, outcome)
        if outcome is Outcome.DONE:
            return link
        await link.refused(reply)


async def take_over(conf: SequencerConfig, epoch: int,
                    carrier: FillCarrier | None = None) -> list[int]:
    """Run the whole takeover as `epoch`; returns the counters it starts from.

    `carrier` outlives a failed attempt, so that a retry never sends the fill to a second
    group while the first may still commit it."""
    nspaces = conf.nspaces
    started = time.monotonic()
    assert conf.listen is not None
    links = [GroupLink(int(g), eps) for g, eps in sorted(conf.groups.items(),
                                                          key=lambda kv: int(kv[0]))]
    if carrier is None:
        carrier = FillCarrier(len(links))
    try:
        switch = wire.SwitchRequest(epoch, conf.listen.host, conf.listen.port)
        await asyncio.gather(*(link.call(switch, wire.GroupReply) for link in links))
        log.info("all %d group(s) switched to epoch %d", len(links), epoch)
        reports = await asyncio.gather(
            *(link.call(wire.CollectRequest(epoch), wire.CollectReply) for link in links)
        )
        holes, nexts = plan_fill(
            [(r.bases, r.bitmaps) for r in reports], nspaces
        )
        nholes = sum(last - first + 1 for ranges in holes for first, last in ranges)
        if nholes:
            log.info("filling %d hole number(s) with noops: %s", nholes,
                     [ranges[:3] for ranges in holes])
            by = await carry_fill(links, wire.FillRequest(epoch, holes), carrier)
            log.info("group %d committed the fill", by.group)
        log.info("takeover done in %.0f ms; serving from %s",
                 (time.monotonic() - started) * 1000, nexts)
        return nexts
    finally:
        for link in links:
            link.stop()
