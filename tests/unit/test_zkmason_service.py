"""The zkmason proxy service (nodes/services/zkmason.py), without processes: the numbers an
operation takes, what a committed operation owes the shards, sessions kept by the group,
what is reported done, and its snapshot."""

from __future__ import annotations

import pytest

from nodes import wire
from nodes.proxy.entries import NOOP_CLIENT, OpRecord
from nodes.services import Refused
from nodes.services.zkmason import (
    ZkCall,
    ZkMasonService,
    decode_answer,
    encode_op,
    zxid_of,
)
from nodes.zk.codes import Err
from nodes.zk.requests import CloseSession, Create, CreateSession, GetData, Ping, Tick, Txn
from nodes.zk.results import ErrorResult, SessionResult
from nodes.zk.shards import shard_of

NSHARDS = 4


def op_request(txn: Txn, reqid: int = 0) -> wire.OpRequest:
    return wire.OpRequest(5, reqid, 0, -1, [], kind=wire.OP_ZK, payload=encode_op(txn, 1))


def record(txn: Txn, counts: list[int], lasts: list[int], reqid: int = 0,
           client: int = 5) -> OpRecord:
    return OpRecord(client, reqid, counts, lasts, encode_op(txn, 1))


def service(clock_ms: int = 1000) -> ZkMasonService:
    s = ZkMasonService(NSHARDS, group=3, tick_ms=2000, clock=lambda: clock_ms)
    s.apply_notes(s.take_notes())  # the entry's time, as every replica gets it
    return s


def open_session(s: ZkMasonService) -> int:
    seen: list[SessionResult] = []
    s.listen(lambda op, txn, applied: seen.append(applied.result), lambda: None)
    s.apply([record(Txn(0, 0, CreateSession(4000)), [0] * NSHARDS, [-1] * NSHARDS)], False)
    assert isinstance(seen[-1], SessionResult)
    return seen[-1].session


def test_an_operation_takes_a_number_in_each_shard_it_touches() -> None:
    s = service()
    path = "/a/b"
    counts = s.admit(op_request(Txn(1, 0, Create(path))))
    touched = {shard_of(path, NSHARDS), shard_of("/a", NSHARDS)}
    assert counts == [1 if k in touched else 0 for k in range(NSHARDS)]
    assert s.admit(op_request(Txn(1, 0, Ping()))) == [0] * NSHARDS
    assert s.admit(op_request(Txn(0, 0, Tick()))) == [1] * NSHARDS
    assert s.admit(op_request(Txn(1, 0, CloseSession()))) == [1] * NSHARDS
    with pytest.raises(Refused):
        s.admit(wire.OpRequest(5, 0, 0, -1, [], kind=wire.OP_ZK, payload=b"\x01junk"))
    with pytest.raises(Refused):
        s.admit(wire.OpRequest(5, 0, 0, -1, [], kind=wire.OP_APPEND, payload=b""))


def test_sessions_of_two_groups_never_share_an_id() -> None:
    a = ZkMasonService(1, group=0, clock=lambda: 1000)
    b = ZkMasonService(1, group=1, clock=lambda: 1000)
    for s in (a, b):
        s.apply_notes(s.take_notes())
    assert open_session(a) != open_session(b)


def test_a_committed_operation_owes_the_shards_its_transaction_with_its_zxid() -> None:
    s = service()
    session = open_session(s)
    shard = shard_of("/k", NSHARDS)
    counts = [1 if k == shard else 0 for k in range(NSHARDS)]
    lasts = [9, 4, 7, 2]
    owed = s.apply([record(Txn(session, 0, GetData("/k")), counts, lasts, reqid=1)], False)
    assert owed is not None
    (call,) = owed[0]
    assert isinstance(call, ZkCall) and call.local and call.origin == 1
    assert call.numbers == ((shard, lasts[shard]),)
    assert call.txn is not None and call.txn.zxid == zxid_of(lasts) == 10 + 5 + 8 + 3
    assert call.txn.time_ms == 1000
    assert s.pending() == [call]
    s.done(call)
    s.apply_notes(s.take_notes())  # the next entry reports it done
    assert s.pending() == []
    assert s.call_of(5, 1) is call  # kept until the client acknowledges the answer
    s.acked(5, 1)
    assert s.call_of(5, 1) is None


def test_an_operation_of_a_gone_session_gives_its_numbers_back_as_noops() -> None:
    s = service()
    owed = s.apply([record(Txn(12345, 0, Create("/x")), [1, 0, 1, 0], [3, -1, 6, -1])],
                   False)
    assert owed is not None
    (call,) = owed[0]
    assert isinstance(call, ZkCall) and call.txn is None
    assert call.noops == ((0, 3, 3), (2, 6, 6))
    assert decode_answer(call.settled).result == ErrorResult(Err.SESSION_EXPIRED)


def test_a_tick_closes_silent_sessions_in_every_shard() -> None:
    s = service(clock_ms=1000)
    session = open_session(s)
    closed: list[list[int]] = []
    s.listen(lambda *a: None, lambda: None, closed.append)
    s.clock = lambda: 1000 + 4001  # silent for longer than its 4 s timeout
    s.apply_notes(s.take_notes())
    owed = s.apply([record(Txn(0, 0, Tick()), [1] * NSHARDS, [0] * NSHARDS, client=9)],
                   False)
    assert closed == [[session]]
    assert owed is not None
    (call,) = owed[0]
    assert isinstance(call, ZkCall) and not call.local and len(call.numbers) == NSHARDS
    assert call.txn is not None and call.txn.request == Tick(sessions=[session])
    assert session not in s.machine.sessions


def test_a_tick_that_expires_nobody_passes_its_numbers_as_noops() -> None:
    s = service()
    open_session(s)
    owed = s.apply([record(Txn(0, 0, Tick()), [1] * NSHARDS, [3] * NSHARDS, client=9)], False)
    assert owed is not None
    (call,) = owed[0]
    assert isinstance(call, ZkCall) and call.txn is None
    assert call.noops == tuple((k, 3, 3) for k in range(NSHARDS))
    assert call.settled  # answered: the replica that sent it stops waiting


def test_a_noop_owes_every_space_it_covers() -> None:
    s = service()
    owed = s.apply([OpRecord(NOOP_CLIENT, 0, [2, 0, 1, 0], [5, -1, 9, -1])], True)
    assert owed is not None
    (call,) = owed[0]
    assert isinstance(call, ZkCall) and call.noops == ((0, 4, 5), (2, 9, 9))


def test_a_snapshot_keeps_sessions_and_what_is_owed() -> None:
    s = service()
    session = open_session(s)
    s.apply([record(Txn(session, 0, GetData("/k")), [1, 0, 0, 0], [0, -1, -1, -1])], False)
    s.acked(5, 0)
    twin = ZkMasonService(NSHARDS, group=3)
    twin.restore(s.snapshot())
    assert session in twin.machine.sessions
    assert twin.pending() == s.pending()
    assert twin.acked_upto == {5: 0}
