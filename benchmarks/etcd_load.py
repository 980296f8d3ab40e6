"""The etcd load generator: Put to one key, `concurrency` requests outstanding, closed loop.

    python -m benchmarks.etcd_load ENDPOINTS CONCURRENCY SECONDS OUTDIR NAME

Every Put's answer carries the store's revision after it (header.revision): that is the
number a user of etcd as a sequencer gets, one per write, increasing and gap-free. Each of
the CONCURRENCY slots sends a Put, waits for its answer and sends the next (slot k talks
to endpoint k mod len(ENDPOINTS), a comma-separated host:port list); after one second of
warm-up it measures SECONDS, then stops sending and waits for what is in flight. It writes
OUTDIR/NAME.revisions.json (every slot's revisions in the order it got them, warm-up
included), OUTDIR/NAME.hist (the latencies of the window, us) and prints one JSON line:
ops and ops_per_s in the window, the window in unix seconds, and the puts sent in all.

The messages are etcd's protobuf (api/etcdserverpb/rpc.proto), encoded and decoded here for
the few fields a Put needs, so that the only dependency is grpcio (the `bench` extra) and
the load generator spends nothing on message objects; it runs on uvloop. A failed Put ends
the process with one line: its revision may or may not have been taken, so the run's
numbers cannot be checked.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import msgspec

from nodes import rpc
from nodes.metrics import LatencyHistogram

PUT = "/etcdserverpb.KV/Put"
STATUS = "/etcdserverpb.Maintenance/Status"
WARMUP_S = 1.0
KEY = b"mason-bench-counter"
VALUE = b"12345678"
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class ProtoError(ValueError):
    """A message that is not the protobuf it should be; the text is one line."""


class RevisionError(ValueError):
    """Revisions that are not what a sequencer must give; the text is one line."""


def missing() -> list[str]:
    """What running the load generator here lacks (empty when nothing)."""
    return [] if importlib.util.find_spec("grpc") else ["grpcio (the `bench` extra)"]


# ---- protobuf, the few fields needed -------------------------------------------------------

def encode_varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("only non-negative varints are needed here")
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtoError("message ends inside a varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 64:
            raise ProtoError("varint longer than 10 bytes")


def fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of every field: an int for a varint, bytes for a
    length-delimited field; fixed-width fields are skipped."""
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == _VARINT:
            value, pos = read_varint(buf, pos)
            yield number, value
        elif wire_type == _BYTES:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise ProtoError(f"field {number} runs past the message's end")
            yield number, buf[pos:pos + length]
            pos += length
        elif wire_type in (_FIXED64, _FIXED32):
            pos += 8 if wire_type == _FIXED64 else 4
        else:
            raise ProtoError(f"field {number} has unknown wire type {wire_type}")
    if pos != len(buf):
        raise ProtoError("a fixed-width field runs past the message's end")


def field(buf: bytes, number: int, kind: type[int] | type[bytes]) -> int | bytes | None:
    """The last value of field `number` (protobuf's rule), None when absent."""
    found: int | bytes | None = None
    for n, value in fields(buf):
        if n == number:
            if not isinstance(value, kind):
                raise ProtoError(f"field {number} is not a {kind.__name__}")
            found = value
    return found


def put_request(key: bytes, value: bytes) -> bytes:
    """PutRequest{key = 1, value = 2}."""
    return (b"\x0a" + encode_varint(len(key)) + key + b"\x12" + encode_varint(len(value))
            + value)


def header(answer: bytes) -> bytes:
    """The ResponseHeader (field 1) every etcd answer carries."""
    found = field(answer, 1, bytes)
    if not isinstance(found, bytes):
        raise ProtoError("answer has no header")
    return found


def revision(answer: bytes) -> int:
    """A PutResponse's header.revision (ResponseHeader field 3)."""
    found = field(header(answer), 3, int)
    if not isinstance(found, int) or found <= 0:
        raise ProtoError("answer's header has no revision")
    return found


def leader_of(status: bytes) -> tuple[int, int]:
    """(the answering member's id, the leader's id) from a StatusResponse: header.member_id
    (field 2) and leader (field 4)."""
    member = field(header(status), 2, int)
    leader = field(status, 4, int)
    if not isinstance(member, int) or not isinstance(leader, int) or not leader:
        raise ProtoError("status answer names no member or no leader")
    return member, leader


