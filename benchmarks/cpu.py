"""CPU per operation: what every process of a run spends, read from /proc while it runs.

A sampler thread reads utime+stime (children included) of every process whose command line
names the run's directory, a few times a second. After the run, each process's CPU inside
the clients' measured window is interpolated from the samples around the window's edges,
so start-up and shut-down cancel out. Divided by the operations answered in the window it
gives microseconds of CPU per operation, in all and per role (client, leader, follower,
sequencer, log server, ...).

Processes that are not node processes (a Java ZooKeeper server, the benchmark's own kazoo
client) are sampled by pid, named and given a role by the caller. Where the processes stay
up for the whole measurement the caller can also sample() at the edges of each point
itself, without the sampler thread (whose own CPU would otherwise count for the process
that runs it).
"""

from __future__ import annotations

import json
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nodes.status import parse_role, read_summary

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.05


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime + cutime + cstime of `pid` in seconds, None once it has gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = raw[raw.rindex(b")") + 2:].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime + cutime + cstime) * TICK_S


def proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def node_of(cmdline: list[str]) -> tuple[str, str] | None:
    """(name, kind) of a node process, `python -m nodes.<kind> --config <dir>/<name>.toml`;
    None for any other command line."""
    if "-m" not in cmdline or "--config" not in cmdline:
        return None
    m = cmdline.index("-m") + 1
    module = cmdline[m] if m < len(cmdline) else ""
    if not module.startswith("nodes."):
        return None
    k = cmdline.index("--config") + 1
    if k >= len(cmdline):
        return None
    return Path(cmdline[k]).stem, module.removeprefix("nodes.")


def node_name(cmdline: list[str]) -> str | None:
    """A node process's name: its config file's stem (`python -m nodes.<role> --config X`)."""
    node = node_of(cmdline)
    return None if node is None else node[0]


@dataclass
class Track:
    name: str
    kind: str = ""  # the node's module under nodes/ (proxy, logserver, ...), or a role
    times: list[float] = field(default_factory=list)  # unix seconds
    cpu: list[float] = field(default_factory=list)  # cumulative CPU seconds

    def at(self, t: float) -> float:
        """Cumulative CPU at unix time t, interpolated; 0 before the first sample (the
        process had just started) and the last value after the process ended."""
        times, cpu = self.times, self.cpu
        if not times or t <= times[0]:
            return 0.0 if not times or t < times[0] else cpu[0]
        k = bisect_left(times, t)
        if k >= len(times):
            return cpu[-1]
        t0, t1 = times[k - 1], times[k]
        return cpu[k - 1] + (cpu[k] - cpu[k - 1]) * (t - t0) / (t1 - t0)


