"""analysis/zkshards.py, the per-shard checker of ZK-Mason, on hand-made run directories: shard
replicas' configs (rendered by the orchestrator's own template), their execution records
and the sequencers' summaries; and `masonctl check` / `check-shards` over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.zkshards import check_run
from nodes.status import NodeSummary, write_summary
from nodes.zkshard.execlog import ExecWriter
from orchestrator import render
from orchestrator.cli import app
from orchestrator.spec import build, to_toml

# Numbers 0..9 of one space: operations of clients 1 and 2 with noops between.
CLEAN = [(0, 0, "o", 1, 0), (1, 3, "n", 0, 0), (4, 4, "o", 2, 0), (5, 5, "o", 1, 1),
         (6, 8, "n", 0, 0), (9, 9, "o", 2, 1)]


def replica(run_dir: Path, name: str, shard: int, index: int, nshards: int,
            runs: list[tuple[int, int, str, int, int]] | None) -> None:
    """A shard replica's config and, unless `runs` is None, its .exec lines as given."""
    context = {"name": name, "outdir": str(run_dir), "nspaces": nshards, "shard": shard,
               "replica": index, "listen": {"host": "127.0.0.1", "port": 40000 + index},
               "proxies": [{"host": "127.0.0.1", "port": 41000}], "zk_tick_ms": 2000,
               "record_exec": True}
    (run_dir / f"{name}.toml").write_text(render.render("zkshard", context))
    if runs is not None:
        (run_dir / f"{name}.exec").write_text(
            "".join(f"{a} {b} {k} {c} {r}\n" for a, b, k, c, r in runs))


def shard(run_dir: Path, k: int, nshards: int,
          *records: list[tuple[int, int, str, int, int]] | None) -> None:
    for r, runs in enumerate(records):
        replica(run_dir, f"server-{3 * k + r}", k, r, nshards, runs)


def sequencer(run_dir: Path, name: str, counters: list[int]) -> None:
    write_summary(run_dir, NodeSummary(name=name, role="sequencer", counters=counters))


def test_a_clean_run_passes_with_a_replica_killed_early(tmp_path: Path):
    shard(tmp_path, 0, 2, CLEAN, CLEAN, CLEAN[:2])  # replica 2 died after number 3
    shard(tmp_path, 1, 2, CLEAN[:3], CLEAN[:3], CLEAN[:3])
    sequencer(tmp_path, "sequencer-0", [7, 2])  # killed: a standby went on
    sequencer(tmp_path, "sequencer-1", [10, 5])
    verdict = check_run(tmp_path)
    assert verdict.ok, verdict.lines()
    lines = verdict.lines()
    assert lines[0] == ("shard 0: 3 of 3 replica(s) recorded, a majority executed 0..9 "
                        "(sequencers handed out 0..9)")
    assert "shard 1: 3 of 3 replica(s) recorded, a majority executed 0..4 " \
           "(sequencers handed out 0..4)" in lines
    assert lines[-1] == "shards: OK (2 shard(s))"


def test_the_writers_records_pass(tmp_path: Path):
    # What the node's own writer produces (noops merged) reads back clean.
    for r in range(3):
        replica(tmp_path, f"server-{r}", 0, r, 1, None)
        writer = ExecWriter(tmp_path / f"server-{r}.exec")
        writer.op(0, 7, 0)
        writer.noop_run(1, 2)
        writer.noop_run(3, 5)
        writer.op(6, 7, 1)
        writer.close()
    sequencer(tmp_path, "sequencer-0", [7])
    assert check_run(tmp_path).ok


def test_a_gap_fails(tmp_path: Path):
    holed = [run for run in CLEAN if run[0] != 5]
    shard(tmp_path, 0, 1, CLEAN, holed, CLEAN)
    verdict = check_run(tmp_path)
    assert not verdict.ok
    assert "  server-1 (replica 1): gap 5..5 (the run after starts at 6)" in verdict.lines()
    assert verdict.shards[0].replicas[1].through == 4
    assert verdict.lines()[-1] == "shards: FAILED (shard(s) 0)"


def test_a_record_not_starting_at_zero_is_a_gap(tmp_path: Path):
    shard(tmp_path, 0, 1, CLEAN, CLEAN[1:], CLEAN)
    verdict = check_run(tmp_path)
    assert not verdict.ok
    assert "  server-1 (replica 1): gap 0..0 (the run after starts at 1)" in verdict.lines()
    assert verdict.shards[0].replicas[1].through == -1


def test_an_overlap_fails(tmp_path: Path):
    overlapping = [*CLEAN[:3], (3, 5, "n", 0, 0), *CLEAN[4:]]
    shard(tmp_path, 0, 1, CLEAN, CLEAN, overlapping)
    verdict = check_run(tmp_path)
    assert not verdict.ok
    assert ("  server-2 (replica 2): run 3..5 overlaps numbers up to 4 executed before"
            in verdict.lines())


