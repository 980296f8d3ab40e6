"""Pinning node processes to cores on testbed machines (the original ran its processes under
numactl; `taskset -c`, from util-linux, is on every testbed image and needs no root).

Each machine's processes take the cores that machine lets them use (the affinity of its
Python, which honours cpusets), one each, in start order. A machine with more processes than
cores is not refused: the cores are dealt round-robin and the run says so in one line.
Refusing would rule out small testbeds (the rehearsal testbed's hosts share the box's cores)
and runs like the original's 8 proxy threads per machine on machines with fewer cores; the
experiment.toml record shows which processes shared a core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.hosts import Host, HostError

TOOL = "taskset"
_CORES_PROBE = "import os; print(*sorted(os.sched_getaffinity(0)))"


class PinningError(Exception):
    """The cores of a machine could not be learned; the message is one line."""


def usable_cores(host: Host) -> list[int]:
    """The cores a process on this host may run on."""
    try:
        done = host.run([host.python, "-c", _CORES_PROBE], check=True, timeout=30.0)
    except HostError as exc:
        raise PinningError(f"cannot learn the cores of {host.name}: {exc}") from None
    words = done.stdout.split()
    if not words or not all(w.isdigit() for w in words):
        raise PinningError(f"cannot learn the cores of {host.name}: "
                           f"unexpected answer {done.stdout.strip()[:60]!r}")
    return [int(w) for w in words]


@dataclass
class Pinning:
    """Which core each process runs on, per machine; and the machines short of cores."""

    cores: dict[str, dict[str, int]] = field(default_factory=dict)  # machine -> proc -> core
    crowded: list[str] = field(default_factory=list)  # one line per machine short of cores

    def core_of(self, machine: str, proc: str) -> int | None:
        return self.cores.get(machine, {}).get(proc)

    def prefix(self, machine: str, proc: str) -> list[str]:
        """What goes before a process's command line to pin it ([] when it is not)."""
        core = self.core_of(machine, proc)
        return [] if core is None else [TOOL, "-c", str(core)]


def deal(procs: dict[str, list[str]], cores: dict[str, list[int]]) -> Pinning:
    """Each machine's processes (in start order) onto its cores, one each, round-robin when
    there are more processes than cores."""
    pinning = Pinning()
    for machine, names in procs.items():
        usable = cores[machine]
        pinning.cores[machine] = {name: usable[i % len(usable)] for i, name in enumerate(names)}
        if len(names) > len(usable):
            pinning.crowded.append(
                f"{machine}: {len(names)} processes on {len(usable)} core(s); "
                f"pinned round-robin, so some share a core")
    return pinning


def plan(procs: dict[str, list[str]], hosts: dict[str, Host]) -> Pinning:
    """Ask every machine with processes for its cores, then deal them out."""
    return deal(procs, {machine: usable_cores(hosts[machine]) for machine in procs})
