"""analysis.suite_table against hand-computed figures on crafted suite directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pytest

from analysis.plots import plot_scaling
from analysis.suite_table import (
    find_suite_dirs,
    is_suite_dir,
    latency_curves,
    parse_lines,
    peak_throughput,
    point_medians,
    suite_figures,
    suite_runs,
    suite_table,
    write_suite_csvs,
)
from nodes.metrics import ClientSummary, LatencyHistogram, write_dat, write_summary
from orchestrator.spec import ExperimentSpec, to_toml, validate

T0 = 1_700_000_000_000  # unix ms of every crafted window's start


def hist_of(counts: dict[int, int]) -> LatencyHistogram:
    h = LatencyHistogram()
    for us, n in counts.items():
        for _ in range(n):
            h.record(us)
    return h


def make_run(suite: Path, name: str, clients: list[tuple[int, int, dict[int, int]]],
             params: dict[str, Any], marker: str | None = "done") -> Path:
    """A run directory as the runner leaves it: experiment.toml, per client process a
    histogram, a summary (ops over a window) and a .dat, and the marker."""
    run = suite / name
    run.mkdir(parents=True)
    spec = validate(msgspec.convert({"name": name, **params}, ExperimentSpec))
    (run / "experiment.toml").write_text(to_toml(spec, {"version": "test"}))
    for i, (ops, window_ms, counts) in enumerate(clients):
        cname = f"client-0-{i}"
        h = hist_of(counts)
        h.write(run / f"{cname}.hist")
        write_dat(run / f"{cname}.dat", ops, window_ms / 1000, h, 0)
        write_summary(run / f"{cname}.summary.json",
                      ClientSummary(cname, i, ops, ops, T0, T0 + window_ms, 0, 0, 0))
    if marker:
        (run / marker).write_text("x\n")
    return run


S1G1 = {"nsequence_spaces": 1, "nproxies": 3}
S2G2 = {"nsequence_spaces": 2, "nproxies": 6}


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    d = tmp_path / "results" / "mason"
    # s1-g1-c4, three trials.
    # t1: 1000 ops in 1 s + 2000 in 2 s = 2000 ops/s. Merged histogram 100:6 200:4 300:30
    #     (40 samples): p50 rank 20 -> 300, p99 rank 40 -> 300. (The mean of the two
    #     clients' p50s would be (100 + 300) / 2 = 200: the table must hold the merge.)
    make_run(d, "s1-g1-c4-t1", [(1000, 1000, {100: 6, 200: 4}), (2000, 2000, {300: 30})],
             {"client_concurrency": 4, **S1G1})
    # t2: 5000 ops/s, every latency 100.
    make_run(d, "s1-g1-c4-t2", [(5000, 1000, {100: 10})], {"client_concurrency": 4, **S1G1})
    # t3: 3000 ops/s; 250:5 900:5 -> p50 rank 5 -> 250, p99 rank 10 -> 900.
    make_run(d, "s1-g1-c4-t3", [(3000, 1000, {250: 5, 900: 5})],
             {"client_concurrency": 4, **S1G1})
    # s1-g1-c16, two trials: 8000 and 10000 ops/s, latencies 400 and 600.
    make_run(d, "s1-g1-c16-t1", [(8000, 1000, {400: 4})], {"client_concurrency": 16, **S1G1})
    make_run(d, "s1-g1-c16-t2", [(10000, 1000, {600: 4})], {"client_concurrency": 16, **S1G1})
    # An interrupted run (no marker) and a failed one: in neither table, whatever they hold.
    huge = [(10**9, 1000, {1: 4})]
    make_run(d, "s1-g1-c16-t3", huge, {"client_concurrency": 16, **S1G1}, marker=None)
    make_run(d, "s2-g2-c4-t2", huge, {"client_concurrency": 4, **S2G2}, marker="failed")
    # s2-g2-c4, one trial: 7000 ops/s, latency 50.
    make_run(d, "s2-g2-c4-t1", [(7000, 1000, {50: 1})], {"client_concurrency": 4, **S2G2})
    return d


def test_suite_runs_are_the_finished_ones_in_natural_order(suite):
    assert [r.name for r in suite_runs(suite)] == [
        "s1-g1-c4-t1", "s1-g1-c4-t2", "s1-g1-c4-t3", "s1-g1-c16-t1", "s1-g1-c16-t2",
        "s2-g2-c4-t1"]


def test_table_has_one_row_per_run_with_parameters_and_exact_figures(suite):
    t = suite_table(suite)
    assert list(t["run"]) == [r.name for r in suite_runs(suite)]
    first = t.iloc[0]
    assert (first["point"], first["trial"]) == ("s1-g1-c4", 1)
    assert (first["nsequence_spaces"], first["nproxies"], first["triples"],
            first["client_concurrency"], first["nproxy_leaders"]) == (1, 3, 1, 4, 1)
    assert first["throughput_ops"] == pytest.approx(2000.0)
    assert (first["p50_us"], first["p99_us"], first["p999_us"], first["p9999_us"]) == (
        300.0, 300.0, 300.0, 300.0)
    assert bool(first["exact_percentiles"]) and first["clients"] == 2 and first["samples"] == 40
    assert "python" not in t.columns and "name" not in t.columns


def test_medians_over_trials_by_hand(suite):
    m = point_medians(suite_table(suite)).set_index("point")
    assert list(m.index) == ["s1-g1-c4", "s1-g1-c16", "s2-g2-c4"]
    assert list(m["trials"]) == [3, 2, 1]
    # s1-g1-c4: throughput median(2000, 5000, 3000) = 3000; each percentile on its own:
    # p50 median(300, 100, 250) = 250; p99 median(300, 100, 900) = 300.
    c4 = m.loc["s1-g1-c4"]
    assert c4["throughput_ops"] == pytest.approx(3000.0)
    assert (c4["p50_us"], c4["p99_us"], c4["p999_us"], c4["p9999_us"]) == (
        250.0, 300.0, 300.0, 300.0)
    # Two trials: the mean of the middle two: (8000 + 10000) / 2, (400 + 600) / 2.
    c16 = m.loc["s1-g1-c16"]
    assert c16["throughput_ops"] == pytest.approx(9000.0) and c16["p50_us"] == 500.0
    assert m.loc["s2-g2-c4", "throughput_ops"] == pytest.approx(7000.0)
    assert m.loc["s2-g2-c4", "nsequence_spaces"] == 2 and m.loc["s2-g2-c4", "triples"] == 2


def test_csv_files_round_trip(suite):
    runs_csv, medians_csv, table, medians = write_suite_csvs(suite)
    assert (runs_csv, medians_csv) == (suite / "suite.csv", suite / "suite_medians.csv")
    back = pd.read_csv(runs_csv)
    assert len(back) == 6 and list(back.columns) == list(table.columns)
    assert back["throughput_ops"].tolist() == pytest.approx(
        [2000, 5000, 3000, 8000, 10000, 7000])
    med = pd.read_csv(medians_csv)
    assert med[["point", "trials", "throughput_ops", "p50_us"]].values.tolist() == [
        ["s1-g1-c4", 3, 3000, 250], ["s1-g1-c16", 2, 9000, 500], ["s2-g2-c4", 1, 7000, 50]]
    # Point medians read back from the CSV equal those from the runs (the notebook's path).
    again = point_medians(back)
    assert again["throughput_ops"].tolist() == pytest.approx(medians["throughput_ops"].tolist())


def test_peak_throughput_is_the_best_load_per_configuration(suite):
    peaks = peak_throughput(point_medians(suite_table(suite)))
    assert peaks.values.tolist() == [[1, 1, 16, 9000.0], [2, 2, 4, 7000.0]]
    with pytest.raises(ValueError, match="missing columns"):
        peak_throughput(pd.DataFrame({"point": ["a"]}))


def test_curve_labels_and_their_numeric_order():
    medians = pd.DataFrame({
        "point": ["s1-g16-c1", "s1-g2-c1", "s2-g1-c1"],
        "nsequence_spaces": [1, 1, 2], "triples": [16, 2, 1], "nproxy_leaders": [128, 16, 8],
        "client_concurrency": [1, 1, 1], "throughput_ops": [1.0, 2.0, 3.0],
        "p50_us": [1.0, 1.0, 1.0]})
    curves = latency_curves(medians)
    assert list(curves["config"].cat.categories) == [
        "1 space, 2 triples (16 groups)", "1 space, 16 triples (128 groups)",
        "2 spaces, 1 triple (8 groups)"]
    assert list(latency_curves(medians, with_spaces=False)["config"]) == [
        "16 triples (128 groups)", "2 triples (16 groups)", "1 triple (8 groups)"]


def test_parse_lines_print_every_measured_run(suite):
    lines, errors = parse_lines(suite.parent)
    assert errors == []
    # Finished and failed runs (both measured); the interrupted one is left out.
    assert [line.split()[0] for line in lines] == [
        "mason/s1-g1-c4-t1", "mason/s1-g1-c4-t2", "mason/s1-g1-c4-t3", "mason/s1-g1-c16-t1",
        "mason/s1-g1-c16-t2", "mason/s2-g2-c4-t1", "mason/s2-g2-c4-t2"]
    assert lines[0] == "mason/s1-g1-c4-t1 0.002000 300.000000 300.000000 300.000000 300.000000"


def test_parse_lines_report_a_bad_run_and_keep_the_others(tmp_path):
    good = make_run(tmp_path, "good", [(1000, 1000, {10: 1})], S1G1, marker=None)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "client-0.dat").write_text("1,2,x,4,5\n")
    lines, errors = parse_lines(tmp_path)
    assert lines == ["good 0.001000 10.000000 10.000000 10.000000 10.000000"]
    assert len(errors) == 1 and "bad/client-0.dat:1: not numbers" in errors[0]
    assert parse_lines(good) == (["good 0.001000 10.000000 10.000000 10.000000 10.000000"], [])


def test_suite_directories_are_found(suite, tmp_path):
    assert is_suite_dir(suite) and not is_suite_dir(suite / "s1-g1-c4-t1")
    assert find_suite_dirs(tmp_path) == [suite]
    assert find_suite_dirs(suite) == [suite]


def test_suite_figures_are_written(suite, tmp_path):
    medians = point_medians(suite_table(suite))
    paths = suite_figures(medians, tmp_path / "figs", "mason")
    assert [p.name for p in paths] == [
        "throughput_latency.pdf", "throughput_latency.png",
        "throughput_scaling.pdf", "throughput_scaling.png"]
    for p in paths:
        assert p.stat().st_size > 1000
    with pytest.raises(ValueError, match="missing columns"):
        plot_scaling(pd.DataFrame({"triples": [1]}), tmp_path / "x")


def test_many_configurations_split_per_space_count(tmp_path):
    rows = [{"point": f"s{s}-g{g}-c{c}", "nsequence_spaces": s, "triples": g,
             "nproxy_leaders": 8 * g, "client_concurrency": c,
             "throughput_ops": 1e5 * g * c, "p50_us": 100.0 + c, "p99_us": 300.0 + c}
            for s in (1, 2) for g in (1, 2, 4, 8, 16) for c in (1, 8)]
    paths = suite_figures(pd.DataFrame(rows), tmp_path, "mason")
    assert [p.name for p in paths if p.suffix == ".png"] == [
        "throughput_latency_s1.png", "throughput_latency_s2.png", "throughput_scaling.png"]
