"""A real local suite end to end: masonctl suite runs real clusters, is stopped by SIGINT
after its first finished run, resumes, and leaves CSV files, figures and an executed
notebook; a run whose nodes cannot start is retried and then given up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO, free_port_block, masonctl, our_processes, wait_for

POINTS = "s1-g1-c1,s1-g1-c16"
SHORT = ["--set", "expduration=1.5", "--set", "warmup=0.5", "--set", "cooldown=0.3"]
RUNS = ["s1-g1-c1-t1", "s1-g1-c16-t1", "s1-g1-c1-t2", "s1-g1-c16-t2"]


def suite_args(results: Path, port: int) -> list[str]:
    return ["suite", "mason", "--trials", "2", "--only", POINTS, *SHORT,
            "--set", f"base_port={port}", "--results", str(results)]


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:") and "Traceback" not in done.stdout + done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished_suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Run, interrupt after the first finished run, resume: the suite the tests below read."""
    root = tmp_path_factory.mktemp("suite")
    results = root / "results"
    suite_dir = results / "mason"
    args = suite_args(results, free_port_block(16))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from orchestrator.cli import main; main()", *args],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)},
    )
    try:
        wait_for(lambda: any(suite_dir.glob("*/done")) or proc.poll() is not None, 90,
                 "the first run of the suite to finish")
        proc.send_signal(signal.SIGINT)
        first_output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done_before = {p.parent.name: p.stat().st_mtime_ns for p in suite_dir.glob("*/done")}
    # Whatever run was in progress lost its marker; plant one more unfinished run directory
    # so that the resume must delete and redo at least one run.
    pending = [r for r in RUNS if r not in done_before]
    planted = suite_dir / pending[-1]
    planted.mkdir(exist_ok=True)
    (planted / "stale-from-an-older-attempt.log").write_text("junk\n")
    processes_after_interrupt = our_processes(str(results))
    resumed = masonctl(*args, cwd=root, timeout=240)
    return {
        "root": root, "suite_dir": suite_dir, "first_rc": proc.returncode,
        "first_output": first_output, "done_before": done_before, "planted": planted,
        "processes_after_interrupt": processes_after_interrupt, "resumed": resumed,
    }


def test_interrupt_stops_cleanly_and_says_how_to_resume(finished_suite):
    assert finished_suite["first_rc"] == 130, finished_suite["first_output"]
    assert "run the same command again to resume" in str(finished_suite["first_output"])
    assert "Traceback" not in str(finished_suite["first_output"])
    assert finished_suite["processes_after_interrupt"] == []
    assert 1 <= len(finished_suite["done_before"]) < len(RUNS)


def test_resume_skips_finished_runs_and_redoes_unfinished_ones(finished_suite):
    done = finished_suite["resumed"]
    assert done.returncode == 0, done.stdout + done.stderr
    before = finished_suite["done_before"]
    assert f"resuming: {len(before)} of 4 runs already finished" in done.stdout
    assert f"redo   {finished_suite['planted'].name}" in done.stdout
    suite_dir = finished_suite["suite_dir"]
    assert sorted(p.parent.name for p in suite_dir.glob("*/done")) == sorted(RUNS)
    for name, mtime in before.items():  # finished runs were not run again
        assert (suite_dir / name / "done").stat().st_mtime_ns == mtime
    assert not (finished_suite["planted"] / "stale-from-an-older-attempt.log").exists()
    assert our_processes(str(suite_dir)) == []


def test_the_suite_csvs_hold_every_run_and_the_medians(finished_suite):
    suite_dir = finished_suite["suite_dir"]
    runs = pd.read_csv(suite_dir / "suite.csv")
    assert sorted(runs["run"]) == sorted(RUNS)
    assert set(runs["client_concurrency"]) == {1, 16} and set(runs["expduration"]) == {1.5}
    assert (runs["throughput_ops"] > 0).all() and runs["exact_percentiles"].all()
    medians = pd.read_csv(suite_dir / "suite_medians.csv").set_index("point")
    assert list(medians.index) == ["s1-g1-c1", "s1-g1-c16"]
    assert medians["trials"].tolist() == [2, 2]
    for point, group in runs.groupby("point"):
        assert medians.loc[point, "throughput_ops"] == pytest.approx(
            group["throughput_ops"].mean(), rel=1e-5)  # two trials: the median is the mean


