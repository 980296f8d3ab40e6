"""ZK-Mason's orchestrator side: its flags (one-line errors), the placement of shard replicas,
proxy groups and load generators (every config validates as its node reads it), its fault
targets, what `masonctl serve` prints, and its suite."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from nodes import config as node_config
from orchestrator import faults, render, systems
from orchestrator.experiment import Experiment, Launched, RunMachines
from orchestrator.hosts import LocalHost
from orchestrator.placement import Placement
from orchestrator.spec import ExperimentSpec, SpecError, build, from_toml, to_toml
from orchestrator.sweep import Capacity, expand
from suites.loader import SuiteError, find_suite, load_suite
from tests.unit.test_placement import configs, machines

ZK = systems.get("zkmason")


def placed(values: dict[str, Any], shared_address: bool = True
           ) -> tuple[ExperimentSpec, Placement]:
    spec = build("z", "zkmason", values)
    return spec, ZK.place(spec, machines(ZK.machines_needed(spec), shared_address))


def ep(endpoint: node_config.Endpoint | None) -> tuple[str, int]:
    assert endpoint is not None
    return (endpoint.host, endpoint.port)


# ---- validation ----------------------------------------------------------------------------------


def test_the_shards_and_spaces_follow_each_other_when_one_is_left_out():
    assert (build("z", "zkmason", {}).nzk_servers, build("z", "zk-mason", {}).nsequence_spaces) \
        == (3, 1)
    spec = build("z", "zkmason", {"nzk_servers": 12})
    assert (spec.nsequence_spaces, spec.nzk_servers) == (4, 12)
    spec = build("z", "zkmason", {"nsequence_spaces": 2})
    assert (spec.nsequence_spaces, spec.nzk_servers) == (2, 6)
    spec = build("z", "zkmason", {"nsequence_spaces": 2, "nzk_servers": 6, "nproxies": 6})
    assert spec.ngroups == 2 and spec.nproxy_leaders == 2
    assert ZK.machines_needed(spec) == {"sequencer": 1, "proxy": 6, "client": 1, "server": 6}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nzk_servers": 4}, "--nzk_servers must be a positive multiple of 3, not 4"),
        ({"nzk_servers": -3}, "--nzk_servers must be a positive multiple of 3, not -3"),
        ({"nzk_servers": 6, "nsequence_spaces": 1},
         "--nzk_servers 6 makes 2 shard(s), but --nsequence_spaces is 1: shard k is ordered "
         "by space k (leave --nsequence_spaces out to derive it)"),
        ({"nzk_servers": 3, "nsequence_spaces": 2},
         "--nzk_servers 3 makes 1 shard(s), but --nsequence_spaces is 2"),
        ({"zk_replication_factor": 5},
         "--zk_replication_factor must be 3, not 5: every shard is three replicas"),
        ({"nsequence_spaces": 0}, "--nsequence_spaces must be positive, not 0"),
        ({"nproxies": 4}, "--nproxies must be a positive multiple of 3, not 4"),
        ({"zk_tick_ms": 0}, "--zk_tick_ms must be positive, not 0"),
        ({"kill_zk_server": 20.0}, "--kill_zk_server 20.0 falls after the 10.0 s measured "
                                   "window"),
        ({"zk_local_reads": True}, "--zk_local_reads does not apply to --system zkmason"),
        ({"ncorfu_servers": 4}, "--ncorfu_servers does not apply to --system zkmason"),
        ({"setdatas": True, "getdatas": True}, "--setDatas and --getDatas cannot be combined"),
    ],
)
def test_bad_flags_are_one_line(values, message):
    with pytest.raises(SpecError) as info:
        build("z", "zkmason", values)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_other_systems_refuse_the_zkmason_flags():
    for system in ("mason", "rsmkeeper", "corfumason"):
        for field, value in (("nzk_servers", 6), ("kill_zk_server", 1.0),
                             ("zk_replication_factor", 5)):
            with pytest.raises(SpecError, match=f"^--{field} does not apply to --system"):
                build("z", system, {field: value})


def test_the_bitmap_and_gc_are_derived_and_the_record_reruns():
    small = build("z", "zkmason", {"nclients": 1, "client_concurrency": 1})
    big = build("z", "zkmason", {"nzk_servers": 24, "nproxies": 48, "nproxy_threads": 8,
                                 "nclients": 16, "nclient_threads": 16,
                                 "client_concurrency": 32})
    assert small.gc_interval_ms > 0 and small.bitmap_block >= 8192
    assert big.bitmap_block > small.bitmap_block  # more load, bigger blocks: not hand-tuned
    assert big.nproxy_leaders == 128
    text = to_toml(big)
    assert "nzk_servers = 24" in text and "ncorfu_servers" not in text
    assert build("z", "zkmason", {**msgspec_fields(from_toml(text))}) == big


def msgspec_fields(spec: ExperimentSpec) -> dict[str, Any]:
    import msgspec

    out = msgspec.to_builtins(spec)
    del out["name"], out["system"]
    return out


def test_serving_needs_no_load_generators_but_a_run_does():
    assert build("z", "zkmason", {"nclients": 0}).nclients == 0  # masonctl serve
    assert build("z", "zkmason", {"kill_sequencer": 1.0}).nsequencers == 2  # a standby


# ---- placement and configs -----------------------------------------------------------------------


@pytest.mark.parametrize("shared_address", [True, False])
def test_every_shard_gets_three_replicas_and_every_config_validates(shared_address):
    spec, placement = placed({"nzk_servers": 6, "nproxies": 6, "nproxy_threads": 2,
                              "nclients": 2, "nclient_threads": 3}, shared_address)
    parsed = configs(placement)
    shards = [p for p in placement.procs if p.kind == "zkshard"]
    assert [(p.name, p.group, p.replica) for p in shards] == [
        (f"server-{m}", m // 3, m % 3) for m in range(6)]
    by_shard = Counter(parsed[p.name].shard for p in shards)
    assert by_shard == {0: 3, 1: 3}
    for p in shards:
        conf = parsed[p.name]
        assert isinstance(conf, node_config.ZkShardConfig)
        assert (conf.shard, conf.replica, conf.nspaces) == (p.group, p.replica, 2)

    # Every endpoint any process listens on is its own.
    taken = [(p.context["listen"]["host"], p.context["listen"]["port"])
             for p in placement.procs if "listen" in p.context]
    taken += [ep(c.zk_listen) for c in parsed.values()
              if isinstance(c, node_config.ProxyConfig)]
    assert len(taken) == len(set(taken)) == 1 + 6 + 12 + 12

    proxies = {n: c for n, c in parsed.items() if isinstance(c, node_config.ProxyConfig)}
    assert len(proxies) == 12 and {c.service for c in proxies.values()} == {"zkmason"}
    # The shards each proxy is given are the shard replicas, by shard then replica.
    replicas = {(c.shard, c.replica): ep(c.listen) for c in parsed.values()
                if isinstance(c, node_config.ZkShardConfig)}
    for conf in proxies.values():
        assert conf.nspaces == 2 and conf.sequencer is not None
        assert [[ep(e) for e in shard] for shard in conf.zk_shards] == [
            [replicas[(k, r)] for r in range(3)] for k in range(2)]
    # Origin indices: a replica's index in the shards' `proxies` lists is its own endpoint.
    shard_lists = {tuple(ep(e) for e in c.proxies) for c in parsed.values()
                   if isinstance(c, node_config.ZkShardConfig)}
    assert len(shard_lists) == 1
    (listed,) = shard_lists
    assert sorted(c.zk_origin for c in proxies.values()) == list(range(12))
    for conf in proxies.values():
        assert listed[conf.zk_origin] == ep(conf.listen)
    assert [(c.group, c.replica) for c in sorted(proxies.values(), key=lambda c: c.zk_origin)] \
        == [(g, r) for g in range(4) for r in range(3)]


def test_each_load_generator_talks_to_one_group_and_they_spread_over_all():
    spec, placement = placed({"nzk_servers": 6, "nproxies": 6, "nproxy_threads": 8,
                              "nclients": 4, "nclient_threads": 8})
    parsed = configs(placement)
    groups: dict[int, set[tuple[str, int]]] = {}
    for conf in parsed.values():
        if isinstance(conf, node_config.ProxyConfig):
            groups.setdefault(conf.group, set()).add(ep(conf.zk_listen))
    clients = [p for p in placement.procs if p.kind == "zkclient"]
    assert len(clients) == 32
    for proc in clients:
        conf = parsed[proc.name]
        assert isinstance(conf, node_config.ZkClientConfig)
        assert {ep(e) for e in conf.servers} == groups[proc.group]
        assert len(conf.servers) == 3
    assert Counter(p.group for p in clients) == {g: 2 for g in range(16)}
    assert sorted(parsed[p.name].client_id for p in clients) == list(range(32))


def test_too_few_server_machines_is_named():
    spec = build("z", "zkmason", {"nzk_servers": 6})
    slots = machines({"sequencer": 1, "proxy": 3, "client": 1, "server": 3}, True)
    with pytest.raises(SpecError, match="needs 6 server machine"):
        ZK.place(spec, slots)


def test_shard_replicas_always_keep_their_execution_record():
    for record in (True, False):
        _, placement = placed({"record_seqnums": record})
        shard = next(p for p in placement.procs if p.kind == "zkshard")
        conf = node_config.parse(render.render("zkshard", shard.context),
                                 node_config.ZkShardConfig)
        assert conf.record_exec is True


def test_serve_prints_a_group_and_names_the_others():
    _, one = placed({"nclients": 0})
    group0 = [p.context["zk_listen"] for p in sorted(one.by_kind("proxy"),
                                                      key=lambda p: p.replica)]
    assert ZK.connect_string(one) == ",".join(f"{e['host']}:{e['port']}" for e in group0)
    assert ZK.serve_notes(one) == []
    _, two = placed({"nclients": 0, "nproxies": 6})
    notes = ZK.serve_notes(two)
    assert notes[0] == f"group 0: {ZK.connect_string(two)}"
    assert notes[1].startswith("group 1: ") and notes[1] != notes[0]
    assert "the line below is group 0's" in notes[-1]
    assert [p for p in two.procs if p.kind == "zkclient"] == []


# ---- faults and checks ---------------------------------------------------------------------------


def test_fault_targets(tmp_path: Path):
    # (A follower too, but only once the killed leader is back: two of a group's three
    # replicas are never down at once.)
    spec = build("f", "zkmason", {"kill_zk_server": 1.0, "kill_leader": 2.0,
                                  "kill_sequencer": 3.0, "kill_follower": 4.0,
                                  "restart_after": 1.0, "nzk_servers": 6})
    host = LocalHost(workdir=str(tmp_path))
    run = Experiment(spec, RunMachines.local(spec, tmp_path, host), tmp_path / "results",
                     Console(file=io.StringIO()))
    run.running = [Launched(p, host, str(tmp_path)) for p in run.placement.procs]
    from nodes.status import write_role

    write_role(tmp_path, "proxy-1-0", "leader", 2)
    schedule = faults.schedule(run.spec, run.system.fault_events)
    assert [f.event for f in schedule] == ["kill_zk_server", "kill_leader", "kill_sequencer",
                                           "kill_follower"]
    names = [[e.proc.name for e in faults.targets(run, f)] for f in schedule]
    assert names == [["server-0"], ["proxy-1-0"], ["sequencer-0"], ["proxy-0-0"]]
    # The shard's next live replica is the next target; a killed one stays down.
    run.running[[e.proc.name for e in run.running].index("server-0")].killed = True
    assert [e.proc.name for e in faults.targets(run, schedule[0])] == ["server-1"]
    assert "zkshard" not in faults.RESTARTABLE


def test_the_checks_of_a_run_without_records(tmp_path: Path):
    verdicts = ZK.check(tmp_path)
    assert [v.headline for v in verdicts] == [
        "shards: no shard replica left an execution record",
        "linearizability: not recorded (run with --record-seqnums)"]


# ---- the suite -----------------------------------------------------------------------------------


def test_the_suite_is_the_original_loops_for_both_experiments():
    suite = load_suite(find_suite("zkmason"))
    big = Capacity(sequencers=2, proxies=48, clients=16, servers=24)
    for variant, mix in (("setDatas", "setdatas"), ("getDatas", "getdatas")):
        exp = expand(suite, variant, machines=big)
        assert exp.dropped == []
        assert [p.name for p in exp.points] == [
            f"s{s}-c{c}" for s in (1, 2, 4, 8) for c in (1, 2, 4, 8, 16, 32)]
        for point in exp.points:
            i, p = point.coords["s"], point.params
            assert (p["nproxies"], p["nzk_servers"], p["nsequence_spaces"], p["nclients"]) \
                == (6 * i, 3 * i, i, 2 * i)
            assert p["nproxy_leaders"] == 16 * i and p[mix] is True and p["nkeys"] == 8
        spec = exp.points[-1].spec("s8-c32-t1")
        assert spec.system == "zkmason" and ZK.machines_needed(spec) == {
            "sequencer": 1, "proxy": 48, "client": 16, "server": 24}
    # Fewer machines: the points that do not fit are dropped, naming the shortfall.
    small = expand(suite, "setDatas", machines=Capacity(sequencers=1, proxies=12, clients=4,
                                                        servers=6))
    assert {p.coords["s"] for p in small.points} == {1, 2}
    assert any("server machines" in why or "proxy machines" in why
               for _, why in small.dropped)
    with pytest.raises(SuiteError, match="--setDatas"):
        expand(suite)


def test_the_local_suite_is_one_triple_and_one_client_machine_per_shard():
    suite = load_suite(find_suite("zkmason"))
    exp = expand(suite, "getDatas")  # no machine list: this machine
    assert [p.name for p in exp.points] == [f"s{s}-c{c}" for s in (1, 2) for c in (1, 8, 16)]
    p = exp.points[-1].params
    assert (p["nproxies"], p["nzk_servers"], p["nsequence_spaces"], p["nclients"],
            p["nproxy_threads"], p["nclient_threads"]) == (6, 6, 2, 2, 1, 2)


def test_serve_refuses_bad_flags_before_starting_anything(tmp_path: Path):
    from typer.testing import CliRunner

    from orchestrator.cli import app

    for args, message in (
        (["--nservers", "4"], "--nzk_servers must be a positive multiple of 3, not 4"),
        (["--nzk_servers", "6", "--nsequence_spaces", "3"],
         "--nzk_servers 6 makes 2 shard(s), but --nsequence_spaces is 3"),
        (["--zk-local-reads"], "--zk_local_reads does not apply to --system zkmason"),
    ):
        done = CliRunner().invoke(app, ["serve", "--system", "zk-mason", *args,
                                        "--results", str(tmp_path)])
        assert done.exit_code == 2, done.output
        assert message in " ".join(done.output.split()), done.output
    assert list(tmp_path.iterdir()) == []


def test_testbed_defaults_are_the_launchers_fitted_to_the_machines():
    big = ZK.testbed_defaults({"sequencer": 2, "proxy": 48, "client": 16, "server": 24})
    spec = build("z", "zkmason", big)
    assert (spec.nproxies, spec.nproxy_threads, spec.ngroups, spec.nclients,
            spec.nclient_threads, spec.client_concurrency, spec.nkeys) == (6, 8, 16, 2, 16, 8, 8)
    assert (spec.nsequencers, spec.nzk_servers, spec.nsequence_spaces) == (2, 3, 1)
    small = build("z", "zkmason", ZK.testbed_defaults(
        {"sequencer": 1, "proxy": 3, "client": 1, "server": 3}))
    assert (small.nproxies, small.nclients, small.nsequencers) == (3, 1, 1)
    # A shard count given alone brings its servers.
    assert build("z", "zkmason", {**big, "nsequence_spaces": 4}).nzk_servers == 12
