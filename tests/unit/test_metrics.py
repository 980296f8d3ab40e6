"""nodes.metrics: the recorders and writers node processes use, against hand-computed figures."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes.metrics import (
    PERCENTILES,
    BufferedFile,
    ClientSummary,
    LatencyHistogram,
    NoopRecorder,
    SeqnumRecorder,
    SeriesFile,
    ThroughputSeries,
    nearest_rank,
    parse_series_rows,
    write_dat,
    write_summary,
)


def hist_of(counts: dict[int, int]) -> LatencyHistogram:
    h = LatencyHistogram()
    for us, n in counts.items():
        for _ in range(n):
            h.record(us)
    return h


# 100 samples: 50 x 10 us, 40 x 20 us, 9 x 30 us, 1 x 40 us.
# Cumulative counts: <=10: 50, <=20: 90, <=30: 99, <=40: 100.
HUNDRED = {10: 50, 20: 40, 30: 9, 40: 1}


def test_percentiles_nearest_rank_by_hand() -> None:
    h = hist_of(HUNDRED)
    assert h.count == 100
    # p50: rank ceil(0.5*100) = 50 -> the 50th sample is the last 10.
    assert h.percentile(0.5) == 10.0
    # p99: rank 99 -> cumulative 99 reached at 30.
    assert h.percentile(0.99) == 30.0
    # p99.9: rank ceil(99.9) = 100 -> 40; p99.99: rank ceil(99.99) = 100 -> 40.
    assert h.percentile(0.999) == 40.0
    assert h.percentile(0.9999) == 40.0
    # p51: rank 51 -> the first 20.
    assert h.percentile(0.51) == 20.0
    # p0 and p100: the smallest and the largest value.
    assert h.percentile(0.0) == 10.0
    assert h.percentile(1.0) == 40.0
    assert h.percentiles(PERCENTILES) == [10.0, 30.0, 40.0, 40.0]


def test_percentile_rank_uses_the_decimal_value_of_p() -> None:
    # In binary floating point 0.07 * 100 == 7.000000000000001, whose ceiling is 8; the
    # decimal 0.07 of 100 samples is rank 7 exactly.
    assert 0.07 * 100 > 7
    assert nearest_rank(0.07, 100) == 7
    h = hist_of({v: 1 for v in range(1, 101)})  # 1..100 once each
    assert h.percentile(0.07) == 7.0
    # Also for numpy-like scalars whose repr is not a plain number.
    np = pytest.importorskip("numpy")
    assert nearest_rank(np.float64(0.07), 100) == 7


def test_percentile_empty_and_bad_p() -> None:
    h = LatencyHistogram()
    assert h.count == 0
    assert h.percentile(0.5) == 0.0
    assert h.percentiles() == [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        h.percentile(1.5)
    with pytest.raises(ValueError):
        hist_of({1: 1}).percentile(-0.1)


def test_no_saturation() -> None:
    # A 3-second stall stays 3 s (the original's histogram saturated at ~1.3 ms).
    h = hist_of({5: 999, 3_000_000: 1})
    assert h.percentile(1.0) == 3_000_000.0
    assert h.percentile(0.999) == 5.0  # rank 999 -> 5


def test_merge_adds_the_counts_of_shared_bins() -> None:
    a = hist_of({10: 3, 20: 4})
    a.merge(hist_of({20: 5, 30: 1}))
    assert a.items() == [(10, 3), (20, 9), (30, 1)]
    assert a.count == 13


def test_merge_is_exact() -> None:
    a = hist_of({10: 50, 20: 40})
    b = hist_of({30: 9, 40: 1})
    a.merge(b)
    assert a == hist_of(HUNDRED)
    assert a.count == 100
    assert b.count == 10  # the merged-in histogram is unchanged
    assert a.items() == [(10, 50), (20, 40), (30, 9), (40, 1)]


@given(
    st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=300),
    st.sampled_from([0.0, 0.01, 0.07, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0]),
)
def test_percentile_matches_sorted_definition(samples: list[int], p: float) -> None:
    h = LatencyHistogram()
    for s in samples:
        h.record(s)
    ordered = sorted(samples)
    # rank computed independently with integer arithmetic on p expressed in 1e-4 units
    rank = max(1, -(-round(p * 10_000) * len(samples) // 10_000))
    assert h.percentile(p) == float(ordered[rank - 1])


def test_hist_file_round_trip_and_format(tmp_path: Path) -> None:
    h = hist_of({20: 2, 7: 1, 1000: 3})
    p = tmp_path / "client-0-0.hist"
    h.write(p)
    assert p.read_text() == "# latency_us count\n7 1\n20 2\n1000 3\n"
    assert LatencyHistogram.read(p) == h
    empty = tmp_path / "empty.hist"
    LatencyHistogram().write(empty)
    assert empty.read_text() == "# latency_us count\n"
    assert LatencyHistogram.read(empty).count == 0
    assert not list(tmp_path.glob("*.tmp"))  # written through a renamed temporary


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("7 1\n", ":1:"),
        ("# latency_us count\n7 1\n3 1\n", ":3:"),
        ("# latency_us count\n7 x\n", ":2:"),
        ("# latency_us count\n7 1 2\n", ":2:"),
        ("# latency_us count\n7 0\n", ":2:"),
        ("# latency_us count\n-1 4\n", ":2:"),
    ],
)
def test_hist_read_errors_name_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    p = tmp_path / "bad.hist"
    p.write_text(text)
    with pytest.raises(ValueError) as e:
        LatencyHistogram.read(p)
    assert f"bad.hist{where}" in str(e.value)
    assert "\n" not in str(e.value)


def test_throughput_series_bins_and_zero_rows(tmp_path: Path) -> None:
    s = ThroughputSeries(bin_ms=10)
    ms = 1_700_000_000_000
    ns = ms * 1_000_000
    # bin [ms, ms+10): 2 ops (at +0 and +9.999999 ms); nothing in +10 or +20;
    # bin [ms+30, ms+40): 1 op at +35 ms.
    s.record(ns)
    s.record(ns + 9_999_999)
    s.record(ns + 35_000_000)
    assert s.total == 3
    p = tmp_path / "client-0-0.series"
    s.write(p)
    assert p.read_text() == (f"unix_ms,ops\n{ms},2\n{ms + 10},0\n{ms + 20},0\n{ms + 30},1\n")
    empty = tmp_path / "empty.series"
    ThroughputSeries().write(empty)
    assert empty.read_text() == "unix_ms,ops\n"
    with pytest.raises(ValueError):
        ThroughputSeries(bin_ms=0)


def test_throughput_series_other_bin_width(tmp_path: Path) -> None:
    s = ThroughputSeries(bin_ms=250)
    for t_ms in (1000, 1100, 1249, 1250, 1800):
        s.record(t_ms * 1_000_000)
    # bins: 1000 -> 3 ops, 1250 -> 1, 1500 -> 0, 1750 -> 1
    assert s.rows() == [(1000, 3), (1250, 1), (1500, 0), (1750, 1)]


def test_write_dat_exact_line(tmp_path: Path) -> None:
    p = tmp_path / "client-0-0.dat"
    # 2,000,000 ops in 4 s = 0.5 Mops/s; percentiles of HUNDRED: 10, 30, 40, 40.
    write_dat(p, ops=2_000_000, seconds=4.0, hist=hist_of(HUNDRED), retransmits=7)
    assert p.read_text() == "0.500000,10.000000,30.000000,40.000000,40.000000,7\n"
    # No measured window: the file still exists, with a zero rate.
    write_dat(p, ops=0, seconds=0.0, hist=LatencyHistogram(), retransmits=0)
    assert p.read_text() == "0.000000,0.000000,0.000000,0.000000,0.000000,0\n"


def test_summary_round_trip(tmp_path: Path) -> None:
    s = ClientSummary(
        name="client-1-3",
        client_id=11,
        ops_total=1500,
        ops_measured=1000,
        window_start_unix_ms=1_000,
        window_end_unix_ms=3_500,
        retransmits=2,
        redirects=1,
        unanswered=0,
    )
    p = tmp_path / "client-1-3.summary.json"
    write_summary(p, s)
    assert msgspec.json.decode(p.read_bytes(), type=ClientSummary) == s
    assert s.window_seconds == 2.5


def test_seqnum_recorder_lines(tmp_path: Path) -> None:
    p = tmp_path / "client-0-1.seqnums"
    with SeqnumRecorder(p, client_id=4, nspaces=2) as r:
        r.record(0, 1_000_000, [1, 0], [5, 2**64 - 1])
        r.record(1, 1_000_010, (3, 2), (8, 1))
        r.flush(fsync=True)
        with pytest.raises(ValueError):
            r.record(2, 1_000_020, [1], [9])
    assert p.read_text() == (
        "# client_id 4 spaces 2\n0 1000000 1 5 0 18446744073709551615\n1 1000010 3 8 2 1\n"
    )
    r.close()  # closing twice is harmless
    with pytest.raises(ValueError):
        r.record(3, 0, [1, 1], [1, 1])


def test_noop_recorder_lines(tmp_path: Path) -> None:
    p = tmp_path / "proxy-0-1.noops"
    r = NoopRecorder(p, nspaces=1)
    r.record(1_700_000_000_000_000, [4], [99])
    r.close()
    assert p.read_text() == "# noops spaces 1\n1700000000000000 4 99\n"


def test_metrics_imports_only_stdlib_and_msgspec() -> None:
    # Node machines have msgspec and uvloop only.
    src = Path(__file__).resolve().parents[2] / "nodes" / "metrics.py"
    roots: set[str] = set()
    for node in ast.walk(ast.parse(src.read_text())):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"msgspec", "__future__"}
    assert roots <= allowed, roots - allowed


def test_percentiles_constant() -> None:
    # The four the original reported, in the .dat column order.
    assert PERCENTILES == (0.5, 0.99, 0.999, 0.9999)


# ---- exact refusals, file edge cases, recorder bookkeeping ----------------------------------


def test_bad_arguments_are_refused_with_the_value() -> None:
    with pytest.raises(ValueError, match=r"^percentile must lie in \[0, 1\], got 1\.5$"):
        nearest_rank(1.5, 10)
    with pytest.raises(ValueError, match="^bin_ms must be positive, got 0$"):
        ThroughputSeries(bin_ms=0)
    assert ThroughputSeries(bin_ms=1).bin_ms == 1


def test_hist_read_accepts_zero_latency_and_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.hist"
    p.write_text("# latency_us count\r\n0 2\n\n5 1\n")
    assert LatencyHistogram.read(p).items() == [(0, 2), (5, 1)]


def test_hist_read_refuses_a_latency_listed_twice(tmp_path: Path) -> None:
    p = tmp_path / "a.hist"
    p.write_text("# latency_us count\n5 1\n5 2\n")
    with pytest.raises(ValueError, match="a.hist:3: latencies not strictly ascending$"):
        LatencyHistogram.read(p)


def test_hist_read_quotes_the_first_60_characters_of_a_wrong_header(tmp_path: Path) -> None:
    p = tmp_path / "a.hist"
    p.write_text("x" * 70 + "\n")
    with pytest.raises(ValueError) as e:
        LatencyHistogram.read(p)
    assert str(e.value) == f"{p}:1: expected header '# latency_us count', got '{'x' * 60}'"


def test_the_default_series_bin_is_10_ms() -> None:
    s = ThroughputSeries()
    for t_ms in (0, 9, 10, 25):
        s.record(t_ms * 1_000_000)
    assert s.rows() == [(0, 2), (10, 1), (20, 1)]


def test_series_taken_as_it_goes_is_the_whole_series(tmp_path: Path) -> None:
    s = ThroughputSeries(bin_ms=10)
    ms = 1_700_000_000_000
    assert s.take(ms * 1_000_000) == []  # nothing recorded yet
    for t in (0, 3, 12):
        s.record((ms + t) * 1_000_000)
    # At +15 ms the bin of +10 is still filling: only the first bin is over.
    assert s.take((ms + 15) * 1_000_000) == [(ms, 2)]
    assert s.take((ms + 18) * 1_000_000) == []
    # A stall: the bins that passed without an answer are handed out as zeros.
    assert s.take((ms + 41) * 1_000_000) == [(ms + 10, 1), (ms + 20, 0), (ms + 30, 0)]
    s.record((ms + 55) * 1_000_000)
    assert s.take() == [(ms + 40, 0), (ms + 50, 1)]  # the end: up to the last bin
    assert s.take() == []
    p = tmp_path / "client-0-0.series"
    with SeriesFile(p) as f:
        assert p.read_text() == "unix_ms,ops\n"  # on disk before the first row
        f.append([(ms, 2)])
        assert parse_series_rows(p.read_text()) == [(ms, 2)]  # pushed out at once
        f.append([(ms + 10, 1), (ms + 20, 0)])
    assert p.read_text() == f"unix_ms,ops\n{ms},2\n{ms + 10},1\n{ms + 20},0\n"
    with pytest.raises(ValueError, match="not a 'unix_ms,ops' row: '10,x'"):
        parse_series_rows("unix_ms,ops\n10,x\n")



def test_a_take_that_hands_out_nothing_leaves_the_start_of_the_series_open() -> None:
    # Nothing handed out yet: a bin recorded below the first one (the wall clock stepped
    # back) is still handed out, so the rows taken add up to every operation recorded.
    s = ThroughputSeries(bin_ms=10)
    s.record(50 * 1_000_000)
    assert s.take(55 * 1_000_000) == []  # the bin of 50 ms is still filling
    s.record(42 * 1_000_000)
    assert s.take() == [(40, 1), (50, 1)]
    assert s.total == 2


@pytest.mark.parametrize("line", ["-5,3", " 5,3", "1_0,3", "x,3", "5,-3", "5, 3", "5", "5,3,1"])
def test_a_series_row_is_two_runs_of_digits_around_one_comma(line: str) -> None:
    # int() would take a sign, blanks or underscores: a row is exactly what
    # format_series_row writes, and anything else is refused with the line quoted.
    with pytest.raises(ValueError, match=f"^not a 'unix_ms,ops' row: {re.escape(repr(line))}$"):
        parse_series_rows(f"unix_ms,ops\n{line}\n")


def test_a_refused_series_row_is_quoted_up_to_40_characters() -> None:
    line = "1" * 45 + ",x"
    with pytest.raises(ValueError, match=f"^not a 'unix_ms,ops' row: '{'1' * 40}'$"):
        parse_series_rows(line + "\n")

def test_write_dat_rate_for_windows_of_any_length(tmp_path: Path) -> None:
    p = tmp_path / "client-0-0.dat"
    write_dat(p, ops=3_000_000, seconds=1.0, hist=LatencyHistogram(), retransmits=0)
    assert p.read_text().split(",")[0] == "3.000000"
    write_dat(p, ops=1_000_000, seconds=0.5, hist=LatencyHistogram(), retransmits=0)
    assert p.read_text().split(",")[0] == "2.000000"


def test_recorders_refuse_bad_shapes_with_the_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="^nspaces must be positive, got 0$"):
        SeqnumRecorder(tmp_path / "a.seqnums", 1, 0)
    r = SeqnumRecorder(tmp_path / "b.seqnums", 1, 2)
    with pytest.raises(ValueError, match="^expected 2 counts and lasts, got 2 and 1$"):
        r.record(0, 0, [1, 1], [5])
    with pytest.raises(ValueError, match="^expected 2 counts and lasts, got 1 and 2$"):
        r.record(0, 0, [1], [5, 6])
    r.close()
    with pytest.raises(ValueError, match="b.seqnums: recorder is closed$"):
        r.record(0, 0, [1, 1], [5, 6])
    r.flush()  # a closed recorder has nothing to flush


def test_recorders_count_their_lines_and_flush_them(tmp_path: Path) -> None:
    p = tmp_path / "a.seqnums"
    r = SeqnumRecorder(p, 3, 1)
    assert r.lines == 0
    for reqid in range(3):
        r.record(reqid, 0, [1], [reqid])
    assert r.lines == 3
    assert p.read_text() == ""  # still buffered
    r.flush()
    assert p.read_text() == "# client_id 3 spaces 1\n0 0 1 0\n1 0 1 1\n2 0 1 2\n"
    r.close()


def test_a_recorder_buffers_a_mebibyte_of_lines(tmp_path: Path) -> None:
    # The hot path formats a line; the OS sees one write per MiB.
    p = tmp_path / "a.noops"
    line_bytes = len("1700000000000000 1 123456\n")
    with NoopRecorder(p, 1) as r:
        for _ in range(1_000_000 // line_bytes):
            r.record(1_700_000_000_000_000, [1], [123456])
        assert p.stat().st_size == 0
        for _ in range(200_000 // line_bytes):
            r.record(1_700_000_000_000_000, [1], [123456])
        # Whole buffers only (less the text layer's own chunk of at most 8 KiB).
        assert (1 << 20) - 8192 <= p.stat().st_size <= 1 << 20


def test_noop_recorder_names_group_0(tmp_path: Path) -> None:
    p = tmp_path / "proxy-0-0.noops"
    NoopRecorder(p, nspaces=1, group=0).close()
    assert p.read_text() == "# noops spaces 1 group 0\n"


def test_a_temporary_left_by_a_killed_writer_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "a.hist.tmp").write_text("half a fi")  # the writer was killed mid-write
    LatencyHistogram().write(tmp_path / "a.hist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.hist"]


class _BytesWriter(BufferedFile):
    """A binary record file, as the ZooKeeper history recorder keeps one."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, binary=True)

    def write(self, data: bytes) -> None:
        self._file().write(data)


