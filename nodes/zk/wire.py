"""ZooKeeper's client wire protocol (3.8, as kazoo and zkCli speak it), free of I/O.

A connection carries 4-byte big-endian length-prefixed frames (`FrameSplitter`). The first
frame is a `ConnectRequest` (`decode_connect_request`), answered by
`connect_response_frame`; every later frame is a RequestHeader (xid, opcode) and the
opcode's record (`decode_request`). Replies are a ReplyHeader (xid, zxid, err) and, when
err is 0, the operation's reply body (`reply_frame` with one of the `*_body` builders);
watch notifications (`notification_frame`, xid -1) and ping replies (`ping_reply`, xid -2)
share the reply stream.

What the server does with a bad frame:
- `FrameError` (a length over jute.maxbuffer, or negative): close that connection.
- `JuteError` from `decode_connect_request` or from a request header: close it too.
- `BodyError` (a JuteError that knows the request's xid and opcode): answer that xid with
  Err.MARSHALLING_ERROR, as ZooKeeper does.
- an `Unimplemented` body: answer Err.UNIMPLEMENTED.
Meaning (path syntax, create flags, watch modes, versions, sessions) is the request
handler's to check: those failures are answered with error codes, not framing errors.

The request records also encode (`encode_request`) and the reply header and Stat decode,
for a load-generating client and for the tests.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import ClassVar

import msgspec

from nodes.zk.codes import SYNC_CONNECTED, XID_NOTIFICATION, XID_PING, Err, Op
from nodes.zk.fourletter import KNOWN_WORDS
from nodes.zk.jute import (
    INT,
    INT_INT,
    LONG,
    JuteError,
    Reader,
    pack_bool,
    pack_buffer,
    pack_ustring,
    pack_ustring_vector,
)
from nodes.zk.requests import OPEN_ACL_UNSAFE, Acl
from nodes.zk.stat import Stat

JUTE_MAXBUFFER = 0xFFFFF  # ZooKeeper's default jute.maxbuffer: the largest frame accepted
PROTOCOL_VERSION = 0
PASSWD_LEN = 16

_LENGTH = INT
_HEADER = INT_INT  # RequestHeader: xid, type
_REPLY_HEADER = struct.Struct("!iqi")  # xid, zxid, err
_REPLY_FRAME = struct.Struct("!iiqi")  # length, then the ReplyHeader
_REPLY_HEADER_LEN = _REPLY_HEADER.size
_MULTI_HEADER = struct.Struct("!i?i")  # type, done, err
_MULTI_END = _MULTI_HEADER.pack(-1, True, -1)
STAT = struct.Struct("!qqqqiiiqiiq")
_CONNECT_HEAD = struct.Struct("!iqiq")  # protocolVersion, lastZxidSeen, timeOut, sessionId
_CONNECT_REPLY_HEAD = struct.Struct("!iiq")  # protocolVersion, timeOut, sessionId
_ACL_MIN_SIZE = 12  # perms + two empty strings


class FrameError(ValueError):
    """A frame length the server must not read (negative or over jute.maxbuffer): the
    connection is closed."""


class BodyError(JuteError):
    """A request body that does not parse; the header did, so the server can answer this
    xid with Err.MARSHALLING_ERROR."""

    def __init__(self, xid: int, op: int, reason: str) -> None:
        super().__init__(f"opcode {op} (xid {xid}): {reason}")
        self.xid = xid
        self.op = op


# ---- handshake ----------------------------------------------------------------------


class ConnectRequest(msgspec.Struct, frozen=True, array_like=True):
    protocol_version: int
    last_zxid_seen: int
    timeout: int  # requested session timeout, ms
    session_id: int  # 0 = a new session; else re-attach with passwd
    passwd: bytes
    read_only: bool | None = None  # None: an old client that sent no readOnly byte

    def pack(self) -> bytes:
        body = (_CONNECT_HEAD.pack(self.protocol_version, self.last_zxid_seen, self.timeout,
                                   self.session_id) + pack_buffer(self.passwd))
        if self.read_only is not None:
            body += pack_bool(self.read_only)
        return body


class ConnectResponse(msgspec.Struct, frozen=True, array_like=True):
    protocol_version: int
    timeout: int  # negotiated session timeout, ms; <= 0 tells the client its session expired
    session_id: int
    passwd: bytes
    read_only: bool | None = None  # echoed only to a client that sent its readOnly byte


def decode_connect_request(frame: bytes) -> ConnectRequest:
    """The first frame of a connection (no RequestHeader); raises JuteError."""
    r = Reader(frame)
    if r.remaining < _CONNECT_HEAD.size:
        raise JuteError(f"connect request of {len(frame)} bytes is truncated")
    version, last_zxid, timeout, session_id = _CONNECT_HEAD.unpack_from(frame, 0)
    r.pos = _CONNECT_HEAD.size
    passwd = r.read_buffer() or b""
    # readOnly sits outside the jute record: old clients omit it.
    read_only = r.read_bool() if r.remaining else None
    return ConnectRequest(version, last_zxid, timeout, session_id, passwd, read_only)


def connect_response_frame(resp: ConnectResponse) -> bytes:
    body = (_CONNECT_REPLY_HEAD.pack(resp.protocol_version, resp.timeout, resp.session_id)
            + pack_buffer(resp.passwd))
    if resp.read_only is not None:
        body += pack_bool(resp.read_only)
    return _LENGTH.pack(len(body)) + body


def accept_connect(req: ConnectRequest, timeout: int, session_id: int, passwd: bytes) -> bytes:
    """The answer to a handshake whose session is created or re-attached. readOnly goes
    back (False: this server takes writes) only to a client that sent one."""
    read_only = None if req.read_only is None else False
    return connect_response_frame(
        ConnectResponse(PROTOCOL_VERSION, timeout, session_id, passwd, read_only))


def refuse_connect(req: ConnectRequest) -> bytes:
    """The answer to a handshake whose session cannot be re-attached (expired, unknown,
    wrong password, or a client that has seen a later zxid than ours): timeout 0 tells
    the client its session expired; ZooKeeper sends session 0 and a zero password."""
    return accept_connect(req, 0, 0, bytes(PASSWD_LEN))


def decode_connect_response(frame: bytes) -> ConnectResponse:
    """Client direction: a ConnectResponse frame (without its length)."""
    r = Reader(frame)
    version, timeout, session_id = r.read_int(), r.read_int(), r.read_long()
    passwd = r.read_buffer() or b""
    read_only = r.read_bool() if r.remaining else None
    return ConnectResponse(version, timeout, session_id, passwd, read_only)


# ---- request records ----------------------------------------------------------------




def _pack_acls(acls: Sequence[Acl]) -> bytes:
    return INT.pack(len(acls)) + b"".join(
        INT.pack(a.perms) + pack_ustring(a.scheme) + pack_ustring(a.id) for a in acls)


# Nearly every create carries exactly this vector: recognised by its bytes, not parsed.
_OPEN_ACL_BYTES = _pack_acls(OPEN_ACL_UNSAFE)
_OPEN_ACL_LEN = len(_OPEN_ACL_BYTES)


def _read_acls(r: Reader) -> tuple[Acl, ...]:
    pos = r.pos
    if r.buf[pos:pos + _OPEN_ACL_LEN] == _OPEN_ACL_BYTES and pos + _OPEN_ACL_LEN <= r.end:
        r.pos = pos + _OPEN_ACL_LEN
        return OPEN_ACL_UNSAFE
    n = r.read_count("ACL vector", _ACL_MIN_SIZE)
    return tuple([Acl(r.read_int(), r.read_ustring(), r.read_ustring()) for _ in range(n)])


class Record(msgspec.Struct, frozen=True, array_like=True, tag=True):
    """A request body; OP is its opcode. `read` parses it, `pack` writes it."""

    OP: ClassVar[int]

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls()

    def pack(self) -> bytes:
        return b""


class _PathWatch(Record, frozen=True):
    path: str
    watch: bool

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring(), r.read_bool())

    def pack(self) -> bytes:
        return pack_ustring(self.path) + pack_bool(self.watch)


class _PathVersion(Record, frozen=True):
    path: str
    version: int  # -1: any

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring(), r.read_int())

    def pack(self) -> bytes:
        return pack_ustring(self.path) + INT.pack(self.version)


class _Path(Record, frozen=True):
    path: str

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring())

    def pack(self) -> bytes:
        return pack_ustring(self.path)


class CreateRequest(Record, frozen=True):
    OP = Op.CREATE
    path: str
    data: bytes
    acl: tuple[Acl, ...]
    flags: int  # a CreateMode value; the handler rejects others with BAD_ARGUMENTS

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring(), r.read_buffer() or b"", _read_acls(r), r.read_int())

    def pack(self) -> bytes:
        return (pack_ustring(self.path) + pack_buffer(self.data) + _pack_acls(self.acl)
                + INT.pack(self.flags))


class Create2Request(CreateRequest, frozen=True):
    OP = Op.CREATE2  # answered with path and Stat


class CreateContainerRequest(CreateRequest, frozen=True):
    OP = Op.CREATE_CONTAINER


class CreateTTLRequest(CreateRequest, frozen=True):
    OP = Op.CREATE_TTL
    ttl: int = 0  # ms

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring(), r.read_buffer() or b"", _read_acls(r), r.read_int(),
                   r.read_long())

    def pack(self) -> bytes:
        return super().pack() + LONG.pack(self.ttl)


class DeleteRequest(_PathVersion, frozen=True):
    OP = Op.DELETE


class ExistsRequest(_PathWatch, frozen=True):
    OP = Op.EXISTS


class GetDataRequest(_PathWatch, frozen=True):
    OP = Op.GET_DATA


class SetDataRequest(Record, frozen=True):
    OP = Op.SET_DATA
    path: str
    data: bytes
    version: int  # -1: any

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring(), r.read_buffer() or b"", r.read_int())

    def pack(self) -> bytes:
        return pack_ustring(self.path) + pack_buffer(self.data) + INT.pack(self.version)


class GetACLRequest(_Path, frozen=True):
    OP = Op.GET_ACL


class SetACLRequest(Record, frozen=True):
    OP = Op.SET_ACL
    path: str
    acl: tuple[Acl, ...]
    version: int  # the ACL version (aversion), -1: any

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring(), _read_acls(r), r.read_int())

    def pack(self) -> bytes:
        return pack_ustring(self.path) + _pack_acls(self.acl) + INT.pack(self.version)


class GetChildrenRequest(_PathWatch, frozen=True):
    OP = Op.GET_CHILDREN


class GetChildren2Request(_PathWatch, frozen=True):
    OP = Op.GET_CHILDREN2  # answered with the children and the Stat


class SyncRequest(_Path, frozen=True):
    OP = Op.SYNC


class PingRequest(Record, frozen=True):
    OP = Op.PING


class CheckVersionRequest(_PathVersion, frozen=True):
    OP = Op.CHECK


class CheckWatchesRequest(Record, frozen=True):
    OP = Op.CHECK_WATCHES
    path: str
    watcher_type: int  # 1 children, 2 data, 3 any

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring(), r.read_int())

    def pack(self) -> bytes:
        return pack_ustring(self.path) + INT.pack(self.watcher_type)


class RemoveWatchesRequest(CheckWatchesRequest, frozen=True):
    OP = Op.REMOVE_WATCHES


class AuthRequest(Record, frozen=True):
    OP = Op.AUTH  # sent with xid -4
    auth_type: int
    scheme: str
    auth: bytes

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_int(), r.read_ustring(), r.read_buffer() or b"")

    def pack(self) -> bytes:
        return INT.pack(self.auth_type) + pack_ustring(self.scheme) + pack_buffer(self.auth)


class SetWatchesRequest(Record, frozen=True):
    OP = Op.SET_WATCHES  # sent with xid -8 on reconnect; answered with a bare header
    relative_zxid: int
    data_watches: tuple[str, ...]
    exist_watches: tuple[str, ...]
    child_watches: tuple[str, ...]

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_long(), tuple(r.read_ustring_vector()),
                   tuple(r.read_ustring_vector()), tuple(r.read_ustring_vector()))

    def pack(self) -> bytes:
        return (LONG.pack(self.relative_zxid) + pack_ustring_vector(self.data_watches)
                + pack_ustring_vector(self.exist_watches)
                + pack_ustring_vector(self.child_watches))


class SetWatches2Request(SetWatchesRequest, frozen=True):
    OP = Op.SET_WATCHES2
    persistent_watches: tuple[str, ...] = ()
    persistent_recursive_watches: tuple[str, ...] = ()

    @classmethod
    def read(cls, r: Reader) -> Record:
        vec = r.read_ustring_vector
        return cls(r.read_long(), tuple(vec()), tuple(vec()), tuple(vec()), tuple(vec()),
                   tuple(vec()))

    def pack(self) -> bytes:
        return (super().pack() + pack_ustring_vector(self.persistent_watches)
                + pack_ustring_vector(self.persistent_recursive_watches))


class GetEphemeralsRequest(_Path, frozen=True):
    OP = Op.GET_EPHEMERALS  # path is a prefix; answered with a string vector


class GetAllChildrenNumberRequest(_Path, frozen=True):
    OP = Op.GET_ALL_CHILDREN_NUMBER  # answered with an int


class AddWatchRequest(Record, frozen=True):
    OP = Op.ADD_WATCH  # answered with int 0
    path: str
    mode: int  # AddWatchMode; the handler rejects others with BAD_ARGUMENTS

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(r.read_ustring(), r.read_int())

    def pack(self) -> bytes:
        return pack_ustring(self.path) + INT.pack(self.mode)


class WhoAmIRequest(Record, frozen=True):
    OP = Op.WHO_AM_I


class CloseSessionRequest(Record, frozen=True):
    OP = Op.CLOSE_SESSION  # answered with a bare header, then the socket closes


WriteOp = (CreateRequest | Create2Request | CreateContainerRequest | CreateTTLRequest
           | DeleteRequest | SetDataRequest | CheckVersionRequest)
ReadOp = GetChildrenRequest | GetDataRequest
_WRITE_OPS: dict[int, type[Record]] = {c.OP: c for c in WriteOp.__args__}
_READ_OPS: dict[int, type[Record]] = {c.OP: c for c in ReadOp.__args__}


def _read_multi(r: Reader, allowed: dict[int, type[Record]], kind: str) -> tuple[Record, ...]:
    """MultiHeader(type, done, err) + record per op, up to a header with done set.
    ZooKeeper refuses to mix reads and writes in one multi; so do we."""
    ops: list[Record] = []
    while True:
        if r.remaining < _MULTI_HEADER.size:
            raise JuteError(f"{kind} ends without its closing header")
        op, done, _err = _MULTI_HEADER.unpack_from(r.buf, r.pos)
        r.pos += _MULTI_HEADER.size
        if done:
            return tuple(ops)
        cls = allowed.get(op)
        if cls is None:
            raise JuteError(f"opcode {op} is not allowed in a {kind}")
        ops.append(cls.read(r))


def _pack_multi(ops: Iterable[Record]) -> bytes:
    return b"".join(_MULTI_HEADER.pack(op.OP, False, -1) + op.pack() for op in ops) + _MULTI_END


class MultiRequest(Record, frozen=True):
    OP = Op.MULTI  # all or nothing
    ops: tuple[WriteOp, ...]

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(_read_multi(r, _WRITE_OPS, "multi"))  # type: ignore[arg-type]

    def pack(self) -> bytes:
        return _pack_multi(self.ops)


class MultiReadRequest(Record, frozen=True):
    OP = Op.MULTI_READ  # each read answered on its own
    ops: tuple[ReadOp, ...]

    @classmethod
    def read(cls, r: Reader) -> Record:
        return cls(_read_multi(r, _READ_OPS, "multiRead"))  # type: ignore[arg-type]

    def pack(self) -> bytes:
        return _pack_multi(self.ops)


class Unimplemented(Record, frozen=True):
    """An opcode this server does not serve: answer Err.UNIMPLEMENTED."""

    OP = Op.ERROR
    op: int


# Every request body, as one tagged union: a request travels in a replicated log entry
# as msgpack and decodes back with `msgspec.msgpack.decode(raw, type=RequestBody)`.
RequestBody = (
    CreateRequest | Create2Request | CreateContainerRequest | CreateTTLRequest | DeleteRequest
    | ExistsRequest | GetDataRequest | SetDataRequest | GetACLRequest | SetACLRequest
    | GetChildrenRequest | GetChildren2Request | SyncRequest | PingRequest | CheckVersionRequest
    | CheckWatchesRequest | RemoveWatchesRequest | AuthRequest | SetWatchesRequest
    | SetWatches2Request | GetEphemeralsRequest | GetAllChildrenNumberRequest | AddWatchRequest
    | WhoAmIRequest | CloseSessionRequest | MultiRequest | MultiReadRequest | Unimplemented)
REQUEST_TYPES: tuple[type[Record], ...] = tuple(
    t for t in RequestBody.__args__ if t is not Unimplemented)
_READERS = {cls.OP: cls.read for cls in REQUEST_TYPES}


class Request(msgspec.Struct, frozen=True, array_like=True):
    xid: int
    op: int
    body: RequestBody


def decode_request(frame: bytes) -> Request:
    """A frame after the handshake: RequestHeader + the opcode's record.

    Raises JuteError when the header is short (close the connection) and BodyError when
    the body does not parse (answer MARSHALLING_ERROR). Bytes after the record are
    ignored, as ZooKeeper does: newer clients may append fields."""
    if len(frame) < _HEADER.size:
        raise JuteError(f"request of {len(frame)} bytes has no header")
    xid, op = _HEADER.unpack_from(frame, 0)
    read = _READERS.get(op)
    if read is None:
        return Request(xid, op, Unimplemented(op))
    try:
        return Request(xid, op, read(Reader(frame, _HEADER.size)))  # type: ignore[arg-type]
    except JuteError as e:
        raise BodyError(xid, op, str(e)) from None


def encode_request(xid: int, body: Record) -> bytes:
    """Client direction: the length-prefixed frame of one request."""
    payload = _HEADER.pack(xid, body.OP) + body.pack()
    return _LENGTH.pack(len(payload)) + payload


# ---- replies ------------------------------------------------------------------------


class ReplyHeader(msgspec.Struct, frozen=True, array_like=True):
    xid: int
    zxid: int
    err: int


def reply_frame(xid: int, zxid: int, err: int = 0, body: bytes = b"") -> bytes:
    """One reply: header, then the body (which must be empty when err is not 0)."""
    return _REPLY_FRAME.pack(_REPLY_HEADER_LEN + len(body), xid, zxid, err) + body


def error_reply(xid: int, zxid: int, err: int) -> bytes:
    return _REPLY_FRAME.pack(_REPLY_HEADER_LEN, xid, zxid, err)


def ping_reply(zxid: int) -> bytes:
    return _REPLY_FRAME.pack(_REPLY_HEADER_LEN, XID_PING, zxid, 0)


def notification_frame(event_type: int, path: str, state: int = SYNC_CONNECTED) -> bytes:
    """A WatcherEvent(type, state, path) under ReplyHeader(-1, -1, 0)."""
    body = INT_INT.pack(event_type, state) + pack_ustring(path)
    return _REPLY_FRAME.pack(_REPLY_HEADER_LEN + len(body), XID_NOTIFICATION, -1, 0) + body


def pack_stat(s: Stat) -> bytes:
    return STAT.pack(s.czxid, s.mzxid, s.ctime, s.mtime, s.version, s.cversion, s.aversion,
                     s.ephemeralOwner, s.dataLength, s.numChildren, s.pzxid)


def path_body(path: str) -> bytes:
    """create, sync."""
    return pack_ustring(path)


def path_stat_body(path: str, stat: Stat) -> bytes:
    """create2, createContainer, createTTL."""
    return pack_ustring(path) + pack_stat(stat)


def stat_body(stat: Stat) -> bytes:
    """exists, setData, setACL."""
    return pack_stat(stat)


def data_stat_body(data: bytes, stat: Stat) -> bytes:
    """getData."""
    return pack_buffer(data) + pack_stat(stat)


def children_body(children: Iterable[str]) -> bytes:
    """getChildren, getEphemerals."""
    return pack_ustring_vector(children)


def children_stat_body(children: Iterable[str], stat: Stat) -> bytes:
    """getChildren2."""
    return pack_ustring_vector(children) + pack_stat(stat)


def acl_stat_body(acls: Sequence[Acl], stat: Stat) -> bytes:
    """getACL."""
    return _pack_acls(acls) + pack_stat(stat)


def int_body(value: int) -> bytes:
    """addWatch (0), getAllChildrenNumber."""
    return INT.pack(value)


def who_am_i_body(identities: Sequence[tuple[str, str]]) -> bytes:
    """whoAmI: vector<ClientInfo(authScheme, user)>."""
    return INT.pack(len(identities)) + b"".join(
        pack_ustring(scheme) + pack_ustring(user) for scheme, user in identities)


# Results of the ops of a multi, in request order.


class OpResult(msgspec.Struct, frozen=True, array_like=True, tag=True):
    TYPE: ClassVar[int]

    def pack(self) -> bytes:
        return b""


class CreateResult(OpResult, frozen=True):
    TYPE = Op.CREATE
    path: str

    def pack(self) -> bytes:
        return pack_ustring(self.path)


class Create2Result(OpResult, frozen=True):
    TYPE = Op.CREATE2  # for create2, createContainer and createTTL ops, as ZooKeeper does
    path: str
    stat: Stat

    def pack(self) -> bytes:
        return pack_ustring(self.path) + pack_stat(self.stat)


class DeleteResult(OpResult, frozen=True):
    TYPE = Op.DELETE


class CheckResult(OpResult, frozen=True):
    TYPE = Op.CHECK


class SetDataResult(OpResult, frozen=True):
    TYPE = Op.SET_DATA
    stat: Stat

    def pack(self) -> bytes:
        return pack_stat(self.stat)


class GetDataResult(OpResult, frozen=True):
    TYPE = Op.GET_DATA
    data: bytes
    stat: Stat

    def pack(self) -> bytes:
        return data_stat_body(self.data, self.stat)


class GetChildrenResult(OpResult, frozen=True):
    TYPE = Op.GET_CHILDREN
    children: tuple[str, ...]

    def pack(self) -> bytes:
        return pack_ustring_vector(self.children)


class ErrorResult(OpResult, frozen=True):
    TYPE = Op.ERROR
    err: int

    def pack(self) -> bytes:
        return INT.pack(self.err)


def multi_body(results: Iterable[OpResult]) -> bytes:
    """MultiHeader(type, false, err) + result per op, then MultiHeader(-1, true, -1)."""
    parts = []
    for res in results:
        err = res.err if isinstance(res, ErrorResult) else 0
        parts.append(_MULTI_HEADER.pack(res.TYPE, False, err) + res.pack())
    parts.append(_MULTI_END)
    return b"".join(parts)


def multi_failure(n_ops: int, failed: int, err: int) -> list[OpResult]:
    """A rolled-back multi's results: 0 for the ops before the failing one (kazoo reads
    it as RolledBackError), its code for it, RuntimeInconsistency for those after."""
    if not 0 <= failed < n_ops:
        raise ValueError(f"failed op {failed} outside a multi of {n_ops} ops")
    results: list[OpResult] = [ErrorResult(Err.OK)] * failed
    results.append(ErrorResult(err))
    results += [ErrorResult(Err.RUNTIME_INCONSISTENCY)] * (n_ops - failed - 1)
    return results


def decode_reply_header(frame: bytes) -> tuple[ReplyHeader, Reader]:
    """Client direction: a reply frame's header and a reader positioned on its body."""
    if len(frame) < _REPLY_HEADER_LEN:
        raise JuteError(f"reply of {len(frame)} bytes has no header")
    xid, zxid, err = _REPLY_HEADER.unpack_from(frame, 0)
    return ReplyHeader(xid, zxid, err), Reader(frame, _REPLY_HEADER_LEN)


