"""The state every replica of a group derives from the committed log, free of I/O.

It answers three questions after any failover:
- which operations already own numbers (so a retransmitted request gets the same
  answer and no operation is numbered twice): `results`, pruned by client acks;
- how far each client's operations have been sequenced (client-determined order):
  `sequenced`;
- which sequencer request ids (srids) are settled in the log: a contiguous `srid_floor`
  plus the settled srids above it. A new leader probes every srid that is not settled.

Done-ness is tracked per operation (results pruned by each client's cumulative ack) and
per srid (a floor that advances over settled srids), never by a batch-id watermark, so a
batch id that never commits cannot stall garbage collection.
"""

from __future__ import annotations

import msgspec

from nodes.bitmap import Bitmap
from nodes.proxy.entries import NOOP_CLIENT, BatchEntry, Entry, OpRecord, SwitchSequencer
from nodes.services import Effect, Service
from nodes.services.mason import MasonService

# A committed run's answer: its highest numbers per space and how many operations it has.
Answer = tuple[list[int], int]


class Snapshot(msgspec.Struct, array_like=True):
    results: dict[int, dict[int, Answer]]
    acked: dict[int, int]
    sequenced: dict[int, int]
    srid_floor: int
    srids_above: list[int]
    max_srid: int
    next_batch_id: int
    epoch: int
    seq_host: str
    seq_port: int
    ops_committed: int
    noops_committed: int
    noop_numbers: list[int]
    bitmap_bases: list[int]
    bitmap_bits: list[bytes]
    fills: list[int]
    service: bytes = b""


_snap_encoder = msgspec.msgpack.Encoder()
_snap_decoder = msgspec.msgpack.Decoder(Snapshot)


