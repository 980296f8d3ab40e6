"""The live line's throughput: growing .series files followed piece by piece."""

from __future__ import annotations

from pathlib import Path

from nodes.metrics import SeriesFile
from orchestrator import watch
from orchestrator.hosts import LocalHost


def test_the_last_second_is_the_one_every_client_has_written_out(tmp_path: Path):
    host = LocalHost()
    a, b = SeriesFile(tmp_path / "a.series"), SeriesFile(tmp_path / "b.series")
    rate = watch.Throughput([watch.SeriesFollower(host, str(f.path)) for f in (a, b)])
    rate.update()
    assert rate.last_second() is None  # nobody has written a bin yet
    a.append([(ms, 10) for ms in range(0, 2000, 10)])  # 1,000 ops/s for 2 s
    rate.update()
    assert rate.last_second() is None  # b has written nothing yet
    b.append([(ms, 5) for ms in range(0, 1000, 10)])  # 500 ops/s, only 1 s so far
    rate.update()
    # Both cover [0, 1000): a's second half is not counted before b has caught up.
    assert rate.last_second() == 1500.0
    b.append([(ms, 0) for ms in range(1000, 2000, 10)])  # b stalls for a second
    rate.update()
    assert rate.last_second() == 1000.0
    a.close()
    b.close()


def test_a_row_cut_in_half_waits_for_its_end(tmp_path: Path):
    path = tmp_path / "c.series"
    path.write_text("unix_ms,ops\n0,3\n10,4\n20,")
    follower = watch.SeriesFollower(LocalHost(), str(path))
    assert follower.poll() == [(0, 3), (10, 4)] and follower.covered_ms == 20
    with path.open("a") as f:
        f.write("5\n")
    assert follower.poll() == [(20, 5)] and follower.covered_ms == 30


def test_the_line_reads_as_a_user_wants_it():
    assert watch.describe(3.04, "measuring", 41234.4, []) == (
        "  3.0 s measuring | 41,234 ops/s | 0 faults")
    assert watch.describe(12.0, "cool-down", None, ["kill_leader", "partition_leader"]) == (
        " 12.0 s cool-down | - ops/s | 2 faults (last: partition_leader)")