def test_a_binary_record_file_buffers_a_mebibyte_of_bytes(tmp_path: Path) -> None:
    p = tmp_path / "a.history"
    line = b"\x00\xff record\n"
    with _BytesWriter(p) as w:
        for _ in range(1_000_000 // len(line)):
            w.write(line)
        assert p.stat().st_size == 0
        for _ in range(200_000 // len(line)):
            w.write(line)
        assert (1 << 20) - len(line) <= p.stat().st_size <= 1 << 20
    assert p.read_bytes() == line * (1_000_000 // len(line) + 200_000 // len(line))


def test_a_run_is_recorded_as_one_line_per_operation_like_single_records(tmp_path):
    runs, singles = tmp_path / "runs.seqnums", tmp_path / "singles.seqnums"
    with SeqnumRecorder(runs, 7, 2) as by_run, SeqnumRecorder(singles, 7, 2) as one_by_one:
        by_run.record_run(10, 555, [2, 1], [29, 13], 4)
        by_run.record_run(14, 556, [2, 1], [31, 14], 1)
        for k in range(4):  # operation k owns the 2 and 1 numbers ending at 23+2k and 10+k
            one_by_one.record(10 + k, 555, [2, 1], [23 + 2 * k, 10 + k])
        one_by_one.record(14, 556, [2, 1], [31, 14])
        assert by_run.lines == one_by_one.lines == 5
    assert runs.read_text() == singles.read_text()
    assert runs.read_text().splitlines()[1] == "10 555 2 23 1 10"
    with pytest.raises(ValueError):
        SeqnumRecorder(tmp_path / "bad", 7, 2).record_run(0, 0, [1], [1], 2)
