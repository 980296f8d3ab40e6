"""ZooKeeper's client wire (nodes/zk/jute.py, wire.py, fourletter.py), with kazoo as the
oracle: what kazoo's connection sends decodes to the right records, and what we send,
kazoo's own connection code reads back as the right results."""

from __future__ import annotations

import struct

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kazoo import exceptions as kex
from kazoo.client import KazooClient
from kazoo.protocol import serialization as ks
from kazoo.protocol.states import EventType as KEventType
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL as KACL
from kazoo.security import OPEN_ACL_UNSAFE, Id

from nodes.zk import fourletter, wire
from nodes.zk.codes import XID_AUTH, XID_PING, XID_SET_WATCHES, Err, EventType, Op
from nodes.zk.jute import JuteError, Reader
from nodes.zk.stat import Stat

STAT = Stat(czxid=5, mzxid=9, ctime=1_700_000_000_123, mtime=1_700_000_000_456, version=3,
            cversion=2, aversion=0, ephemeralOwner=0x1234_5678_9ABC, dataLength=4,
            numChildren=2, pzxid=8)
INT = struct.Struct("!i")


def as_znode_stat(stat: Stat) -> ZnodeStat:
    return ZnodeStat(*msgspec.structs.astuple(stat))


class KazooSide:
    """kazoo's real connection handler, unconnected: its socket writes are captured and its
    socket reads are served from the bytes our codec produced."""

    def __init__(self) -> None:
        self.client = KazooClient()  # never started: no threads, no socket
        self.client._stopped.clear()  # read replies and events as a live client would
        self.conn = self.client._connection
        self.sent: list[bytes] = []
        self.incoming = bytearray()
        self.callbacks: list[object] = []
        self.conn._write = lambda msg, timeout: self.sent.append(bytes(msg))
        self.conn._read = self._read
        self.client.handler.dispatch_callback = self.callbacks.append

    def _read(self, length: int, timeout: float) -> bytes:
        assert len(self.incoming) >= length, "kazoo read past what the server sent"
        chunk = bytes(self.incoming[:length])
        del self.incoming[:length]
        return chunk

    def send(self, request: object, xid: int | None) -> bytes:
        """The frame kazoo writes for `request`, length included."""
        self.conn._submit(request, 1.0, xid)
        return self.sent.pop()

    def receive(self, request: object, xid: int, frame: bytes) -> object:
        """kazoo's result (or exception) for `request` when the server answers `frame`."""
        result = self.client.handler.async_result()
        self.client._pending.append((request, result, xid))
        self.incoming += frame
        self.conn._read_socket(1.0)
        assert not self.incoming, "kazoo left bytes of the reply unread"
        try:
            return result.get(timeout=0)
        except Exception as exc:  # kazoo's error for the reply
            return exc


@pytest.fixture
def kazoo() -> KazooSide:
    return KazooSide()


def decoded(frame: bytes) -> wire.Request:
    """One length-prefixed frame through the splitter and the request decoder."""
    splitter = wire.FrameSplitter()
    [body] = splitter.feed(frame)
    return wire.decode_request(body)


# ---- requests kazoo sends -----------------------------------------------------------

WORLD = (wire.Acl(31, "world", "anyone"),)
DIGEST = KACL(5, Id("digest", "u:hash"))

