"""A rehearsal testbed on one Linux box: network namespaces that look like testbed nodes.

`up` makes N namespaces `mason-h<i>`, each with a veth whose far end (`eth0`) holds
198.18.0.<i+2>/24, all plugged into the bridge `masonbr0`, which holds 198.18.0.1/24 for the
controller. 198.18.0.0/15 is reserved for benchmarking (RFC 2544), so no real network is ever
addressed. Each namespace runs its own sshd (own config and host key, port 22, root login with
a generated client key); `up` writes a List View file in the Emulab style, a known_hosts file
and the client key, so `masonctl setup root --machine-list ... --identity ... --known-hosts ...`
works against it exactly as against Emulab. Here the control network and the experiment LAN
are the same interface.

`down` finds everything by its name (namespaces `mason-h<N>`, veths `masonv<N>`, the bridge),
ends the processes inside our namespaces (our sshds and whatever they started), removes the
devices and the state directory, and is safe to run any number of times.

Every command here is an argument vector; needs root, iproute2 and OpenSSH's sshd.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from orchestrator.machines import ROLES

BRIDGE = "masonbr0"
NETNS_PREFIX = "mason-h"
VETH_PREFIX = "masonv"
SUBNET = ipaddress.IPv4Network("198.18.0.0/24")
CONTROLLER_IP = SUBNET.network_address + 1
MAX_HOSTS = 200
DEFAULT_DIR = Path(tempfile.gettempdir()) / "mason-testbed"
STATE_FILE = "testbed.json"
MARKER = ".mason-testbed"
PRIVSEP_DIR = Path("/run/sshd")  # sshd's privilege separation directory
PRIVSEP_MARKER = ".created-run-sshd"

_NETNS_RE = re.compile(rf"^{re.escape(NETNS_PREFIX)}[0-9]+$")
_VETH_RE = re.compile(rf"^{re.escape(VETH_PREFIX)}[0-9]+$")


class TestbedError(Exception):
    """The testbed could not be brought up or down; the message is one line."""


class TestbedHost(msgspec.Struct, frozen=True):
    name: str
    netns: str
    ip: str
    veth: str


class TestbedState(msgspec.Struct, frozen=True):
    dir: str
    machine_list: str
    identity: str
    known_hosts: str
    bridge: str
    controller_ip: str
    hosts: tuple[TestbedHost, ...]
    created_privsep_dir: bool = False


# ---- requirements and roles --------------------------------------------------------------


def sshd_path() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return "/usr/sbin/sshd" if os.access("/usr/sbin/sshd", os.X_OK) else None


def missing_requirements() -> list[str]:
    """What this box lacks for a testbed (empty when it can have one)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if shutil.which("ip") is None:
        missing.append("ip (iproute2)")
    if sshd_path() is None:
        missing.append("sshd (openssh-server)")
    if shutil.which("ssh-keygen") is None:
        missing.append("ssh-keygen (openssh-client)")
    return missing


def default_roles(hosts: int) -> dict[str, int]:
    """2 sequencers, 1 client, 1 server (from 7 hosts) and proxies for the rest."""
    if hosts < 1:
        raise TestbedError("a testbed needs at least one host")
    sequencers = 2 if hosts >= 4 else 1
    clients = 1 if hosts >= 2 else 0
    servers = 1 if hosts >= 7 else 0
    return {"sequencer": sequencers, "proxy": hosts - sequencers - clients - servers,
            "client": clients, "server": servers}


def parse_roles(text: str) -> dict[str, int]:
    """`sequencer=2,proxy=3,client=1` -> {'sequencer': 2, 'proxy': 3, 'client': 1}."""
    roles: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        role, eq, count = part.partition("=")
        role = role.strip()
        if not eq or role not in ROLES or not count.strip().isdigit():
            raise TestbedError(
                f"bad --roles entry {part!r}: want ROLE=COUNT with ROLE in {', '.join(ROLES)}"
            )
        roles[role] = roles.get(role, 0) + int(count)
    if sum(roles.values()) < 1:
        raise TestbedError("--roles names no host")
    return roles


def node_names(roles: dict[str, int]) -> list[str]:
    return [f"{role}-{i}" for role in ROLES for i in range(roles.get(role, 0))]


# ---- helpers -----------------------------------------------------------------------------


def _run(argv: list[str], *, check: bool = True, timeout: float = 30.0) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise TestbedError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise TestbedError(f"{' '.join(argv)}: did not finish in {timeout:g} s") from None
    if check and done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TestbedError(f"{' '.join(argv)}: {last}")
    return done.stdout


def _wait_until(what: str, cond: Callable[[], bool], deadline_s: float) -> None:
    """Poll cond until it holds or the deadline passes (then TestbedError naming `what`)."""
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            raise TestbedError(f"timed out after {deadline_s:g} s waiting for {what}")
        time.sleep(0.05)


