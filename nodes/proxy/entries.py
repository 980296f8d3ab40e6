"""What a proxy group writes in its Raft log.

One `BatchEntry` per batch, written only after the sequencer answered: the ranges in the
log are final, so every replica that applies the entry knows exactly which numbers the
batch's operations own. The srid is logged so that a future leader can tell which of the
group's sequencer requests are settled and which must be probed and turned into noops.
"""

from __future__ import annotations

from typing import Union

import msgspec

NOOP_CLIENT = -1  # client id of the single operation of a noop batch


class OpRecord(msgspec.Struct, array_like=True, omit_defaults=True):
    """A committed run of `nops` operations, reqids `reqid`..`reqid + nops - 1`, each owning
    `counts[i]` numbers of space i; `lasts[i]` is the run's highest (operation k owns the
    range ending at `lasts[i] - (nops - 1 - k) * counts[i]`). Noops and every system but
    Mason have runs of 1."""

    client_id: int
    reqid: int
    counts: list[int]
    lasts: list[int]
    # What the system keeps of the operation so any replica can finish it (a log append's
    # bytes); empty for pure sequencing.
    payload: bytes = b""
    nops: int = 1


class BatchEntry(msgspec.Struct, array_like=True, tag="b", omit_defaults=True):
    srid: int
    batch_id: int
    ops: list[OpRecord]
    # Cumulative client acks gathered since the previous entry: (client_id, ack).
    acks: list[tuple[int, int]]
    noop: bool = False
    # The leader's bitmap bases per space: followers truncate up to them.
    gc_bases: list[int] = []
    # Non-zero for the noops a backup sequencer asked for (applied at most once per id).
    fill_id: int = 0
    # The service's own notes from the leader (CorfuMason: positions whose chain writes
    # finished), applied by every replica.
    notes: bytes = b""


class SwitchSequencer(msgspec.Struct, array_like=True, tag="s"):
    """From this entry on, the group talks to `epoch`'s sequencer only."""

    epoch: int
    host: str
    port: int


class FillProbe(msgspec.Struct, array_like=True, tag="p"):
    """A standby's "can you commit now?" before it hands this group its fill: owns no
    number and changes no state; its commit shows the group has a working majority."""

    fill_id: int


def fill_records(holes: list[list[tuple[int, int]]], nspaces: int) -> list[OpRecord]:
    """One noop per hole range, owning numbers in that range's space only.

    Holes go to noops, never to waiting operations: a hole can lie below numbers the
    waiting operation's client already holds, and an operation's numbers in different
    spaces must come from one sequencer assignment.
    """
    records = []
    for space, ranges in enumerate(holes):
        for first, last in ranges:
            counts = [0] * nspaces
            lasts = [-1] * nspaces
            counts[space] = last - first + 1
            lasts[space] = last
            records.append(OpRecord(NOOP_CLIENT, 0, counts, lasts))
    return records


Entry = Union[BatchEntry, SwitchSequencer, FillProbe]  # noqa: UP007

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)


def encode(entry: Entry) -> bytes:
    return _encoder.encode(entry)


def decode(data: bytes) -> Entry:
    return _decoder.decode(data)