# ---- the check -------------------------------------------------------------------------------

def check_revisions(slots: list[list[int]]) -> tuple[int, int]:
    """Each slot's revisions strictly increase (a Put sent after another's answer comes
    later in the store), and all slots' together are distinct and without gaps (every
    revision of the run went to exactly one Put). The run's (first, last) revision;
    RevisionError otherwise."""
    for k, slot in enumerate(slots):
        for a, b in pairwise(slot):
            if b <= a:
                raise RevisionError(f"slot {k}: revision {b} came after {a}")
    every = sorted(r for slot in slots for r in slot)
    if not every:
        raise RevisionError("no revision at all")
    for a, b in pairwise(every):
        if b == a:
            raise RevisionError(f"revision {a} answered twice")
        if b != a + 1:
            raise RevisionError(f"revisions {a + 1}..{b - 1} answered to nobody")
    return every[0], every[-1]


# ---- the load --------------------------------------------------------------------------------

async def drive(endpoints: list[str], concurrency: int, seconds: float, outdir: Path,
                name: str) -> dict[str, float]:
    import grpc  # the `bench` extra: imported here so the codec above needs nothing

    channels = [grpc.aio.insecure_channel(e) for e in endpoints]
    puts = [c.unary_unary(PUT) for c in channels]
    request = put_request(KEY, VALUE)
    hist = LatencyHistogram()
    slots: list[list[int]] = [[] for _ in range(concurrency)]
    state = {"measuring": False, "sending": True, "ops": 0}

    async def slot(k: int) -> None:
        put, got = puts[k % len(puts)], slots[k]
        while state["sending"]:
            start = time.perf_counter_ns()
            got.append(revision(await put(request)))
            if state["measuring"]:
                state["ops"] += 1
                hist.record((time.perf_counter_ns() - start) // 1000)

    async def clock() -> tuple[float, float]:
        await asyncio.sleep(WARMUP_S)
        state["measuring"] = True
        begin = time.time()
        await asyncio.sleep(seconds)
        state["measuring"] = False
        end = time.time()
        state["sending"] = False
        return begin, end

    try:
        slots_done = asyncio.gather(*(slot(k) for k in range(concurrency)))
        begin, end = await clock()
        await slots_done  # what was in flight, answered (a failed Put raises here)
    finally:
        for channel in channels:
            await channel.close()
    hist.write(outdir / f"{name}.hist")
    (outdir / f"{name}.revisions.json").write_bytes(msgspec.json.encode(slots))
    ops = int(state["ops"])
    return {"ops": ops, "ops_per_s": ops / (end - begin), "window_start_unix": begin,
            "window_end_unix": end, "puts": sum(len(s) for s in slots)}


async def find_leader(endpoints: list[str], timeout: float = 5.0) -> str:
    """The endpoint of the member that is the leader (asked of each in turn)."""
    import grpc

    for endpoint in endpoints:
        async with grpc.aio.insecure_channel(endpoint) as channel:
            member, leader = leader_of(await channel.unary_unary(STATUS)(b"", timeout=timeout))
            if member == leader:
                return endpoint
    raise RuntimeError(f"no member of {', '.join(endpoints)} says it leads")


def main(argv: list[str]) -> None:
    if len(argv) != 5:
        sys.exit("usage: python -m benchmarks.etcd_load ENDPOINTS CONCURRENCY SECONDS "
                 "OUTDIR NAME")
    endpoints, concurrency, seconds, outdir, name = argv
    try:
        slots, window = int(concurrency), float(seconds)
    except ValueError:
        sys.exit(f"etcd load {name}: CONCURRENCY and SECONDS must be numbers, not "
                 f"{concurrency!r} and {seconds!r}")
    if slots <= 0 or window <= 0 or not endpoints or not Path(outdir).is_dir():
        sys.exit(f"etcd load {name}: needs endpoints, CONCURRENCY > 0, SECONDS > 0 and an "
                 "existing OUTDIR")
    rpc.install_uvloop()  # grpc.aio runs on it, and spends less per call there
    try:
        result = asyncio.run(drive(endpoints.split(","), slots, window, Path(outdir), name))
    except Exception as exc:  # a failed Put: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        sys.exit(f"etcd load {name}: {type(exc).__name__}: {first}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