KAZOO_REQUESTS = [
    (ks.Create("/a", b"x", OPEN_ACL_UNSAFE, 0), wire.CreateRequest("/a", b"x", WORLD, 0)),
    (ks.Create("/a/b-", None, [DIGEST], 3),
     wire.CreateRequest("/a/b-", b"", (wire.Acl(5, "digest", "u:hash"),), 3)),
    (ks.Create2("/c", b"\x00\xff", OPEN_ACL_UNSAFE, 1),
     wire.Create2Request("/c", b"\x00\xff", WORLD, 1)),
    (ks.Delete("/a", -1), wire.DeleteRequest("/a", -1)),
    (ks.Delete("/a", 7), wire.DeleteRequest("/a", 7)),
    (ks.Exists("/a", None), wire.ExistsRequest("/a", False)),
    (ks.Exists("/a", print), wire.ExistsRequest("/a", True)),
    (ks.GetData("/é", print), wire.GetDataRequest("/é", True)),
    (ks.SetData("/a", b"v" * 1000, 4), wire.SetDataRequest("/a", b"v" * 1000, 4)),
    (ks.GetACL("/a"), wire.GetACLRequest("/a")),
    (ks.SetACL("/a", [DIGEST, *OPEN_ACL_UNSAFE], -1),
     wire.SetACLRequest("/a", (wire.Acl(5, "digest", "u:hash"), *WORLD), -1)),
    (ks.GetChildren("/", None), wire.GetChildrenRequest("/", False)),
    (ks.GetChildren2("/a", print), wire.GetChildren2Request("/a", True)),
    (ks.Sync("/a"), wire.SyncRequest("/a")),
    (ks.Sync(""), wire.SyncRequest("")),  # kazoo writes "" as null (-1)
    (ks.CheckVersion("/a", 2), wire.CheckVersionRequest("/a", 2)),
    (ks.Transaction([ks.Create("/t", b"1", OPEN_ACL_UNSAFE, 2), ks.Delete("/u", 3),
                     ks.SetData("/v", b"2", -1), ks.CheckVersion("/w", 0)]),
     wire.MultiRequest((wire.CreateRequest("/t", b"1", WORLD, 2), wire.DeleteRequest("/u", 3),
                        wire.SetDataRequest("/v", b"2", -1),
                        wire.CheckVersionRequest("/w", 0)))),
    (ks.Transaction([]), wire.MultiRequest(())),
    (ks.Close(), wire.CloseSessionRequest()),
    (ks.Reconfig("", "", "server.1=h:1:2", -1), wire.Unimplemented(Op.RECONFIG)),
    (ks.SASL(b"challenge"), wire.Unimplemented(Op.SASL)),
]


@pytest.mark.parametrize(("request_", "expected"), KAZOO_REQUESTS,
                         ids=[type(r).__name__ for r, _ in KAZOO_REQUESTS])
def test_every_request_kazoo_sends_decodes_to_its_fields(kazoo, request_, expected):
    req = decoded(kazoo.send(request_, 17))
    assert req == wire.Request(17, request_.type, expected)


def test_kazoo_special_xid_requests_decode(kazoo):
    assert decoded(kazoo.send(ks.PingInstance, XID_PING)) == wire.Request(
        XID_PING, Op.PING, wire.PingRequest())
    auth = decoded(kazoo.send(ks.Auth(0, "digest", "user:pw"), XID_AUTH))
    assert auth == wire.Request(XID_AUTH, Op.AUTH, wire.AuthRequest(0, "digest", b"user:pw"))


@pytest.mark.parametrize("read_only", [False, True])
def test_kazoo_connect_request_decodes(kazoo, read_only):
    connect = ks.Connect(0, 0x1_0000_0005, 10000, 0x7766_5544_3322_1100, b"p" * 16, read_only)
    frame = kazoo.send(connect, None)  # the handshake has no request header
    [body] = wire.FrameSplitter().feed(frame)
    assert wire.decode_connect_request(body) == wire.ConnectRequest(
        0, 0x1_0000_0005, 10000, 0x7766_5544_3322_1100, b"p" * 16, read_only)


def test_connect_request_without_read_only_byte_is_an_old_client():
    old = wire.ConnectRequest(0, 0, 30000, 0, bytes(16))
    assert old.read_only is None
    assert wire.decode_connect_request(old.pack()) == old
    with pytest.raises(JuteError, match="truncated"):
        wire.decode_connect_request(old.pack()[:20])


# zookeeper.jute layouts for the requests kazoo 2.11 cannot send (the Java client's).
def jute_string(s: str) -> bytes:
    return INT.pack(len(s.encode())) + s.encode()


def jute_strings(items: list[str]) -> bytes:
    return INT.pack(len(items)) + b"".join(jute_string(s) for s in items)