def our_namespaces() -> list[str]:
    out = _run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return sorted(n for n in names if _NETNS_RE.match(n))


def our_links() -> list[str]:
    """Our veths and bridge still present in the root namespace."""
    out = _run(["ip", "-o", "link", "show"], check=False)
    found = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@", 1)[0]
        if name == BRIDGE or _VETH_RE.match(name):
            found.append(name)
    return found


def _pids_in(netns: str) -> list[int]:
    out = _run(["ip", "netns", "pids", netns], check=False)
    return [int(tok) for tok in out.split() if tok.isdigit()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill -0; it is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _sshd_answers(ip: str) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=0.5) as sock:
            sock.settimeout(1.0)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _sshd_config(host_dir: Path, ip: str, authorized_keys: Path) -> str:
    # UsePAM and StrictModes are off: a namespace has no PAM session to open, and our key
    # files live under a world-writable temporary directory that StrictModes would refuse.
    return "\n".join([
        "Port 22",
        f"ListenAddress {ip}",
        f"HostKey {host_dir / 'ssh_host_ed25519_key'}",
        f"PidFile {host_dir / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized_keys}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "PrintMotd no",
        "X11Forwarding no",
        "AllowUsers root",
        "MaxStartups 100:30:200",
        "MaxSessions 100",
        "Subsystem sftp internal-sftp",
        "",
    ])


def _keygen(path: Path, comment: str) -> str:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_name(path.name + ".pub").read_text().strip()


def _prepare_dir(state_dir: Path) -> None:
    if state_dir.exists():
        if not state_dir.is_dir():
            raise TestbedError(f"{state_dir} exists and is not a directory")
        if any(state_dir.iterdir()) and not (state_dir / MARKER).exists():
            raise TestbedError(f"refusing to use {state_dir}: not empty and not a testbed's")
        shutil.rmtree(state_dir)
    state_dir.mkdir(mode=0o700, parents=True)
    (state_dir / MARKER).write_text("made by masonctl testbed up; removed by testbed down\n")


# ---- up and down -------------------------------------------------------------------------


def up(
    hosts: int | None = None,
    roles: dict[str, int] | None = None,
    state_dir: Path = DEFAULT_DIR,
    log: Callable[[str], None] = lambda _msg: None,
) -> TestbedState:
    """Bring a testbed up; on any failure it takes down what it made and raises."""
    missing = missing_requirements()
    if missing:
        raise TestbedError(
            f"the testbed needs {', '.join(missing)} (see scripts/system-deps.sh)"
        )
    if roles is None:
        roles = default_roles(hosts if hosts is not None else 7)
    total = sum(roles.values())
    if hosts is not None and hosts != total:
        raise TestbedError(f"--hosts {hosts} but --roles names {total} hosts")
    if not 1 <= total <= MAX_HOSTS:
        raise TestbedError(f"a testbed has 1 to {MAX_HOSTS} hosts, not {total}")
    if our_namespaces() or BRIDGE in our_links():
        raise TestbedError("a testbed is already up (run `masonctl testbed down` first)")
    state_dir = Path(state_dir).resolve()
    _prepare_dir(state_dir)
    try:
        return _build(node_names(roles), state_dir, log)
    except BaseException:
        down(state_dir)
        raise


