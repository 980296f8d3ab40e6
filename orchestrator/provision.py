"""`masonctl setup`: make every machine of a list view ready to run mason nodes.

Per machine, in parallel, each step checked:
  1. connect (host keys checked), read the OS name, check Python >= 3.10 at --python;
  2. find the control address (the one this SSH session reached) and the experiment LAN: the
     other non-loopback IPv4 interface (in --lan-prefix when given); a node with one
     interface (the rehearsal testbed) uses it for both;
  3. ship the code: wheels of the node dependencies, downloaded once per Python version and
     architecture on this controller and cached, and a tarball of `nodes/`, copied over SFTP;
     a venv at `<workdir>/venv` gets them with `pip install --no-index` (the node needs no
     internet and no NFS);
  4. raise network sysctls (warning, not failure, when neither root nor `sudo -n` works);
  5. only with --dpdk: hugepages, hugetlbfs, the uio driver, and the NIC bound to it.
Machines that succeed are written to machine_info.txt; one that fails says why, the others
finish, and the report says which.

Layout on a node, W = the host's workdir (SSHHost: `<--workdir>/<machine name>`, default
`~/mason/<name>`: per machine, because Emulab homes are shared over NFS and the rehearsal
namespaces share one filesystem; recorded in machine_info.txt):
  W/dist/        the shipped wheels and nodes.tar.gz
  W/venv/        the virtual environment; `W/venv/bin/python -m nodes...` runs a role
  W/code/nodes/  the nodes package, on the venv's path through a .pth file
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import msgspec

from orchestrator.hosts import Host, HostError
from orchestrator.machines import Cluster, Machine, check_iface, check_workdir

MIN_PYTHON = (3, 10)
NODE_REQUIREMENTS = ("msgspec>=0.18", "uvloop>=0.19")
# tomllib arrived in 3.11; nodes read their TOML configs with tomli before that.
NODE_REQUIREMENTS_BEFORE_311 = ("tomli>=2.0",)
# Only ever raised, never lowered: a node tuned higher keeps its values.
SYSCTLS = {
    "net.core.rmem_max": 16777216,
    "net.core.wmem_max": 16777216,
    "net.core.somaxconn": 4096,
    "net.ipv4.tcp_max_syn_backlog": 8192,
}
HUGEPAGES_PER_NUMA_NODE = 2048
HUGETLBFS_MOUNT = "/mnt/huge"
# Interfaces that are never a testbed LAN even when they hold an address.
_VIRTUAL_IFACES = ("docker", "virbr", "br-", "veth", "cni", "flannel", "cali", "lxc", "lxd",
                   "tun", "tap", "wg", "tailscale", "zt")
_PCI = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


class ProvisionError(Exception):
    """One machine could not be set up; the message is one line (without the name)."""


@dataclass(frozen=True)
class SetupOptions:
    """What to do on each node. How to reach it (user, key, host keys, workdir) is the
    business of the `connect` function given to setup_cluster."""

    python: str = "python3"  # the node's interpreter that creates the venv
    dpdk: bool = False
    lan_prefix: str | None = None
    sysctl: bool = True
    cache_dir: Path | None = None  # wheel cache on this controller [~/.cache/mason]


@dataclass
class NodeResult:
    machine: Machine
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    os_name: str = ""
    python_version: str = ""
    workdir: str = ""
    venv_python: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class SetupReport:
    results: list[NodeResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[NodeResult]:
        return [r for r in self.results if not r.ok]

    @property
    def cluster(self) -> Cluster:
        """The machines that were set up, in list order, with what setup found."""
        return Cluster(tuple(r.machine for r in self.results if r.ok))


# ---- network discovery (pure, so it is unit-tested without nodes) ---------------------------


class IfAddr(msgspec.Struct, frozen=True):
    index: int
    iface: str
    ip: str
    prefixlen: int


def parse_ip_addr(text: str) -> list[IfAddr]:
    """The IPv4 addresses in `ip -o -4 addr show` output."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] != "inet" or not parts[0].rstrip(":").isdigit():
            continue
        iface = parts[1].split("@", 1)[0]
        try:
            check_iface(iface)
            net = ipaddress.IPv4Interface(parts[3])
        except ValueError:
            continue
        found.append(IfAddr(int(parts[0].rstrip(":")), iface, str(net.ip),
                            net.network.prefixlen))
    return found