def test_parse_prints_one_line_per_run(finished_suite):
    done = masonctl("parse", str(finished_suite["suite_dir"]), cwd=finished_suite["root"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(RUNS)
    for line in lines:
        fields = [float(x) for x in line.split()[1:]]
        assert len(fields) == 5 and fields[0] > 0 and fields[1] <= fields[2] <= fields[4]
    assert "suite_medians.csv" in done.stderr


def test_plot_suite_and_plot_recovery_write_figures(finished_suite):
    suite_dir = finished_suite["suite_dir"]
    done = masonctl("plot", "suite", str(suite_dir), cwd=finished_suite["root"])
    assert done.returncode == 0, done.stderr
    written = [Path(line) for line in done.stdout.splitlines()]
    assert [p.name for p in written] == [
        "throughput_latency.pdf", "throughput_latency.png",
        "throughput_scaling.pdf", "throughput_scaling.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    run_dir = suite_dir / RUNS[0]
    done = masonctl("plot", "recovery", str(run_dir), cwd=finished_suite["root"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(run_dir / "recovery.pdf"), str(run_dir / "recovery.png")]
    assert (run_dir / "recovery.png").stat().st_size > 1000


def test_the_notebook_runs_headless_on_the_suite(finished_suite, monkeypatch):
    suite_dir = finished_suite["suite_dir"]
    figures = suite_dir / "notebook"
    monkeypatch.setenv("MASON_SUITE_DIR", str(suite_dir))
    monkeypatch.setenv("MASON_FIGURE_DIR", str(figures))
    nb = nbformat.read(REPO / "analysis" / "notebooks" / "suite.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "analysis" / "notebooks")}}
                   ).execute()
    nbformat.write(nb, suite_dir / "suite.executed.ipynb")
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2
    assert sorted(p.name for p in figures.iterdir()) == [
        "throughput_latency.pdf", "throughput_latency.png",
        "throughput_scaling.pdf", "throughput_scaling.png"]
    text = "".join(o.get("text", "") for o in outputs)
    assert f"{suite_dir}: 4 runs, 2 points" in text


# ---- failures and bad input ------------------------------------------------------------------


def test_a_run_whose_nodes_cannot_start_is_retried_then_reported(tmp_path):
    base = free_port_block(16)
    with socket.socket() as squatter:  # the sequencer's port is taken: every attempt fails
        squatter.bind(("127.0.0.1", base))
        squatter.listen()
        done = masonctl("suite", "mason", "--only", "s1-g1-c1", "--retries", "1", *SHORT,
                        "--set", f"base_port={base}", "--results", str(tmp_path),
                        cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "retry  s1-g1-c1-t1  attempt 1/2 failed" in done.stdout
    assert "FAILED s1-g1-c1-t1  after 2 attempts" in done.stdout
    log = (tmp_path / "mason" / "failures.log").read_text().splitlines()
    assert len(log) == 2 and all("already in use" in line for line in log)
    assert not (tmp_path / "mason" / "s1-g1-c1-t1").exists()  # deleted: a rerun redoes it
    assert our_processes(str(tmp_path)) == []


def test_dry_run_lists_the_runs_and_runs_nothing(tmp_path):
    done = masonctl("suite", "mason", "--dry-run", "--trials", "2", "--results",
                    str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "6 points x 2 trials = 12 runs" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith(("s1-", "s2-"))]
    assert len(rows) == 12 and rows[0].split()[0] == "s1-g1-c1-t1"
    assert rows[-1].split()[0] == "s2-g1-c64-t2" and rows[-1].split()[-1] == "new"
    assert list(tmp_path.iterdir()) == []


def test_dry_run_scaled_to_a_machine_list(tmp_path):
    info = tmp_path / "machine_info.txt"
    names = ["sequencer-0"] + [f"proxy-{i}" for i in range(6)] + ["client-0", "client-1"]
    info.write_text("".join(f"{n}, pc{i}, eth1, 00:11:22:33:44:{i:02x}, 10.1.1.{i + 1}, "
                            f"155.98.36.{i + 1}\n" for i, n in enumerate(names)))
    done = masonctl("suite", "mason", "--dry-run", "--machine-info", str(info), "--only",
                    "s1-*", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "14 points x 1 trial = 14 runs" in done.stdout
    assert "dropped 84 points that do not fit, e.g. s1-g4-c1: needs 12 proxy machines, " \
           "6 listed" in done.stdout
    # (These addresses are text for the parser only: nothing may connect to them.)
    missing = masonctl("suite", "mason", "--machine-info", str(tmp_path / "nope.txt"),
                       "--only", "s1-g1-c1", "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert missing.returncode != 0 and "nope.txt" in one_error_line(missing)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["suite", "nope"], "no suite named 'nope'"),
        (["suite", "mason", "--only", "s9-*"], "--only 's9-*' matches no point"),
        (["suite", "mason", "--appends", "--reads"], "choose one of --appends, --reads"),
        (["suite", "mason", "--setDatas"], "no --setDatas variant"),
        (["suite", "mason", "--trials", "0"], "--trials must be at least 1"),
        (["suite", "mason", "--set", "colour=red"], "'colour' is not an experiment field"),
        (["suite", "BAD.toml"], "BAD.toml: Object contains unknown field `colour`"),
        (["parse", "nowhere"], "nowhere: no such results directory"),
        (["parse", "."], "no run directories"),
        (["plot", "recovery", "nowhere"], "nowhere: no such results directory"),
        (["plot", "recovery", "."], "no throughput series"),
        (["plot", "suite", "nowhere"], "nowhere: no such suite directory"),
        (["plot", "suite", "."], "no finished suite runs"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path, args, needle):
    (tmp_path / "BAD.toml").write_text("[suite]\nsystem = 'mason'\ncolour = 1\n")
    done = masonctl(*args, cwd=tmp_path)
    assert done.returncode != 0
    assert needle in one_error_line(done)


@pytest.mark.parametrize("system,variant", [("corfu", "--appends"), ("corfumason", "--reads")])
def test_corfu_suites_run_locally_scaled(tmp_path, system, variant):
    results = tmp_path / "results"
    done = masonctl("suite", system, variant, "--only", "k1-c1,k1-c8", *SHORT,
                    "--set", f"base_port={free_port_block(32)}", "--results", str(results),
                    cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    suite_dir = results / f"{system}-{variant.lstrip('-')}"
    table = pd.read_csv(suite_dir / "suite.csv")
    assert sorted(table["run"]) == ["k1-c1-t1", "k1-c8-t1"]
    assert (table["throughput_ops"] > 0).all()
    # Scaled for one machine: one server pair, one client machine (and one triple).
    for run in table["run"]:
        experiment = (suite_dir / run / "experiment.toml").read_text()
        assert "ncorfu_servers = 2" in experiment and "nclients = 1" in experiment
        assert ("nproxies = 3" in experiment) == (system == "corfumason")