def test_a_number_executed_twice_fails(tmp_path: Path):
    twice = [*CLEAN[:4], (4, 4, "o", 2, 0), *CLEAN[4:]]
    shard(tmp_path, 0, 1, twice, CLEAN, CLEAN)
    verdict = check_run(tmp_path)
    assert not verdict.ok
    assert "  server-0 (replica 0): 4 executed again" in verdict.lines()
    assert verdict.shards[0].disagreements == 0  # the same operation, twice


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ((4, 4, "o", 1, 5), "number 4: server-0 ran client 2 reqid 0, server-1 ran "
                            "client 1 reqid 5"),
        ((4, 4, "n", 0, 0), "number 4: server-0 ran client 2 reqid 0, server-1 a noop"),
    ],
)
def test_replicas_that_disagree_fail(tmp_path: Path, changed, expected):
    other = [changed if run[0] == 4 else run for run in CLEAN]
    shard(tmp_path, 0, 1, CLEAN, other, CLEAN)
    verdict = check_run(tmp_path)
    assert not verdict.ok
    # Each replica alone is contiguous; only the comparison finds it.
    assert all(r.violations == 0 for r in verdict.shards[0].replicas)
    assert f"  {expected}" in verdict.lines()
    assert verdict.shards[0].disagreements == 2  # server-1 against each of the others


def test_a_majority_short_of_the_numbers_handed_out_fails(tmp_path: Path):
    shard(tmp_path, 0, 1, CLEAN, CLEAN[:3], CLEAN[:3])
    sequencer(tmp_path, "sequencer-0", [10])
    verdict = check_run(tmp_path)
    assert not verdict.ok
    assert "  a majority stopped at 4, short of 9" in verdict.lines()


def test_without_a_sequencer_summary_it_says_what_it_checked(tmp_path: Path):
    shard(tmp_path, 0, 1, CLEAN, CLEAN[:3], CLEAN[:3])
    verdict = check_run(tmp_path)
    assert verdict.ok
    assert verdict.lines()[0].endswith("a majority executed 0..4 (sequencer figure unknown)")
    assert verdict.lines()[-1] == ("shards: OK (1 shard(s); no sequencer summary: contiguity "
                                   "and agreement only)")


def test_missing_and_unreadable_records(tmp_path: Path):
    shard(tmp_path, 0, 1, CLEAN, CLEAN, None)
    verdict = check_run(tmp_path)
    assert verdict.ok  # two of three recorded everything
    assert "  server-2 (replica 2): no execution record" in verdict.lines()
    (tmp_path / "server-2.exec").write_text("0 0 x 1 0\n")
    verdict = check_run(tmp_path)
    assert not verdict.ok
    assert "server-2.exec:1: expected: first last o|n client reqid" in "\n".join(
        verdict.lines())
    assert verdict.lines()[-1] == "shards: FAILED (1 unreadable record(s))"


def test_an_idle_run_passes(tmp_path: Path):
    shard(tmp_path, 0, 1, [], [], [])
    sequencer(tmp_path, "sequencer-0", [0])
    verdict = check_run(tmp_path)
    assert verdict.ok
    assert verdict.lines()[0] == ("shard 0: 3 of 3 replica(s) recorded, a majority executed "
                                  "nothing (sequencers handed out nothing)")


def test_nothing_recorded(tmp_path: Path):
    assert check_run(tmp_path).lines() == ["shards: no shard replica left an execution record"]
    # Replicas asked to keep a record that left none (or only one of three): no verdict
    # can rest on them.
    shard(tmp_path, 0, 1, CLEAN, None, None)
    verdict = check_run(tmp_path)
    assert not verdict.ok
    assert "  fewer than a majority of its replicas left a record" in verdict.lines()


def test_masonctl_check_and_check_shards(tmp_path: Path):
    runner = CliRunner()
    (tmp_path / "experiment.toml").write_text(to_toml(build("r", "zkmason", {})))
    shard(tmp_path, 0, 1, CLEAN, CLEAN, CLEAN)
    for command in ("check", "check-shards"):
        done = runner.invoke(app, [command, str(tmp_path)])
        assert done.exit_code == 0, done.output
        assert "shards: OK (1 shard(s);" in done.output
    (tmp_path / "server-1.exec").write_text("0 0 o 1 0\n2 9 n 0 0\n")
    for command in ("check", "check-shards"):
        done = runner.invoke(app, [command, str(tmp_path)])
        assert done.exit_code == 1, done.output
        assert "gap 1..1" in done.output and "shards: FAILED (shard(s) 0)" in done.output
    done = runner.invoke(app, ["check-shards", str(tmp_path / "nope")])
    assert done.exit_code == 2
