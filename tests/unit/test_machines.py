"""The list view and machine_info.txt parsers, what setup finds out about a node, and proof that
no text from a machine list reaches a remote shell unquoted."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.machines import (
    Cluster,
    Machine,
    MachineListError,
    format_machine_info,
    load_list_view,
    parse_list_view,
    parse_machine_info,
    read_machine_info,
    write_machine_info,
)
from orchestrator.provision import (
    IfAddr,
    ProvisionError,
    choose_interfaces,
    parse_default_route,
    parse_ip_addr,
)
from orchestrator.ssh_host import SSHHost

# ---- the list view: variants that must parse -----------------------------------------------

# (line, name, physical id, hardware type, user, host, port, options)
VARIANTS = [
    pytest.param(
        "proxy-0 pc401 d430 ready n/a emulab-ops/UBUNTU22-64-STD ssh -p 22 alice@pc401.emulab.net",
        "proxy-0", "pc401", "d430", "alice", "pc401.emulab.net", 22, (), id="emulab"),
    pytest.param(
        "proxy-1\tpc402\t d430  ready\tn/a  proj/img   ssh  -p  22   alice@pc402.emulab.net  ",
        "proxy-1", "pc402", "d430", "alice", "pc402.emulab.net", 22, (), id="tabs-and-spaces"),
    pytest.param(
        "client-0 pc403 d430 ready proj/img ssh -p 22 alice@pc403.emulab.net",
        "client-0", "pc403", "d430", "alice", "pc403.emulab.net", 22, (),
        id="no-startup-status"),
    pytest.param(
        "client-1 pc410 d430 ready n/a ssh -p 22 alice@pc410.emulab.net",
        "client-1", "pc410", "d430", "alice", "pc410.emulab.net", 22, (), id="no-image"),
    pytest.param(
        "sequencer-0 c220g2-011107 c220g2 Wisconsin ready Finished "
        "ssh -p 22 alice@c220g2-011107.wisc.cloudlab.us",
        "sequencer-0", "c220g2-011107", "c220g2", "alice", "c220g2-011107.wisc.cloudlab.us", 22,
        (), id="cloudlab"),
    pytest.param(
        "sequencer-1 amd154 c6525-25g ready Finished ssh alice@amd154.utah.cloudlab.us",
        "sequencer-1", "amd154", "c6525-25g", "alice", "amd154.utah.cloudlab.us", 22, (),
        id="cloudlab-no-port"),
    pytest.param(
        "server-1 pc405 d430 ready n/a proj/img ssh -i ~/.ssh/emulab -p 2222 "
        "alice@pc405.emulab.net",
        "server-1", "pc405", "d430", "alice", "pc405.emulab.net", 2222, ("-i", "~/.ssh/emulab"),
        id="identity-and-port"),
    pytest.param(
        "server-2 pc406 d430 ready n/a proj/img ssh -p2200 -o StrictHostKeyChecking=no -4 "
        "alice@pc406.emulab.net",
        "server-2", "pc406", "d430", "alice", "pc406.emulab.net", 2200,
        ("-o", "StrictHostKeyChecking=no", "-4"), id="joined-port-and-options"),
    pytest.param(
        "server-3 pc407 d430 ready n/a proj/img ssh -l alice pc407.emulab.net",
        "server-3", "pc407", "d430", "alice", "pc407.emulab.net", 22, (), id="dash-l-user"),
    pytest.param(
        "proxy-12 pc408 ready n/a proj/img ssh -p 22 alice@pc408.emulab.net",
        "proxy-12", "pc408", "", "alice", "pc408.emulab.net", 22, (), id="no-hardware-column"),
    pytest.param(
        "proxy-3 mason-h3 netns ready n/a mason/rehearsal ssh -p 22 root@198.18.0.5",
        "proxy-3", "mason-h3", "netns", "root", "198.18.0.5", 22, (), id="rehearsal-ip"),
    pytest.param(
        "dt-0 pc409 ssh bob@pc409.emulab.net",
        "dt-0", "pc409", "", "bob", "pc409.emulab.net", 22, (), id="minimal-dt"),
    pytest.param(
        "client-2 pc411 d430 ready n/a img ssh ssh://alice@pc411.emulab.net:2022",
        "client-2", "pc411", "d430", "alice", "pc411.emulab.net", 2022, (), id="ssh-url"),
]


@pytest.mark.parametrize("line,name,physical,hw,user,host,port,options", VARIANTS)
def test_list_view_variants(line, name, physical, hw, user, host, port, options):
    cluster = parse_list_view(f"# copied from the portal\n\n{line}\r\n")
    (m,) = cluster.machines
    assert (m.name, m.physical_id, m.hardware_type) == (name, physical, hw)
    assert (m.ssh_user, m.ssh_host, m.ssh_port, m.ssh_options) == (user, host, port, options)
    assert m.role == name.rsplit("-", 1)[0]
    assert m.index == int(name.rsplit("-", 1)[1])


def test_whole_emulab_list_and_roles(tmp_path: Path):
    lines = ["Node ID  Physical Node  Type  Status  Startup  Image  SSH"]  # a copied header
    for i, name in enumerate(["sequencer-0", "sequencer-1", "proxy-10", "proxy-2", "proxy-0",
                              "client-0", "server-0", "dt-0"]):
        lines.append(f"{name} pc{i} d430 ready n/a p/i ssh -p 22 u@pc{i}.emulab.net")
    path = tmp_path / "machine_list.txt"
    path.write_text("\n".join(lines) + "\n")
    cluster = load_list_view(path)
    assert len(cluster) == 8
    # Numeric order, unlike the original's string sort (proxy-10 < proxy-2).
    assert [m.name for m in cluster.by_role("proxy")] == ["proxy-0", "proxy-2", "proxy-10"]
    assert cluster.counts() == {"sequencer": 2, "proxy": 3, "client": 1, "server": 1, "dt": 1}
    assert cluster.get("dt-0").unused and not cluster.get("proxy-0").unused
    with pytest.raises(ValueError, match="unknown role"):
        cluster.by_role("leader")


def test_identity_from_list():
    m = parse_list_view("proxy-0 pc1 ssh -i /k/key u@h.example").machines[0]
    assert m.identity_file == "/k/key"
    host = SSHHost.from_machine(m)
    assert host.identity_file == "/k/key" and host.user == "u" and host.port == 22
    assert SSHHost.from_machine(m, user="v", identity_file="/other").user == "v"


# ---- the list view: malformed lines, each named by file and line ---------------------------

ERRORS = [
    pytest.param("proxy-0 pc1 d430 ready n/a img", "no ssh command", id="no-ssh"),
    pytest.param("proxy-0 pc1 d430 ready n/a img ssh -p 22", "no user@host", id="no-dest"),
    pytest.param("proxy-0 pc1 d430 ready n/a img ssh -p 22 pc1.emulab.net", "no user@host",
                 id="no-user"),
    pytest.param("proxy-0 pc1 ssh -p abc u@h", "bad port 'abc'", id="port-text"),
    pytest.param("proxy-0 pc1 ssh -p 70000 u@h", "bad port '70000'", id="port-range"),
    pytest.param("proxy-0 pc1 ssh -p 0 u@h", "bad port", id="port-zero"),
    pytest.param("proxy-0 pc1 ssh -p", "needs a value", id="port-missing"),
    pytest.param("node-0 pc1 ssh u@h", "unknown role prefix 'node'", id="unknown-role"),
    pytest.param("proxy-x pc1 ssh u@h", "is not <role>-<number>", id="no-index"),
    pytest.param("Proxy-0 pc1 ssh u@h", "is not <role>-<number>", id="capitalised"),
    pytest.param("proxy-01 pc1 ssh u@h", "is not <role>-<number>", id="leading-zero"),
    pytest.param("proxy-0 pc1 ssh u@h uptime", "unexpected 'uptime'", id="remote-command"),
    pytest.param("proxy-0 ssh u@h", "<physical id>", id="no-physical"),
    pytest.param("proxy-0 pc1 ssh -Z u@h", "unknown ssh option '-Z'", id="unknown-option"),
    pytest.param("proxy-0 pc1 ssh -L 80:x:80 u@h", "unknown ssh option", id="forward"),
    pytest.param("proxy-0 pc1 ssh -o ProxyCommand=touch u@h", "is not accepted",
                 id="proxy-command"),
    pytest.param("proxy-0 pc1 ssh u@h..x", "bad ssh host", id="bad-host"),
]


@pytest.mark.parametrize("line,why", ERRORS)
def test_list_view_errors_name_the_line(line, why):
    text = "# list\nsequencer-0 pc0 d430 ready n/a img ssh -p 22 u@pc0.emulab.net\n\n" + line
    with pytest.raises(MachineListError) as info:
        parse_list_view(text, "machine_list.txt")
    message = str(info.value)
    assert message.startswith("machine_list.txt:4: "), message
    assert why in message
    assert "\n" not in message


def test_duplicate_name_and_empty_file():
    text = "proxy-0 pc1 ssh u@a\nproxy-1 pc2 ssh u@b\nproxy-0 pc3 ssh u@c\n"
    with pytest.raises(MachineListError, match=r"^f:3: duplicate node name 'proxy-0' "
                                               r"\(first on line 1\)$"):
        parse_list_view(text, "f")
    with pytest.raises(MachineListError, match="no machines listed"):
        parse_list_view("# nothing\n\n", "f")


def test_unreadable_file(tmp_path: Path):
    with pytest.raises(MachineListError, match="cannot read"):
        load_list_view(tmp_path / "missing.txt")


# ---- hostile text: rejected by the parser, or passed quoted ----------------------------------

HOSTILE_LINES = [
    "proxy-0;touch /tmp/pwned pc1 ssh u@h",
    "$(reboot) pc1 ssh u@h",
    "proxy-0 pc1;rm ssh u@h",
    "proxy-0 pc1,pc2 ssh u@h",
    "proxy-0 pc1 ssh $(reboot)@h",
    "proxy-0 pc1 ssh `id`@h",
    "proxy-0 pc1 ssh a;b@h",
    "proxy-0 pc1 ssh 'x'@h",
    "proxy-0 pc1 ssh u@h;reboot",
    "proxy-0 pc1 ssh u@h$(reboot)",
    "proxy-0 pc1 ssh u@-oProxyCommand=x",
    "proxy-0 pc1 ssh -oProxyCommand=touch\\ /tmp/x u@h",
    "proxy-0 pc1 ssh -i $(reboot) u@h",
    "proxy-0 pc1 ssh -p 22;reboot u@h",
]


@pytest.mark.parametrize("line", HOSTILE_LINES)
def test_hostile_list_lines_are_rejected(line):
    with pytest.raises(MachineListError, match=r"^machine_list.txt:1: "):
        parse_list_view(line, "machine_list.txt")


HOSTILE_ARGS = [
    "proxy-0;touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a b  c",
    "it's",
    'say "hi"',
    "back\\slash",
    "new\nline",
    "*",
    "~",
    "$HOME",
    "--",
    "-rf",
    "",
]


class _ShellConnection:
    """Stands in for fabric's Connection: hands the line to a real /bin/sh, as sshd would."""

    is_connected = True

    def __init__(self) -> None:
        self.lines: list[str] = []

    def run(self, line: str, **_kw):
        self.lines.append(line)
        done = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True,
                              timeout=30, check=False)

        class Result:
            exited = done.returncode
            stdout = done.stdout
            stderr = done.stderr

        return Result()

    def close(self) -> None:
        pass