def java_frame(xid: int, op: int, body: bytes) -> bytes:
    return INT.pack(8 + len(body)) + struct.pack("!ii", xid, op) + body


def test_java_layouts_of_set_watches_add_watch_and_watch_removal_decode():
    sw = java_frame(XID_SET_WATCHES, Op.SET_WATCHES, struct.pack("!q", 42)
                    + jute_strings(["/d1", "/d2"]) + jute_strings([]) + jute_strings(["/c"]))
    assert decoded(sw).body == wire.SetWatchesRequest(42, ("/d1", "/d2"), (), ("/c",))
    sw2 = java_frame(XID_SET_WATCHES, Op.SET_WATCHES2, struct.pack("!q", 7)
                     + jute_strings([]) + jute_strings(["/e"]) + jute_strings([])
                     + jute_strings(["/p"]) + INT.pack(-1))  # a null vector reads as empty
    assert decoded(sw2).body == wire.SetWatches2Request(7, (), ("/e",), (), ("/p",), ())
    add = java_frame(5, Op.ADD_WATCH, jute_string("/x") + INT.pack(1))
    assert decoded(add) == wire.Request(5, Op.ADD_WATCH, wire.AddWatchRequest("/x", 1))
    rm = java_frame(6, Op.REMOVE_WATCHES, jute_string("/x") + INT.pack(3))
    assert decoded(rm).body == wire.RemoveWatchesRequest("/x", 3)
    chk = java_frame(7, Op.CHECK_WATCHES, jute_string("/x") + INT.pack(2))
    assert decoded(chk).body == wire.CheckWatchesRequest("/x", 2)
    ttl = java_frame(8, Op.CREATE_TTL, jute_string("/t") + INT.pack(-1) + INT.pack(0)
                     + INT.pack(5) + struct.pack("!q", 60_000))
    assert decoded(ttl).body == wire.CreateTTLRequest("/t", b"", (), 5, 60_000)
    who = java_frame(9, Op.WHO_AM_I, b"")
    assert decoded(who).body == wire.WhoAmIRequest()
    read = java_frame(10, Op.MULTI_READ, struct.pack("!i?i", Op.GET_DATA, False, -1)
                      + jute_string("/r") + b"\x01" + struct.pack("!i?i", -1, True, -1))
    assert decoded(read).body == wire.MultiReadRequest((wire.GetDataRequest("/r", True),))


# ---- replies kazoo reads ------------------------------------------------------------


@pytest.mark.parametrize("read_only", [None, False, True])
def test_kazoo_reads_our_connect_response(kazoo, read_only):
    passwd = bytes(range(16))
    kazoo.incoming += wire.connect_response_frame(
        wire.ConnectResponse(0, 8000, 0x5EED, passwd, read_only))
    result, _zxid = kazoo.conn._invoke(1.0, ks.Connect(0, 0, 10000, 0, bytes(16), False))
    assert (result.protocol_version, result.time_out, result.session_id, result.passwd,
            result.read_only) == (0, 8000, 0x5EED, passwd, bool(read_only))


def test_accept_and_refuse_answer_in_the_clients_dialect(kazoo):
    passwd = bytes(range(16))
    for sent, echoed in ((None, None), (False, False), (True, False)):
        req = wire.ConnectRequest(0, 0, 10000, 0, bytes(16), sent)
        frame = wire.accept_connect(req, 6000, 99, passwd)
        assert wire.decode_connect_response(frame[4:]) == wire.ConnectResponse(
            0, 6000, 99, passwd, echoed)
    kazoo_req = wire.ConnectRequest(0, 0, 10000, 0x42, bytes(16), False)
    resp, _ = ks.Connect.deserialize(wire.refuse_connect(kazoo_req)[4:], 0)
    assert resp.time_out <= 0  # what makes kazoo raise SessionExpiredError
    assert (resp.session_id, resp.passwd) == (0, bytes(16))


def test_connect_response_round_trips_and_echoes_read_only_only_when_asked():
    for ro in (None, False, True):
        resp = wire.ConnectResponse(0, 0, 0, bytes(16), ro)
        frame = wire.connect_response_frame(resp)
        assert len(frame) == 4 + 4 + 4 + 8 + 4 + 16 + (ro is not None)
        assert wire.decode_connect_response(frame[4:]) == resp


