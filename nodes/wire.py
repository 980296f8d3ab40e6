"""Every message that crosses a socket, as msgspec Structs, and the frame format.

A frame is a 4-byte big-endian length followed by a msgpack array of envelopes
`[kind, request_id, message]`; writers put every envelope produced in one event-loop turn
into one frame. Messages are tagged, array-like Structs, so a frame is a compact list of
lists and decoding validates every field's type: malformed input is rejected by the
decoder, never interpreted.

Ranges follow the original's descriptor: for each sequence space a `count` and the
`last` (highest) number of the range, i.e. the range is [last - count + 1, last].
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

from nodes.raft import RaftMessage

# Envelope kinds.
CALL = 0  # expects a REPLY with the same request id
REPLY = 1
CAST = 2  # one-way; request id 0

HEADER = 4
MAX_FRAME = 64 * 1024 * 1024  # a peer announcing more than this is treated as corrupt


class Msg(msgspec.Struct, array_like=True):
    """Base of all mason messages; the tag names the request type."""


# Signs and ranges checked by the decoder itself, before any handler sees a message: a
# frame carrying a negative id or count is corrupt and closes its connection.
MAX_OP_COUNT = 1 << 16  # numbers one operation may ask for in one space
MAX_BATCH_COUNT = 1 << 32  # numbers one sequencer request may ask for in one space
Id = Annotated[int, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_OP_COUNT)]
BatchCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_BATCH_COUNT)]
CumulativeAck = Annotated[int, msgspec.Meta(ge=-1)]  # -1: nothing acknowledged yet
# Operations one run may carry: a run's numbers (MAX_RUN * MAX_OP_COUNT) stay far below
# what one sequencer request may ask for.
MAX_RUN = 1 << 10
RunLength = Annotated[int, msgspec.Meta(ge=1, le=MAX_RUN)]
# Operations that close a batch, at most: with one run past it, a batch's numbers in a
# space stay below MAX_BATCH_COUNT ((MAX_BATCH_OPS + MAX_RUN) * MAX_OP_COUNT < 2^32).
MAX_BATCH_OPS = 1 << 15


# ---- client <-> proxy ----------------------------------------------------------------


class OpRequest(Msg, tag="op", omit_defaults=True):
    """A run of `nops` client operations, reqids `reqid`..`reqid + nops - 1`, each wanting
    `counts[i]` numbers in space i.

    A closed-loop client that gets many answers in one read sends as many new operations
    at once: consecutive reqids with the same counts, carried as one run. A run is admitted,
    sequenced, logged and answered as a unit, so proxies and followers work per run, not
    per operation. `ack` is the client's cumulative acknowledgement: every reqid <= ack
    has been answered, so the proxies may forget those answers.
    """

    client_id: Id
    reqid: Id
    group: Id
    ack: CumulativeAck
    counts: list[Count]
    kind: Id = 0  # system-specific operation type (0 = pure sequencing)
    payload: bytes = b""
    nops: RunLength = 1


class OpReply(Msg, tag="opr", omit_defaults=True):
    """The run's ranges, or `lasts is None` when the receiver is not the leader.

    `lasts[i]` is the highest number of the run in space i: operation k of the run
    (0-based) owns, in space i, the `counts[i]` numbers ending at
    `lasts[i] - (nops - 1 - k) * counts[i]`.
    `leader` is the replica index the receiver believes leads the group (-1: unknown).
    `status` and `payload` are the system's answer (OP_OK for a pure sequencing operation;
    a log read answers with a LOG_* status and the entry's bytes).
    """

    reqid: int
    lasts: list[int] | None
    leader: int = -1
    payload: bytes = b""
    status: int = 0
    nops: int = 1


# OpRequest kinds.
OP_SEQUENCE = 0  # mason: numbers only
OP_APPEND = 1  # corfumason: append `payload` to the shared log at the number it gets
OP_READ = 2  # corfumason: read the position in `payload` (8 bytes, little-endian)
OP_ZK = 3  # rsmkeeper: apply the ZooKeeper transaction in `payload` (nodes/zk/requests.Txn)

OP_OK = 0
OP_REFUSED = 100  # the service refused the operation (bad payload); `payload` says why


# ---- proxy <-> sequencer -------------------------------------------------------------

SEQ_OK = 0
SEQ_STALE_TERM = 1  # a newer leader of this group has spoken to the sequencer
SEQ_PRUNED = 2  # the srid is below the group's floor: it is already in the group's log
SEQ_WRONG_EPOCH = 3  # the request was meant for another sequencer epoch
SEQ_NOT_READY = 4  # a backup that is still recovering: ask again shortly


class SeqRequest(Msg, tag="sq"):
    """A batch's demand, at-most-once per (group, srid).

    srid 0 is the leader's hello: it assigns nothing and fences older terms. `floor` tells
    the sequencer that every srid <= floor is settled in the group's log, so it may drop
    them from its at-most-once table.
    """

    group: Id
    term: Id
    srid: Id
    counts: list[BatchCount]
    floor: Id
    epoch: Id


class SeqReply(Msg, tag="sqr"):
    group: int
    srid: int
    status: int
    counts: list[int]
    lasts: list[int]
    retx: bool  # the srid had been assigned before; these are the earlier ranges
    max_srid: int  # highest srid this sequencer has seen from the group
    epoch: int


class Heartbeat(Msg, tag="hb"):
    epoch: int


class HeartbeatReply(Msg, tag="hbr"):
    epoch: int
    counters: list[int]


# ---- sequencer failover ----------------------------------------------------------------


class TakeOver(Msg, tag="to"):
    """A group leader that lost its sequencer asks the backup to take over (idempotent)."""

    group: int
    dead_epoch: int


class SwitchRequest(Msg, tag="sw"):
    """Backup -> group leader: log the switch to `epoch`; answer once it is applied."""

    epoch: int
    host: str
    port: int


class GroupReply(Msg, tag="gr"):
    """A group's answer to a backup's request; `ok` False = not the leader (see `leader`).

    `stale`: the group already follows a newer sequencer epoch than the request's; the
    standby that asked has been superseded and must not serve.

    `untouched`: the request was refused before anything was proposed for it (the replica
    does not lead). Without it, a refused fill may still sit in the group's log."""

    group: int
    ok: bool
    leader: int = -1
    stale: bool = False
    untouched: bool = False


