"""Placement of the Corfu systems: log servers and chains from the server machines, ports,
the one chain config every log user gets, configs that validate; layout.json; the local
machines a run creates and the processes each fault kills (read from real .role files)."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from nodes import config as node_config
from nodes.logserver.layout import LAYOUT_FILE, LogLayout, chain_members, read_layout, write_layout
from nodes.status import write_role
from orchestrator import faults, render, systems
from orchestrator.experiment import Experiment, Launched, RunMachines
from orchestrator.hosts import LocalHost
from orchestrator.placement import MachineSlot, Placement
from orchestrator.spec import ExperimentSpec, build


def machines(counts: dict[str, int], shared_address: bool = False) -> list[MachineSlot]:
    """Named machines, each on its own address (or all on one, as a local run)."""
    slots = []
    for role, n in counts.items():
        for i in range(n):
            address = "127.0.0.1" if shared_address else f"198.18.1.{len(slots) + 1}"
            slots.append(MachineSlot(f"{role}-{i}", role, i, address, f"/w/{role}-{i}"))
    return slots


def placed(system: str, values: dict[str, Any], shared_address: bool = False,
           spare: int = 0) -> tuple[ExperimentSpec, Placement]:
    spec = build("p", system, values)
    need = systems.get(system).machines_needed(spec)
    slots = machines({role: n + spare for role, n in need.items()}, shared_address)
    return spec, systems.get(system).place(spec, slots)


def configs(placement: Placement) -> dict[str, node_config.Common]:
    """Every process's rendered config, parsed back as the node will parse it."""
    out = {}
    for proc in placement.procs:
        text = render.render(proc.kind, proc.context)
        out[proc.name] = node_config.parse(text, systems.PROCESS_KINDS[proc.kind].config)
    return out


def listen_of(parsed: dict[str, node_config.Common]) -> dict[str, tuple[str, int]]:
    return {name: (c.listen.host, c.listen.port) for name, c in parsed.items()
            if c.listen is not None}


def check_ports_unique(parsed: dict[str, node_config.Common]) -> None:
    taken = Counter(listen_of(parsed).values())
    assert [ep for ep, n in taken.items() if n > 1] == []


@pytest.mark.parametrize("replication", [1, 2, 3])
@pytest.mark.parametrize("shared_address", [False, True])
def test_corfu_chains_follow_the_layout(replication, shared_address):
    servers, units = 2 * replication, 2
    spec, placement = placed("corfu", {
        "ncorfu_servers": servers, "corfu_replication_factor": replication,
        "corfu_units": units, "nclients": 2, "nclient_threads": 3, "record_seqnums": True,
    }, shared_address, spare=1)
    parsed = configs(placement)
    check_ports_unique(parsed)
    members = chain_members(servers, units, replication)
    layout = placement.log
    assert layout is not None
    assert layout == LogLayout(nchains=len(members), replication=replication, entry_size=64,
                               chains=[[f"server-{m}-{u}" for m, u in chain]
                                       for chain in members])
    # One log-server process per (server machine, unit), on the first S server machines.
    logservers = {n: c for n, c in parsed.items() if isinstance(c, node_config.LogServerConfig)}
    assert sorted(logservers) == sorted(f"server-{m}-{u}" for m in range(servers)
                                        for u in range(units))
    listen = listen_of(parsed)
    for c, chain in enumerate(layout.chains):
        for name in chain:
            assert c in logservers[name].chains
    for name, conf in logservers.items():
        assert conf.nchains == layout.nchains and conf.dump_entries and conf.prefill == 0
        assert all(name in layout.chains[c] for c in conf.chains)
    # Every client gets the same chains: the layout's processes' endpoints, head first.
    expected = [[listen[name] for name in chain] for chain in layout.chains]
    clients = [c for c in parsed.values() if isinstance(c, node_config.CorfuClientConfig)]
    assert len(clients) == 2 * 3
    sequencer = parsed["sequencer-0"]
    assert sequencer.listen is not None
    for client in clients:
        assert [[(e.host, e.port) for e in chain] for chain in client.log.chains] == expected
        assert client.sequencer == sequencer.listen
        assert client.workload.kind == "append" and client.workload.entry_size == 64
        assert client.nspaces == 1
    assert sorted(c.client_id for c in clients) == list(range(6))  # unique across the run
    assert [p.kind for p in placement.procs if p.kind == "proxy"] == []
    assert {p.name for p in placement.procs} >= {"sequencer-0", "client-1-2"}
    assert "sequencer-1" not in {p.name for p in placement.procs}  # no failover in Corfu


