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
