"""The garbage-collection ring that keeps the received-number bitmaps bounded.

Group 0's leader starts a round every period: a token with, per space, its bitmap's head
block base and the numbers committed in that block. Each next group's leader adds its own
count (a full block if it already dropped that block) and forwards it; back at group 0, a
count that reached the block size proves every number of the block committed somewhere,
so the block is dropped. Other leaders drop it when the next token shows the higher base,
and followers when the entries of their leader carry it. Counts only grow, so a stale sum
is a safe lower bound. With a single group, a full head block is complete on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nodes import wire
from nodes.bitmap import Bitmap
from nodes.config import ProxyConfig
from nodes.rpc import Peer


class GcRing:
    def __init__(
        self, conf: ProxyConfig, bitmaps: Callable[[], list[Bitmap]], leading: Callable[[], bool]
    ) -> None:
        self.origin = conf.gc_leader
        self.period = conf.gc_interval_ms / 1000
        self.bitmaps = bitmaps  # a callable: a snapshot restore replaces the state's bitmaps
        self.leading = leading
        self.endpoints = conf.gc_next
        self.next: list[Peer] = []
        self.round = 0
        self.sent_at = 0.0

    def start(self, handler: Callable[..., None]) -> None:
        for i, e in enumerate(self.endpoints):
            self.next.append(Peer(e.host, e.port, handler, name=f"gc-next-{i}").start())
        asyncio.get_running_loop().create_task(self.timer())

    def stop(self) -> None:
        for peer in self.next:
            peer.stop()

    async def timer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.period)
            if not self.origin or not self.leading():
                continue
            bitmaps = self.bitmaps()
            if not self.next:
                for bitmap in bitmaps:
                    while bitmap.head_count() == bitmap.block:
                        bitmap.truncate()
                continue
            now = loop.time()
            if self.sent_at and now - self.sent_at < 10 * self.period:
                continue  # the previous round is still travelling the ring
            self.round += 1
            self.sent_at = now
            token = wire.GcToken(self.round, [b.base for b in bitmaps],
                                 [b.head_count() for b in bitmaps])
            for peer in self.next:
                peer.cast(token)

    def on_token(self, token: wire.GcToken) -> None:
        if not self.leading():
            return  # only one replica per group (the leader) takes part
        bitmaps = self.bitmaps()
        if self.origin:
            if token.round != self.round:
                return
            self.sent_at = 0.0
            for bitmap, base, count in zip(bitmaps, token.bases, token.counts, strict=False):
                if bitmap.base == base and count >= bitmap.block:
                    bitmap.truncate()
            return
        counts = list(token.counts)
        for i, (bitmap, base) in enumerate(zip(bitmaps, token.bases, strict=False)):
            # A base behind the token's means the origin proved that block complete.
            bitmap.truncate_to(base)
            counts[i] += bitmap.head_count() if bitmap.base == base else bitmap.block
        forwarded = wire.GcToken(token.round, token.bases, counts)
        for peer in self.next:
            peer.cast(forwarded)
