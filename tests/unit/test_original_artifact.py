"""What a user of the original artifact brings along: its list view, its machine_info.txt,
its parse_datfiles.sh output read by their own scripts, its result layout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.machines import (
    ORIGINAL_FORMAT,
    OURS_FORMAT,
    machine_info_format,
    parse_list_view,
    parse_machine_info,
)
from tests.conftest import REPO

EXAMPLE = REPO / "machine_list.example.txt"


# ---- machine_list.example.txt ----------------------------------------------------------------


def test_the_example_list_view_is_the_portals_tab_separated_layout():
    lines = EXAMPLE.read_text().splitlines()
    for line in lines:
        cols = line.split("\t")
        # name, physical id, type, status, startup status, image, ssh command
        assert len(cols) == 7, line
        assert cols[6].startswith("ssh -p 22 ")
        assert cols[6].split("@")[1].endswith(".example.net")  # placeholder hosts only
    cluster = parse_list_view(EXAMPLE.read_text(), str(EXAMPLE))
    assert len(cluster) == len(lines)
    counts = cluster.counts()
    assert (counts["sequencer"], counts["proxy"], counts["client"], counts["server"]) == (
        2, 6, 2, 3)
    assert {m.hardware_type for m in cluster} == {"d430"}


def test_setup_dry_run_accepts_the_example_and_contacts_nobody(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["setup", "alice", "--machine-list", str(EXAMPLE),
                                      "--dry-run"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "13 machines (2 sequencer, 6 proxy, 2 client, 3 server)" in result.output
    assert "alice@pc413.emulab.example.net:22" in result.output
    assert not (tmp_path / "machine_info.txt").exists()


def test_the_readme_points_to_the_example_and_git_ignores_the_real_lists():
    assert "machine_list.example.txt" in (REPO / "README.md").read_text()
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", "machine_list.txt",
         "machine_info.txt", "setup/machine_info.txt"],
        capture_output=True, text=True, check=False).stdout.split()
    assert ignored == ["machine_list.txt", "machine_info.txt", "setup/machine_info.txt"]


# ---- the original's machine_info.txt ---------------------------------------------------------

# As setup/parse_machine_list.py wrote it: seven fields, bare commas.
ORIGINAL_INFO = (
    "sequencer-0,pc401,enp6s0f0,0c:c4:7a:00:00:01,10.1.1.1,198.18.0.11,enp6s0f1\n"
    "proxy-0,pc403,enp6s0f0,0c:c4:7a:00:00:03,10.1.1.3,198.18.0.13,enp6s0f1\n"
)


def test_the_original_seven_column_machine_info_is_read_and_named():
    seq, proxy = parse_machine_info(ORIGINAL_INFO).machines
    assert (proxy.name, proxy.role, proxy.physical_id, proxy.experiment_iface) == (
        "proxy-0", "proxy", "pc403", "enp6s0f0")
    assert (proxy.mac, proxy.experiment_ip, proxy.control_ip, proxy.experiment_iface2) == (
        "0c:c4:7a:00:00:03", "10.1.1.3", "198.18.0.13", "enp6s0f1")
    # No ssh columns: a machine is reached at its control IP.
    assert (seq.ssh_host, seq.ssh_port, seq.ssh_user, seq.workdir) == (
        "198.18.0.11", 22, "", "")
    assert machine_info_format(ORIGINAL_INFO).startswith(ORIGINAL_FORMAT)
    ours = "proxy-0, pc403, eth1, 0c:c4:7a:00:00:03, 10.1.1.3, 198.18.0.13, eth2, h, 22, u, /w\n"
    assert machine_info_format(ours) == OURS_FORMAT
    assert "mix" in machine_info_format(ORIGINAL_INFO + ours)


def test_a_run_says_which_machine_info_format_it_read(tmp_path: Path):
    info = tmp_path / "machine_info.txt"
    info.write_text(ORIGINAL_INFO)
    result = CliRunner().invoke(app, ["run", "--machine-info", str(info), "--dry-run",
                                      "--nproxies", "1"], env={"COLUMNS": "200"})
    first = result.output.splitlines()[0]
    assert first == f"{info}: {ORIGINAL_FORMAT} (ssh to each control IP)"


# ---- parse --original ------------------------------------------------------------------------


def _run(root: Path, name: str, *dat_lines: str) -> None:
    run = root / name
    (run / "clients").mkdir(parents=True)
    (run / "clients" / "client-0-0.summary.json").write_text("{}")  # not a .dat: not read
    for m, line in enumerate(dat_lines):
        (run / f"client-{m}.dat").write_text(line + "\n")


def test_parse_original_prints_the_original_scripts_lines(tmp_path: Path):
    _run(tmp_path, "results-1700000001",
         "1.500000,10.000000,20.000000,30.000000,40.000000,0",
         "0.250000,11.000000,21.500000,33.333333,41.000000,3")
    for k in range(2, 7):
        _run(tmp_path, f"results-170000000{k}", f"0.{k}00000,{k}.000000,2.000000,3.000000,"
                                                  "4.123400,0")
    result = CliRunner().invoke(app, ["parse", "--original", str(tmp_path)])
    assert result.exit_code == 0, result.output
    # Written by hand from the original's output: the throughputs summed (%f), the mean
    # over the machines' files of each percentile (%.3f), a blank line after every 5 runs.
    assert result.output == (
        "1.750000 10.500 20.750 31.667 40.500\n"
        "0.200000 2.000 2.000 3.000 4.123\n"
        "0.300000 3.000 2.000 3.000 4.123\n"
        "0.400000 4.000 2.000 3.000 4.123\n"
        "0.500000 5.000 2.000 3.000 4.123\n"
        "\n"
        "0.600000 6.000 2.000 3.000 4.123\n"
    )


def test_parse_original_names_a_bad_file_and_prints_the_rest(tmp_path: Path):
    _run(tmp_path, "results-1", "1.000000,1.000000,2.000000,3.000000,4.000000,0")
    _run(tmp_path, "results-2", "1.0,x,2,3,4,0")
    result = CliRunner().invoke(app, ["parse", "--original", str(tmp_path)])
    assert result.exit_code == 1
    assert "1.000000 1.000 2.000 3.000 4.000\n" in result.output
    assert "results-2/client-0.dat:1: not numbers" in result.output


# ---- the results layout ----------------------------------------------------------------------


def test_readers_find_client_files_in_the_clients_folder(tmp_path: Path):
    from analysis.runfiles import run_files
    from orchestrator.spec import ExperimentSpec
    from orchestrator.suite import client_results

    (tmp_path / "clients").mkdir()
    for t in range(2):
        (tmp_path / "clients" / f"client-0-{t}.summary.json").write_text("{}")
    (tmp_path / "proxy-0-0.noops").write_text("# noops spaces 1\n")
    assert [p.name for p in run_files(tmp_path, "*.summary.json")] == [
        "client-0-0.summary.json", "client-0-1.summary.json"]
    # The suite's "rerun a point whose client results are short" count, in our layout.
    spec = ExperimentSpec(name="x", nclients=1, nclient_threads=3)
    assert client_results(spec, tmp_path) == (2, 3)


@pytest.mark.parametrize("taken", [False, True])
def test_latest_points_at_the_last_run(tmp_path: Path, taken: bool):
    from orchestrator.runner import LATEST, link_latest

    if taken:
        (tmp_path / LATEST).mkdir()  # a user's own folder of that name stays as it is
    for name in ("results-1", "results-2"):
        (tmp_path / name).mkdir()
        link_latest(tmp_path / name)
    latest = tmp_path / LATEST
    if taken:
        assert latest.is_dir() and not latest.is_symlink()
    else:
        assert latest.is_symlink() and latest.readlink() == Path("results-2")
        assert latest.resolve() == (tmp_path / "results-2").resolve()