ACL_STAT = ([KACL(31, Id("world", "anyone"))], as_znode_stat(STAT))
REPLIES = [
    (ks.Create("/a-0000000007", b"", OPEN_ACL_UNSAFE, 2), wire.path_body("/a-0000000007"),
     "/a-0000000007"),
    (ks.Create2("/b", b"", OPEN_ACL_UNSAFE, 0), wire.path_stat_body("/b", STAT),
     ("/b", as_znode_stat(STAT))),
    (ks.Delete("/a", -1), b"", True),
    (ks.Exists("/a", None), wire.stat_body(STAT), as_znode_stat(STAT)),
    (ks.GetData("/a", None), wire.data_stat_body(b"\x00data", STAT),
     (b"\x00data", as_znode_stat(STAT))),
    (ks.GetData("/a", None), wire.data_stat_body(b"", STAT), (b"", as_znode_stat(STAT))),
    (ks.SetData("/a", b"", -1), wire.stat_body(STAT), as_znode_stat(STAT)),
    (ks.GetACL("/a"), wire.acl_stat_body(wire.OPEN_ACL_UNSAFE, STAT), ACL_STAT),
    (ks.SetACL("/a", OPEN_ACL_UNSAFE, -1), wire.stat_body(STAT), as_znode_stat(STAT)),
    (ks.GetChildren("/", None), wire.children_body(["zookeeper", "a", "é"]),
     ["zookeeper", "a", "é"]),
    (ks.GetChildren("/a", None), wire.children_body([]), []),
    (ks.GetChildren2("/a", None), wire.children_stat_body(["x"], STAT),
     (["x"], as_znode_stat(STAT))),
    (ks.Sync("/a"), wire.path_body("/a"), "/a"),
    (ks.Transaction([ks.Create("/t", b"", OPEN_ACL_UNSAFE, 0), ks.Delete("/u", -1),
                     ks.SetData("/v", b"", -1), ks.CheckVersion("/w", 1)]),
     wire.multi_body([wire.CreateResult("/t"), wire.DeleteResult(), wire.SetDataResult(STAT),
                      wire.CheckResult()]),
     ["/t", True, as_znode_stat(STAT), True]),
]


@pytest.mark.parametrize(("request_", "body", "expected"), REPLIES,
                         ids=[type(r).__name__ for r, _, _ in REPLIES])
def test_kazoo_reads_our_reply_bodies(kazoo, request_, body, expected):
    assert kazoo.receive(request_, 33, wire.reply_frame(33, 0x10_0000_0001, 0, body)) == expected
    assert kazoo.client.last_zxid == 0x10_0000_0001


def test_kazoo_reads_a_rolled_back_multi():
    kazoo = KazooSide()
    txn = ks.Transaction([ks.Create("/t", b"", OPEN_ACL_UNSAFE, 0), ks.Delete("/u", -1),
                          ks.SetData("/v", b"", -1)])
    body = wire.multi_body(wire.multi_failure(3, 1, Err.NO_NODE))
    results = kazoo.receive(txn, 2, wire.reply_frame(2, 5, 0, body))
    assert [type(r) for r in results] == [kex.RolledBackError, kex.NoNodeError,
                                         kex.RuntimeInconsistency]


def test_multi_failure_codes_around_the_failing_op():
    assert [r.err for r in wire.multi_failure(4, 2, Err.BAD_VERSION)] == [0, 0, -103, -2]
    with pytest.raises(ValueError):
        wire.multi_failure(2, 2, Err.NO_NODE)


