"""`masonctl testbed up` -> `masonctl setup` over real sshd in network namespaces -> `down`.

Needs root, iproute2 and openssh-server (scripts/system-deps.sh installs them), and the
first run downloads the node wheels (msgspec, uvloop, pip) into ~/.cache/mason.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import testbed
from orchestrator.hosts import HostError
from orchestrator.machines import read_machine_info
from orchestrator.ssh_host import SSHHost, hosts_for
from tests.conftest import masonctl, our_processes, wait_for
from tests.testbed.bed import Bed, require_testbed

pytestmark = pytest.mark.testbed

require_testbed()

REHEARSAL = ipaddress.IPv4Network("198.18.0.0/15")


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    bed = Bed(tmp_path_factory.mktemp("rehearsal"))
    try:
        done = bed.up()
        assert done.returncode == 0, done.stderr
        yield bed
    finally:
        testbed.down(bed.dir)  # even when a test failed; harmless when already down
        shutil.rmtree(bed.nodes, ignore_errors=True)


def _venv_imports(host: SSHHost) -> bool:
    return host.run([host.python, "-c", "import nodes, msgspec"], check=False).rc == 0


def test_up_writes_an_emulab_style_list(bed: Bed):
    state = bed.state()
    lines = [ln for ln in Path(state.machine_list).read_text().splitlines()
             if not ln.startswith("#")]
    assert [ln.split()[0] for ln in lines] == [
        "sequencer-0", "sequencer-1", "proxy-0", "proxy-1", "proxy-2", "client-0", "server-0"]
    for line, host in zip(lines, state.hosts, strict=True):
        assert line.endswith(f"ssh -p 22 root@{host.ip}")
        assert ipaddress.IPv4Address(host.ip) in REHEARSAL
    assert set(testbed.our_namespaces()) == {f"mason-h{i}" for i in range(7)}
    again = masonctl("testbed", "up", "--dir", str(bed.root / "second"), cwd=bed.root)
    assert again.returncode == 2 and "already up" in again.stderr
    assert not (bed.root / "second").exists()


def test_setup_then_a_dead_node_names_itself(bed: Bed):
    done = bed.setup()
    assert done.returncode == 0, done.stdout + done.stderr
    cluster = read_machine_info(bed.info)
    assert len(cluster) == 7
    assert cluster.counts() == {"sequencer": 2, "proxy": 3, "client": 1, "server": 1, "dt": 0}
    for m in cluster:
        assert ipaddress.IPv4Address(m.experiment_ip) in REHEARSAL
        assert ipaddress.IPv4Address(m.control_ip) in REHEARSAL
        assert m.experiment_iface == "eth0" and len(m.mac) == 17
        assert m.workdir == str(bed.nodes / m.name)

    # What `masonctl run` does: SSHHosts straight from machine_info.txt.
    state = bed.state()
    hosts = hosts_for(cluster, identity_file=state.identity, known_hosts=state.known_hosts)
    try:
        for name, host in hosts.items():
            assert host.workdir == str(bed.nodes / name)
            assert host.python == str(bed.nodes / name / "venv" / "bin" / "python")
            assert _venv_imports(host), f"{name}: the venv cannot import nodes, msgspec"
            assert host.address == cluster.get(name).experiment_ip
    finally:
        for host in hosts.values():
            host.close()

    # Kill one sshd: that node fails by name, every other one is set up again.
    victim = next(h for h in state.hosts if h.name == "proxy-1")
    pid = testbed.sshd_pid(state, "proxy-1")
    assert pid is not None
    os.kill(pid, 15)

    def refused() -> bool:
        try:
            socket.create_connection((victim.ip, 22), timeout=0.5).close()
        except OSError:
            return True
        return False

    wait_for(refused, 10, "proxy-1's sshd to stop")
    done = bed.setup()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "proxy-1" in done.stderr and "connection refused" in done.stderr
    assert "Traceback" not in done.stderr
    assert "6 of 7 machines set up" in done.stderr
    assert sorted(read_machine_info(bed.info).names) == sorted(
        n for n in cluster.names if n != "proxy-1")


def test_ssh_transport_against_real_sshd(bed: Bed, tmp_path: Path):
    state = bed.state()
    target = state.hosts[0]
    host = SSHHost(target.name, target.ip, user="root", identity_file=state.identity,
                   known_hosts=state.known_hosts, workdir=str(bed.root / "odd dir $(x)"),
                   python="python3")
    try:
        hostile = ["a b", "$(touch PWNED)", "`id`", "it's", "x;y", "*", "~", ""]
        echo = ["python3", "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]
        assert json.loads(host.run([*echo, *hostile]).stdout) == hostile
        host.makedirs(host.workdir)
        path = f"{host.workdir}/file 'q'.txt"
        host.write_text(path, "hello\n")
        assert host.read_text(path) == "hello\n" and host.exists(path)
        pid = f"{host.workdir}/sleep.pid"
        host.spawn(["sleep", "30"], log_path=f"{host.workdir}/sleep.log", pid_path=pid)
        assert host.alive(pid) and host.exit_code(pid) is None
        assert host.signal(pid, 15)
        wait_for(lambda: host.exit_code(pid) is not None, 10, "sleep to end")
        assert host.exit_code(pid) == -15 and not host.alive(pid)
        got = host.fetch_dir(host.workdir, tmp_path / "fetched")
        assert {p.name for p in got} >= {"file 'q'.txt", "sleep.pid", "sleep.pid.exit"}
        assert not (bed.root / "PWNED").exists()
    finally:
        host.close()

    # Host keys: unknown ones are refused unless asked; accepted ones are recorded.
    empty = tmp_path / "known_hosts"
    strict = SSHHost(target.name, target.ip, user="root", identity_file=state.identity,
                     known_hosts=empty)
    with pytest.raises(HostError, match=f"^{target.name} .*unknown host key"):
        strict.run(["true"])
    trusting = SSHHost(target.name, target.ip, user="root", identity_file=state.identity,
                       known_hosts=empty, accept_new_host_keys=True)
    try:
        assert trusting.run(["true"]).rc == 0
    finally:
        trusting.close()
    assert empty.read_text().startswith(f"{target.ip} ssh-ed25519 ")


def test_down_leaves_nothing(bed: Bed):
    testbed.down(bed.dir)
    testbed.down(bed.dir)  # idempotent
    assert testbed.our_namespaces() == []
    assert testbed.our_links() == []
    assert our_processes(str(bed.dir)) == []  # no sshd of ours (their configs live there)
    assert not bed.dir.exists()
    done = masonctl("testbed", "down", "--dir", str(bed.dir), cwd=bed.root)
    assert done.returncode == 0, done.stderr