class GroupState:
    def __init__(
        self, nspaces: int, epoch: int, seq_host: str, seq_port: int, block: int = 1 << 16,
        service: Service | None = None,
    ) -> None:
        self.service: Service = service if service is not None else MasonService(nspaces)
        # What the last applied entry's operations owe the leader (None: nothing).
        self.owed: list[list[Effect]] | None = None
        self.bitmaps = [Bitmap(block) for _ in range(nspaces)]
        self.fills: set[int] = set()
        # Per client, by a committed run's first reqid: its answer, until the client acks it.
        self.results: dict[int, dict[int, Answer]] = {}
        self.acked: dict[int, int] = {}
        self.sequenced: dict[int, int] = {}
        self.srid_floor = 0
        self.srids_above: set[int] = set()
        self.max_srid = 0
        self.next_batch_id = 0
        self.epoch = epoch
        self.seq_host = seq_host
        self.seq_port = seq_port
        self.ops_committed = 0
        self.noops_committed = 0
        self.noop_numbers = [0] * nspaces

    # ---- srids ------------------------------------------------------------------------
    def settle_srid(self, srid: int) -> None:
        if srid <= self.srid_floor:
            return
        self.max_srid = max(self.max_srid, srid)
        self.srids_above.add(srid)
        floor = self.srid_floor
        above = self.srids_above
        while floor + 1 in above:
            floor += 1
            above.discard(floor)
        self.srid_floor = floor

    def unsettled_srids(self, upto: int) -> list[int]:
        """Srids in (floor, upto] that the log does not settle: a new leader probes them."""
        return [s for s in range(self.srid_floor + 1, upto + 1) if s not in self.srids_above]

    # ---- clients ------------------------------------------------------------------------
    def answer(self, client_id: int, reqid: int) -> Answer | None:
        """The answer of the committed run that starts at `reqid`, while it is kept."""
        per_client = self.results.get(client_id)
        return None if per_client is None else per_client.get(reqid)

    def already_acked(self, client_id: int, reqid: int) -> bool:
        return reqid <= self.acked.get(client_id, -1)

    def apply_ack(self, client_id: int, ack: int) -> None:
        if ack <= self.acked.get(client_id, -1):
            return
        self.acked[client_id] = ack
        self.service.acked(client_id, ack)
        per_client = self.results.get(client_id)
        if not per_client:
            return
        # A client has at most `concurrency` unacknowledged answers, so a sweep is cheap. A
        # run is kept until all of its operations are acknowledged.
        for reqid in [r for r, (_, nops) in per_client.items() if r + nops - 1 <= ack]:
            del per_client[reqid]

    # ---- apply ----------------------------------------------------------------------------
    def apply(self, entry: Entry) -> list[OpRecord]:
        """Apply one committed entry; returns the operations it committed (noops included).

        What they owe (effects the leader must finish before they are done) is left in
        `owed`, one list per returned operation, or None."""
        self.owed = None
        if isinstance(entry, SwitchSequencer):
            if entry.epoch > self.epoch:
                self.epoch, self.seq_host, self.seq_port = entry.epoch, entry.host, entry.port
            return []
        if not isinstance(entry, BatchEntry):
            return []  # a FillProbe: it only shows that the group could commit
        if entry.fill_id:
            if entry.fill_id in self.fills:
                return []  # a backup's retried fill that was already committed
            self.fills.add(entry.fill_id)
        for client_id, ack in entry.acks:
            self.apply_ack(client_id, ack)
        service = self.service
        if entry.notes:
            service.apply_notes(entry.notes)
        for bitmap, base in zip(self.bitmaps, entry.gc_bases, strict=False):
            bitmap.truncate_to(base)
        self.mark_numbers(entry.ops)
        self.settle_srid(entry.srid)
        if entry.batch_id >= self.next_batch_id:
            self.next_batch_id = entry.batch_id + 1
        self.owed = service.apply(entry.ops, entry.noop)
        if entry.noop:
            self.noops_committed += 1
            for op in entry.ops:
                for i, count in enumerate(op.counts):
                    self.noop_numbers[i] += count * op.nops
            return entry.ops
        results = self.results
        acked = self.acked
        sequenced = self.sequenced
        committed = 0
        for op in entry.ops:
            client_id = op.client_id
            nops = op.nops
            top = op.reqid + nops - 1
            committed += nops
            # An acked run needs no answer kept (it can only be a late duplicate).
            if top > acked.get(client_id, -1):
                per_client = results.get(client_id)
                if per_client is None:
                    per_client = results[client_id] = {}
                per_client[op.reqid] = (op.lasts, nops)
            if top > sequenced.get(client_id, -1):
                sequenced[client_id] = top
        self.ops_committed += committed
        return entry.ops

    def mark_numbers(self, ops: list[OpRecord]) -> None:
        """Record the committed numbers in the bitmaps.

        A batch's runs own consecutive sub-ranges of one range per space, so one range per
        space covers a whole batch; noops and fills may own disjoint ranges.
        """
        if not ops:
            return
        for i, bitmap in enumerate(self.bitmaps):
            if len(ops) > 1 and ops[0].client_id != NOOP_CLIENT:
                first_op, last_op = ops[0], ops[-1]
                bitmap.set_range(first_op.lasts[i] - first_op.counts[i] * first_op.nops + 1,
                                 last_op.lasts[i])
                continue
            for op in ops:
                numbers = op.counts[i] * op.nops
                if numbers:
                    bitmap.set_range(op.lasts[i] - numbers + 1, op.lasts[i])

    def bases(self) -> list[int]:
        return [b.base for b in self.bitmaps]

    # ---- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        return _snap_encoder.encode(
            Snapshot(
                results=self.results,
                acked=self.acked,
                sequenced=self.sequenced,
                srid_floor=self.srid_floor,
                srids_above=sorted(self.srids_above),
                max_srid=self.max_srid,
                next_batch_id=self.next_batch_id,
                epoch=self.epoch,
                seq_host=self.seq_host,
                seq_port=self.seq_port,
                ops_committed=self.ops_committed,
                noops_committed=self.noops_committed,
                noop_numbers=self.noop_numbers,
                bitmap_bases=self.bases(),
                bitmap_bits=[bytes(b.bits) for b in self.bitmaps],
                fills=sorted(self.fills),
                service=self.service.snapshot(),
            )
        )

    def restore(self, data: bytes) -> None:
        snap = _snap_decoder.decode(data)
        self.results = snap.results
        self.acked = snap.acked
        self.sequenced = snap.sequenced
        self.srid_floor = snap.srid_floor
        self.srids_above = set(snap.srids_above)
        self.max_srid = snap.max_srid
        self.next_batch_id = snap.next_batch_id
        self.epoch = snap.epoch
        self.seq_host = snap.seq_host
        self.seq_port = snap.seq_port
        self.ops_committed = snap.ops_committed
        self.noops_committed = snap.noops_committed
        self.noop_numbers = snap.noop_numbers
        for bitmap, base, bits in zip(
            self.bitmaps, snap.bitmap_bases, snap.bitmap_bits, strict=True
        ):
            bitmap.base = base
            bitmap.bits = bytearray(bits)
        self.fills = set(snap.fills)
        self.service.restore(snap.service)
