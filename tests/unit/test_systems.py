"""orchestrator/systems: the registry, what each system says, and the Corfu systems' specs."""

from __future__ import annotations

import pytest

from orchestrator import profiles, render, systems
from orchestrator import spec as specs
from orchestrator.spec import ExperimentSpec, SpecError, build, from_toml, to_toml
from orchestrator.systems.base import COMMON_FIELDS

# ---- the registry ----------------------------------------------------------------------------


def test_every_system_and_alias_resolves_to_its_own_object():
    for name in systems.NAMES:
        system = systems.get(name)
        assert system.name == name
        assert systems.get(name.upper()) is system
    assert systems.get("master") is systems.get("mason")
    assert systems.get("zk-mason") is systems.get("zkmason")
    assert [s.name for s in systems.all_systems()] == list(systems.NAMES)


def test_an_unknown_system_is_one_line_listing_the_choices():
    with pytest.raises(SpecError) as info:
        systems.get("paxos")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown system 'paxos'; choose one of mason (alias master), ")
    assert "zkmason (alias zk-mason)" in message
    with pytest.raises(SpecError, match="unknown system 'paxos'"):
        build("x", "paxos", {})


def test_rsmkeeper_is_one_group_of_three_without_a_sequencer():
    spec = build("x", "rsmkeeper", {"nclients": 0})
    assert (spec.nsequencers, spec.nsequence_spaces, spec.nproxies) == (0, 0, 3)
    with pytest.raises(SpecError, match="--nproxies must be 3"):
        build("x", "rsmkeeper", {"nclients": 0, "nproxies": 6})
    with pytest.raises(SpecError, match="--nsequencers does not apply"):
        build("x", "rsmkeeper", {"nclients": 0, "nsequencers": 2})
    with pytest.raises(SpecError, match="--kill_sequencer does not apply"):
        build("x", "rsmkeeper", {"kill_sequencer": 1.0})
    assert build("x", "rsmkeeper", {"kill_leader": 1.0}).kill_leader == 1.0


def test_each_system_names_roles_kinds_and_templates_that_exist():
    for system in systems.all_systems():
        assert set(system.machine_roles) <= set(systems.MACHINE_ROLES)
        assert system.fields.isdisjoint(COMMON_FIELDS)
        assert set(system.fields) <= set(ExperimentSpec.__struct_fields__)
        for event in system.fault_events:
            assert event in system.fields, (system.name, event)
        kinds = [systems.PROCESS_KINDS[k] for k in system.start_order]
        # clients start last, after every server, on machines the system uses (rsmkeeper
        # has no load generator yet: its servers alone)
        flags = [k.client for k in kinds]
        assert flags == sorted(flags) and not any(flags[:1]), system.name
        if flags and system.name != "rsmkeeper":
            assert flags[-1], system.name
        assert {k.machine_role for k in kinds} <= set(system.machine_roles)
    for kind in systems.PROCESS_KINDS.values():
        assert (render.TEMPLATES / f"{kind.name}.toml.j2").read_text().strip()
    assert systems.PROCESS_KINDS["corfuclient"].module == "nodes.corfuclient"
    assert systems.PROCESS_KINDS["logserver"].module == "nodes.logserver"


def test_start_orders():
    assert systems.get("mason").start_order == ("sequencer", "proxy", "client")
    assert systems.get("corfu").start_order == ("sequencer", "logserver", "corfuclient")
    assert systems.get("corfumason").start_order == (
        "sequencer", "logserver", "proxy", "client")


def test_profile_counts_come_from_the_registry():
    for system in systems.all_systems():
        chosen = profiles.system_named(system.name)
        assert chosen is system
        assert profiles.resolve_counts(chosen) == system.largest
    assert systems.get("corfu").largest == profiles.Counts(2, 0, 16, 8)
    with pytest.raises(profiles.ProfileError, match="unknown system 'paxos'"):
        profiles.system_named("paxos")


# ---- which flags apply --------------------------------------------------------------------------