def test_error_replies_raise_kazoo_exceptions_and_exists_reads_none(kazoo):
    no_node = wire.error_reply(4, 0, Err.NO_NODE)
    assert kazoo.receive(ks.Exists("/gone", None), 4, no_node) is None
    assert isinstance(kazoo.receive(ks.GetData("/gone", None), 4, no_node), kex.NoNodeError)
    exists = wire.error_reply(5, 0, Err.NODE_EXISTS)
    assert isinstance(kazoo.receive(ks.Create("/a", b"", OPEN_ACL_UNSAFE, 0), 5, exists),
                      kex.NodeExistsError)
    unimpl = wire.error_reply(6, 0, Err.UNIMPLEMENTED)
    assert isinstance(kazoo.receive(ks.SASL(b""), 6, unimpl), kex.UnimplementedError)


def test_kazoo_reads_ping_auth_and_close_replies(kazoo):
    kazoo.conn.ping_outstanding.set()
    kazoo.incoming += wire.ping_reply(77)
    kazoo.conn._read_socket(1.0)
    assert not kazoo.conn.ping_outstanding.is_set()
    assert kazoo.receive(ks.Auth(0, "digest", "u:p"), XID_AUTH,
                         wire.reply_frame(XID_AUTH, 0, 0)) is True
    result = kazoo.client.handler.async_result()
    kazoo.client._pending.append((ks.CloseInstance, result, 9))
    kazoo.incoming += wire.reply_frame(9, 0, 0)
    assert kazoo.conn._read_socket(1.0) == ks.Close.type


@pytest.mark.parametrize(("event", "kazoo_type", "fired"), [
    (EventType.NODE_CREATED, KEventType.CREATED, {"data"}),
    (EventType.NODE_DELETED, KEventType.DELETED, {"data", "child"}),
    (EventType.NODE_DATA_CHANGED, KEventType.CHANGED, {"data"}),
    (EventType.NODE_CHILDREN_CHANGED, KEventType.CHILD, {"child"})])
def test_kazoo_dispatches_our_watch_notifications(kazoo, event, kazoo_type, fired):
    kazoo.client._data_watchers["/w/é"].add("data")
    kazoo.client._child_watchers["/w/é"].add("child")
    kazoo.incoming += wire.notification_frame(event, "/w/é")
    kazoo.conn._read_socket(1.0)
    assert {callback.func for callback in kazoo.callbacks} == fired
    for callback in kazoo.callbacks:
        [watched] = callback.args
        assert (watched.type, watched.path) == (kazoo_type, "/w/é")


def test_notification_header_is_xid_minus_one_zxid_minus_one():
    frame = wire.notification_frame(EventType.NODE_DELETED, "/n")
    header, offset = ks.ReplyHeader.deserialize(frame[4:], 0)
    assert header == ks.ReplyHeader(-1, -1, 0)
    watch, _ = ks.Watch.deserialize(frame[4:], offset)
    assert watch == ks.Watch(2, 3, "/n")


def test_remaining_reply_bodies():
    header, r = wire.decode_reply_header(wire.reply_frame(3, 1, 0, wire.int_body(0))[4:])
    assert header == wire.ReplyHeader(3, 1, 0) and r.read_int() == 0 and r.remaining == 0
    _, r = wire.decode_reply_header(
        wire.reply_frame(4, 1, 0, wire.who_am_i_body([("ip", "127.0.0.1")]))[4:])
    assert r.read_count("infos", 8) == 1 and (r.read_ustring(), r.read_ustring()) == (
        "ip", "127.0.0.1")
    _, r = wire.decode_reply_header(wire.reply_frame(5, 1, 0, wire.stat_body(STAT))[4:])
    assert wire.read_stat(r) == STAT
    with pytest.raises(JuteError, match="truncated Stat"):
        wire.read_stat(Reader(wire.stat_body(STAT)[:-1]))
    with pytest.raises(JuteError, match="no header"):
        wire.decode_reply_header(b"\x00" * 15)