class CpuSampler:
    """Samples the CPU of every node process whose command line mentions one of `markers`
    (a run's directory), and of the processes `pids` names: pid -> (name, role)."""

    def __init__(self, *markers: str, pids: dict[int, tuple[str, str]] | None = None,
                 period: float = SAMPLE_S) -> None:
        self.markers = markers
        self.period = period
        self.tracks: dict[int, Track] = {
            pid: Track(name, role) for pid, (name, role) in (pids or {}).items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        """One reading of every process: new node processes are found, gone ones skipped."""
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            track = self.tracks.get(pid)
            if track is None:
                if not self.markers:
                    continue
                cmdline = proc_cmdline(pid)
                node = node_of(cmdline)
                if node is None or not any(marker in part for part in cmdline
                                           for marker in self.markers):
                    continue
                track = self.tracks[pid] = Track(*node)
            cpu = proc_cpu_s(pid)
            if cpu is not None:
                track.times.append(time.time())
                track.cpu.append(cpu)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.period)

    def window_cpu(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each process (by name; a restarted node's incarnations summed) spent
        in [start, end] (unix seconds)."""
        spent: dict[str, float] = {}
        for track in self.tracks.values():
            spent[track.name] = spent.get(track.name, 0.0) + track.at(end) - track.at(start)
        return spent

    @property
    def kinds(self) -> dict[str, str]:
        """Process name -> its kind (node module, or the role a pid was given)."""
        return {track.name: track.kind for track in self.tracks.values()}


def proxy_roles(*run_dirs: Path) -> dict[str, str]:
    """Proxy name -> its role (leader, follower, ...): the final one from the summary it
    wrote on stopping, else (still running) the one in its `.role` file."""
    roles: dict[str, str] = {}
    for run_dir in run_dirs:
        for path in run_dir.glob("*.role"):
            parsed = parse_role(path.read_text(errors="replace")) if path.is_file() else None
            if parsed is not None:
                roles[path.name.removesuffix(".role")] = parsed[0]
        for path in run_dir.glob("*.node.json"):
            try:
                summary = read_summary(path)
            except ValueError:
                continue
            if summary.role == "proxy":
                roles[summary.name] = summary.final_role or "proxy"
    return roles


# Node kinds whose role has another name: every load generator is a client.
KIND_ROLES = {"corfuclient": "client", "zkclient": "client", "zkshard": "shard"}


def role_of(name: str, proxies: dict[str, str], kind: str = "") -> str:
    """The role a process's CPU counts for: a proxy's Raft role, else its kind (node module
    or the role its pid was sampled as), else its name's first word."""
    if kind in ("", "proxy") and name in proxies:
        return proxies[name]
    if kind:
        return KIND_ROLES.get(kind, kind)
    return name.split("-", 1)[0]


def cpu_per_op(sampler: CpuSampler, run_dirs: Path | Sequence[Path], start: float,
               end: float, ops: int) -> dict[str, float]:
    """{"all": us/op, "<role>": us/op, ...} over the window [start, end] (unix seconds);
    `run_dirs` hold the proxies' role files."""
    proxies = proxy_roles(*([run_dirs] if isinstance(run_dirs, Path) else run_dirs))
    kinds = sampler.kinds
    by_role: dict[str, float] = {}
    for name, seconds in sampler.window_cpu(start, end).items():
        role = role_of(name, proxies, kinds.get(name, ""))
        by_role[role] = by_role.get(role, 0.0) + seconds
    if ops <= 0:
        return {}
    result = {"all": sum(by_role.values()) * 1e6 / ops}
    for role, seconds in sorted(by_role.items()):
        result[role] = seconds * 1e6 / ops
    return result


def client_window(run_dir: Path) -> tuple[float, float, int]:
    """The window (unix seconds) in which every client was measuring, and the operations
    answered in it, from the clients' summaries and their completions per bin (`.series`).

    The common part of the clients' windows, not their union: where many client processes
    start on few cores, the first ones measure while the last still start up, and the union
    would charge that start-up to the operations. Without series files (or with windows that
    never overlap) it falls back to the union and the operations the summaries count."""
    starts, ends, measured, series = [], [], 0, []
    for path in run_dir.rglob("*.summary.json"):
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if "ops_measured" not in summary:
            continue
        starts.append(summary["window_start_unix_ms"])
        ends.append(summary["window_end_unix_ms"])
        measured += int(summary["ops_measured"])
        series.append(path.with_name(path.name.removesuffix(".summary.json") + ".series"))
    if not starts:
        return 0.0, 0.0, 0
    start_ms, end_ms = max(starts), min(ends)
    if end_ms > start_ms and all(path.exists() for path in series):
        ops = sum(series_ops(path, start_ms, end_ms) for path in series)
        if ops:
            return start_ms / 1000, end_ms / 1000, ops
    return min(starts) / 1000, max(ends) / 1000, measured


def series_ops(path: Path, start_ms: int, end_ms: int) -> int:
    """Operations a client's `.series` file (`unix_ms,ops` per bin) records in bins that
    start inside [start_ms, end_ms)."""
    ops = 0
    for line in path.read_text().splitlines()[1:]:
        stamp, _, count = line.partition(",")
        try:
            if start_ms <= int(stamp) < end_ms:
                ops += int(count)
        except ValueError:
            continue
    return ops


def format_roles(cpu: dict[str, float]) -> str:
    """'all 24.1 (client 8.0, leader 9.2, ...)' for a table cell."""
    if not cpu:
        return "n/a"
    parts = ", ".join(f"{role} {value:.1f}" for role, value in cpu.items() if role != "all")
    return f"{cpu['all']:.1f} ({parts})"