def read_stat(r: Reader) -> Stat:
    if r.remaining < STAT.size:
        raise JuteError(f"truncated Stat: {r.remaining} of {STAT.size} bytes")
    stat = Stat(*STAT.unpack_from(r.buf, r.pos))
    r.pos += STAT.size
    return stat


def read_multi_results(r: Reader) -> list[tuple[int, int]]:
    """Client direction: a multi reply's results as (type, err) pairs, in request order
    (type Op.ERROR with the op's code for a rolled-back multi), bodies read past."""
    results: list[tuple[int, int]] = []
    while True:
        if r.remaining < _MULTI_HEADER.size:
            raise JuteError("multi reply ends without its closing header")
        op, done, err = _MULTI_HEADER.unpack_from(r.buf, r.pos)
        r.pos += _MULTI_HEADER.size
        if done:
            return results
        if op == Op.ERROR:
            err = r.read_int()
        elif op == Op.CREATE:
            r.read_ustring()
        elif op == Op.CREATE2:
            r.read_ustring()
            read_stat(r)
        elif op == Op.SET_DATA:
            read_stat(r)
        elif op == Op.GET_DATA:
            r.read_buffer()
            read_stat(r)
        elif op == Op.GET_CHILDREN:
            r.read_ustring_vector()
        elif op not in (Op.DELETE, Op.CHECK):
            raise JuteError(f"multi reply holds a result of unknown type {op}")
        results.append((op, err))