def test_multi_read_results_and_create2_results_frame_as_zookeeper_does():
    body = wire.multi_body([wire.GetDataResult(b"d", STAT), wire.GetChildrenResult(("c",)),
                            wire.Create2Result("/p", STAT), wire.ErrorResult(Err.NO_NODE)])
    r = Reader(body)
    header = struct.Struct("!i?i")

    def next_header() -> tuple[int, bool, int]:
        h = header.unpack_from(body, r.pos)
        r.pos += header.size
        return h

    assert next_header() == (Op.GET_DATA, False, 0)
    assert r.read_buffer() == b"d" and wire.read_stat(r) == STAT
    assert next_header() == (Op.GET_CHILDREN, False, 0) and r.read_ustring_vector() == ["c"]
    assert next_header() == (Op.CREATE2, False, 0)
    assert r.read_ustring() == "/p" and wire.read_stat(r) == STAT
    assert next_header() == (Op.ERROR, False, Err.NO_NODE) and r.read_int() == Err.NO_NODE
    assert next_header() == (-1, True, -1) and r.remaining == 0


# ---- malformed requests -------------------------------------------------------------


def test_unknown_opcode_is_unimplemented_not_an_error():
    req = decoded(java_frame(3, 999, b"whatever"))
    assert req == wire.Request(3, 999, wire.Unimplemented(999))


def test_bad_bodies_raise_body_error_with_xid_and_op():
    cases = {
        "truncated record": java_frame(11, Op.GET_DATA, jute_string("/a")),  # no watch byte
        "string length 100 exceeds": java_frame(12, Op.EXISTS, INT.pack(100) + b"/a\x00"),
        "negative string length": java_frame(13, Op.SYNC, INT.pack(-2)),
        "cannot fit": java_frame(14, Op.SET_WATCHES, struct.pack("!q", 0) + INT.pack(1 << 20)),
        "negative ACL vector count": java_frame(15, Op.CREATE, jute_string("/a") + INT.pack(0)
                                                + INT.pack(-5)),
        "not UTF-8": java_frame(16, Op.GET_DATA, INT.pack(2) + b"\xff\xfe\x00"),
        "not allowed in a multi": java_frame(17, Op.MULTI, struct.pack("!i?i", Op.GET_DATA,
                                                                     False, -1)),
        "without its closing header": java_frame(18, Op.MULTI, struct.pack(
            "!i?i", Op.DELETE, False, -1) + jute_string("/a") + INT.pack(-1)),
    }
    for message, frame in cases.items():
        with pytest.raises(wire.BodyError, match=message) as info:
            decoded(frame)
        xid, op = struct.unpack_from("!ii", frame, 4)
        assert (info.value.xid, info.value.op) == (xid, op)
        assert "\n" not in str(info.value)


def test_a_short_header_is_a_jute_error_not_a_body_error():
    with pytest.raises(JuteError, match="no header") as info:
        wire.decode_request(b"\x00\x00\x00\x01\x00")
    assert type(info.value) is JuteError


def test_jute_reader_nulls_and_bools():
    r = Reader(INT.pack(-1) + INT.pack(-1) + b"\x02" + INT.pack(-1) + INT.pack(0))
    assert r.read_ustring() == "" and r.read_buffer() is None and r.read_bool() is True
    assert r.read_ustring_vector() == [] and r.read_buffer() == b"" and r.remaining == 0
    with pytest.raises(JuteError, match="long needs 8 bytes"):
        Reader(b"\x00" * 7).read_long()
    # three strings need at least 12 bytes, whatever they hold: refused before reading
    with pytest.raises(JuteError, match="count 3 cannot fit in the 8 bytes"):
        Reader(INT.pack(3) + INT.pack(-1) * 2).read_ustring_vector()


# ---- the byte stream ----------------------------------------------------------------


def test_splitter_reassembles_frames_fed_a_byte_at_a_time_and_many_per_chunk():
    frames = [wire.encode_request(i, wire.GetDataRequest(f"/n{i}", i % 2 == 0))
              for i in range(5)]
    stream = b"".join(frames)
    splitter = wire.FrameSplitter()
    out = []
    for i in range(len(stream)):
        out += splitter.feed(stream[i:i + 1])
    assert out == [f[4:] for f in frames]
    assert wire.FrameSplitter().feed(stream) == [f[4:] for f in frames]
    tail = wire.FrameSplitter()
    assert tail.feed(stream[:-3]) == [f[4:] for f in frames[:-1]]
    assert tail.feed(stream[-3:]) == [frames[-1][4:]]


