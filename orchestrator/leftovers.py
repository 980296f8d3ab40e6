"""Node processes a run left behind (its controller crashed or was killed): found by the pid
files runs write, never by a name match; ended by `masonctl cleanup` (the original's
`--only_kill_zombies`); named when they hold the ports a new run needs.

A pid file `<dir>/<name>.pid` names one of our nodes only while the process it names was
started with `--config <dir>/<name>.toml` (its own config beside it) and, when an SSH
launcher watched it, no `<name>.pid.exit` says it ended: a pid the kernel has since reused
for another program is never touched. The same small script does the work on every
machine, run with the host's Python through the `Host` interface (locally or over SSH), so
the listening sockets it reports are those of that machine's network namespace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.hosts import Host, HostError
from orchestrator.placement import Proc

# Runs on the node (any Python >= 3.6). argv: find|end ROOT... or holders PORT...
# Prints one JSON object per process found.
_SCRIPT = r"""
import json, os, signal, sys, time

def listening():
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A":
                found[cols[9]] = int(cols[1].rsplit(":", 1)[1], 16)
    return found

def sockets(pid):
    inodes = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes

def argv(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return []

def config_of(pid):
    args = argv(pid)
    if "--config" not in args[:-1]:
        return ""
    path = args[args.index("--config") + 1]
    if not os.path.isabs(path):
        try:
            path = os.path.join(os.readlink("/proc/%d/cwd" % pid), path)
        except OSError:
            return ""
    return os.path.realpath(path)

def node_pid(pid_file):
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    if pid <= 1 or os.path.exists(pid_file + ".exit"):
        return 0
    if config_of(pid) != os.path.realpath(pid_file[:-len(".pid")] + ".toml"):
        return 0
    return pid

def pid_files(root, depth=3):
    root = os.path.expanduser(root)
    for here, dirs, files in os.walk(root):
        if here[len(root):].count(os.sep) >= depth:
            dirs[:] = []
        for name in files:
            if name.endswith(".pid"):
                yield os.path.join(here, name)

def describe(pid, pid_file, ports_of):
    inodes = sockets(pid)
    return {"pid": pid, "name": os.path.basename(pid_file)[:-len(".pid")],
            "run": os.path.dirname(pid_file),
            "ports": sorted(p for i, p in ports_of.items() if i in inodes)}

mode, args = sys.argv[1], sys.argv[2:]
ports_of = listening()
if mode in ("find", "end"):
    found = []
    for root in args:
        for pid_file in sorted(pid_files(root)):
            pid = node_pid(pid_file)
            if pid:
                found.append((pid, pid_file, describe(pid, pid_file, ports_of)))
    for pid, _, _ in found if mode == "end" else []:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.time() + 10
    for pid, pid_file, info in found:
        while mode == "end" and node_pid(pid_file) == pid and time.time() < deadline:
            time.sleep(0.02)
        info["gone"] = node_pid(pid_file) != pid
        print(json.dumps(info))
elif mode == "holders":
    wanted = set(int(p) for p in args)
    inodes = dict((i, p) for i, p in ports_of.items() if p in wanted)
    for entry in os.listdir("/proc") if inodes else []:
        if not entry.isdigit():
            continue
        pid = int(entry)
        held = sorted(inodes[i] for i in sockets(pid) if i in inodes)
        if not held:
            continue
        config = config_of(pid)
        pid_file = config[:-len(".toml")] + ".pid" if config.endswith(".toml") else ""
        ours = bool(pid_file) and node_pid(pid_file) == pid
        info = describe(pid, pid_file, ports_of) if ours else {
            "pid": pid, "name": "", "run": "", "ports": held}
        info["ports"] = held
        info["command"] = " ".join(argv(pid))[:120]
        print(json.dumps(info))
else:
    sys.exit("unknown mode %s" % mode)
"""


@dataclass(frozen=True)
class Leftover:
    """A live process on a machine: one of our nodes (`name` and `run` from its pid file)
    or, as a port holder, any other program (`name` empty, `command` its command line)."""

    machine: str
    pid: int
    name: str
    run: str
    ports: tuple[int, ...]
    gone: bool = False  # ended by `end`
    command: str = ""

    def what(self) -> str:
        if self.name:
            return f"{self.name} (pid {self.pid}) of {self.run}"
        return f"pid {self.pid} ({self.command or 'unknown command'})"


def _call(host: Host, machine: str, mode: str, args: Iterable[str]) -> list[Leftover]:
    result = host.run([host.python, "-c", _SCRIPT, mode, *args], timeout=60.0, check=False)
    if result.rc != 0:
        why = (result.stderr.strip().splitlines() or [f"exit status {result.rc}"])[-1]
        raise HostError(f"{machine}: cannot look for leftover processes: {why}")
    found = []
    for line in result.stdout.splitlines():
        try:
            d = json.loads(line)
            found.append(Leftover(machine, int(d["pid"]), str(d["name"]), str(d["run"]),
                                  tuple(int(p) for p in d["ports"]), bool(d.get("gone")),
                                  str(d.get("command", ""))))
        except (ValueError, KeyError, TypeError):
            raise HostError(f"{machine}: unreadable answer {line[:80]!r}") from None
    return found


def find(host: Host, machine: str, roots: Iterable[str]) -> list[Leftover]:
    """Our node processes still alive under `roots` (the runs' directories) on a machine."""
    return _call(host, machine, "find", roots)


def end(host: Host, machine: str, roots: Iterable[str]) -> list[Leftover]:
    """kill -9 each of them and wait until it is gone (`gone` says whether it went)."""
    return _call(host, machine, "end", roots)


def holders(host: Host, machine: str, ports: Iterable[int]) -> list[Leftover]:
    """Every process listening on one of `ports` on a machine."""
    wanted = sorted(set(ports))
    return _call(host, machine, "holders", [str(p) for p in wanted]) if wanted else []


def listen_ports(proc: Proc) -> list[int]:
    """The ports a process will listen on: every `*listen` endpoint of its config."""
    return [int(v["port"]) for k, v in proc.context.items()
            if k.endswith("listen") and isinstance(v, dict) and "port" in v]


SHOWN = 3  # holders named in the message; a testbed run may have a hundred


def held_ports_message(held: list[Leftover], remote: bool) -> str:
    """One line naming the leftover nodes that hold a run's ports, and what to do."""
    parts = [f"{', '.join(map(str, h.ports))} on {h.machine} by {h.what()}"
             for h in held[:SHOWN]]
    if len(held) > SHOWN:
        parts[-1] += f" and {len(held) - SHOWN} more process(es)"
    cleanup = "masonctl cleanup" + (" --machine-info FILE" if remote else "")
    return (f"ports this run needs are held: {'; '.join(parts)}; a run left its processes "
            f"behind: end them with `{cleanup}`")


@dataclass(frozen=True)
class Machine:
    """Where `masonctl cleanup` looks: a host and the directories its runs wrote into."""

    name: str
    host: Host
    roots: tuple[str, ...]


def end_everywhere(machines: list[Machine]) -> list[Leftover]:
    """`end` on every machine at once (a testbed may have a hundred); HostError names the
    first machine that could not be reached."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(machines)))) as pool:
        answers = list(pool.map(lambda m: end(m.host, m.name, m.roots), machines))
    return [leftover for found in answers for leftover in found]