def test_mason_refuses_the_corfu_flags_and_keeps_its_experiment_toml():
    with pytest.raises(SpecError, match=r"^--ncorfu_servers does not apply to --system mason$"):
        build("x", "mason", {"ncorfu_servers": 4})
    with pytest.raises(SpecError, match=r"--reads does not apply to --system mason"):
        build("x", "mason", {"reads": True})
    spec = build("x", "master", {})
    assert spec.system == "mason"
    text = to_toml(spec)
    assert "ncorfu_servers" not in text and "entry_size" not in text
    assert "nsequence_spaces" in text and "kill_leader_mid_batch" in text
    assert from_toml(text) == spec


def test_corfu_refuses_proxy_and_failover_flags_with_the_reason():
    cases = {
        "kill_leader": (2.0, "--kill_leader does not apply to --system corfu: plain Corfu has "
                             "no proxy groups"),
        "kill_sequencer": (2.0, "--kill_sequencer does not apply to --system corfu: Corfu "
                                "has no sequencer failover"),
        "nproxies": (6, "--nproxies does not apply to --system corfu: plain Corfu has no "
                        "proxies"),
        "read_policy": ("leader", "--read_policy does not apply to --system corfu"),
        "kill_all_leaders": (1.0, "--kill_all_leaders does not apply to --system corfu"),
        "nsequence_spaces": (2, "--nsequence_spaces does not apply to --system corfu"),
    }
    for field, (value, message) in cases.items():
        with pytest.raises(SpecError) as info:
            build("x", "corfu", {field: value})
        assert str(info.value).startswith(message), (field, str(info.value))


def test_corfu_spec_fixes_what_does_not_apply_and_validates_again():
    spec = build("x", "corfu", dict(systems.get("corfu").local_defaults))
    assert (spec.nproxies, spec.nproxy_leaders, spec.nsequencers, spec.ngroups) == (0, 0, 1, 0)
    assert spec.appends and not spec.reads and spec.max_log_position == 0
    assert specs.validate(spec) == spec  # validating a validated spec changes nothing
    assert systems.get("corfu").machines_needed(spec) == {
        "sequencer": 1, "client": 1, "server": 2}
    text = to_toml(spec)
    assert "nproxies" not in text and "ncorfu_servers = 2" in text
    # Rerunning from the record gives the same experiment.
    assert specs.validate(from_toml(text)) == spec


# ---- Corfu and CorfuMason validation ----------------------------------------------------------


@pytest.mark.parametrize("system", ["corfu", "corfumason"])
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ncorfu_servers": 3}, "--ncorfu_servers 3 is not a multiple of "
                                "--corfu_replication_factor 2"),
        ({"ncorfu_servers": 4, "corfu_replication_factor": 3},
         "--ncorfu_servers 4 is not a multiple of --corfu_replication_factor 3"),
        ({"corfu_replication_factor": 4}, "--corfu_replication_factor must be 1, 2 or 3, not 4"),
        ({"corfu_replication_factor": 0}, "--corfu_replication_factor must be 1, 2 or 3, not 0"),
        ({"ncorfu_servers": 0}, "--ncorfu_servers must be positive, not 0"),
        ({"corfu_units": 0}, "--corfu_units must be positive, not 0"),
        ({"appends": True, "reads": True}, "--appends and --reads cannot be combined"),
        ({"appends": True, "max_log_position": 10}, "--max_log_position is the range --reads"),
        ({"max_log_position": -1}, "--max_log_position must be 0 or more, not -1"),
        ({"entry_size": 0}, "--entry_size must be between 1 and 4096 bytes, not 0"),
        ({"entry_size": 4097}, "--entry_size must be between 1 and 4096 bytes, not 4097"),
        ({"corfu_replication_factor": 1, "kill_logserver": 2.0},
         "--kill_logserver needs --corfu_replication_factor 2 or 3"),
        ({"kill_logserver": 20.0, "expduration": 10.0},
         "--kill_logserver 20.0 falls after the 10.0 s measured window"),
        ({"max_log_position": 1 << 40}, "does not fit in 1 chain(s)"),
    ],
)
def test_log_flags_are_checked_for_both_corfu_systems(system, values, message):
    with pytest.raises(SpecError) as info:
        build("x", system, values)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_corfumason_fault_flags():
    with pytest.raises(SpecError, match=r"^--kill_all_leaders cannot be combined with "
                                        r"--kill_leader$"):
        build("x", "corfumason", {"kill_all_leaders": 1.0, "kill_leader": 2.0})
    with pytest.raises(SpecError, match=r"--read_policy must be one of any, leader, not 'x'"):
        build("x", "corfumason", {"read_policy": "x"})
    with pytest.raises(SpecError, match=r"--kill_leader_mid_batch does not apply"):
        build("x", "corfu", {"kill_leader_mid_batch": 1.0})
    spec = build("x", "corfumason", {"kill_all_leaders": 1.0, "kill_sequencer": 2.0,
                                     "kill_logserver": 3.0})
    assert spec.nsequencers == 2  # killing the sequencer brings a standby, as for mason
    with pytest.raises(SpecError, match="--nproxies must be a positive multiple of 3"):
        build("x", "corfumason", {"nproxies": 4})


