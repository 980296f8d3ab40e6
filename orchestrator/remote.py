"""`masonctl run --machine-info F`: the same experiment on testbed machines over SSH."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from orchestrator import machines
from orchestrator import spec as specs
from orchestrator.experiment import Cluster
from orchestrator.runner import run_remote

ROLES = ("sequencer", "proxy", "client")


@dataclass
class RemoteOptions:
    machine_info: Path
    user: str | None
    identity: str | None
    known_hosts: Path | None
    accept_new_host_keys: bool
    testbed_dir: Path | None
    retries: int


def testbed_defaults(cluster: machines.Cluster) -> dict[str, object]:
    """As the original launcher: every proxy machine (in whole triples), a backup
    sequencer when there is a second sequencer machine."""
    counts = cluster.counts()
    return {
        **specs.TESTBED_DEFAULTS,
        "nproxies": max(3, counts.get("proxy", 0) // 3 * 3),
        "nsequencers": min(2, max(1, counts.get("sequencer", 0))),
    }


def run_on_testbed(
    name: str,
    system: str,
    given: dict[str, object],
    opts: RemoteOptions,
    results: Path,
    out: Console,
    err: Console,
) -> int:
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
        cluster = machines.read_machine_info(opts.machine_info)
    except (machines.MachineListError, OSError) as exc:
        raise specs.SpecError(str(exc)) from None
    spec = specs.build(name, system, {**testbed_defaults(cluster), **given})
    used = [(m.name, m.role, m.index) for m in cluster if m.role in ROLES]
    hosts = hosts_for(cluster, user=opts.user, identity_file=identity, known_hosts=known_hosts,
                      accept_new_host_keys=opts.accept_new_host_keys)
    try:
        return run_remote(spec, Cluster.remote(used, dict(hosts), name), results, out, err,
                          opts.retries)
    finally:
        for host in hosts.values():
            host.close()