def _shell_host(tmp_path: Path) -> tuple[SSHHost, _ShellConnection]:
    host = SSHHost("proxy-0", "h.example", user="u", workdir=str(tmp_path), python=sys.executable)
    conn = _ShellConnection()
    host._conn = conn
    return host, conn


def test_hostile_arguments_reach_the_command_verbatim(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    host, conn = _shell_host(tmp_path)
    echo = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]
    result = host.run([*echo, *HOSTILE_ARGS])
    assert json.loads(result.stdout) == HOSTILE_ARGS
    assert shlex.split(conn.lines[-1]) == [*echo, *HOSTILE_ARGS]
    assert not (tmp_path / "PWNED").exists()


def test_hostile_paths_and_spawn_arguments_are_quoted(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    host, conn = _shell_host(tmp_path)
    odd = tmp_path / "dir with 'quotes' and $(touch PWNED)"
    host.makedirs(str(odd))
    assert odd.is_dir()
    out = tmp_path / "argv.json"
    script = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    pid = str(odd / "p.pid")
    host.spawn([sys.executable, "-c", script, str(out), *HOSTILE_ARGS],
               log_path=str(odd / "p;log"), pid_path=pid, cwd=str(odd),
               env={"MASON_X": "$(touch PWNED)"})
    # The stand-in has no SFTP; the files it made are local, so read them directly.
    exit_file = Path(pid + ".exit")
    deadline = time.monotonic() + 10
    while not exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert exit_file.read_text().strip() == "0"
    assert int(Path(pid).read_text()) > 1
    assert json.loads(out.read_text()) == HOSTILE_ARGS
    assert not (tmp_path / "PWNED").exists() and not (odd / "PWNED").exists()
    # Every line the shell saw is a plain quoted argument vector: no operator, no expansion.
    for line in conn.lines:
        assert shlex.join(shlex.split(line)) == line


def test_bad_environment_names_are_refused(tmp_path: Path):
    from orchestrator.hosts import HostError

    host, _conn = _shell_host(tmp_path)
    with pytest.raises(HostError, match="bad environment variable name"):
        host.spawn(["true"], log_path="l", pid_path="p", env={"A;B": "1"})


# ---- machine_info.txt -----------------------------------------------------------------------


def _found(name: str, physical: str, ip: str, mac: str) -> Machine:
    role, index = name.rsplit("-", 1)
    return Machine(name=name, role=role, index=int(index), physical_id=physical,
                   ssh_user="alice", ssh_host=f"{physical}.emulab.net", ssh_port=22,
                   experiment_ip=ip, experiment_iface="eth1", mac=mac,
                   control_ip="155.98.36.9", experiment_iface2="eth2",
                   workdir=f"/users/alice/mason/{name}")


def test_machine_info_round_trip(tmp_path: Path):
    cluster = Cluster((
        _found("sequencer-0", "pc1", "10.1.1.1", "00:11:22:33:44:01"),
        _found("proxy-0", "pc2", "10.1.1.2", "00:11:22:33:44:02"),
        _found("proxy-5", "pc3", "10.1.1.3", "00:11:22:33:44:03"),
    ))
    path = tmp_path / "machine_info.txt"
    write_machine_info(cluster, path)
    text = path.read_text()
    # The original's seven columns stay in place, then the SSH transport's three, then
    # where setup put the venv.
    assert text.splitlines()[1] == (
        "proxy-0, pc2, eth1, 00:11:22:33:44:02, 10.1.1.2, 155.98.36.9, eth2, "
        "pc2.emulab.net, 22, alice, /users/alice/mason/proxy-0")
    assert read_machine_info(path) == cluster


def test_machine_info_in_the_original_layout():
    text = "proxy-0, pc2, eth1, 00:11:22:33:44:02, 10.1.1.2, 155.98.36.9, eth2\n"
    (m,) = parse_machine_info(text).machines
    assert (m.role, m.experiment_ip, m.mac, m.experiment_iface2) == (
        "proxy", "10.1.1.2", "00:11:22:33:44:02", "eth2")
    assert (m.ssh_host, m.ssh_port, m.ssh_user) == ("155.98.36.9", 22, "")


def test_renaming_a_machine_reassigns_its_role():
    cluster = Cluster(tuple(
        _found(f"proxy-{i}", f"pc{i}", f"10.1.1.{i + 1}", f"00:11:22:33:44:{i:02x}")
        for i in range(6)
    ))
    edited = format_machine_info(cluster).replace("proxy-5,", "server-0,")
    renamed = parse_machine_info(edited)
    assert [m.physical_id for m in renamed.by_role("server")] == ["pc5"]
    assert [m.name for m in renamed.by_role("proxy")] == [f"proxy-{i}" for i in range(5)]
    assert cluster.get("proxy-5").renamed("server-0") == renamed.get("server-0")
    # The renamed machine keeps the venv setup made for it under its old name.
    host = SSHHost.from_machine(renamed.get("server-0"))
    assert (host.name, host.workdir) == ("server-0", "/users/alice/mason/proxy-5")
    assert host.python == "/users/alice/mason/proxy-5/venv/bin/python"
    assert host.address == "10.1.1.6" and host.ssh_host == "pc5.emulab.net"
    # An explicit base wins: <base>/<name>.
    assert SSHHost.from_machine(renamed.get("server-0"), workdir_base="/w").workdir == (
        "/w/server-0")


INFO_ERRORS = [
    pytest.param("proxy-0, pc1, eth1", "expected 'name, physical id", id="few-fields"),
    pytest.param("proxy-0, pc1, eth1, zz:11:22:33:44:55, 10.1.1.2, 155.98.1.1, eth2",
                 "bad MAC", id="mac"),
    pytest.param("proxy-0, pc1, eth1, 00:11:22:33:44:55, 10.1.1.300, 155.98.1.1, eth2",
                 "bad experiment IP", id="ip"),
    pytest.param("proxy-0, pc1, eth1;reboot, 00:11:22:33:44:55, 10.1.1.2, 155.98.1.1, eth2",
                 "bad interface name", id="iface"),
    pytest.param("proxy-0 $(reboot), pc1, eth1, 00:11:22:33:44:55, 10.1.1.2, 1.2.3.4, eth2",
                 "is not <role>-<number>", id="name"),
    pytest.param("leader-0, pc1, eth1, 00:11:22:33:44:55, 10.1.1.2, 155.98.1.1, eth2",
                 "unknown role prefix", id="role"),
    pytest.param("sequencer-0, pc1, eth1, 00:11:22:33:44:55, 10.1.1.2, 155.98.1.1, eth2",
                 "duplicate node name 'sequencer-0'", id="duplicate"),
    pytest.param("proxy-0, pc1, eth1, 00:11:22:33:44:55, 10.1.1.2, 155.98.1.1, eth2, h, 0, u",
                 "bad port", id="port"),
    pytest.param("proxy-0, pc1, eth1, 00:11:22:33:44:55, 10.1.1.2, 155.98.1.1, eth2, h, 22, "
                 "$(id)", "bad ssh user", id="user"),
    pytest.param("proxy-0, pc1, eth1, 00:11:22:33:44:55, 10.1.1.2, 155.98.1.1, eth2, h, 22, u, "
                 "mason/x", "bad workdir", id="relative-workdir"),
    pytest.param("proxy-0, pc1, eth1, 00:11:22:33:44:55, 10.1.1.2, 155.98.1.1, eth2, h, 22, u, "
                 "/a, /b", "at most 11", id="extra-field"),
]


@pytest.mark.parametrize("line,why", INFO_ERRORS)
def test_machine_info_errors_name_the_line(line, why):
    text = "sequencer-0, pc0, eth1, 00:11:22:33:44:00, 10.1.1.1, 155.98.1.1, eth2\n\n" + line
    with pytest.raises(MachineListError) as info:
        parse_machine_info(text, "machine_info.txt")
    assert str(info.value).startswith("machine_info.txt:3: ")
    assert why in str(info.value)


# ---- what setup finds out about a node: control address and experiment LAN -------------------

EMULAB_ADDRS = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eno1    inet 155.98.36.9/22 brd 155.98.39.255 scope global eno1\\       valid_lft forever
3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft
5: enp6s0f0    inet 10.1.1.3/24 brd 10.1.1.255 scope global enp6s0f0\\       valid_lft forever
6: enp6s0f1    inet 10.1.2.3/24 brd 10.1.2.255 scope global enp6s0f1\\       valid_lft forever
"""


def test_parse_ip_output():
    addrs = parse_ip_addr(EMULAB_ADDRS)
    assert [a.iface for a in addrs] == ["lo", "eno1", "docker0", "enp6s0f0", "enp6s0f1"]
    assert addrs[3] == IfAddr(5, "enp6s0f0", "10.1.1.3", 24)
    assert parse_default_route("default via 155.98.36.1 dev eno1 proto dhcp\n") == "eno1"
    assert parse_default_route("") is None


def test_experiment_lan_is_the_other_interface():
    addrs = parse_ip_addr(EMULAB_ADDRS)
    control, exp, second = choose_interfaces(addrs, "155.98.36.9", "eno1")
    assert (control.iface, exp.iface, exp.ip) == ("eno1", "enp6s0f0", "10.1.1.3")
    assert second is not None and second.iface == "enp6s0f1"
    # Without SSH_CONNECTION the default route names the control interface.
    assert choose_interfaces(addrs, None, "eno1")[1].iface == "enp6s0f0"
    # A LAN prefix picks among several.
    _c, exp2, _s = choose_interfaces(addrs, "155.98.36.9", "eno1", "10.1.2.0/24")
    assert exp2.ip == "10.1.2.3"
    with pytest.raises(ProvisionError, match="no interface in --lan-prefix 192.0.2.0/24"):
        choose_interfaces(addrs, "155.98.36.9", "eno1", "192.0.2.0/24")


def test_single_interface_is_both_control_and_experiment():
    addrs = parse_ip_addr(
        "1: lo    inet 127.0.0.1/8 scope host lo\n"
        "2: eth0    inet 198.18.0.4/24 scope global eth0\n"
    )
    control, exp, second = choose_interfaces(addrs, "198.18.0.4", None)
    assert control == exp and exp.ip == "198.18.0.4" and second is None
    with pytest.raises(ProvisionError, match="no non-loopback"):
        choose_interfaces(addrs[:1], None, None)


# ---- masonctl setup: bad input is one line and exit 2, before any connection ---------------


@pytest.mark.parametrize("args,why", [
    (["alice"], "machine_list.txt:3: node name 'proxy-0;rm'"),
    (["a;b"], "bad user name 'a;b'"),
    (["alice", "--identity", "/no/such/key"], "--identity /no/such/key: no such file"),
    (["alice", "--testbed", "/no/such/dir"], "no testbed state in /no/such/dir"),
])
def test_cli_setup_bad_input(tmp_path: Path, monkeypatch, args, why):
    from typer.testing import CliRunner

    from orchestrator.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "machine_list.txt").write_text(
        "# x\nproxy-0 pc1 ssh u@h.example\nproxy-0;rm pc2 ssh u@h.example\n")
    if "--identity" in args:
        (tmp_path / "machine_list.txt").write_text("proxy-0 pc1 ssh u@h.example\n")
    result = CliRunner().invoke(app, ["setup", *args])
    assert result.exit_code == 2, result.output
    assert why in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "machine_info.txt").exists()


def test_status_words_in_any_case_are_not_taken_for_the_hardware_type():
    # Portals print "ready" or "Ready": neither is a hardware type.
    for status in ("ready", "Ready", "READY"):
        line = f"proxy-0 pc12 {status} n/a emulab-ops/UBUNTU22 ssh -p 22 alice@pc12.example.net"
        (machine,) = parse_list_view(line).machines
        assert machine.hardware_type == "", status


def test_a_header_line_is_skipped_only_before_the_machines():
    header = "Node ID  Physical  Type  Status  Image  SSH command"
    row = "proxy-0 pc12 d430 ready n/a img ssh -p 22 alice@pc12.example.net"
    assert [m.name for m in parse_list_view(f"{header}\n{row}").machines] == ["proxy-0"]
    with pytest.raises(MachineListError, match=r":2: no ssh command"):
        parse_list_view(f"{row}\n{header}")
