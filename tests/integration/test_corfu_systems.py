"""Corfu and CorfuMason end to end: masonctl runs real log servers, proxies and clients.

Every run ends with both checkers: the positions handed out are contiguous (each owned by
one append or hole) and the log holds every acknowledged append, with its bytes, on every
replica of its chain (analysis/logcheck.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.contiguity import check_run
from analysis.datfiles import read_summary
from analysis.logcheck import check_log
from nodes.logserver.layout import LAYOUT_FILE, read_layout
from tests.conftest import free_port_block, masonctl, our_processes

SHORT = ["--warmup", "1", "--cooldown", "0.5", "--expduration", "2.5", "--record-seqnums"]


def run(root: Path, name: str, *args: str) -> tuple[Path, str]:
    done = masonctl("run", *SHORT, *args, "--base_port", str(free_port_block(32)),
                    "--outdir", name, "--results", str(root), cwd=root, timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return root / name, output


def assert_checked(run_dir: Path, output: str) -> None:
    contiguity, log = check_run(run_dir), check_log(run_dir)
    assert contiguity.ok, "\n".join(contiguity.lines())
    assert log.ok, "\n".join(log.lines())
    assert "contiguity: OK" in output and "log: OK" in output, output
    assert our_processes(str(run_dir)) == []
    summaries = [read_summary(p) for p in (run_dir / "clients").glob("client-*.summary.json")]
    assert summaries and all(s.ops_measured > 0 and s.unanswered == 0 and s.refused == 0
                             for s in summaries)


@pytest.mark.parametrize("system", ["corfu", "corfumason"])
@pytest.mark.parametrize("replication", [1, 2, 3])
def test_appends_land_on_every_replica_of_their_chain(tmp_path, system, replication):
    servers = 3 if replication == 3 else 2
    run_dir, output = run(tmp_path, f"{system}-r{replication}", "--system", system,
                          "--appends", "--ncorfu_servers", str(servers),
                          "--corfu_replication_factor", str(replication))
    assert_checked(run_dir, output)
    layout = read_layout(run_dir / LAYOUT_FILE)
    assert layout.replication == replication and layout.nchains == servers // replication
    verdict = check_log(run_dir)
    assert verdict.appends > 1000 and verdict.dumps == servers  # every replica compared
    assert verdict.data == verdict.positions and verdict.holes == 0


@pytest.mark.parametrize("system", ["corfu", "corfumason"])
def test_reads_find_every_prefilled_position(tmp_path, system):
    run_dir, output = run(tmp_path, f"{system}-reads", "--system", system, "--reads",
                          "--max_log_position", "5000")
    assert_checked(run_dir, output)
    summaries = [read_summary(p) for p in (run_dir / "clients").glob("client-*.summary.json")]
    assert all(s.read_misses == 0 for s in summaries)
    assert check_log(run_dir).positions == 5000
