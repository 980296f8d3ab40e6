"""End to end on this machine: masonctl run starts real processes over real sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.contiguity import check_run
from tests.conftest import free_port_block, masonctl, our_processes

SHORT = ["--warmup", "1", "--cooldown", "0.5", "--expduration", "3"]


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One run shared by the assertions below: 2 spaces, 2 proxy groups, 3 clients."""
    root = tmp_path_factory.mktemp("e2e")
    done = masonctl(
        "run", *SHORT, "--nsequence_spaces", "2", "--nproxies", "3", "--nproxy-threads", "2",
        "--nclient_threads", "3", "--client_concurrency", "16",
        # Small blocks: even a run slowed by a loaded machine completes many, so the ring's
        # truncation shows whatever the throughput.
        "--bitmap_block", "1024",
        "--base_port", str(free_port_block(16)), "--outdir", "two-groups",
        "--results", str(root), cwd=root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "two-groups", done.stdout + done.stderr


def test_run_reports_throughput_percentiles_and_contiguity(two_groups):
    run_dir, output = two_groups
    assert "throughput:" in output, output
    for label in ("p50", "p99", "p99.9", "p99.99"):
        assert f" {label} " in output
    assert "contiguity: OK" in output


def test_the_checker_proves_contiguity_and_fifo_over_both_groups(two_groups):
    run_dir, _ = two_groups
    verdict = check_run(run_dir)
    assert verdict.ok, "\n".join(verdict.lines())
    assert len(list((run_dir / "clients").glob("client-0-*.seqnums"))) == 3
    # Both groups served operations: clients 0 and 2 use group 0, client 1 group 1.
    groups = {json.loads(p.read_text())["name"]: p
              for p in (run_dir / "clients").glob("*.summary.json")}
    assert len(groups) == 3
    for path in groups.values():
        summary = json.loads(path.read_text())
        assert summary["ops_measured"] > 0 and summary["unanswered"] == 0


def test_results_hold_the_original_formats_and_the_experiment(two_groups):
    run_dir, _ = two_groups
    line = (run_dir / "client-0.dat").read_text().strip()
    fields = line.split(",")
    assert len(fields) == 6 and float(fields[0]) > 0, line
    experiment = (run_dir / "experiment.toml").read_text()
    assert "nsequence_spaces = 2" in experiment and "nproxy_leaders = 2" in experiment
    assert "version" in experiment
    for name in ("sequencer-0", "proxy-0-0", "proxy-2-1", "clients/client-0-2"):
        assert (run_dir / f"{name}.log").exists()


def test_only_the_machine_dat_files_lie_where_the_original_put_them(two_groups):
    # The original's parse_datfiles.sh sums every .dat below a run: only client-<m>.dat.
    run_dir, _ = two_groups
    assert [str(p.relative_to(run_dir)) for p in run_dir.rglob("*.dat")] == ["client-0.dat"]
    assert not list(run_dir.glob("client-*-*"))  # per-process files are in clients/
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    parsed = masonctl("parse", "--original", str(run_dir.parent), cwd=run_dir.parent)
    line = (run_dir / "client-0.dat").read_text().split(",")
    assert parsed.stdout.split() == [line[0], *(f"{float(v):.3f}" for v in line[1:5])]


def test_no_process_outlives_the_run(two_groups):
    run_dir, _ = two_groups
    assert our_processes(str(run_dir)) == []


def test_the_gc_ring_truncates_the_bitmaps_during_the_run(two_groups):
    import re

    run_dir, _ = two_groups
    bases = []
    for log in run_dir.glob("proxy-*.log"):
        for match in re.finditer(r"bitmap bases \[([0-9, ]+)\]", log.read_text()):
            bases += [int(b) for b in match.group(1).split(",")]
    assert bases, "no proxy reported its bitmaps"
    # Blocks are dropped only once the ring proved every number in them committed.
    assert max(bases) > 0
