"""Bad input gets one line and a non-zero exit, and every started process is gone."""

from __future__ import annotations

import socket

from tests.conftest import free_port_block, masonctl, our_processes


def one_error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error:"), lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def test_unknown_flag(tmp_path):
    done = masonctl("run", "--nproxiez", "3", cwd=tmp_path)
    assert done.returncode == 2
    assert "--nproxiez" in one_error_line(done)


def test_bad_values(tmp_path):
    for args, needle in (
        (["--nproxies", "4"], "multiple of 3"),
        (["--nproxy_leaders", "5"], "nproxy_leaders"),
        (["--client-concurrency", "0"], "client_concurrency"),
        (["--nproxies", "three"], "--nproxies"),
        (["--kill_leader", "30", "--expduration", "10"], "kill_leader"),
        (["--durable", "sometimes"], "--durable must be one of always, batch, off"),
        (["--restart-after", "-2"], "--restart_after must be >= 0"),
    ):
        done = masonctl("run", *args, cwd=tmp_path)
        assert done.returncode != 0, args
        assert needle in one_error_line(done), args


def test_missing_interpreter(tmp_path):
    done = masonctl("run", "--python", str(tmp_path / "no-such-python"), "--outdir", "x",
                    "--results", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert "no-such-python" in one_error_line(done)
    assert our_processes(str(tmp_path)) == []


def test_port_in_use(tmp_path):
    base = free_port_block(16)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base))
        squatter.listen()
        done = masonctl("run", "--base_port", str(base), "--outdir", "busy",
                        "--results", str(tmp_path), cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    line = one_error_line(done)
    assert "sequencer-0" in line and "already in use" in line and str(base) in line
    assert our_processes(str(tmp_path)) == []


def test_check_on_a_missing_directory(tmp_path):
    done = masonctl("check", str(tmp_path / "nope"), cwd=tmp_path)
    assert done.returncode == 2
    assert "no such results directory" in one_error_line(done)


def test_bad_values_of_the_corfu_flags(tmp_path):
    for args, needle in (
        (["--system", "corfu", "--ncorfu_servers", "3"],
         "--ncorfu_servers 3 is not a multiple of --corfu_replication_factor 2"),
        (["--system", "corfumason", "--corfu-replication-factor", "4"],
         "--corfu_replication_factor must be 1, 2 or 3, not 4"),
        (["--system", "corfumason", "--appends", "--reads"],
         "--appends and --reads cannot be combined"),
        (["--system", "corfu", "--corfu_replication_factor", "1", "--ncorfu_servers", "1",
          "--kill_logserver", "1"], "--kill_logserver needs --corfu_replication_factor 2 or 3"),
        (["--system", "corfumason", "--kill_all_leaders", "1", "--kill_leader", "2"],
         "--kill_all_leaders cannot be combined with --kill_leader"),
        (["--system", "corfu", "--kill_leader", "1"], "plain Corfu has no proxy groups"),
        (["--system", "corfu", "--kill-sequencer", "1"], "Corfu has no sequencer failover"),
        (["--system", "corfu", "--entry-size", "0"], "--entry_size must be between 1 and"),
        (["--system", "corfumason", "--read_policy", "nearest"], "--read_policy must be one"),
        (["--system", "corfu", "--max_log_position", "ten"], "--max_log_position"),
        (["--ncorfu_servers", "4"], "--ncorfu_servers does not apply to --system mason"),
        (["--system", "zk-mason", "--nzk_servers", "4"],
         "--nzk_servers must be a positive multiple of 3, not 4"),
        (["--system", "zkmason", "--nservers", "6", "--nsequence_spaces", "1"],
         "--nzk_servers 6 makes 2 shard(s), but --nsequence_spaces is 1"),
        (["--system", "zkmason", "--zk_replication_factor", "5"],
         "--zk_replication_factor must be 3, not 5"),
        (["--system", "rsmkeeper", "--kill_zk_server", "1"],
         "--kill_zk_server does not apply to --system rsmkeeper"),
        (["--system", "paxos"], "unknown system 'paxos'"),
    ):
        done = masonctl("run", "--dry-run", *args, "--results", str(tmp_path), cwd=tmp_path)
        assert done.returncode != 0, args
        assert needle in one_error_line(done), args
    # The same checks guard a real run: it fails before anything starts.
    done = masonctl("run", "--system", "zkmason", "--nzk_servers", "4", "--results",
                    str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert one_error_line(done) == ("error: --nzk_servers must be a positive multiple of 3, "
                                    "not 4")
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_places_and_checks_every_config_and_starts_nothing(tmp_path):
    done = masonctl("run", "--system", "corfu", "--dry-run", "--ncorfu_servers", "4",
                    "--corfu_units", "2", "--results", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    logservers = [row[0] for row in rows if len(row) > 2 and row[2] == "logserver"]
    assert logservers == [f"server-{m}-{u}" for m in range(4) for u in range(2)]
    assert "chain 0: server-0-0 -> server-1-0" in done.stdout
    assert "chain 3: server-2-1 -> server-3-1" in done.stdout
    assert [row[0] for row in rows if len(row) > 2 and row[2] == "corfuclient"] == [
        "client-0-0", "client-0-1"]
    assert list(tmp_path.iterdir()) == [] and our_processes(str(tmp_path)) == []


def test_a_zkmason_dry_run_places_its_shards_and_starts_nothing(tmp_path):
    done = masonctl("run", "--system", "zk-mason", "--dry-run", "--nservers", "6",
                    "--nproxies", "6", "--nclients", "2", "--results", str(tmp_path),
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 group(s) of 3, 2 shard(s) of 3" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines()]
    kinds = [row[2] for row in rows if len(row) > 2 and row[0][:1].isalpha()
             and row[2] in ("sequencer", "zkshard", "proxy", "zkclient")]
    # Started in this order: the shards are up before any proxy connects to them.
    assert kinds == ["sequencer"] + ["zkshard"] * 6 + ["proxy"] * 6 + ["zkclient"] * 4
    assert list(tmp_path.iterdir()) == [] and our_processes(str(tmp_path)) == []
