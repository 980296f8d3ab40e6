"""The per-system service objects (nodes/services/): admission, what commit owes, notes."""

from __future__ import annotations

import pytest

from nodes import wire
from nodes.proxy.entries import NOOP_CLIENT, BatchEntry, OpRecord
from nodes.proxy.group_state import GroupState
from nodes.services import LogRead, LogWrite, Refused, make_service
from nodes.services.corfumason import CorfuMasonService
from nodes.services.mason import MasonService


def op(kind=wire.OP_SEQUENCE, counts=(1,), payload=b"", reqid=0):
    return wire.OpRequest(7, reqid, 0, -1, list(counts), kind, payload)


def test_mason_admits_counts_per_space_and_refuses_everything_else():
    svc = MasonService(2)
    assert svc.admit(op(counts=(1, 3))) == [1, 3]
    for bad in (op(counts=(1,)), op(kind=wire.OP_APPEND, counts=(1, 1)),
                op(counts=(1, 1), payload=b"x")):
        with pytest.raises(Refused):
            svc.admit(bad)
    assert svc.apply([OpRecord(7, 0, [1, 1], [0, 0])], False) is None
    assert svc.pending() == [] and svc.take_notes() == b""


def test_negative_ids_acks_and_counts_never_reach_a_service():
    for fields in ([-1, 0, 0, -1, [1]], [0, -1, 0, -1, [1]], [0, 0, -1, -1, [1]],
                   [0, 0, 0, -2, [1]], [0, 0, 0, -1, [1, -1]], [0, 0, 0, -1, [1], -3]):
        frame = wire.encode_frame([(wire.CALL, 1, wire.OpRequest(*fields))])
        with pytest.raises(wire.FrameError, match="Expected `int` >= "):
            wire.FrameReader().feed(frame)
    # Counts have a stated maximum per operation and space.
    frame = wire.encode_frame([(wire.CALL, 1, wire.OpRequest(0, 0, 0, -1,
                                                             [wire.MAX_OP_COUNT + 1]))])
    with pytest.raises(wire.FrameError, match="Expected `int` <= 65536"):
        wire.FrameReader().feed(frame)


def test_corfumason_admits_appends_of_one_position_within_the_entry_limit():
    svc = CorfuMasonService(1, max_entry_bytes=16)
    assert svc.admit(op(wire.OP_APPEND, payload=b"a" * 16)) == [1]
    for bad in (op(wire.OP_APPEND, payload=b""), op(wire.OP_APPEND, payload=b"a" * 17),
                op(wire.OP_APPEND, counts=(2,), payload=b"a"), op(wire.OP_SEQUENCE),
                op(wire.OP_READ, counts=(), payload=(3).to_bytes(8, "little"))):
        with pytest.raises(Refused):
            svc.admit(bad)


def test_corfumason_reads_are_direct_and_validated():
    svc = CorfuMasonService(1, 64)
    assert svc.direct(op(wire.OP_READ, (), (5).to_bytes(8, "little"))) == LogRead(5)
    assert svc.direct(op(wire.OP_APPEND, payload=b"x")) is None
    for payload in (b"", b"1234567", (-1).to_bytes(8, "little", signed=True)):
        with pytest.raises(Refused):
            svc.direct(op(wire.OP_READ, (), payload))


def test_a_committed_append_is_owed_until_the_leader_reports_it_written():
    leader, follower = (GroupState(1, 1, "h", 1, service=CorfuMasonService(1, 64))
                        for _ in range(2))
    entry = BatchEntry(1, 0, [OpRecord(7, 0, [1], [10], b"ten"),
                              OpRecord(7, 1, [1], [11], b"eleven")], [])
    for state in (leader, follower):
        state.apply(entry)
    assert leader.owed == [[LogWrite(10, wire.ENTRY_DATA, b"ten", (7, 0))],
                           [LogWrite(11, wire.ENTRY_DATA, b"eleven", (7, 1))]]
    # A new leader would re-drive both.
    assert [e.position for e in follower.service.pending()] == [10, 11]
    leader.service.done(leader.owed[0][0])
    notes = leader.service.take_notes()
    assert leader.service.take_notes() == b""  # taken once
    for state in (leader, follower):
        state.apply(BatchEntry(2, 1, [], [], notes=notes))
    assert [e.position for e in follower.service.pending()] == [11]
    assert [e.position for e in leader.service.pending()] == [11]


