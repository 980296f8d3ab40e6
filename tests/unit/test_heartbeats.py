"""The group leader's sequencer failure detector (nodes/proxy/sequencer_link.py): it accuses
a sequencer only after `heartbeat_misses` periods of the sequencer's own silence."""

from __future__ import annotations

import asyncio
import time

from nodes import wire
from nodes.config import Endpoint, ProxyConfig
from nodes.proxy.sequencer_link import SequencerLink


class Standby:
    """A connected standby that keeps the TakeOver requests cast to it."""

    up = True

    def __init__(self) -> None:
        self.asked: list[object] = []

    def cast(self, msg: object) -> None:
        self.asked.append(msg)


def watch(seconds: float, stall: float = 0.0) -> list[list[object]]:
    """A leading link with no sequencer connection and two standbys, its detector run for
    `seconds` (the loop blocked for `stall` seconds after the first tick); what each
    standby was asked."""

    async def scenario() -> list[list[object]]:
        conf = ProxyConfig(name="p", outdir="/tmp", nspaces=1, group=0, replica=0, peers={},
                           sequencer=Endpoint("127.0.0.1", 3), heartbeat_ms=20,
                           heartbeat_misses=3)
        link = SequencerLink(conf, lambda *_: None, serving=lambda: True,
                             leading=lambda: True, term=lambda: 1, log_epoch=lambda: 1,
                             floor=lambda: 0, on_answer=lambda *_: None)
        standbys = [Standby(), Standby()]
        serving = Standby()
        serving.up = False  # the sequencer of epoch 1: silent, not connected
        link.sequencers = [serving, *standbys]  # type: ignore[list-item]
        task = asyncio.get_running_loop().create_task(link.heartbeats())
        await asyncio.sleep(0.03)
        if stall:
            time.sleep(stall)  # the whole process stands still, as under SIGSTOP
            await asyncio.sleep(0.005)
            link.last_heard = asyncio.get_running_loop().time()  # the sequencer answered
        await asyncio.sleep(seconds)
        task.cancel()
        return [s.asked for s in standbys]

    return asyncio.run(scenario())


def test_a_new_leader_does_not_accuse_the_sequencer_at_its_first_tick():
    # Within the patience (3 x 20 ms) nothing is asked; a fresh link once read its
    # silence from time 0 and asked the last standby at once.
    assert watch(0.0) == [[], []]


def test_a_silent_sequencer_is_reported_to_the_next_standby_first():
    first, _ = watch(0.08)
    assert first and isinstance(first[0], wire.TakeOver) and first[0].dead_epoch == 1


def test_the_leaders_own_stall_is_not_the_sequencers_silence():
    # Blocked for 10 patiences, then the sequencer's answer arrives: nobody is accused.
    assert watch(0.01, stall=0.6) == [[], []]