def test_corfu_reads_prefill_the_log_servers():
    _, placement = placed("corfu", {"reads": True, "max_log_position": 5000})
    parsed = configs(placement)
    for conf in parsed.values():
        if isinstance(conf, node_config.LogServerConfig):
            assert conf.prefill == 5000 and not conf.dump_entries
        if isinstance(conf, node_config.CorfuClientConfig):
            assert (conf.workload.kind, conf.workload.max_log_position) == ("read", 5000)


def test_corfumason_proxies_share_the_chains_and_clients_map_to_groups():
    spec, placement = placed("corfumason", {
        "nproxies": 6, "nproxy_threads": 2, "nclients": 3, "nclient_threads": 4,
        "ncorfu_servers": 4, "corfu_units": 2, "read_policy": "leader",
        "kill_sequencer": 2.0, "entry_size": 128,
    }, shared_address=True)
    parsed = configs(placement)
    check_ports_unique(parsed)
    layout = placement.log
    assert layout is not None and layout.nchains == 4 and layout.entry_size == 128
    listen = listen_of(parsed)
    expected = [[listen[name] for name in chain] for chain in layout.chains]
    proxies = [c for c in parsed.values() if isinstance(c, node_config.ProxyConfig)]
    assert len(proxies) == 6 * 2
    for proxy in proxies:
        assert proxy.service == "corfumason" and proxy.read_policy == "leader"
        assert proxy.log is not None
        assert [[(e.host, e.port) for e in chain] for chain in proxy.log.chains] == expected
        assert proxy.nspaces == 1
    clients = {n: c for n, c in parsed.items() if isinstance(c, node_config.ClientConfig)}
    assert len(clients) == 3 * 4
    groups = spec.ngroups
    for name, client in clients.items():
        machine, thread = int(name.split("-")[1]), int(name.split("-")[2])
        assert client.group == (machine * spec.nproxy_threads + thread) % groups
        assert client.group < groups
        assert (client.workload.kind, client.workload.entry_size) == ("append", 128)
        group_listen = sorted(listen[p.name] for p in placement.procs
                              if p.kind == "proxy" and p.group == client.group)
        assert sorted((e.host, e.port) for e in client.replicas) == group_listen
    assert len({c.client_id for c in clients.values()}) == len(clients)
    standby = parsed["sequencer-1"]
    assert isinstance(standby, node_config.SequencerConfig) and standby.standby


def test_mason_placement_is_unchanged_by_the_log():
    _, placement = placed("mason", {"nproxy_threads": 2})
    assert placement.log is None
    assert {p.kind for p in placement.procs} == {"sequencer", "proxy", "client"}
    parsed = configs(placement)
    proxy = parsed["proxy-0-0"]
    assert isinstance(proxy, node_config.ProxyConfig)
    assert proxy.service == "mason" and proxy.log is None
    text = render.render("proxy", placement.procs[1].context)
    assert "service" not in text and "[log]" not in text


def test_too_few_server_machines_is_named():
    spec = build("p", "corfu", {"ncorfu_servers": 4})
    slots = machines({"sequencer": 1, "client": 1, "server": 2})
    with pytest.raises(Exception, match=r"needs 4 server machine\(s\), the cluster has 2"):
        systems.get("corfu").place(spec, slots)


def test_layout_json_round_trip(tmp_path: Path):
    layout = LogLayout(nchains=2, replication=2, entry_size=64,
                       chains=[["server-0-0", "server-1-0"], ["server-0-1", "server-1-1"]])
    path = tmp_path / LAYOUT_FILE
    write_layout(path, layout)
    assert read_layout(path) == layout
    path.write_text('{"nchains": 3, "replication": 2, "entry_size": 64, "chains": [["a"]]}')
    with pytest.raises(ValueError, match="chains") as info:
        read_layout(path)
    assert "\n" not in str(info.value)
    path.write_text('{"nchains": 1}')
    with pytest.raises(ValueError, match="missing required field"):
        read_layout(path)
    with pytest.raises(ValueError, match="nowhere"):
        read_layout(tmp_path / "nowhere")


def test_a_local_run_creates_the_server_machines(tmp_path: Path):
    spec = build("p", "corfumason", {"ncorfu_servers": 4, "nclients": 2})
    host = LocalHost(workdir=str(tmp_path))
    run = RunMachines.local(spec, tmp_path, host)
    roles = Counter(slot.role for slot in run.slots)
    assert roles == {"sequencer": 1, "proxy": 3, "client": 2, "server": 4}
    assert all(run.hosts[slot.name] is host for slot in run.slots)