class CollectRequest(Msg, tag="co"):
    epoch: int


class CollectReply(Msg, tag="cor"):
    """The committed numbers of a group: per space a bitmap (base, little-endian bits)."""

    group: int
    ok: bool
    leader: int
    bases: list[int]
    bitmaps: list[bytes]
    stale: bool = False


class FillRequest(Msg, tag="fi"):
    """Commit these holes as noops: per space a list of inclusive (first, last) ranges.

    `fill_id` makes it idempotent: a group applies each fill id at most once.
    `probe`: only ask whether the group can commit now; its leader commits a marker that
    owns no number and answers ok once it is applied. Nothing of the fill is proposed.
    """

    fill_id: int
    holes: list[list[tuple[int, int]]]
    probe: bool = False


class GcToken(Msg, tag="gc"):
    """One round of the garbage-collection ring, from group leader to group leader.

    Per space: the head block's base and the committed numbers in it counted so far.
    """

    round: int
    bases: list[int]
    counts: list[int]


class Ack(Msg, tag="ok"):
    pass


# ---- log servers (Corfu's shared log) -------------------------------------------------
#
# Every request names the epoch of the writer's view of the chain. A server that was sealed
# at a higher epoch refuses it with LOG_SEALED and tells the members of the newer view, so
# the writer adopts that view and retries.

LOG_OK = 0
LOG_WRITTEN = 1  # write-once: the position already holds an entry (its kind and bytes follow)
LOG_UNWRITTEN = 2  # a read of a position nobody wrote or filled
LOG_TRIMMED = 3  # the position was trimmed (or lies below the prefix trim)
LOG_SEALED = 4  # the request's epoch is older than the server's; `members` is the newer view
LOG_BAD = 5  # malformed: negative position, entry too large, not this server's chain
LOG_UNAVAILABLE = 6  # (writer side) no replica of the chain answers
LOG_DIVERGED = 7  # (writer side) a replica after the head holds other content than the head

ENTRY_DATA = 0
ENTRY_HOLE = 1  # a fill: the position is consumed by nobody; obeys write-once too


class LogWrite(Msg, tag="lw"):
    chain: int
    epoch: int
    position: int
    kind: int  # ENTRY_DATA or ENTRY_HOLE
    data: bytes


class LogRead(Msg, tag="lr"):
    chain: int
    epoch: int
    position: int


class LogTrim(Msg, tag="lt"):
    """Trim one position, or (prefix) every position below `position`."""

    chain: int
    epoch: int
    position: int
    prefix: bool


class LogSeal(Msg, tag="ls"):
    """Refuse requests of epochs below `epoch` from now on; `members` is the new view
    (indices into the chain's original replica list, head first)."""

    chain: int
    epoch: int
    members: list[int]


