"""Which epochs a sequencer may serve, and the record that it never serves one twice.

Epochs go round-robin over the run's sequencers: with ``n`` of them, sequencer ``i``
(configured ``epoch = i + 1``) owns epochs ``i + 1``, ``i + 1 + n``, ``i + 1 + 2n``, ...
Sequencer 0 serves epoch 1 from the start; every other one is a standby. When a group
reports epoch ``d`` dead (``TakeOver(dead_epoch=d)``), the standby it asks claims the
smallest epoch it owns above ``d`` and above every epoch it claimed before, and recovers
the counters for it from the groups (nodes/sequencer/recovery.py); an attempt that failed
is retried as the same epoch, one that was superseded is given up. Groups ask, for epoch
``e > d``, the sequencer that owns ``e`` (nodes/proxy/sequencer_link.py), so the claim and
the group's expectation agree.

A sequencer that dies loses its counters, so it must never serve an epoch it claimed
before. Each claim is written to ``<name>.epoch`` (atomically, fsynced) before the claim
is acted on. A sequencer that finds this file at start is a restarted one: whatever its
config says, it comes back as a standby and claims only epochs above the recorded one. Its
old epoch is fenced at the groups as well: a group that switched to a later epoch ignores
every answer of an older one (``SequencerLink.heard``).

Example, two sequencers A (epochs 1, 3, 5...) and B (2, 4...): A dies, the groups ask B,
B serves epoch 2; A restarts as a standby; B dies, the groups ask the owner of epoch 3,
A, which serves epoch 3 with counters recovered from the groups.
"""

from __future__ import annotations

import os
from pathlib import Path


def next_owned(first: int, stride: int, above: int) -> int:
    """The smallest epoch ``first + k * stride`` (k >= 0) that is greater than ``above``."""
    if stride < 1 or first < 1:
        raise ValueError(f"bad epoch ownership: first {first}, stride {stride}")
    if first > above:
        return first
    return first + ((above - first) // stride + 1) * stride


class EpochRecord:
    """``<name>.epoch``: the highest epoch this sequencer ever claimed (absent: none)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.highest = 0
        if self.path.exists():
            text = self.path.read_text().strip()
            if not text.isdigit():
                raise ValueError(f"{self.path}: not an epoch number: {text[:40]!r}")
            self.highest = int(text)

    @property
    def restarted(self) -> bool:
        """A previous incarnation claimed an epoch: this one must not serve it again."""
        return self.highest > 0

    def claim(self, epoch: int) -> None:
        """Record ``epoch`` durably before serving or recovering it."""
        if epoch <= self.highest:
            raise ValueError(f"epoch {epoch} is not above the claimed {self.highest}")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(f"{epoch}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.highest = epoch