def test_a_noop_owes_a_hole_at_each_of_its_positions_and_survives_a_snapshot():
    state = GroupState(1, 1, "h", 1, service=CorfuMasonService(1, 64))
    state.apply(BatchEntry(1, 0, [OpRecord(NOOP_CLIENT, 0, [3], [6])], [], noop=True))
    assert state.owed == [[LogWrite(p, wire.ENTRY_HOLE, b"", (NOOP_CLIENT, 0))
                           for p in (4, 5, 6)]]
    copy = GroupState(1, 1, "h", 1, service=CorfuMasonService(1, 64))
    copy.restore(state.snapshot())
    assert copy.service.pending() == state.service.pending()
    assert copy.noops_committed == 1


def test_unknown_services_and_spaces_are_refused_at_start():
    with pytest.raises(ValueError, match="unknown service"):
        make_service("zk", 1)
    with pytest.raises(ValueError, match="nspaces must be 1"):
        make_service("corfumason", 2)


# ---- rsmkeeper -------------------------------------------------------------------------


def zk_op(client: int, reqid: int, session: int, request: object) -> OpRecord:
    from nodes.services.rsmkeeper import encode_txn
    from nodes.zk.requests import Txn

    return OpRecord(client, reqid, [], [], encode_txn(Txn(session, 0, request)))  # type: ignore[arg-type]


def test_rsmkeeper_admits_transactions_without_numbers_only():
    from nodes.services.rsmkeeper import RsmKeeperService
    from nodes.zk.requests import Ping

    svc = RsmKeeperService()
    good = zk_op(1, 0, 0, Ping()).payload
    assert svc.admit(wire.OpRequest(1, 0, 0, -1, [], wire.OP_ZK, good)) == []
    for bad in (wire.OpRequest(1, 0, 0, -1, [1], wire.OP_ZK, good),
                wire.OpRequest(1, 0, 0, -1, [], wire.OP_APPEND, good),
                wire.OpRequest(1, 0, 0, -1, [], wire.OP_ZK, b"\x93junk")):
        with pytest.raises(Refused):
            svc.admit(bad)
    with pytest.raises(ValueError, match="nspaces must be 0"):
        make_service("rsmkeeper", 1)


def test_rsmkeeper_replicas_apply_entries_at_the_leaders_time_and_agree():
    """Two replicas apply the same entries; only the leader reads a clock (into the notes),
    so both give nodes the leader's times and expire the same session at the same entry."""
    from nodes.services.rsmkeeper import RsmKeeperService
    from nodes.zk.codes import CreateMode
    from nodes.zk.requests import Create, CreateSession, Tick

    now = [10_000]
    leader = RsmKeeperService(clock=lambda: now[0])
    follower = RsmKeeperService(clock=lambda: 99_999_999)  # never read
    seen: list[tuple[int, object]] = []
    follower.listen(lambda op, txn, applied: seen.append((op.reqid, applied.result)),
                    lambda: None)
    states = [GroupState(0, 1, "", 0, service=s) for s in (leader, follower)]

    def commit(*ops: OpRecord) -> None:
        entry = BatchEntry(0, 0, list(ops), [], notes=leader.take_notes())
        for state in states:
            state.apply(entry)

    commit(zk_op(5, 0, 0, CreateSession(4000)))
    session = next(iter(follower.machine.sessions.sessions))
    commit(zk_op(5, 1, session, Create("/e", b"", mode=CreateMode.EPHEMERAL)))
    assert follower.machine.tree.get("/e").ctime == 10_000  # type: ignore[union-attr]
    now[0] = 13_000
    commit(zk_op(6, 0, 0, Tick()))
    assert follower.machine.stat("/e") is not None  # silent 3 s of 4: alive
    now[0] = 14_001
    commit(zk_op(6, 1, 0, Tick()))
    assert follower.machine.stat("/e") is None and not follower.machine.sessions.sessions
    assert leader.snapshot() == follower.snapshot()
    assert [reqid for reqid, _ in seen] == [0, 1, 0, 1]
    # The group's dedup state knows every op: a retransmission is answered, not applied.
    assert states[1].answer(5, 1) == ([], 1) and states[1].answer(6, 1) == ([], 1)