class LogReply(Msg, tag="lrp"):
    status: int
    position: int
    epoch: int  # the server's epoch for the chain
    kind: int = ENTRY_DATA
    data: bytes = b""
    members: list[int] = []  # with LOG_SEALED / a seal: the chain's current view
    tail: int = -1  # with a seal: the highest position written on this replica


# ---- ZK-Mason: proxy leader <-> shard replica ------------------------------------------

# ShardCall kinds.
SHARD_NOOP = 0  # [number, last] are noops: advance over them
SHARD_EXEC = 1  # run the transaction in `body` (nodes/zk/requests.Txn) whole at `number`
SHARD_HOLD = 2  # a multi-shard transaction (`body`: Txn) at `number`: stop there, answer
#                 the views its `view` asks for (nodes/zk/shard_machine.ViewRequest)
SHARD_READ = 3  # more views of the number the replica holds (`view`)
SHARD_DECIDE = 4  # `body`: the transaction's whole outcome (nodes/zk/coordinate.TxnOutcome):
#                   apply this shard's part at `number` and go on
SHARD_KINDS = 5

# ShardReply statuses.
SHARD_OK = 0  # body: the result (EXEC), views (HOLD/READ), nothing (NOOP/DECIDE)
SHARD_DECIDED = 1  # HOLD/READ of a number already decided: body is the outcome it applied
SHARD_FORGOTTEN = 2  # executed so long ago that its result is no longer kept
SHARD_BAD = 3  # not this shard's, malformed, or in conflict with what it executed: `body`
#                says why in one line
MAX_NOOP_RUN = 1 << 32


class ShardCall(Msg, tag="sc", omit_defaults=True):
    shard: Id
    number: Id
    last: Id  # == number, except for a noop run
    kind: Annotated[int, msgspec.Meta(ge=0, lt=SHARD_KINDS)]
    client_id: int = 0  # the operation's owner, for the execution record (-1: a noop)
    reqid: Id = 0
    origin: Annotated[int, msgspec.Meta(ge=-1)] = -1  # proxy replica holding the session
    body: bytes = b""
    view: bytes = b""


class ShardReply(Msg, tag="scr", omit_defaults=True):
    status: int
    body: bytes = b""
    # The highest number whose watch events this shard sent to the call's origin before
    # answering: the origin delivers the answer only after it has that event.
    event_floor: int = -1


class ShardEvents(Msg, tag="se"):
    """Cast from a shard replica to the proxy replica that holds the watching sessions: the
    changes the operation at `number` made to watched paths of this shard."""

    shard: Id
    number: Id
    changes: bytes  # msgpack list of nodes.zk.machine.Change


Message = Union[  # noqa: UP007 - msgspec needs a real Union of the tagged Structs
    OpRequest,
    OpReply,
    SeqRequest,
    SeqReply,
    Heartbeat,
    HeartbeatReply,
    Ack,
    TakeOver,
    SwitchRequest,
    GroupReply,
    CollectRequest,
    CollectReply,
    FillRequest,
    GcToken,
    LogWrite,
    LogRead,
    LogTrim,
    LogSeal,
    LogReply,
    ShardCall,
    ShardReply,
    ShardEvents,
    RaftMessage,
]

Envelope = tuple[int, int, Message]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Envelope])


class FrameError(Exception):
    """A frame that cannot be decoded; the connection that sent it must be closed."""


def encode_frame(envelopes: list[Envelope]) -> bytes:
    body = _encoder.encode(envelopes)
    return len(body).to_bytes(HEADER, "big") + body


def decode_body(body: bytes | memoryview) -> list[Envelope]:
    try:
        return _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise FrameError(str(exc).splitlines()[0]) from None


class FrameReader:
    """Accumulates stream bytes and yields complete decoded frames."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[list[Envelope]]:
        buf = self._buf
        # Nothing left over from before (the common case: a peer's frames arrive whole):
        # decode straight from the bytes received rather than copying them through the
        # buffer; only an incomplete tail is kept.
        source: bytes | bytearray = data
        if buf:
            buf += data
            source = buf
        frames = []
        pos = 0
        end = len(source)
        view = memoryview(source)
        try:
            while end - pos >= HEADER:
                size = int.from_bytes(view[pos : pos + HEADER], "big")
                if size > MAX_FRAME:
                    raise FrameError(f"frame of {size} bytes exceeds the {MAX_FRAME} limit")
                if end - pos - HEADER < size:
                    break
                start = pos + HEADER
                frames.append(decode_body(view[start : start + size]))
                pos = start + size
        except FrameError:
            if source is data:
                buf += data  # as if it had gone through the buffer
            raise
        finally:
            view.release()
        if source is buf:
            if pos:
                del buf[:pos]
        elif pos < end:
            buf += data[pos:]
        return frames