def _build(names: list[str], state_dir: Path, log: Callable[[str], None]) -> TestbedState:
    sshd = sshd_path()
    assert sshd is not None  # checked by up()
    created_privsep = False
    if not PRIVSEP_DIR.exists():
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
        created_privsep = True
        (state_dir / PRIVSEP_MARKER).touch()  # so a down after a failed up removes it too

    log(f"bridge {BRIDGE} {CONTROLLER_IP}/{SUBNET.prefixlen}")
    _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    # Bridged frames between namespaces must not meet the box's own iptables FORWARD policy.
    _run(["ip", "link", "set", BRIDGE, "type", "bridge", "nf_call_iptables", "0",
          "nf_call_ip6tables", "0", "nf_call_arptables", "0"], check=False)
    _run(["ip", "addr", "add", f"{CONTROLLER_IP}/{SUBNET.prefixlen}", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])

    identity = state_dir / "id_ed25519"
    authorized = state_dir / "authorized_keys"
    authorized.write_text(_keygen(identity, "mason-testbed-controller") + "\n")

    hosts: list[TestbedHost] = []
    known: list[str] = []
    for i, name in enumerate(names):
        netns, veth = f"{NETNS_PREFIX}{i}", f"{VETH_PREFIX}{i}"
        ip = str(CONTROLLER_IP + 1 + i)
        log(f"{name}: namespace {netns}, {ip}")
        _run(["ip", "netns", "add", netns])
        _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
              "netns", netns])
        _run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
        _run(["ip", "-n", netns, "link", "set", "lo", "up"])
        _run(["ip", "-n", netns, "addr", "add", f"{ip}/{SUBNET.prefixlen}", "dev", "eth0"])
        _run(["ip", "-n", netns, "link", "set", "eth0", "up"])

        host_dir = state_dir / f"h{i}"
        host_dir.mkdir(mode=0o700)
        pub = _keygen(host_dir / "ssh_host_ed25519_key", netns)
        keytype, key = pub.split()[:2]
        known.append(f"{ip} {keytype} {key}")
        config = host_dir / "sshd_config"
        config.write_text(_sshd_config(host_dir, ip, authorized))
        _run(["ip", "netns", "exec", netns, sshd, "-f", str(config),
              "-E", str(host_dir / "sshd.log")])
        hosts.append(TestbedHost(name=name, netns=netns, ip=ip, veth=veth))

    pending = list(enumerate(hosts))

    def all_answer() -> bool:
        pending[:] = [(i, h) for i, h in pending if not _sshd_answers(h.ip)]
        return not pending

    try:
        _wait_until("every sshd to accept connections", all_answer, 15.0)
    except TestbedError:
        i, h = pending[0]
        log_path = state_dir / f"h{i}" / "sshd.log"
        log_lines = log_path.read_text().strip().splitlines() if log_path.exists() else []
        raise TestbedError(f"sshd of {h.name} does not answer on {h.ip}:22: "
                           f"{log_lines[-1] if log_lines else 'no log'}") from None

    known_hosts = state_dir / "known_hosts"
    known_hosts.write_text("\n".join(known) + "\n")
    machine_list = state_dir / "machine_list.txt"
    machine_list.write_text(
        "# rehearsal testbed: masonctl testbed up (Emulab List View layout)\n"
        + "".join(
            f"{h.name} {h.netns} netns ready n/a mason/rehearsal ssh -p 22 root@{h.ip}\n"
            for h in hosts
        )
    )
    state = TestbedState(
        dir=str(state_dir),
        machine_list=str(machine_list),
        identity=str(identity),
        known_hosts=str(known_hosts),
        bridge=BRIDGE,
        controller_ip=str(CONTROLLER_IP),
        hosts=tuple(hosts),
        created_privsep_dir=created_privsep,
    )
    (state_dir / STATE_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(state)))
    return state


def load_state(state_dir: Path = DEFAULT_DIR) -> TestbedState:
    path = Path(state_dir) / STATE_FILE
    try:
        return msgspec.json.decode(path.read_bytes(), type=TestbedState)
    except FileNotFoundError:
        raise TestbedError(f"no testbed state in {state_dir} (run `masonctl testbed up`)") from None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise TestbedError(f"{path}: unreadable testbed state: {exc}") from None


def sshd_pid(state: TestbedState, name: str) -> int | None:
    """The pid of one host's sshd, from its pid file (for tests that kill one)."""
    for i, host in enumerate(state.hosts):
        if host.name == name:
            try:
                return int((Path(state.dir) / f"h{i}" / "sshd.pid").read_text().strip())
            except (OSError, ValueError):
                return None
    raise TestbedError(f"no testbed host named {name}")


def _end_processes(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        _wait_until("processes to end", lambda: not any(_pid_alive(p) for p in pids), 5.0)
    except TestbedError:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_until("processes to die", lambda: not any(_pid_alive(p) for p in pids), 5.0)


def down(state_dir: Path = DEFAULT_DIR, log: Callable[[str], None] = lambda _msg: None) -> None:
    """Remove every trace of a testbed; doing it twice is harmless."""
    if os.geteuid() != 0:
        raise TestbedError("testbed down needs root")
    state_dir = Path(state_dir).resolve()
    created_privsep = (state_dir / PRIVSEP_MARKER).exists()

    namespaces = our_namespaces()
    # Processes inside our namespaces are ours: the sshds and whatever ran through them.
    pids = sorted({pid for ns in namespaces for pid in _pids_in(ns) if pid != os.getpid()})
    if pids:
        log(f"ending {len(pids)} processes")
        _end_processes(pids)
    for ns in namespaces:
        log(f"namespace {ns}")
        _run(["ip", "netns", "del", ns], check=False)
    for link in our_links():
        if link != BRIDGE:
            _run(["ip", "link", "del", link], check=False)
    if BRIDGE in our_links():
        log(f"bridge {BRIDGE}")
        _run(["ip", "link", "del", BRIDGE], check=False)
    def gone() -> bool:
        return not our_namespaces() and not our_links()

    _wait_until("namespaces and links to go", gone, 10.0)

    if state_dir.is_dir() and (state_dir / MARKER).exists():
        shutil.rmtree(state_dir)
    if created_privsep:
        try:
            PRIVSEP_DIR.rmdir()
        except OSError:
            pass  # not empty or in use by the box's own sshd: leave it
