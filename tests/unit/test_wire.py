"""Frames and messages (nodes/wire.py): round trips, and garbage never escapes as a crash."""

from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import raft, wire


def test_every_message_kind_round_trips_in_one_frame():
    envelopes = [
        (wire.CALL, 1, wire.OpRequest(3, 9, 0, 8, [1, 1])),
        (wire.REPLY, 1, wire.OpReply(9, [5, 6], 0)),
        (wire.REPLY, 2, wire.OpReply(9, None, 2)),
        (wire.CALL, 3, wire.SeqRequest(0, 2, 7, [4, 4], 6, 1)),
        (wire.REPLY, 3, wire.SeqReply(0, 7, wire.SEQ_OK, [4, 4], [3, 3], False, 7, 1)),
        (wire.CAST, 0, raft.VoteRequest(frm=0, to=1, term=2, last_log_index=0, last_log_term=0)),
    ]
    reader = wire.FrameReader()
    frame = wire.encode_frame(envelopes)
    # Delivered a byte at a time, the frame still decodes exactly once.
    frames = []
    for i in range(len(frame)):
        frames += reader.feed(frame[i : i + 1])
    assert frames == [envelopes]


def test_an_oversized_length_is_refused_before_buffering():
    reader = wire.FrameReader()
    try:
        reader.feed((wire.MAX_FRAME + 1).to_bytes(4, "big"))
    except wire.FrameError as exc:
        assert "exceeds" in str(exc)
    else:
        raise AssertionError("oversized frame accepted")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_either_decode_or_raise_frame_error(data):
    reader = wire.FrameReader()
    try:
        frames = reader.feed(len(data).to_bytes(4, "big") + data)
    except wire.FrameError as exc:
        assert str(exc) and "\n" not in str(exc)  # one line for the log
        return
    # Whatever decodes is a whole frame of well-typed envelopes: re-encoding gives a frame
    # that decodes to the same thing.
    assert len(frames) == 1
    for _kind, rid, msg in frames[0]:
        assert isinstance(rid, int) and isinstance(msg, wire.Msg | wire.RaftMessage)
    assert wire.FrameReader().feed(wire.encode_frame(frames[0])) == frames


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**32), st.integers(-5, 5),
                          st.lists(st.integers(0, 2**40), max_size=4)), max_size=5))
def test_well_formed_msgpack_with_wrong_shapes_is_rejected(items):
    import msgspec

    body = msgspec.msgpack.encode(items)
    reader = wire.FrameReader()
    try:
        frames = reader.feed(len(body).to_bytes(4, "big") + body)
    except wire.FrameError:
        return
    assert frames == [[]] or all(len(f) == 0 for f in frames)


def test_a_tail_received_with_whole_frames_is_kept_for_the_next_read():
    first = [(wire.CALL, 1, wire.SeqRequest(0, 1, 1, [3], 0, 1))]
    second = [(wire.REPLY, 1, wire.SeqReply(0, 1, wire.SEQ_OK, [3], [2], False, 1, 1))]
    a, b = wire.encode_frame(first), wire.encode_frame(second)
    reader = wire.FrameReader()
    assert reader.feed(a + b[:5]) == [first]
    assert reader.feed(b[5:9]) == []
    assert reader.feed(b[9:] + a) == [second, first]
    assert reader.feed(b"") == []