# ---- the byte stream ----------------------------------------------------------------


class FrameSplitter:
    """Cuts one connection's byte stream into frames (the bytes after each length).

    A fresh connection may instead open with a four-letter word (`ruok`, `srvr`, ...):
    then `command` is set, no frame is ever returned, and the server answers in text and
    closes. Only the first four bytes of a connection are checked, as ZooKeeper does.
    """

    __slots__ = ("_buf", "_max", "_fresh", "command")

    def __init__(self, max_frame: int = JUTE_MAXBUFFER) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._fresh = True
        self.command: str | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """The frames completed by `data`; raises FrameError on a bad length."""
        buf = self._buf
        buf += data
        if self._fresh:
            if len(buf) < 4:
                return []
            self._fresh = False
            head = bytes(buf[:4])
            if head in KNOWN_WORDS:
                self.command = head.decode()
        if self.command is not None:
            buf.clear()
            return []
        frames = []
        pos = 0
        size = len(buf)
        limit = self._max
        while size - pos >= 4:
            (length,) = _LENGTH.unpack_from(buf, pos)
            if length < 0 or length > limit:
                raise FrameError(f"frame length {length} outside 0..{limit} (jute.maxbuffer)")
            end = pos + 4 + length
            if end > size:
                break
            frames.append(bytes(buf[pos + 4:end]))
            pos = end
        if pos:
            del buf[:pos]
        return frames

