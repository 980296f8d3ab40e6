"""`masonctl run --machine-info F`: the same experiment on testbed machines over SSH."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from orchestrator import machines, systems
from orchestrator import spec as specs
from orchestrator.experiment import RunMachines
from orchestrator.hosts import Host
from orchestrator.placement import MachineSlot
from orchestrator.runner import RunResult, run_remote


@dataclass
class RemoteOptions:
    machine_info: Path
    user: str | None = None
    identity: str | None = None
    known_hosts: Path | None = None
    accept_new_host_keys: bool = False
    testbed_dir: Path | None = None
    retries: int = 2
    pin: bool = True  # each node process on a core of its own
    # Base of the nodes' work directories (`<base>/<name>`), for a machine_info.txt that does
    # not record them (the original's); None: the recorded ones, else ~/mason.
    workdir: str | None = None


def read_cluster(machine_info: Path) -> machines.Cluster:
    try:
        return machines.read_machine_info(machine_info)
    except (machines.MachineListError, OSError) as exc:
        raise specs.SpecError(str(exc)) from None


def machine_info_note(machine_info: Path) -> str:
    """One line naming the layout of machine_info.txt a run reads (the original's or ours)."""
    try:
        text = machines.read_list_file(machine_info)
    except machines.MachineListError as exc:
        raise specs.SpecError(str(exc)) from None
    return f"{machine_info}: {machines.machine_info_format(text)}"


def testbed_spec(cluster: machines.Cluster, name: str, system: str,
                 given: dict[str, object]) -> specs.ExperimentSpec:
    """The system's testbed defaults fitted to these machines, then the given flags."""
    defaults = systems.get(system).testbed_defaults(cluster.counts())
    return specs.build(name, system, {**defaults, **given})


def planned_slots(cluster: machines.Cluster, spec: specs.ExperimentSpec) -> list[MachineSlot]:
    """The machines a run would use, from machine_info.txt alone (a dry run: no SSH)."""
    from orchestrator.ssh_host import DEFAULT_WORKDIR_BASE

    roles = systems.get(spec.system).machine_roles
    return [MachineSlot(m.name, m.role, m.index, m.experiment_ip or m.ssh_host,
                        f"{m.workdir or f'{DEFAULT_WORKDIR_BASE}/{m.name}'}/runs/{spec.name}")
            for m in cluster if m.role in roles]


class Testbed:
    """The machines of machine_info.txt and an SSHHost for each; close() when done."""

    def __init__(self, opts: RemoteOptions) -> None:
        from orchestrator import testbed
        from orchestrator.ssh_host import hosts_for

        identity, known_hosts = opts.identity, opts.known_hosts
        if opts.testbed_dir is not None:
            try:
                state = testbed.load_state(opts.testbed_dir)
            except testbed.TestbedError as exc:
                raise specs.SpecError(str(exc)) from None
            identity = identity or state.identity
            known_hosts = known_hosts or Path(state.known_hosts)
        self.machines = read_cluster(opts.machine_info)
        self.opts = opts
        self.hosts: dict[str, Host] = dict(hosts_for(
            self.machines, user=opts.user, identity_file=identity, known_hosts=known_hosts,
            accept_new_host_keys=opts.accept_new_host_keys, workdir_base=opts.workdir,
        ))

    def spec(self, name: str, system: str, given: dict[str, object]) -> specs.ExperimentSpec:
        return testbed_spec(self.machines, name, system, given)

    def run_machines(self, spec: specs.ExperimentSpec) -> RunMachines:
        roles = systems.get(spec.system).machine_roles
        used = [(m.name, m.role, m.index) for m in self.machines if m.role in roles]
        return RunMachines.remote(used, self.hosts, spec.name, self.opts.pin)

    def run(self, spec: specs.ExperimentSpec, results: Path, out: Console,
            err: Console) -> RunResult:
        return run_remote(spec, self.run_machines(spec), results, out, err, self.opts.retries)

    def close(self) -> None:
        for host in self.hosts.values():
            host.close()


def run_on_testbed(
    name: str,
    system: str,
    given: dict[str, object],
    opts: RemoteOptions,
    results: Path,
    out: Console,
    err: Console,
) -> RunResult:
    bed = Testbed(opts)
    try:
        return bed.run(bed.spec(name, system, given), results, out, err)
    finally:
        bed.close()
