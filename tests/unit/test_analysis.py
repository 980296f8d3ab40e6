"""analysis.datfiles, analysis.aggregate and analysis.plots against hand-computed figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.aggregate import (
    client_files,
    format_parse_line,
    merge_machine_dats,
    parse_results,
    summarize_run,
)
from analysis.datfiles import (
    DatFormatError,
    DatRow,
    FaultEvent,
    read_dat,
    read_faults,
    read_hist,
    read_noops,
    read_seqnums,
    read_series,
    read_summary,
)
from analysis.plots import plot_recovery, plot_throughput_latency, total_series
from nodes.metrics import ClientSummary, LatencyHistogram, write_dat, write_summary

# --------------------------------------------------------------------------------------------
# parsers


def test_read_dat_six_and_five_columns(tmp_path: Path) -> None:
    p = tmp_path / "client-0.dat"
    p.write_text("0.500000,10.000000,30.000000,40.000000,40.000000,7\n")
    assert read_dat(p) == DatRow(0.5, 10.0, 30.0, 40.0, 40.0, 7)
    p.write_text("1.25,3,4,5,6\n")  # the original's optional retx column absent
    assert read_dat(p) == DatRow(1.25, 3.0, 4.0, 5.0, 6.0, None)
    p.write_text("1.25,3,4,5,6,12.000000\n")  # a retx printed with %f
    assert read_dat(p).retx == 12


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "client-0.dat: expected exactly one line, found 0"),
        ("1,2,3,4,5\n1,2,3,4,5\n", "client-0.dat: expected exactly one line, found 2"),
        ("\n1,2,3,4\n", "client-0.dat:2: expected 5 or 6 comma-separated columns, got 4"),
        ("1,2,x,4,5\n", "client-0.dat:1: not numbers: '1,2,x,4,5'"),
        ("1,2,3,4,5,1.5\n", "client-0.dat:1: retransmits '1.5' is not a count"),
        ("1,2,nan,4,5\n", "client-0.dat:1: non-finite value in '1,2,nan,4,5'"),
    ],
)
def test_read_dat_errors(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "client-0.dat"
    p.write_text(text)
    with pytest.raises(DatFormatError) as e:
        read_dat(p)
    assert str(e.value) == f"{tmp_path}/{message}"


def test_read_hist_wraps_errors(tmp_path: Path) -> None:
    p = tmp_path / "x.hist"
    p.write_text("# latency_us count\n3 2\n1 1\n")
    with pytest.raises(DatFormatError, match=r"x\.hist:3: latencies not strictly ascending"):
        read_hist(p)
    p.write_bytes(b"# latency_us count\n\xff\xfe\n")
    with pytest.raises(DatFormatError, match="not text"):
        read_hist(p)


def test_read_series(tmp_path: Path) -> None:
    p = tmp_path / "s.series"
    p.write_text("unix_ms,ops\n1000,3\n1010,0\n1020,5\n")
    df = read_series(p)
    assert list(df.columns) == ["unix_ms", "ops"]
    assert df["unix_ms"].tolist() == [1000, 1010, 1020]
    assert df["ops"].tolist() == [3, 0, 5]
    assert df["ops"].dtype == np.int64
    p.write_text("unix_ms,ops\n1000,3\n1010,x\n")
    with pytest.raises(DatFormatError, match=r"s\.series:3: expected 'unix_ms,ops' integers"):
        read_series(p)
    p.write_text("time,ops\n")
    with pytest.raises(DatFormatError, match=r"s\.series:1: expected header"):
        read_series(p)
    p.write_text("unix_ms,ops\n1000,3\n1000,1\n")
    with pytest.raises(DatFormatError, match=r":3: unix_ms not strictly ascending"):
        read_series(p)


def test_read_summary(tmp_path: Path) -> None:
    s = ClientSummary("client-0-0", 3, 10, 8, 100, 1100, 1, 2, 0)
    p = tmp_path / "client-0-0.summary.json"
    write_summary(p, s)
    assert read_summary(p) == s
    p.write_text('{"name": "client-0-0"}')
    with pytest.raises(DatFormatError, match=r"client-0-0\.summary\.json:1: .*missing"):
        read_summary(p)


def test_read_faults(tmp_path: Path) -> None:
    p = tmp_path / "faults.log"
    p.write_text(
        "# the orchestrator's fault log\n"
        "1732450000000 measure_start\n"
        "1732450006000 kill_leader proxy-0-0\n"
        "\n"
        "1732450030000 measure_end\n"
    )
    assert read_faults(p) == [
        FaultEvent(1732450000000, "measure_start", ""),
        FaultEvent(1732450006000, "kill_leader", "proxy-0-0"),
        FaultEvent(1732450030000, "measure_end", ""),
    ]
    p.write_text("1 kill_leader proxy-0-0\nsoon kill_sequencer sequencer-0\n")
    with pytest.raises(DatFormatError, match=r"faults\.log:2: unix_ms 'soon' is not an integer"):
        read_faults(p)
    p.write_text("1 partition a b\n")
    with pytest.raises(DatFormatError, match=r"faults\.log:1: expected 'unix_ms event"):
        read_faults(p)


def test_read_seqnums_and_noops(tmp_path: Path) -> None:
    p = tmp_path / "client-0-0.seqnums"
    p.write_text("# client_id 9 spaces 2\n0 100 1 0 2 5\n1 110 0 7 1 6\n")
    cid, log = read_seqnums(p)
    assert cid == 9 and log.nspaces == 2 and len(log) == 2
    assert log.reqid is not None and log.reqid.tolist() == [0, 1]
    assert log.unix_us.tolist() == [100, 110]
    assert log.counts.tolist() == [[1, 2], [0, 1]]
    # A count-0 entry holds no number; its last is normalised to -1.
    assert log.lasts.tolist() == [[0, 5], [-1, 6]]

    q = tmp_path / "proxy-0-1.noops"
    q.write_text("# noops spaces 1\n500 3 9\n")
    noops = read_noops(q)
    assert noops.reqid is None and noops.counts.tolist() == [[3]] and noops.lasts.tolist() == [[9]]

    empty = tmp_path / "empty.seqnums"
    empty.write_text("# client_id 1 spaces 3\n")
    cid, log = read_seqnums(empty)
    assert len(log) == 0 and log.counts.shape == (0, 3)


def test_read_seqnums_u64_last_in_empty_space(tmp_path: Path) -> None:
    # The fast parser refuses 2^64-1; the fallback accepts it where the count is 0 only.
    p = tmp_path / "c.seqnums"
    p.write_text("# client_id 1 spaces 2\n0 1 1 0 0 18446744073709551615\n")
    _, log = read_seqnums(p)
    assert log.lasts.tolist() == [[0, -1]]
    p.write_text("# client_id 1 spaces 1\n0 1 1 18446744073709551615\n")
    with pytest.raises(DatFormatError, match=r"c\.seqnums:2: value out of the signed 64-bit"):
        read_seqnums(p)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0 1 1 0\n1 2 1\n", "c.seqnums:3: expected 4 columns for 1 spaces, got 3"),
        ("0 1 1 0\n\n1 2 1 x\n", "c.seqnums:4: not integers: '1 2 1 x'"),
        ("0 1 1 0\n1 2 -1 4\n", "c.seqnums:3: negative count"),
        ("0 1 1 0 5\n", "c.seqnums:2: expected 4 columns for 1 spaces, got 5"),
    ],
)
def test_read_seqnums_errors_name_the_line(tmp_path: Path, body: str, message: str) -> None:
    p = tmp_path / "c.seqnums"
    p.write_text("# client_id 1 spaces 1\n" + body)
    with pytest.raises(DatFormatError) as e:
        read_seqnums(p)
    assert str(e.value) == f"{tmp_path}/{message}"


def test_read_seqnums_bad_header(tmp_path: Path) -> None:
    p = tmp_path / "c.seqnums"
    p.write_text("# noops spaces 1\n")
    with pytest.raises(DatFormatError, match=r"c\.seqnums:1: expected header"):
        read_seqnums(p)


# --------------------------------------------------------------------------------------------
# a crafted run: machine 0 runs client processes 0-0 and 0-1, machine 1 runs 1-0

HISTS = {
    "client-0-0": {10: 6, 20: 3, 50: 1},
    "client-0-1": {10: 2, 30: 7, 90: 1},
    "client-1-0": {20: 10, 40: 9, 500: 1},
}
# (ops_measured, window start ms, window end ms, retransmits, redirects)
SUMMARIES = {
    "client-0-0": (20_000, 1_000, 3_000, 1, 0),  # 20000 / 2 s   = 10000 ops/s
    "client-0-1": (45_000, 1_000, 4_000, 2, 1),  # 45000 / 3 s   = 15000 ops/s
    "client-1-0": (10_000, 1_000, 3_500, 4, 0),  # 10000 / 2.5 s =  4000 ops/s
}


def hist_of(counts: dict[int, int]) -> LatencyHistogram:
    h = LatencyHistogram()
    for us, n in counts.items():
        for _ in range(n):
            h.record(us)
    return h


def make_run(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    for i, (name, counts) in enumerate(HISTS.items()):
        h = hist_of(counts)
        h.write(run / f"{name}.hist")
        ops, start, end, retx, redirects = SUMMARIES[name]
        write_dat(run / f"{name}.dat", ops, (end - start) / 1000, h, retx)
        write_summary(
            run / f"{name}.summary.json",
            ClientSummary(name, i, ops + 100, ops, start, end, retx, redirects, 0),
        )
    (run / "proxy-0-0.noops").write_text("# noops spaces 1\n")
    (run / "faults.log").write_text("5 measure_start\n")


def test_summarize_run_by_hand(tmp_path: Path) -> None:
    make_run(tmp_path)
    s = summarize_run(tmp_path)
    assert s.clients == 3
    # 10000 + 15000 + 4000
    assert s.throughput_ops == pytest.approx(29_000.0)
    # Merged histogram, 40 samples: 10:8 20:13 30:7 40:9 50:1 90:1 500:1
    # cumulative 8, 21, 28, 37, 38, 39, 40.
    # p50 rank 20 -> 20; p99 rank ceil(39.6)=40 -> 500; p99.9 and p99.99 rank 40 -> 500.
    assert (s.p50_us, s.p99_us, s.p999_us, s.p9999_us) == (20.0, 500.0, 500.0, 500.0)
    assert s.exact_percentiles and s.samples == 40
    assert (s.retransmits, s.redirects, s.unanswered) == (7, 1, 0)
    # Per-process .dat percentiles: 0-0 (10 samples) p50 rank 5 -> 10, p99 rank 10 -> 50;
    # 0-1: p50 -> 30, p99 -> 90; 1-0 (20 samples): p50 rank 10 -> 20, p99 rank 20 -> 500.
    # Means: p50 (10+30+20)/3 = 20, p99 (50+90+500)/3 = 640/3.
    assert s.mean_of_percentiles == pytest.approx((20.0, 640 / 3, 640 / 3, 640 / 3))
    assert s.dat_throughput_ops == pytest.approx(29_000.0)  # 0.01 + 0.015 + 0.004 Mops/s
    assert s.window_s == pytest.approx((2.0 + 3.0 + 2.5) / 3)
    assert format_parse_line(s) == "0.029000 20.000000 500.000000 500.000000 500.000000"


def test_merge_machine_dats_by_hand(tmp_path: Path) -> None:
    make_run(tmp_path)
    written = merge_machine_dats(tmp_path)
    assert written == [tmp_path / "client-0.dat", tmp_path / "client-1.dat"]
    # Machine 0: rates 10000 + 15000 = 0.025 Mops/s; merged hist 10:8 20:3 30:7 50:1 90:1
    # (20 samples, cumulative 8, 11, 18, 19, 20): p50 rank 10 -> 20; p99 rank 20 -> 90.
    # retransmits 1 + 2 = 3.
    assert (tmp_path / "client-0.dat").read_text() == (
        "0.025000,20.000000,90.000000,90.000000,90.000000,3\n"
    )
    # Machine 1: one process: 0.004 Mops/s, p50 rank 10 -> 20, p99 rank 20 -> 500, retx 4.
    assert (tmp_path / "client-1.dat").read_text() == (
        "0.004000,20.000000,500.000000,500.000000,500.000000,4\n"
    )
    # The machine files are not counted a second time.
    again = summarize_run(tmp_path)
    assert again.clients == 3 and again.throughput_ops == pytest.approx(29_000.0)
    assert [c.name for c in client_files(tmp_path)] == ["client-0-0", "client-0-1", "client-1-0"]


def test_original_format_run(tmp_path: Path) -> None:
    # Only the original per-machine .dat files: throughput is their sum, the percentiles
    # the mean over files (the only thing such a run allows), flagged as not exact.
    (tmp_path / "client-0.dat").write_text("0.5,10,20,30,40\n")
    (tmp_path / "client-1.dat").write_text("1.5,20,40,50,60,3.000000\n")
    s = summarize_run(tmp_path)
    assert s.clients == 2 and s.throughput_ops == pytest.approx(2_000_000.0)
    # p50 (10+20)/2 = 15, p99 (20+40)/2 = 30, p99.9 40, p99.99 50
    assert (s.p50_us, s.p99_us, s.p999_us, s.p9999_us) == (15.0, 30.0, 40.0, 50.0)
    assert not s.exact_percentiles and s.retransmits == 3
    assert format_parse_line(s) == "2.000000 15.000000 30.000000 40.000000 50.000000"


def test_summarize_run_without_results(tmp_path: Path) -> None:
    (tmp_path / "faults.log").write_text("")
    with pytest.raises(FileNotFoundError):
        summarize_run(tmp_path)


def test_parse_results_walks_every_run(tmp_path: Path) -> None:
    make_run(tmp_path / "results-10")
    make_run(tmp_path / "results-2")
    orig = tmp_path / "old" / "results-1"
    orig.mkdir(parents=True)
    (orig / "client-0.dat").write_text("1.0,1,2,3,4\n")
    (tmp_path / "notes").mkdir()  # no .dat: not a run
    found = parse_results(tmp_path)
    assert [d for d, _ in found] == [
        tmp_path / "old" / "results-1",
        tmp_path / "results-2",
        tmp_path / "results-10",
    ]
    assert [format_parse_line(s) for _, s in found] == [
        "1.000000 1.000000 2.000000 3.000000 4.000000",
        "0.029000 20.000000 500.000000 500.000000 500.000000",
        "0.029000 20.000000 500.000000 500.000000 500.000000",
    ]


# --------------------------------------------------------------------------------------------
# series and plots


def test_total_series_rebins(tmp_path: Path) -> None:
    (tmp_path / "client-0-0.series").write_text("unix_ms,ops\n1000,1\n1010,2\n1020,3\n")
    (tmp_path / "client-0-1.series").write_text("unix_ms,ops\n1010,5\n1020,0\n1030,4\n")
    ten = total_series(tmp_path, 10)
    # 1000: 1; 1010: 2+5; 1020: 3+0; 1030: 4
    assert ten["unix_ms"].tolist() == [1000, 1010, 1020, 1030]
    assert ten["ops"].tolist() == [1, 7, 3, 4]
    twenty = total_series(tmp_path, 20)
    # [1000,1020): 1+2+5 = 8; [1020,1040): 3+0+4 = 7
    assert twenty["unix_ms"].tolist() == [1000, 1020]
    assert twenty["ops"].tolist() == [8, 7]
    with pytest.raises(ValueError, match="not a multiple"):
        total_series(tmp_path, 15)


def make_recovery_run(run: Path) -> None:
    """3 clients, 10 ms bins, 2 s warm-up, 30 s measured: 1000 ops per bin per client, a
    1.5 s outage after the leader kill (6 s), a 2 s one after the sequencer kill (16 s), and
    a partition healed 0.3 s later (labels must not overlap)."""
    start = 1_732_450_000_000
    t = np.arange(start - 2_000, start + 31_000, 10)
    rel = (t - start) / 1000.0
    for c in range(3):
        ops = np.full(t.size, 1000)
        ops[(rel >= 6) & (rel < 7.5)] = 0
        ops[(rel >= 16) & (rel < 18)] = 0
        ops[(rel >= 22) & (rel < 22.3)] = 400
        ops[rel < -1] = 300 * (c + 1)  # warm-up ramp
        body = "".join(f"{a},{b}\n" for a, b in zip(t.tolist(), ops.tolist(), strict=True))
        (run / f"client-0-{c}.series").write_text("unix_ms,ops\n" + body)
    (run / "faults.log").write_text(
        f"{start} measure_start\n"
        f"{start + 6_000} kill_leader proxy-0-0\n"
        f"{start + 16_000} kill_sequencer sequencer-0\n"
        f"{start + 22_000} partition proxy-1-2\n"
        f"{start + 22_300} heal proxy-1-2\n"
        f"{start + 30_000} measure_end\n"
    )


def assert_figures(paths: list[Path], stem: Path) -> None:
    assert paths == [Path(str(stem) + ".pdf"), Path(str(stem) + ".png")]
    pdf, png = paths
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_plot_recovery(tmp_path: Path) -> None:
    make_recovery_run(tmp_path)
    stem = tmp_path / "figs" / "recovery"
    assert_figures(plot_recovery(tmp_path, stem, bin_ms=50), stem)


def test_plot_recovery_without_fault_log(tmp_path: Path) -> None:
    (tmp_path / "client-0-0.series").write_text("unix_ms,ops\n1000,3\n1010,4\n1020,0\n")
    stem = tmp_path / "r"
    paths = plot_recovery(tmp_path, stem)
    assert all(p.stat().st_size > 1_000 for p in paths)


def test_plot_throughput_latency(tmp_path: Path) -> None:
    rows = []
    for spaces in (1, 2, 4):
        for conc in (1, 2, 4, 8, 16, 32):
            tput = 2.5e5 * conc / spaces**0.5
            rows.append(
                {
                    "config": f"{spaces} spaces",
                    "throughput_ops": tput,
                    "p50_us": 40 + 3 * conc * spaces,
                    "p99_us": 90 + 9 * conc * spaces,
                }
            )
    stem = tmp_path / "tput-lat"
    assert_figures(plot_throughput_latency(pd.DataFrame(rows), stem), stem)
    with pytest.raises(ValueError, match="missing columns"):
        plot_throughput_latency(pd.DataFrame({"config": ["a"]}), stem)


def test_fault_labels_close_in_time_are_stacked_without_overlap() -> None:
    # Two kills 300 ms apart on a 30 s axis: their labels would sit on top of each other.
    from matplotlib.text import Annotation

    from analysis.plots import _figure, _mark_events

    fig = _figure(8, 3)
    ax = fig.add_subplot()
    ax.set_xlim(0, 30)
    t0 = 1_000_000
    events = [FaultEvent(t0 + 6_000, "kill_leader", "proxy-0-0"),
              FaultEvent(t0 + 6_300, "kill_sequencer", "sequencer-0"),
              FaultEvent(t0 + 25_000, "kill_follower", "proxy-1-0")]
    rows = _mark_events(ax, events, t0)
    assert rows == 2  # the far-away third label shares the first row
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [a.get_window_extent(renderer) for a in ax.get_children()
             if isinstance(a, Annotation)]
    assert len(boxes) == 3
    assert not any(boxes[i].overlaps(boxes[j])
                   for i in range(len(boxes)) for j in range(i + 1, len(boxes)))


def test_a_restart_is_marked_dotted_in_its_own_colour() -> None:
    from matplotlib.colors import to_rgba

    from analysis.plots import EVENT_STYLES, _figure, _mark_events

    fig = _figure(8, 3)
    ax = fig.add_subplot()
    ax.set_xlim(0, 30)
    t0 = 1_000_000
    _mark_events(ax, [FaultEvent(t0 + 6_000, "kill_follower", "proxy-1-0"),
                      FaultEvent(t0 + 7_000, "restart", "proxy-1-0")], t0)
    kill, back = ax.get_lines()
    assert kill.get_linestyle() == "--" and back.get_linestyle() == ":"
    assert to_rgba(back.get_color()) == to_rgba(EVENT_STYLES["restart"])
    assert back.get_label() == "restart"