def test_splitter_limit_is_jute_maxbuffer_and_configurable():
    assert wire.FrameSplitter().feed(INT.pack(0xFFFFF)) == []  # at the limit: wait for it
    with pytest.raises(wire.FrameError, match="jute.maxbuffer"):
        wire.FrameSplitter().feed(INT.pack(0x100000))
    with pytest.raises(wire.FrameError):
        wire.FrameSplitter().feed(INT.pack(-1))
    small = wire.FrameSplitter(max_frame=10)
    assert small.feed(INT.pack(10) + bytes(10)) == [bytes(10)]
    with pytest.raises(wire.FrameError):
        small.feed(INT.pack(11))


def test_kazoo_two_megabyte_create_is_refused_by_length(kazoo):
    frame = kazoo.send(ks.Create("/big", b"x" * 2_000_000, OPEN_ACL_UNSAFE, 0), 1)
    splitter = wire.FrameSplitter()
    with pytest.raises(wire.FrameError):
        splitter.feed(frame[:4096])  # refused from its length, before the body arrives


@pytest.mark.parametrize("word", ["ruok", "srvr", "stat", "envi", "conf", "mntr", "dump"])
def test_four_letter_word_on_a_fresh_connection(word):
    splitter = wire.FrameSplitter()
    assert splitter.feed(word[:2].encode()) == [] and splitter.command is None
    assert splitter.feed(word[2:].encode() + b"\n") == []
    assert splitter.command == word
    assert splitter.feed(b"more") == []


def test_four_letter_words_only_open_a_connection():
    splitter = wire.FrameSplitter()
    frame = wire.encode_request(1, wire.PingRequest())
    assert splitter.feed(frame) == [frame[4:]]
    with pytest.raises(wire.FrameError):  # "ruok" later is a length, far over the limit
        splitter.feed(b"ruok")
    assert splitter.command is None
    with pytest.raises(wire.FrameError):  # an unknown word is a length too
        wire.FrameSplitter().feed(b"abcd")


# ---- four-letter answers ------------------------------------------------------------

FACTS = fourletter.ServerFacts(mode="leader", node_count=7, zxid=0x1_0000_0002,
                               connections=2, clients=("/127.0.0.1:5000[1](queued=0)",))


def test_kazoo_server_version_parses_our_envi():
    client = KazooClient()
    client.command = lambda cmd=b"ruok": fourletter.answer(cmd.decode(), FACTS).decode()
    assert client.server_version() == (3, 8, 4)


def test_srvr_stat_mntr_lines():
    srvr = fourletter.answer("srvr", FACTS).decode().splitlines()
    assert srvr[0].startswith("Zookeeper version: 3.8.4-")
    assert "Mode: leader" in srvr and "Node count: 7" in srvr and "Zxid: 0x100000002" in srvr
    stat = fourletter.answer("stat", FACTS).decode().splitlines()
    assert stat[1:4] == ["Clients:", " /127.0.0.1:5000[1](queued=0)", ""]
    assert "Node count: 7" in stat
    mntr = dict(line.split("\t") for line in fourletter.answer("mntr", FACTS).decode()
                .splitlines())
    assert mntr["zk_server_state"] == "leader" and mntr["zk_znode_count"] == "7"
    assert fourletter.answer("ruok", FACTS) == b"imok"
    assert fourletter.answer("dump", FACTS) == (
        b"dump is not executed because it is not in the whitelist.\n")


# ---- fuzz ---------------------------------------------------------------------------

text = st.text(max_size=12)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
blob = st.binary(max_size=24)
acls = st.lists(st.builds(wire.Acl, i32, text, text), max_size=3).map(tuple)
paths = st.lists(text, max_size=3).map(tuple)
creates = [st.builds(cls, text, blob, acls, i32)
           for cls in (wire.CreateRequest, wire.Create2Request, wire.CreateContainerRequest)]