@pytest.mark.parametrize("system", ["corfu", "corfumason"])
def test_the_workload_follows_the_original_rules(system):
    appends = build("x", system, {})
    assert (appends.appends, appends.reads, appends.max_log_position) == (True, False, 0)
    reads = build("x", system, {"reads": True})
    assert (reads.appends, reads.reads, reads.max_log_position) == (False, True, 100_000)
    # A read range alone means reads, as --max_log_position > 0 did in the original.
    ranged = build("x", system, {"max_log_position": 5000})
    assert (ranged.appends, ranged.reads, ranged.max_log_position) == (False, True, 5000)
    assert build("x", system, {"corfu_replication_factor": 1, "ncorfu_servers": 1}).appends
    for replication in (1, 2, 3):
        spec = build("x", system, {"corfu_replication_factor": replication,
                                   "ncorfu_servers": 2 * replication})
        assert spec.corfu_replication_factor == replication


def test_testbed_defaults_are_the_original_launchers():
    counts = {"sequencer": 2, "proxy": 21, "client": 8, "server": 4}
    corfu = build("x", "corfu", systems.get("corfu").testbed_defaults(counts))
    assert (corfu.nclients, corfu.nclient_threads, corfu.client_concurrency) == (4, 16, 8)
    assert (corfu.corfu_units, corfu.ncorfu_servers, corfu.nproxies) == (4, 2, 0)
    cm = build("x", "corfumason", systems.get("corfumason").testbed_defaults(counts))
    assert (cm.nclients, cm.nproxies, cm.nproxy_leaders, cm.client_concurrency) == (6, 18, 48,
                                                                                     16)
    assert (cm.max_log_size, cm.corfu_units, cm.nsequencers) == (500_000, 4, 2)
    mason = build("x", "mason", systems.get("mason").testbed_defaults(counts))
    assert (mason.nproxies, mason.nsequencers, mason.nproxy_threads) == (21, 2, 8)


@pytest.mark.parametrize("system", ["mason", "corfumason", "rsmkeeper", "zkmason"])
@pytest.mark.parametrize("value", [0, -3, (1 << 15) + 1])
def test_a_batch_limit_outside_what_one_sequencer_request_carries_is_refused(system, value):
    with pytest.raises(SpecError) as info:
        build("x", system, {"batch_max_ops": value})
    assert str(info.value) == f"--batch_max_ops must be 1 to 32768, not {value}"


def test_a_proxy_config_with_a_batch_limit_out_of_range_is_refused_on_loading(tmp_path):
    from nodes import config

    text = ('name = "p"\noutdir = "."\nnspaces = 1\ngroup = 0\nreplica = 0\npeers = {{}}\n'
            'batch_max_ops = {}\n[listen]\nhost = "127.0.0.1"\nport = 1\n')
    for value, ok in ((1, True), (1 << 15, True), (0, False), ((1 << 15) + 1, False)):
        path = tmp_path / f"p{value}.toml"
        path.write_text(text.format(value))
        if ok:
            assert config.load(path, config.ProxyConfig).batch_max_ops == value
        else:
            with pytest.raises(config.ConfigError, match="batch_max_ops"):
                config.load(path, config.ProxyConfig)
