"""`masonctl run --machine-info F`: the same experiment on testbed machines over SSH."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from orchestrator import machines
from orchestrator import spec as specs
from orchestrator.experiment import Cluster
from orchestrator.hosts import Host
from orchestrator.runner import run_remote

ROLES = ("sequencer", "proxy", "client")


@dataclass
class RemoteOptions:
    machine_info: Path
    user: str | None = None
    identity: str | None = None
    known_hosts: Path | None = None
    accept_new_host_keys: bool = False
    testbed_dir: Path | None = None
    retries: int = 2


def testbed_defaults(cluster: machines.Cluster) -> dict[str, object]:
    """As the original launcher: every proxy machine (in whole triples), a backup
    sequencer when there is a second sequencer machine."""
    counts = cluster.counts()
    return {
        **specs.TESTBED_DEFAULTS,
        "nproxies": max(3, counts.get("proxy", 0) // 3 * 3),
        "nsequencers": min(2, max(1, counts.get("sequencer", 0))),
    }


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
        try:
            self.machines = machines.read_machine_info(opts.machine_info)
        except (machines.MachineListError, OSError) as exc:
            raise specs.SpecError(str(exc)) from None
        self.opts = opts
        self.hosts: dict[str, Host] = dict(hosts_for(
            self.machines, user=opts.user, identity_file=identity, known_hosts=known_hosts,
            accept_new_host_keys=opts.accept_new_host_keys,
        ))

    def spec(self, name: str, system: str, given: dict[str, object]) -> specs.ExperimentSpec:
        return specs.build(name, system, {**testbed_defaults(self.machines), **given})

    def cluster(self, run_name: str) -> Cluster:
        used = [(m.name, m.role, m.index) for m in self.machines if m.role in ROLES]
        return Cluster.remote(used, self.hosts, run_name)

    def run(self, spec: specs.ExperimentSpec, results: Path, out: Console,
            err: Console) -> int:
        return run_remote(spec, self.cluster(spec.name), results, out, err, self.opts.retries)

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
) -> int:
    bed = Testbed(opts)
    try:
        return bed.run(bed.spec(name, system, given), results, out, err)
    finally:
        bed.close()
