"""nodes/zk/mapping.py: wire records to tree requests and results to reply frames, checked
end to end: a request kazoo serializes goes through the tree, and kazoo reads the reply."""

from __future__ import annotations

import struct

import pytest
from kazoo.protocol import serialization as ks
from kazoo.security import OPEN_ACL_UNSAFE

from nodes.zk import mapping, wire
from nodes.zk import requests as rq
from nodes.zk.codes import AddWatchMode, CreateMode, Err
from nodes.zk.machine import ZkStateMachine
from nodes.zk.results import ZkError


def decoded(kazoo_request: object) -> wire.Record:
    """What the server decodes from the request kazoo sends."""
    header = struct.pack("!ii", 1, kazoo_request.type)  # type: ignore[attr-defined]
    return wire.decode_request(header + bytes(kazoo_request.serialize())).body  # type: ignore[attr-defined]


def answered(machine: ZkStateMachine, session: int, body: wire.Record) -> bytes:
    """The reply body the connection would send for `body`, after the tree applied it."""
    applied = machine.apply(rq.Txn(session, 1000, mapping.to_request(body)))
    frame = mapping.reply(7, applied.zxid, body, applied.result)
    header, reader = wire.decode_reply_header(frame[4:])
    assert header.xid == 7
    return frame[4 + 16:] if header.err == 0 else bytes([0xFF]) + header.err.to_bytes(4, "big",
                                                                                    signed=True)


@pytest.fixture
def machine() -> ZkStateMachine:
    m = ZkStateMachine()
    m.apply(rq.Txn(0, 1000, rq.CreateSession(10000)))
    return m


def session_of(m: ZkStateMachine) -> int:
    return next(iter(m.sessions.sessions))


def test_kazoo_reads_what_create_get_set_and_children_answer(machine):
    s = session_of(machine)
    body = answered(machine, s, decoded(ks.Create("/a", b"x", OPEN_ACL_UNSAFE, 0)))
    assert ks.Create.deserialize(body, 0) == "/a"
    body = answered(machine, s, decoded(ks.Create("/a/b", b"", OPEN_ACL_UNSAFE,
                                                  CreateMode.EPHEMERAL_SEQUENTIAL)))
    assert ks.Create.deserialize(body, 0) == "/a/b0000000000"
    data, stat = ks.GetData.deserialize(answered(machine, s, decoded(ks.GetData("/a", None))), 0)
    assert data == b"x" and stat.numChildren == 1
    stat = ks.SetData.deserialize(answered(machine, s, decoded(ks.SetData("/a", b"yz", 0))), 0)
    assert stat.version == 1 and stat.dataLength == 2
    body = answered(machine, s, decoded(ks.GetChildren2("/a", None)))
    children, stat = ks.GetChildren2.deserialize(body, 0)
    assert children == ["b0000000000"] and stat.numChildren == 1
    body = answered(machine, s, decoded(ks.GetChildren("/a", None)))
    assert ks.GetChildren.deserialize(body, 0) == ["b0000000000"]
    acl, _ = ks.GetACL.deserialize(answered(machine, s, decoded(ks.GetACL("/a"))), 0)
    assert [a.perms for a in acl] == [31]
    assert ks.Sync.deserialize(answered(machine, s, decoded(ks.Sync("/a"))), 0) == "/a"


def test_errors_are_the_headers_code_alone(machine):
    s = session_of(machine)
    body = answered(machine, s, decoded(ks.GetData("/missing", None)))
    assert body == bytes([0xFF]) + Err.NO_NODE.to_bytes(4, "big", signed=True)
    body = answered(machine, s, decoded(ks.SetData("/", b"", 5)))
    assert body == bytes([0xFF]) + Err.BAD_VERSION.to_bytes(4, "big", signed=True)


def test_a_multi_answers_per_op_and_a_failed_one_rolls_back(machine):
    s = session_of(machine)
    ok = decoded(ks.Transaction([ks.Create("/m", b"", OPEN_ACL_UNSAFE, 0),
                                 ks.SetData("/m", b"v", -1), ks.CheckVersion("/m", 1),
                                 ks.Delete("/m", 1)]))
    results = ks.Transaction.deserialize(answered(machine, s, ok), 0)
    assert results[0] == "/m" and results[1].version == 1 and results[2:] == [True, True]
    failing = decoded(ks.Transaction([ks.Create("/n", b"", OPEN_ACL_UNSAFE, 0),
                                      ks.Delete("/missing", -1)]))
    results = ks.Transaction.deserialize(answered(machine, s, failing), 0)
    assert [type(r).__name__ for r in results] == ["RolledBackError", "NoNodeError"]
    assert machine.stat("/n") is None


def test_meanings_the_tree_cannot_take_are_answered_with_a_code():
    with pytest.raises(ZkError) as info:
        mapping.to_request(wire.CreateRequest("/a", b"", wire.OPEN_ACL_UNSAFE, 99))
    assert info.value.err == Err.BAD_ARGUMENTS
    with pytest.raises(ZkError):
        mapping.to_request(wire.AddWatchRequest("/a", 7))
    assert mapping.to_request(wire.AddWatchRequest("/a", 1)) == rq.AddWatch(
        "/a", AddWatchMode.PERSISTENT_RECURSIVE)
    container = mapping.to_request(
        wire.CreateContainerRequest("/c", b"", wire.OPEN_ACL_UNSAFE, 0))
    assert isinstance(container, rq.Create) and container.mode == CreateMode.CONTAINER
    with pytest.raises(TypeError):
        mapping.to_request(wire.PingRequest())


def test_set_watches_carries_every_list():
    body = wire.SetWatches2Request(9, ("/d",), ("/e",), ("/c",), ("/p",), ("/r",))
    assert mapping.set_watches(body) == rq.SetWatches(9, ["/d"], ["/e"], ["/c"], ["/p"],
                                                      ["/r"])
