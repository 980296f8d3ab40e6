"""benchmarks/cpu.py: CPU read from /proc, interpolated over the clients' window and
divided per role, on real processes and on summary files written by the nodes' writers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cpu import (
    CpuSampler,
    Track,
    client_window,
    cpu_per_op,
    format_roles,
    node_name,
    node_of,
    proc_cmdline,
    proc_cpu_s,
    proxy_roles,
    role_of,
)
from nodes import status
from nodes.metrics import ClientSummary, SeriesFile, ThroughputSeries, write_summary

# A command name the kernel shows in /proc/<pid>/stat as "(<comm>)": its own ") (" and
# spaces shift every later field for a parser that splits at the first ")".
ODD_COMM = ") (a b c d e f"
BLOCKED = "import sys; sys.stdin.read()"


def burn(cpu_s: float) -> None:
    end = time.process_time() + cpu_s
    while time.process_time() < end:
        pass


# --- Track.at --------------------------------------------------------------------------

def test_track_without_samples_spent_nothing() -> None:
    assert Track("proxy-0-0").at(123.0) == 0.0


def test_track_before_first_sample_is_zero_at_it_the_first_value() -> None:
    track = Track("proxy-0-0", times=[10.0, 20.0], cpu=[1.0, 3.0])
    assert track.at(9.999) == 0.0  # the process had not started: nothing spent yet
    assert track.at(10.0) == 1.0


def test_track_interpolates_between_samples_and_hits_them_exactly() -> None:
    track = Track("proxy-0-0", times=[10.0, 20.0, 30.0], cpu=[1.0, 3.0, 3.5])
    assert track.at(15.0) == pytest.approx(2.0)
    assert track.at(20.0) == pytest.approx(3.0)
    assert track.at(27.5) == pytest.approx(3.375)


def test_track_after_last_sample_keeps_the_last_value() -> None:
    track = Track("proxy-0-0", times=[10.0, 20.0], cpu=[1.0, 3.0])
    assert track.at(20.0) == pytest.approx(3.0)
    assert track.at(1e12) == 3.0  # the process ended: it spends nothing more


def test_track_with_one_sample() -> None:
    track = Track("client-0-0", times=[10.0], cpu=[0.5])
    assert (track.at(5.0), track.at(10.0), track.at(11.0)) == (0.0, 0.5, 0.5)


# --- proc_cpu_s, proc_cmdline, node_name on real processes -----------------------------

def test_proc_cpu_s_of_this_process_rises_with_the_cpu_it_burns() -> None:
    before = proc_cpu_s(os.getpid())
    assert before is not None
    burn(0.3)
    after = proc_cpu_s(os.getpid())
    assert after is not None
    assert after - before >= 0.2  # ticks are 10 ms: a little short of 0.3 at worst


def test_proc_cpu_s_reads_past_a_command_name_with_parens_and_spaces() -> None:
    """The child names itself ODD_COMM, burns CPU, reports os.times() and blocks: what
    /proc says it spent must be what it says it spent."""
    code = (f"import os, sys, time\nopen('/proc/self/comm', 'w').write({ODD_COMM!r})\n"
            "end = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
            "t = os.times()\nprint(t.user + t.system, flush=True)\nsys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        reported = float(child.stdout.readline())
        stat = Path(f"/proc/{child.pid}/stat").read_text()
        assert f"({ODD_COMM})" in stat  # the name the parser has to get past
        measured = proc_cpu_s(child.pid)
        assert measured is not None
        assert reported >= 0.29
        assert measured == pytest.approx(reported, abs=0.05)
    finally:
        child.communicate("")
    assert proc_cpu_s(child.pid) is None  # gone (and reaped): no reading


def test_node_name_and_kind_from_a_real_node_command_line(tmp_path: Path) -> None:
    # The shape Experiment.spawn gives a node: python -m nodes.<kind> --config <dir>/<name>.toml
    config = tmp_path / "run" / "server-1-0.toml"
    child = subprocess.Popen([sys.executable, "-c", BLOCKED, "-m", "nodes.logserver",
                              "--config", str(config)], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while "--config" not in (cmdline := proc_cmdline(child.pid)):
            assert time.monotonic() < deadline, f"no command line for {child.pid}"
            time.sleep(0.01)
        assert cmdline[0] == sys.executable
        assert node_name(cmdline) == "server-1-0"
        assert node_of(cmdline) == ("server-1-0", "logserver")

        sampler = CpuSampler(str(tmp_path / "run"))
        sampler.sample()
        assert [(t.name, t.kind) for t in sampler.tracks.values()] == [
            ("server-1-0", "logserver")]
        elsewhere = CpuSampler(str(tmp_path / "other"))
        elsewhere.sample()
        assert elsewhere.tracks == {}
    finally:
        child.communicate(b"")


def test_node_name_is_none_for_other_processes() -> None:
    assert node_name(proc_cmdline(os.getpid())) is None  # pytest itself
    assert node_name([sys.executable, "-m", "benchmarks.drivers", "rpc", "--config",
                      "x.toml"]) is None
    assert node_name([sys.executable, "-m", "nodes.proxy"]) is None
    assert node_name([sys.executable, "-m", "nodes.proxy", "--config"]) is None
    assert node_name(["taskset", "-c", "1", sys.executable, "-m", "nodes.proxy",
                      "--config", "/r/proxy-2-1.toml"]) == "proxy-2-1"


def test_sampler_follows_a_pid_it_is_given_under_its_name_and_role() -> None:
    sampler = CpuSampler(pids={os.getpid(): ("zookeeper-0", "leader")})
    sampler.sample()
    burn(0.2)
    sampler.sample()
    track = sampler.tracks[os.getpid()]
    assert (track.name, track.kind) == ("zookeeper-0", "leader")
    assert track.cpu[-1] - track.cpu[0] >= 0.15


def test_sampler_thread_samples_until_stopped() -> None:
    with CpuSampler(pids={os.getpid(): ("client", "client")}, period=0.01) as sampler:
        deadline = time.monotonic() + 10
        while len(sampler.tracks[os.getpid()].times) < 3:
            assert time.monotonic() < deadline, "the sampler thread took no samples"
            time.sleep(0.01)
    taken = len(sampler.tracks[os.getpid()].times)
    time.sleep(0.05)
    assert len(sampler.tracks[os.getpid()].times) == taken


# --- client_window, cpu_per_op on a run directory as the nodes leave it ----------------

def client(run: Path, name: str, start_ms: int, end_ms: int, ops: int) -> None:
    write_summary(run / f"{name}.summary.json", ClientSummary(
        name=name, client_id=0, ops_total=ops + 100, ops_measured=ops,
        window_start_unix_ms=start_ms, window_end_unix_ms=end_ms, retransmits=0,
        redirects=0, unanswered=0))


def fake_run(tmp_path: Path) -> Path:
    """A finished CorfuMason-like run: summaries of clients (one in clients/, as the
    orchestrator puts them), proxies, sequencer and log server; one proxy still running
    (no summary, only its .role file)."""
    run = tmp_path / "run"
    (run / "clients").mkdir(parents=True)
    client(run / "clients", "client-0-0", 100_000, 110_000, 3000)
    client(run / "clients", "client-0-1", 100_500, 110_500, 1000)
    status.write_summary(run, status.NodeSummary(name="proxy-0-0", role="proxy",
                                                 final_role="leader"))
    status.write_summary(run, status.NodeSummary(name="proxy-1-0", role="proxy",
                                                 final_role="follower"))
    status.write_role(run, "proxy-1-0", "leader", 1)  # stale: the summary is final
    status.write_role(run, "proxy-2-0", "follower", 2)
    status.write_summary(run, status.NodeSummary(name="sequencer-0", role="sequencer"))
    status.write_role(run, "sequencer-0", "leader", 1)  # a sequencer's, not a Raft role
    status.write_summary(run, status.NodeSummary(name="server-0-0", role="logserver"))
    return run


def test_without_series_the_window_spans_every_client_and_sums_their_operations(
        tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    (run / "not-a-client.summary.json").write_text('{"name": "x"}\n')
    assert client_window(run) == (100.0, 110.5, 4000)
    assert client_window(tmp_path / "empty") == (0.0, 0.0, 0)


def test_with_series_the_window_is_where_every_client_measured(tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    for name, ops_per_bin in (("client-0-0", 3), ("client-0-1", 1)):
        series = ThroughputSeries(10)
        for ms in range(95_000, 115_000, 10):  # every 10 ms bin, warm-up and cool-down too
            series.record(ms * 1_000_000, ops_per_bin)
        with SeriesFile(run / "clients" / f"{name}.series") as out:
            out.append(series.take())
    # Both measured in [100.5 s, 110 s): 950 bins of 3 + 1 operations.
    assert client_window(run) == (100.5, 110.0, 950 * 4)


def test_proxy_roles_prefer_the_final_summary_then_the_role_file(tmp_path: Path) -> None:
    roles = proxy_roles(fake_run(tmp_path))
    assert {k: v for k, v in roles.items() if k.startswith("proxy")} == {
        "proxy-0-0": "leader", "proxy-1-0": "follower", "proxy-2-0": "follower"}


def test_role_of_names_every_kind_of_process() -> None:
    proxies = {"proxy-0-0": "leader", "sequencer-0": "leader"}
    assert role_of("proxy-0-0", proxies) == "leader"
    assert role_of("proxy-0-0", proxies, "proxy") == "leader"
    assert role_of("proxy-9-0", proxies, "proxy") == "proxy"  # no role known
    assert role_of("proxy-9-0", proxies) == "proxy"
    assert role_of("sequencer-0", proxies, "sequencer") == "sequencer"
    assert role_of("sequencer-0", {}) == "sequencer"
    assert role_of("client-0-0", {}) == "client"
    assert role_of("client-0-0", {}, "corfuclient") == "client"
    assert role_of("client-0-0", {}, "zkclient") == "client"
    assert role_of("server-0-0", {}, "logserver") == "logserver"
    assert role_of("server-3-0", {}, "zkshard") == "shard"
    assert role_of("zookeeper-1", {}, "follower") == "follower"


def track(name: str, kind: str, cpu_at_100: float, cpu_at_110: float) -> Track:
    # Sampled at 95, 100, 110 and 115 unix seconds.
    return Track(name, kind, [95.0, 100.0, 110.0, 115.0],
                 [0.0, cpu_at_100, cpu_at_110, cpu_at_110 + 1.0])


def test_cpu_per_op_divides_each_role_s_cpu_in_the_window(tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    sampler = CpuSampler(str(run))
    sampler.tracks = {
        1: track("proxy-0-0", "proxy", 1.0, 1.4),  # leader 0.4 s
        2: track("proxy-1-0", "proxy", 1.0, 1.1),  # follower 0.1 s
        3: track("proxy-2-0", "proxy", 1.0, 1.1),  # follower 0.1 s (still running)
        4: track("sequencer-0", "sequencer", 0.0, 0.05),
        5: track("server-0-0", "logserver", 0.0, 0.15),
        6: track("client-0-0", "corfuclient", 0.5, 0.7),
        7: track("client-0-1", "corfuclient", 0.5, 0.7),
        # A restarted proxy: its two incarnations count as one.
        8: Track("proxy-1-0", "proxy", [95.0, 104.0], [0.0, 0.2]),
        9: Track("proxy-1-0", "proxy", [106.0, 115.0], [0.0, 0.3]),
    }
    start, end, ops = client_window(run)
    assert ops == 4000
    cpu = cpu_per_op(sampler, run, 100.0, 110.0, ops)
    assert list(cpu) == ["all", "client", "follower", "leader", "logserver", "sequencer"]
    # proxy-1-0's incarnations: 0.2 - 0.2 * 5 / 9 and 0.3 * 4 / 9.
    restarted = 0.2 - 0.2 * 5 / 9 + 0.3 * 4 / 9
    expected = {"client": 0.4, "follower": 0.2 + restarted, "leader": 0.4,
                "logserver": 0.15, "sequencer": 0.05}
    for role, seconds in expected.items():
        assert cpu[role] == pytest.approx(seconds * 1e6 / 4000), role
    assert cpu["all"] == pytest.approx(sum(expected.values()) * 1e6 / 4000)
    # The same figure with the proxies' roles read from several directories.
    assert cpu_per_op(sampler, [tmp_path / "elsewhere", run], 100.0, 110.0, ops) == cpu
    assert cpu_per_op(sampler, run, 100.0, 110.0, 0) == {}


def test_format_roles() -> None:
    assert format_roles({}) == "n/a"
    assert format_roles({"all": 30.04, "client": 10.0, "leader": 20.04}) == (
        "30.0 (client 10.0, leader 20.0)")
