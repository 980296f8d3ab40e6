"""The log with a compaction offset, against a plain dict model, and the wire structs."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.raft import (
    MESSAGE_TYPES,
    AppendRequest,
    AppendResponse,
    Entry,
    RaftLog,
    RaftMessage,
    Snapshot,
    SnapshotRequest,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 3), st.integers(0, 6)),
        st.tuples(st.just("truncate"), st.integers(0, 40)),
        st.tuples(st.just("compact"), st.integers(0, 40)),
        st.tuples(st.just("reset"), st.integers(0, 40), st.integers(0, 3)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(0, 45), st.integers(0, 12), st.integers(0, 20))
def test_log_matches_a_model(script: list[tuple], probe: int, term: int, nbytes: int) -> None:
    log = RaftLog()
    model: dict[int, Entry] = {}
    offset, snap_term = 0, 0
    for op in script:
        last = offset + len(model)
        if op[0] == "append":
            # Terms never decrease along a log.
            t = max(log.last_term, 1) + op[1]
            e = Entry(t, last + 1, b"x" * op[2])
            log.append(e)
            model[e.index] = e
        elif op[0] == "truncate":
            i = op[1]
            if offset < i <= last:
                log.truncate_from(i)
                model = {k: v for k, v in model.items() if k < i}
        elif op[0] == "compact":
            i = op[1]
            if offset < i <= last:
                snap_term = model[i].term
                log.compact(i)
                model = {k: v for k, v in model.items() if k > i}
                offset = i
        else:
            i, t = op[1], max(op[2], log.last_term)
            log.reset(i, t)
            model, offset, snap_term = {}, i, t
    last = offset + len(model)
    assert (log.first_index, log.last_index) == (offset + 1, last)
    assert log.last_term == (model[last].term if model else snap_term)
    for i in range(0, last + 3):
        expected = model[i].term if i in model else (snap_term if i == offset else None)
        assert log.term(i) == expected
    if offset < probe <= last + 1:
        assert log.slice(probe, last + 1) == [model[i] for i in range(probe, last + 1)]
        got = log.slice_bytes(probe, nbytes)
        if probe <= last:
            assert got and got[0] is model[probe]
            assert len(got) == 1 or sum(len(e.data) for e in got) <= nbytes
            # Greedy: the next entry would not have fitted.
            nxt = probe + len(got)
            if nxt <= last and len(got) >= 1:
                assert sum(len(e.data) for e in got) + len(model[nxt].data) > nbytes
        else:
            assert got == []
    # find_conflict_by_term: the largest known index <= probe with a term <= term.
    found = log.find_conflict_by_term(probe, term)
    if probe < offset:
        assert found == probe
    else:
        known = [i for i in range(offset, min(probe, last) + 1) if log.term(i) <= term]  # type: ignore[operator]
        assert found == (max(known) if known else offset - 1)


def test_every_message_round_trips_through_msgpack_as_one_union() -> None:
    samples: list[RaftMessage] = [
        VoteRequest(1, 2, 3, 4, 5),
        VoteResponse(2, 1, 3, True),
        AppendRequest(1, 2, 3, 4, 2, [Entry(3, 5, b"a"), Entry(3, 6, b"")], 5),
        AppendResponse(2, 1, 3, 6, False),
        AppendResponse(2, 1, 3, 4, True, 2, 1),
        SnapshotRequest(1, 2, 3, Snapshot(10, 2, b"state")),
        SnapshotResponse(2, 1, 3, 10),
    ]
    dec = msgspec.msgpack.Decoder(list[RaftMessage])
    assert dec.decode(msgspec.msgpack.encode(samples)) == samples
    tags = [t.__struct_config__.tag for t in MESSAGE_TYPES]
    assert len(set(tags)) == 6 and all(isinstance(t, str) and t.startswith("r") for t in tags)
    for t in MESSAGE_TYPES:
        assert t.__struct_fields__[:3] == ("frm", "to", "term")
    # array_like keeps the wire form compact: a heartbeat is a short list.
    hb = msgspec.msgpack.encode(AppendRequest(1, 2, 3, 4, 2, [], 5))
    assert len(hb) < 16