def parse_default_route(text: str) -> str | None:
    """The interface of the default route in `ip -o -4 route show default` output."""
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["default"] and "dev" in parts:
            at = parts.index("dev")
            if at + 1 < len(parts):
                return parts[at + 1]
    return None


def choose_interfaces(
    addrs: Sequence[IfAddr],
    control_ip: str | None,
    default_iface: str | None,
    lan_prefix: str | None = None,
) -> tuple[IfAddr, IfAddr, IfAddr | None]:
    """(control, experiment, second experiment or None) among a node's addresses.

    The control address is the one this SSH session reached (else the default route's);
    the experiment LAN is another non-loopback interface, the one in lan_prefix if given.
    With a single interface, it is both (the rehearsal testbed).
    """
    usable = [
        a for a in addrs
        if not ipaddress.IPv4Address(a.ip).is_loopback
        and not ipaddress.IPv4Address(a.ip).is_link_local
        and not a.iface.startswith(_VIRTUAL_IFACES)
    ]
    if not usable:
        raise ProvisionError("no non-loopback IPv4 interface")
    control = next((a for a in usable if a.ip == control_ip), None)
    if control is None:
        control = next((a for a in usable if a.iface == default_iface), None)
    if control is None:
        control = usable[0]
    if lan_prefix:
        net = ipaddress.IPv4Network(lan_prefix, strict=False)
        candidates = [a for a in usable if ipaddress.IPv4Address(a.ip) in net]
        if not candidates:
            seen = ", ".join(f"{a.iface} {a.ip}" for a in usable)
            raise ProvisionError(f"no interface in --lan-prefix {net} (found {seen})")
    else:
        candidates = [a for a in usable if a.iface != control.iface] or [control]
    candidates.sort(key=lambda a: (a.index, a.ip))
    experiment = candidates[0]
    second = next((a for a in candidates if a.iface != experiment.iface), None)
    return control, experiment, second


# ---- what is shipped ------------------------------------------------------------------------


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "mason"


class PyTarget(msgspec.Struct, frozen=True):
    """What a node's interpreter needs its binary wheels built for."""

    major: int
    minor: int
    arch: str
    glibc: tuple[int, int]

    @property
    def key(self) -> str:
        return f"cp{self.major}{self.minor}-{self.arch}-glibc{self.glibc[0]}.{self.glibc[1]}"

    def requirements(self) -> list[str]:
        reqs = list(NODE_REQUIREMENTS)
        if (self.major, self.minor) < (3, 11):
            reqs += NODE_REQUIREMENTS_BEFORE_311
        return reqs