# ---- fault targets, from the files the processes leave ------------------------------------------


def experiment(tmp_path: Path, system: str, values: dict[str, Any]) -> Experiment:
    spec = build("f", system, values)
    host = LocalHost(workdir=str(tmp_path))
    run = Experiment(spec, RunMachines.local(spec, tmp_path, host), tmp_path / "results",
                     Console(file=io.StringIO()))
    run.running = [Launched(p, host, str(tmp_path)) for p in run.placement.procs]
    return run


def names(entries: list[Launched]) -> list[str]:
    return [e.proc.name for e in entries]


def test_fault_targets_of_corfumason(tmp_path: Path):
    run = experiment(tmp_path, "corfumason", {"nproxy_threads": 2, "kill_all_leaders": 1.0,
                                              "kill_logserver": 2.0, "kill_sequencer": 3.0})
    # Group 0: replica 1 leads in term 3 (replica 0 led in term 2 and has not heard yet).
    write_role(tmp_path, "proxy-0-0", "leader", 2)
    write_role(tmp_path, "proxy-1-0", "leader", 3)
    write_role(tmp_path, "proxy-2-0", "follower", 3)
    write_role(tmp_path, "proxy-0-1", "leader", 1)
    write_role(tmp_path, "proxy-1-1", "follower", 1)
    (tmp_path / "proxy-2-1.role").write_text("garbled\n")
    schedule = faults.schedule(run.spec, run.system.fault_events)
    assert [(f.at, f.event) for f in schedule] == [
        (1.0, "kill_all_leaders"), (2.0, "kill_logserver"), (3.0, "kill_sequencer")]
    # The original's meaning: proxy-0's processes, whichever replica leads.
    assert names(faults.targets(run, schedule[0])) == ["proxy-0-0", "proxy-0-1"]
    assert names(faults.targets(run, schedule[1])) == ["server-0-0"]  # head of chain 0
    assert names(faults.targets(run, schedule[2])) == ["sequencer-0"]
    follower = faults.targets(run, faults.Fault(1.0, "kill_follower", 0))
    assert names(follower) == ["proxy-0-0"]
    for entry in run.running:
        entry.killed = True
    assert faults.targets(run, schedule[1]) == []


@pytest.mark.parametrize("system", ["mason", "corfumason", "zkmason"])
def test_machine_kills_take_every_process_of_the_first_machines(tmp_path: Path, system):
    run = experiment(tmp_path, system, {"nproxies": 6, "nproxy_threads": 2,
                                        "kill_leader_machine": 1.0, "kill_all_leaders": 5.0,
                                        "restart_after": 2.0})
    # Group 0 is led from proxy-1: the machine kill still takes proxy-0's processes.
    write_role(tmp_path, "proxy-1-0", "leader", 2)
    schedule = faults.schedule(run.spec, run.system.fault_events)
    assert [f.event for f in schedule] == ["kill_leader_machine", "kill_all_leaders"]
    assert names(faults.targets(run, schedule[0])) == ["proxy-0-0", "proxy-0-1"]
    assert names(faults.targets(run, schedule[1])) == [
        "proxy-0-0", "proxy-0-1", "proxy-3-0", "proxy-3-1"]
    assert {e.proc.group for e in faults.targets(run, schedule[1])} == {0, 1, 2, 3}


def test_corfu_schedules_only_its_faults(tmp_path: Path):
    run = experiment(tmp_path, "corfu", {"kill_logserver": 1.5})
    assert [f.event for f in faults.schedule(run.spec, run.system.fault_events)] == [
        "kill_logserver"]
    assert run.system.fault_events == ("kill_logserver",)


def test_clients_spread_over_every_group():
    # One client machine of two processes facing two triples (one group each): the
    # original put both on group 0 and left group 1 idle.
    spec = build("p", "mason", {"nproxies": 6, "nclients": 1, "nclient_threads": 2})
    slots = machines({"sequencer": 1, "proxy": 6, "client": 1})
    placement = systems.get("mason").place(spec, slots)
    assert sorted(p.group for p in placement.procs if p.kind == "client") == [0, 1]
    # The testbed's usual shape keeps two client processes per group.
    spec = build("p", "mason", {"nproxies": 6, "nproxy_threads": 8, "nclients": 2,
                                "nclient_threads": 16})
    slots = machines({"sequencer": 1, "proxy": 6, "client": 2})
    placement = systems.get("mason").place(spec, slots)
    per_group = Counter(p.group for p in placement.procs if p.kind == "client")
    assert sorted(per_group) == list(range(16)) and set(per_group.values()) == {2}
