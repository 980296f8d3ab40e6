"""The recovery figure's frontier (analysis/recovery.py) against hand-computed figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.datfiles import DatFormatError
from analysis.plots import recovery_figure
from analysis.recovery import frontier, run_frontiers, write_recovery_dats
from tests.conftest import masonctl

T = 1_700_000_000_000_000  # µs; the clients start here (measure_start - warm-up)
U64_MAX = 2**64 - 1


def make_run(run: Path) -> None:
    """Two spaces. Space 0: 0-1 at +500, 4-5 at +1500, 6 at +2200 (and again at +2300, a
    repeated answer), the noop 2-3 at +2600, 7 at +3100. Space 1: 0 at +500, 1-2 at +2200,
    4 at +3100 (3 never handed out: the frontier stays at 2)."""
    (run / "client-0-0.seqnums").write_text(
        "# client_id 0 spaces 2\n"
        f"1 {T + 500} 2 1 1 0\n"
        f"2 {T + 1500} 2 5 0 {U64_MAX}\n"
        f"3 {T + 3100} 1 7 1 4\n")
    (run / "client-0-1.seqnums").write_text(
        "# client_id 1 spaces 2\n"
        f"1 {T + 2200} 1 6 2 2\n"
        f"1 {T + 2300} 1 6 2 2\n")
    (run / "proxy-0-0.noops").write_text(
        "# noops spaces 2 group 0\n"
        f"{T + 2600} 2 3 0 {U64_MAX}\n")
    (run / "experiment.toml").write_text('[experiment]\nname = "r"\nwarmup = 1.0\n')
    (run / "faults.log").write_text(
        f"{T // 1000 + 1000} measure_start clients\n"
        f"{T // 1000 + 1002} kill_leader_machine proxy-0-0\n")


def test_frontier_rises_when_a_hole_is_filled(tmp_path: Path) -> None:
    make_run(tmp_path)
    space0, space1 = run_frontiers(tmp_path)
    # Space 0: 1 until the noop fills 2-3 at +2600, which completes 0..6; then 7.
    assert (space0.rise_us - T).tolist() == [500, 2600, 3100]
    assert space0.highest.tolist() == [1, 6, 7]
    # Space 1: 0, then 2; 4 arrives but 3 never does.
    assert (space1.rise_us - T).tolist() == [500, 2200]
    assert space1.highest.tolist() == [0, 2]
    assert space0.at(np.array([T, T + 500, T + 2599, T + 9999])).tolist() == [-1, 1, 1, 7]


def test_frontier_edge_cases() -> None:
    none = frontier(0, *(np.zeros(0, np.int64) for _ in range(3)))
    assert none.highest.size == 0 and none.at(np.array([T])).tolist() == [-1]
    # Nothing is contiguous until 0 arrives (then 1-3, already there, counts too); an
    # overlapping range extends the prefix.
    f = frontier(0, np.array([10, 20, 30]), np.array([1, 0, 2]), np.array([3, 1, 5]))
    assert f.rise_us.tolist() == [20, 30] and f.highest.tolist() == [3, 5]


def test_recovery_data_files_have_the_original_shape(tmp_path: Path) -> None:
    make_run(tmp_path)
    paths = write_recovery_dats(tmp_path, tmp_path / "out")
    assert [p.name for p in paths] == ["recovery_data_0.dat", "recovery_data_1.dat"]
    # 1 ms bins, right-closed, from the clients' start; per bin the latest record and the
    # frontier then (the repeated answer at +2300 shares the bin of +2600).
    assert paths[0].read_text() == (
        ",time,highest_num\n"
        '"(0, 1000]",500,1\n'
        '"(1000, 2000]",1500,1\n'
        '"(2000, 3000]",2600,6\n'
        '"(3000, 4000]",3100,7\n')
    assert paths[1].read_text() == (
        ",time,highest_num\n"
        '"(0, 1000]",500,0\n'
        '"(2000, 3000]",2300,2\n'
        '"(3000, 4000]",3100,2\n')


def test_the_figure_draws_each_space_frontier(tmp_path: Path) -> None:
    make_run(tmp_path)
    fig = recovery_figure(tmp_path)
    lines = {line.get_gid(): line for ax in fig.axes for line in ax.get_lines()}
    zero, one = lines["frontier-0"], lines["frontier-1"]
    # Seconds since measure_start (1 s after the clients' start), held to the right edge.
    x = np.asarray(zero.get_xdata(), dtype=float)
    assert np.allclose(x[:3], [-0.9995, -0.9974, -0.9969])
    assert np.asarray(zero.get_ydata()).tolist() == [1, 6, 7, 7]
    assert np.asarray(one.get_ydata()).tolist() == [0, 2, 2]
    # The kill is marked on the frontier panel too.
    frontier_ax = zero.axes
    assert any(np.allclose(line.get_xdata(), 0.002) for line in frontier_ax.get_lines()
               if line.get_gid() is None)


def test_the_figure_without_records_has_one_panel(tmp_path: Path) -> None:
    (tmp_path / "client-0-0.series").write_text("unix_ms,ops\n1000,3\n1010,4\n")
    assert len(recovery_figure(tmp_path).axes) == 1


def test_disagreeing_records_are_refused(tmp_path: Path) -> None:
    make_run(tmp_path)
    (tmp_path / "proxy-0-1.noops").write_text("# noops spaces 1\n5 0 0\n")
    with pytest.raises(DatFormatError, match="disagree on the number of spaces"):
        run_frontiers(tmp_path)


def test_plot_recovery_command_writes_data_and_figure(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    make_run(run)
    (run / "client-0-0.series").write_text(f"unix_ms,ops\n{T // 1000},3\n{T // 1000 + 10},4\n")
    done = masonctl("plot", "recovery", str(run), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in run.iterdir() if p.name.startswith("recovery"))
    assert written == ["recovery.pdf", "recovery.png"]
    # The original's data files beside the run: inside it they would be client .dat files.
    dats = tmp_path / "recovery-run"
    assert sorted(p.name for p in dats.iterdir()) == ["recovery_data_0.dat",
                                                      "recovery_data_1.dat"]
    assert (dats / "recovery_data_0.dat").read_text().splitlines()[-1] == '"(3000, 4000]",3100,7'


def test_times_count_from_the_first_record_when_it_precedes_the_marked_start(tmp_path: Path):
    make_run(tmp_path)
    # No warm-up recorded before the window: the clients (first record at +500) began
    # before the controller's mark less the warm-up; times are never negative.
    (tmp_path / "experiment.toml").write_text('[experiment]\nname = "r"\nwarmup = 0.0\n')
    (path, _) = write_recovery_dats(tmp_path, tmp_path / "out")
    assert path.read_text().splitlines()[1:3] == ['"(-1000, 0]",0,1', '"(0, 1000]",1000,1']