write_ops = st.one_of(
    *creates, st.builds(wire.CreateTTLRequest, text, blob, acls, i32, i64),
    st.builds(wire.DeleteRequest, text, i32), st.builds(wire.SetDataRequest, text, blob, i32),
    st.builds(wire.CheckVersionRequest, text, i32))
read_ops = st.one_of(st.builds(wire.GetDataRequest, text, st.booleans()),
                     st.builds(wire.GetChildrenRequest, text, st.booleans()))
records = st.one_of(
    write_ops, read_ops,
    *[st.builds(cls, text, st.booleans()) for cls in (wire.ExistsRequest,
                                                       wire.GetChildren2Request)],
    *[st.builds(cls, text) for cls in (wire.GetACLRequest, wire.SyncRequest,
                                      wire.GetEphemeralsRequest,
                                      wire.GetAllChildrenNumberRequest)],
    st.builds(wire.SetACLRequest, text, acls, i32),
    st.builds(wire.CheckWatchesRequest, text, i32),
    st.builds(wire.RemoveWatchesRequest, text, i32),
    st.builds(wire.AuthRequest, i32, text, blob),
    st.builds(wire.SetWatchesRequest, i64, paths, paths, paths),
    st.builds(wire.SetWatches2Request, i64, paths, paths, paths, paths, paths),
    st.builds(wire.AddWatchRequest, text, i32),
    st.just(wire.PingRequest()), st.just(wire.WhoAmIRequest()),
    st.just(wire.CloseSessionRequest()),
    st.builds(wire.MultiRequest, st.lists(write_ops, max_size=4).map(tuple)),
    st.builds(wire.MultiReadRequest, st.lists(read_ops, max_size=4).map(tuple)))


def decode_or_jute_error(frame: bytes) -> wire.Request | None:
    try:
        return wire.decode_request(frame)
    except JuteError as exc:
        assert type(exc) in (JuteError, wire.BodyError)
        assert str(exc) and "\n" not in str(exc)
        return None


@settings(max_examples=400, deadline=None)
@given(i32, records)
def test_valid_requests_round_trip(xid, record):
    frame = wire.encode_request(xid, record)
    req = decoded(frame)
    assert req == wire.Request(xid, record.OP, record)
    # and survive msgpack, as a replicated log entry would carry them
    raw = msgspec.msgpack.encode(req)
    assert msgspec.msgpack.decode(raw, type=wire.Request) == req
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=wire.RequestBody) == record


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(i32, records, st.data())
def test_mutated_valid_frames_decode_or_raise_jute_error(xid, record, data):
    body = bytearray(wire.encode_request(xid, record)[4:])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(body)))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip" and pos < len(body):
            body[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "cut":
            del body[pos:]
        else:
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=6))
    req = decode_or_jute_error(bytes(body))
    if req is not None:  # whatever decodes re-encodes to a frame that decodes the same
        assert isinstance(req.body, wire.Record)
        if not isinstance(req.body, wire.Unimplemented):
            assert decoded(wire.encode_request(req.xid, req.body)) == req


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_decode_or_raise_jute_or_frame_error(data):
    decode_or_jute_error(data)
    try:
        wire.decode_connect_request(data)
    except JuteError as exc:
        assert type(exc) is JuteError
    splitter = wire.FrameSplitter(max_frame=64)
    try:
        frames = splitter.feed(data)
    except wire.FrameError:
        return
    for frame in frames:
        decode_or_jute_error(frame)


@settings(max_examples=200, deadline=None)
@given(st.lists(records, min_size=1, max_size=6), st.lists(st.integers(1, 40), max_size=12))
def test_any_chunking_of_a_stream_yields_its_frames(recs, cuts):
    frames = [wire.encode_request(i, r) for i, r in enumerate(recs)]
    stream = b"".join(frames)
    splitter, out, pos = wire.FrameSplitter(), [], 0
    for cut in [*cuts, len(stream)]:
        out += splitter.feed(stream[pos:pos + cut])
        pos += cut
    out += splitter.feed(stream[pos:])
    assert [wire.decode_request(f) for f in out] == [
        wire.Request(i, r.OP, r) for i, r in enumerate(recs)]
