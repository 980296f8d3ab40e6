"""A backup sequencer's takeover: switch every group, collect, fill the holes, serve.

1. Switch: every group leader logs `SwitchSequencer(epoch)`; once it is applied the group
   ignores answers from older epochs, so no number of the dead sequencer can enter any
   log after this point.
2. Collect: every group's bitmaps of committed numbers; their union is exactly the set of
   numbers the logs expose.
3. Fill: every hole below the highest committed number of a space is committed as a noop
   (by group 0, idempotently, fill id = epoch). Holes are never given to waiting
   operations: an operation could receive a number below one its client already holds,
   which would break client-determined order. Waiting operations get fresh numbers.
4. Serve from the first number above the highest committed one in each space. Numbers the
   dead sequencer handed out above that were never exposed by any log and are reused.
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

log = logging.getLogger("mason.recovery")

RETRY = 0.02


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

    async def call(self, msg: Any, accept: type) -> Any:
        """Send msg to the group's leader until it answers ok; follows leader hints."""
        attempt = 0
        while True:
            peer = self.peers[self.leader % len(self.peers)]
            try:
                reply = await peer.call(msg, timeout=1.0)
            except (ConnectionLost, TimeoutError):
                reply = None
            if isinstance(reply, accept) and getattr(reply, "ok", False):
                return reply
            if getattr(reply, "stale", False):
                raise Superseded(f"group {self.group} follows a newer sequencer epoch")
            hint = getattr(reply, "leader", -1)
            if isinstance(hint, int) and 0 <= hint < len(self.peers) and hint != self.leader:
                self.leader = hint
            else:
                self.leader = (self.leader + 1) % len(self.peers)
                attempt += 1
                await asyncio.sleep(min(RETRY * attempt, 0.2))

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


async def take_over(conf: SequencerConfig, epoch: int) -> list[int]:
    """Run the whole takeover as `epoch`; returns the counters it starts from."""
    nspaces = conf.nspaces
    started = time.monotonic()
    assert conf.listen is not None
    links = [GroupLink(int(g), eps) for g, eps in sorted(conf.groups.items(),
                                                          key=lambda kv: int(kv[0]))]
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
            await links[0].call(wire.FillRequest(epoch, holes), wire.GroupReply)
        log.info("takeover done in %.0f ms; serving from %s",
                 (time.monotonic() - started) * 1000, nexts)
        return nexts
    finally:
        for link in links:
            link.stop()