class Wheelhouse:
    """Wheels per PyTarget, downloaded once on this controller and cached on disk."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "wheelhouse"
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        # A failed download fails every node of that target at once, not once per node.
        self._errors: dict[str, str] = {}

    def get(self, target: PyTarget) -> Path:
        with self._lock:
            key_lock = self._locks.setdefault(target.key, threading.Lock())
        with key_lock:
            final = self.root / target.key
            if (final / "READY").exists():
                return final
            if target.key in self._errors:
                raise ProvisionError(self._errors[target.key])
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".partial-"))
            try:
                try:
                    self._download(target, tmp)
                except ProvisionError as exc:
                    self._errors[target.key] = str(exc)
                    raise
                (tmp / "READY").write_text("\n".join(target.requirements()) + "\n")
                if final.exists():
                    shutil.rmtree(final)  # an unfinished earlier download
                tmp.rename(final)
            except OSError:
                # Another masonctl finished the same download first: use that one.
                shutil.rmtree(tmp, ignore_errors=True)
                if not (final / "READY").exists():
                    raise
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return final

    def _download(self, target: PyTarget, dest: Path) -> None:
        arch = target.arch
        platforms = [f"manylinux_2_{m}_{arch}" for m in range(17, target.glibc[1] + 1)]
        platforms.append(f"manylinux2014_{arch}")
        argv = [
            sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
            "--only-binary=:all:", "--implementation", "cp",
            "--python-version", f"{target.major}.{target.minor}",
            "--abi", f"cp{target.major}{target.minor}",
            *[arg for p in platforms for arg in ("--platform", p)],
            "--dest", str(dest), *target.requirements(), "pip",
        ]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        except subprocess.TimeoutExpired:
            raise ProvisionError(f"downloading wheels for {target.key} took over 900 s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise ProvisionError(f"cannot download wheels for {target.key}: {last}")


def build_nodes_tarball(dest: Path) -> Path:
    """A tar.gz of the `nodes` package (sources only), as `nodes/...`."""
    import nodes

    src = Path(nodes.__file__).resolve().parent

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = PurePosixPath(info.name)
        if "__pycache__" in name.parts or name.suffix in (".pyc", ".pyo"):
            return None
        return info

    out = dest / "nodes.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname="nodes", filter=keep)
    return out


# ---- one machine ---------------------------------------------------------------------------


_PY_PROBE = (
    "import platform, sys; v = sys.version_info; "
    "print(v[0], v[1], v[2], platform.machine(), sys.implementation.name, "
    "*(platform.libc_ver()[0:2]))"
)


class _Node:
    """The steps for one machine, run on its Host (SSHHost for real nodes)."""

    def __init__(self, machine: Machine, host: Host, opts: SetupOptions,
                 wheelhouse: Wheelhouse, tarball: Path,
                 progress: Callable[[str, str], None]) -> None:
        self.m = machine
        self.host = host
        self.opts = opts
        self.wheelhouse = wheelhouse
        self.tarball = tarball
        self.result = NodeResult(machine)
        self._progress = progress
        self._sudo: list[str] | None = None

    def step(self, text: str) -> None:
        self._progress(self.m.name, text)

    def warn(self, text: str) -> None:
        self.result.warnings.append(text)

    def run(self) -> NodeResult:
        self.step("checking")
        self._check_os()
        target = self._check_python()
        self._check_pinning()
        self.step("network")
        control_iface = self._network()
        self.step("shipping code")
        self._ship(target)
        if self.opts.sysctl:
            self.step("sysctl")
            self._sysctls()
        if self.opts.dpdk:
            self.step("dpdk")
            self._dpdk(control_iface)
        return self.result

    # -- checks --

    def _check_os(self) -> None:
        kernel = self.host.run(["uname", "-s"]).stdout.strip()  # also: can we reach it at all
        if kernel != "Linux":
            raise ProvisionError(f"the node runs {kernel or 'an unknown OS'}, not Linux")
        try:
            text = self.host.read_text("/etc/os-release")
        except HostError:
            self.warn("no /etc/os-release; OS unknown")
            return
        fields = dict(
            line.split("=", 1) for line in text.splitlines() if "=" in line
        )
        self.result.os_name = fields.get("PRETTY_NAME", fields.get("NAME", "?")).strip('"')

    def _check_pinning(self) -> None:
        # Runs pin every node process to a core with taskset (orchestrator/pinning.py).
        from orchestrator.pinning import TOOL

        found = self.host.run(["sh", "-c", f"command -v {TOOL}"], check=False)
        if found.rc != 0:
            self.warn(f"no {TOOL} (util-linux): runs on this machine need --no-pin")

    def _check_python(self) -> PyTarget:
        py = self.opts.python
        res = self.host.run([py, "-c", _PY_PROBE], check=False)
        if res.rc != 0:
            why = "not found" if res.rc == 127 else f"exited {res.rc}"
            raise ProvisionError(f"python {py!r} {why} (choose one with --python)")
        parts = res.stdout.split()
        if len(parts) < 5 or not all(p.isdigit() for p in parts[:3]):
            raise ProvisionError(f"cannot read the version of {py!r}: {res.stdout.strip()!r}")
        major, minor = int(parts[0]), int(parts[1])
        self.result.python_version = ".".join(parts[:3])
        if (major, minor) < MIN_PYTHON:
            raise ProvisionError(
                f"{py} is Python {self.result.python_version}; mason needs >= "
                f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} (install one and pass --python)"
            )
        if parts[4] != "cpython":
            raise ProvisionError(f"{py} is {parts[4]}; the shipped wheels need CPython")
        glibc = (2, 17)  # the oldest manylinux2014 baseline
        if len(parts) >= 7 and parts[5] == "glibc" and re.match(r"^2\.\d+", parts[6]):
            glibc = (2, int(parts[6].split(".")[1]))
        else:
            # pip on the node refuses the wheels then, with its own clear message.
            self.warn(f"{py}: C library not recognised as glibc; assuming glibc 2.17")
        return PyTarget(major, minor, parts[3], glibc)

    def _network(self) -> str:
        addrs = parse_ip_addr(self.host.run(["ip", "-o", "-4", "addr", "show"]).stdout)
        route = self.host.run(["ip", "-o", "-4", "route", "show", "default"], check=False)
        conn = self.host.run(["printenv", "SSH_CONNECTION"], check=False).stdout.split()
        control_ip = conn[2] if len(conn) >= 4 else None
        control, exp, second = choose_interfaces(
            addrs, control_ip, parse_default_route(route.stdout), self.opts.lan_prefix
        )
        mac = self.host.read_text(f"/sys/class/net/{exp.iface}/address").strip().lower()
        if not re.match(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", mac):
            raise ProvisionError(f"cannot read the MAC address of {exp.iface} ({mac!r})")
        self.m = msgspec.structs.replace(
            self.m, experiment_ip=exp.ip, experiment_iface=exp.iface, mac=mac,
            control_ip=control.ip, experiment_iface2=second.iface if second else "",
        )
        self.result.machine = self.m
        return control.iface

    # -- code --

    def _ship(self, target: PyTarget) -> None:
        wd = self.host.workdir
        if not wd.startswith("/") or len(PurePosixPath(wd).parts) < 3:
            raise ProvisionError(f"workdir {wd!r} must be an absolute path two levels deep")
        try:
            check_workdir(wd)  # it goes into machine_info.txt
        except ValueError as exc:
            raise ProvisionError(str(exc)) from None
        self.result.workdir = wd
        self.m = msgspec.structs.replace(self.m, workdir=wd)
        self.result.machine = self.m
        dist, venv, code = f"{wd}/dist", f"{wd}/venv", f"{wd}/code"
        vpy = f"{venv}/bin/python"
        self.host.makedirs(dist)
        wheels = sorted(self.wheelhouse.get(target).glob("*.whl"))
        for wheel in [*wheels, self.tarball]:
            self.host.put_file(wheel, f"{dist}/{wheel.name}")
        wanted = "".join(f"{w.name}\n" for w in wheels)
        stamp = f"{venv}/.mason-wheels"
        pip_wheel = next((w for w in wheels if w.name.startswith("pip-")), None)
        if pip_wheel is None:
            raise ProvisionError("the wheelhouse has no pip wheel")

        want = f"{target.major}.{target.minor}"
        probe = self.host.run(
            [vpy, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], check=False
        )
        fresh = probe.rc != 0 or probe.stdout.strip() != want
        if fresh:
            # No pip inside the venv: Debian's python3 may lack ensurepip; the shipped
            # pip wheel does the installing instead.
            self.host.run([self.opts.python, "-m", "venv", "--clear", "--without-pip", venv],
                          timeout=120)
        # A rerun with the very same wheels already installed skips pip (seconds per node).
        if fresh or self._read(stamp) != wanted:
            self._pip_install(vpy, dist, pip_wheel.name, target)
            self.host.write_text(stamp, wanted)
        # Replace the code whole so a module deleted on the controller is gone here too.
        self.host.run(["rm", "-rf", "--", code])
        self.host.makedirs(code)
        self.host.run(["tar", "-xzf", f"{dist}/{self.tarball.name}", "-C", code])
        purelib = self.host.run(
            [vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
        self.host.write_text(f"{purelib}/mason-nodes.pth", code + "\n")
        check = self.host.run(
            [vpy, "-c", "import nodes, msgspec, uvloop; print(nodes.__file__)"], check=False
        )
        if check.rc != 0 or not check.stdout.strip().startswith(code + "/"):
            last = (check.stderr.strip().splitlines() or [check.stdout.strip()])[-1]
            raise ProvisionError(f"the venv cannot import nodes, msgspec, uvloop: {last}")
        self.result.venv_python = vpy

    def _pip_install(self, vpy: str, dist: str, pip_wheel: str, target: PyTarget) -> None:
        self.host.run(
            [vpy, f"{dist}/{pip_wheel}/pip", "install", "--isolated", "--quiet",
             "--disable-pip-version-check", "--no-warn-script-location", "--no-index",
             "--only-binary=:all:", "--find-links", dist, *target.requirements()],
            timeout=600,
        )

    def _read(self, path: str) -> str | None:
        try:
            return self.host.read_text(path)
        except HostError:
            return None

    # -- privileges, sysctl, dpdk --

    def sudo(self) -> list[str] | None:
        """[] when root, ['sudo', '-n'] when passwordless sudo works, None otherwise."""
        if self._sudo is None:
            uid = self.host.run(["id", "-u"], check=False).stdout.strip()
            if uid == "0":
                self._sudo = []
            elif self.host.run(["sudo", "-n", "true"], check=False).rc == 0:
                self._sudo = ["sudo", "-n"]
            else:
                return None
        return self._sudo

    def _sysctls(self) -> None:
        sudo = self.sudo()
        if sudo is None:
            self.warn("sysctls not raised: not root and `sudo -n` fails")
            return
        for key, value in SYSCTLS.items():
            path = "/proc/sys/" + key.replace(".", "/")
            try:
                current = int(self.host.read_text(path).split()[0])
            except (HostError, ValueError, IndexError):
                self.warn(f"{key}: not settable here")
                continue
            if current >= value:
                continue
            res = self.host.run([*sudo, "sysctl", "-q", "-w", f"{key}={value}"], check=False)
            if res.rc != 0:
                last = (res.stderr.strip().splitlines() or ["failed"])[-1]
                self.warn(f"{key}: {last}")

    def _dpdk(self, control_iface: str) -> None:
        sudo = self.sudo()
        if sudo is None:
            raise ProvisionError("--dpdk needs root or passwordless sudo")
        ifaces = [i for i in (self.m.experiment_iface, self.m.experiment_iface2) if i]
        if control_iface in ifaces:
            raise ProvisionError(
                f"refusing to give {control_iface} to DPDK: it carries the control network"
            )
        nodes = [n for n in self.host.run(["ls", "/sys/devices/system/node"]).stdout.split()
                 if re.match(r"^node[0-9]+$", n)] or ["node0"]
        want = HUGEPAGES_PER_NUMA_NODE * len(nodes)
        current = self.host.read_text("/proc/sys/vm/nr_hugepages").strip()
        if not current.isdigit() or int(current) < want:
            self.host.run([*sudo, "sysctl", "-q", "-w", f"vm.nr_hugepages={want}"])
        meminfo = self.host.read_text("/proc/meminfo")
        got = re.search(r"^HugePages_Total:\s+(\d+)", meminfo, re.M)
        if got is None or int(got[1]) < want:
            have = got[1] if got else "0"
            raise ProvisionError(f"only {have} of {want} hugepages reserved (memory fragmented?)")
        if f" {HUGETLBFS_MOUNT} hugetlbfs " not in self.host.read_text("/proc/mounts"):
            self.host.run([*sudo, "mkdir", "-p", HUGETLBFS_MOUNT])
            self.host.run([*sudo, "mount", "-t", "hugetlbfs", "nodev", HUGETLBFS_MOUNT])
            if f" {HUGETLBFS_MOUNT} hugetlbfs " not in self.host.read_text("/proc/mounts"):
                raise ProvisionError(f"hugetlbfs is not mounted at {HUGETLBFS_MOUNT}")
        self.host.run([*sudo, "modprobe", "uio"])
        driver = "igb_uio"
        if self.host.run([*sudo, "modprobe", driver], check=False).rc != 0:
            driver = "uio_pci_generic"
            self.host.run([*sudo, "modprobe", driver])
        if not re.search(rf"^{driver} ", self.host.read_text("/proc/modules"), re.M):
            raise ProvisionError(f"kernel module {driver} did not load")
        found = self.host.run(
            ["sh", "-c", "command -v dpdk-devbind.py || command -v dpdk-devbind"], check=False
        ).stdout.strip()
        if not found:
            raise ProvisionError("dpdk-devbind not found (install DPDK's tools on the image)")
        for iface in ifaces:
            dev = self.host.run(["readlink", "-f", f"/sys/class/net/{iface}/device"]).stdout
            pci = PurePosixPath(dev.strip()).name
            if not _PCI.match(pci):
                raise ProvisionError(f"{iface} is not a PCI device ({dev.strip()!r})")
            self.host.run([*sudo, "ip", "link", "set", "dev", iface, "down"])
            self.host.run([*sudo, found, f"--bind={driver}", pci], timeout=120)
            bound = self.host.run(
                ["readlink", "-f", f"/sys/bus/pci/devices/{pci}/driver"], check=False
            ).stdout.strip()
            if PurePosixPath(bound).name != driver:
                raise ProvisionError(f"{iface} ({pci}) is not bound to {driver}")
            self.warn(f"{iface} ({pci}) now belongs to DPDK ({driver}), not the kernel")


# ---- all machines --------------------------------------------------------------------------


def setup_cluster(
    cluster: Cluster,
    opts: SetupOptions,
    connect: Callable[[Machine], Host],
    *,
    progress: Callable[[str, str], None] = lambda _name, _text: None,
    done: Callable[[NodeResult], None] = lambda _r: None,
    max_workers: int = 32,
) -> SetupReport:
    """Set up every machine in parallel; failures are per machine, in the report."""
    if opts.lan_prefix:
        try:
            ipaddress.IPv4Network(opts.lan_prefix, strict=False)
        except ValueError:
            raise ProvisionError(f"bad --lan-prefix {opts.lan_prefix!r}") from None
    wheelhouse = Wheelhouse(opts.cache_dir or default_cache_dir())
    results: dict[str, NodeResult] = {}
    with tempfile.TemporaryDirectory(prefix="mason-setup-") as tmp:
        tarball = build_nodes_tarball(Path(tmp))

        def one(machine: Machine) -> NodeResult:
            host: Host | None = None
            node: _Node | None = None
            try:
                host = connect(machine)
                node = _Node(machine, host, opts, wheelhouse, tarball, progress)
                return node.run()
            except HostError as exc:  # already names the machine
                result = node.result if node else NodeResult(machine)
                result.error = str(exc)
                return result
            except ProvisionError as exc:
                result = node.result if node else NodeResult(machine)
                result.error = f"{machine.name}: {exc}"
                return result
            except Exception as exc:  # one node's surprise must not stop the others
                result = node.result if node else NodeResult(machine)
                result.error = f"{machine.name}: unexpected {type(exc).__name__}: {exc}"
                return result
            finally:
                if host is not None:
                    host.close()

        workers = max(1, min(max_workers, len(cluster)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="setup") as pool:
            futures = {pool.submit(one, m): m for m in cluster}
            for future in as_completed(futures):
                result = future.result()
                results[result.machine.name] = result
                done(result)
    return SetupReport([results[m.name] for m in cluster])
