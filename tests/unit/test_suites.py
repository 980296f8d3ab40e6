"""suites/ and orchestrator.sweep: the shipped sweeps, scaling down to the machines there are,
stable point names, variants, and one-line errors for malformed suite files;
orchestrator.suite's planning, resume states and retry rules."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.spec import ExperimentSpec
from orchestrator.suite import (
    Attempt,
    Run,
    parse_sets,
    plan,
    run_suite,
    select,
    state_of,
)
from orchestrator.sweep import Capacity, expand
from suites.loader import SuiteError, find_suite, list_suites, load_suite

BIG = Capacity(sequencers=2, proxies=48, clients=16)  # the README's largest mason setup


def mason():
    return load_suite(find_suite("mason"))


def names(points):
    return [p.name for p in points]


# ---- the shipped suites ----------------------------------------------------------------------


def test_shipped_suites_are_found_by_name():
    assert {"mason", "recovery"} <= set(list_suites())
    assert find_suite("mason").name == "mason.toml"


def test_mason_full_sweep_is_the_original_loops():
    exp = expand(mason(), machines=BIG)
    assert exp.dropped == []
    expected = [f"s{s}-g{g}-c{c}" for s, g, c in itertools.product(
        (1, 2, 4, 8), (1, 2, 4, 8, 16), (1, 2, 4, 8, 16, 32, 64))]
    assert names(exp.points) == expected  # outer loops first, as run_suite.sh
    point = {p.name: p for p in exp.points}["s2-g4-c16"]
    assert point.coords == {"s": 2, "g": 4, "c": 16}
    p = point.params
    # proxy machines = 3 x triples, clients = triples, 8 threads, leaders = 8 x triples
    assert (p["nproxies"], p["nclients"], p["nproxy_threads"], p["nproxy_leaders"]) == (
        12, 4, 8, 32)
    assert (p["nsequence_spaces"], p["client_concurrency"]) == (2, 16)
    # testbed defaults of the original launcher apply on machines
    assert (p["expduration"], p["warmup"], p["nclient_threads"], p["batch_timeout"]) == (
        60.0, 4.0, 16, 20)


def test_mason_local_sweep_is_capped_by_the_local_table():
    exp = expand(mason())
    assert exp.local and exp.dropped == []
    assert names(exp.points) == ["s1-g1-c1", "s1-g1-c16", "s1-g1-c64",
                                 "s2-g1-c1", "s2-g1-c16", "s2-g1-c64"]
    for p in exp.points:
        assert p.params["nproxy_threads"] == 1
        assert p.params["nproxy_leaders"] == 1  # follows nproxy_threads: 1 x 1 triple
        assert p.params["expduration"] == 3.0 and p.params["warmup"] == 1.0
    # 6 points of about 4.5 s measured+warm-up each: a two-trial sweep is minutes, not hours
    total = sum(p.params["warmup"] + p.params["expduration"] + p.params["cooldown"]
                for p in exp.points)
    assert total * 2 < 120


def test_recovery_suite_is_the_readme_example():
    exp = expand(load_suite(find_suite("recovery")), machines=Capacity(
        sequencers=2, proxies=6, clients=4))
    assert names(exp.points) == ["recovery"]
    p = exp.points[0].params
    assert (p["nproxies"], p["nclients"], p["nsequence_spaces"], p["nproxy_threads"],
            p["nproxy_leaders"]) == (6, 4, 4, 8, 16)
    # The original's --kill_leader 6 ended the proxy process of machine proxy-0: every
    # replica there, one of each group of the first triple.
    assert (p["kill_leader_machine"], p["kill_sequencer"], p["expduration"]) == (
        6.0, 16.0, 30.0)
    assert p["kill_leader"] == -1.0  # not group 0's leader alone
    assert (p["client_concurrency"], p["nclient_threads"]) == (8, 16)
    assert p["record_seqnums"] and p["record_noops"]
    assert p["nsequencers"] == 2  # killing the sequencer needs the backup
    local = expand(load_suite(find_suite("recovery"))).points[0].params
    assert local["kill_sequencer"] < local["expduration"] and local["nproxy_leaders"] == 2
    assert local["kill_leader_machine"] < local["kill_sequencer"]


# ---- scaling down ----------------------------------------------------------------------------


def test_points_needing_more_machines_are_dropped():
    exp = expand(mason(), machines=Capacity(sequencers=1, proxies=12, clients=4))
    assert {p.coords["g"] for p in exp.points} == {1, 2, 4}
    assert len(exp.points) == 4 * 3 * 7 and len(exp.dropped) == 4 * 2 * 7
    point, why = exp.dropped[0]
    assert point.name == "s1-g8-c1" and why == "needs 24 proxy machines, 12 listed"


def test_clients_limit_as_well_as_proxies():
    exp = expand(mason(), machines=Capacity(sequencers=1, proxies=48, clients=2))
    assert {p.coords["g"] for p in exp.points} == {1, 2}
    assert "client machines, 2 listed" in exp.dropped[0][1]


def test_a_point_needing_a_backup_sequencer_is_dropped_with_one_sequencer():
    exp = expand(load_suite(find_suite("recovery")),
                 machines=Capacity(sequencers=1, proxies=6, clients=4))
    assert exp.points == [] and exp.dropped[0][1] == "needs 2 sequencer machines, 1 listed"


def test_capacity_from_machine_counts():
    cap = Capacity.from_counts({"sequencer": 2, "proxy": 9, "client": 3, "server": 0})
    assert (cap.sequencers, cap.proxies, cap.clients, cap.servers) == (2, 9, 3, 0)


def test_names_are_stable_across_scales_and_expansions():
    full = {p.name: p.coords for p in expand(mason(), machines=BIG).points}
    small = expand(mason(), machines=Capacity(sequencers=1, proxies=3, clients=1)).points
    local = expand(mason()).points
    for p in small + local:
        assert full[p.name] == p.coords  # same name, same loop values, whatever the scale
    assert names(expand(mason()).points) == names(local)


# ---- variants (Corfu, ZooKeeper) as data -------------------------------------------------------

VARIANT_SUITE = """
[suite]
system = "mason"
[base]
nproxy_threads = 1
[[dims]]
key = "c"
name = "client concurrency"
values = [1, 2, 4]
scale = { client_concurrency = 1 }
[variants.appends]
description = "appends"
base = { nclient_threads = 3 }
[variants.reads]
base = { nclient_threads = 5 }
values = { c = [4] }
"""


def write(tmp_path: Path, text: str, name: str = "demo.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_variants_need_a_flag_and_apply_their_tables(tmp_path):
    suite = load_suite(write(tmp_path, VARIANT_SUITE))
    with pytest.raises(SuiteError, match=r"needs one of --appends, --reads"):
        expand(suite)
    appends = expand(suite, "appends")
    assert appends.results_name == "demo-appends"
    assert names(appends.points) == ["c1", "c2", "c4"]
    assert {p.params["nclient_threads"] for p in appends.points} == {3}
    reads = expand(suite, "reads")
    assert names(reads.points) == ["c4"] and reads.points[0].params["nclient_threads"] == 5
    with pytest.raises(SuiteError, match=r"no --getDatas variant; its variants are"):
        expand(suite, "getDatas")


def test_a_suite_without_variants_rejects_a_variant_flag():
    with pytest.raises(SuiteError, match=r"suite mason has no --appends variant"):
        expand(mason(), "appends")


# ---- overrides and selection ---------------------------------------------------------------------


def test_set_overrides_every_point_but_not_a_swept_field():
    assert parse_sets(["expduration=1.5", "record_seqnums=true", "base_port=40000"]) == {
        "expduration": 1.5, "record_seqnums": True, "base_port": 40000}
    exp = expand(mason(), overrides={"expduration": 1.5, "nproxy_threads": 2})
    assert {p.params["expduration"] for p in exp.points} == {1.5}
    # leaders follow the overridden thread count
    assert {p.params["nproxy_leaders"] for p in exp.points} == {2}
    with pytest.raises(SuiteError, match=r"--set client_concurrency: the suite sweeps"):
        expand(mason(), overrides={"client_concurrency": 3})
    with pytest.raises(SuiteError, match=r"--set: 'colour' is not an experiment field"):
        expand(mason(), overrides={"colour": 1})
    with pytest.raises(SuiteError, match=r"--set expduration=soon: Expected `float`"):
        expand(mason(), overrides={"expduration": "soon"})
    with pytest.raises(SuiteError, match=r"expected FIELD=VALUE"):
        parse_sets(["expduration"])


def test_only_selects_by_shell_patterns():
    points = expand(mason()).points
    assert names(select(points, "s2-*")) == ["s2-g1-c1", "s2-g1-c16", "s2-g1-c64"]
    assert names(select(points, "s1-g1-c1, *-c64")) == ["s1-g1-c1", "s1-g1-c64", "s2-g1-c64"]
    with pytest.raises(SuiteError, match=r"--only 's9-\*' matches no point"):
        select(points, "s1-*,s9-*")


def test_plan_is_trial_major():
    points = expand(mason()).points[:2]
    assert [r.name for r in plan(points, 2)] == [
        "s1-g1-c1-t1", "s1-g1-c16-t1", "s1-g1-c1-t2", "s1-g1-c16-t2"]


# ---- malformed suite files -----------------------------------------------------------------------

GOOD_DIM = """
[[dims]]
key = "c"
name = "load"
values = [1, 2]
scale = { client_concurrency = 1 }
"""


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[suite\nsystem = 'mason'\n", "(at line 1, column 7)"),  # syntax
        ("[suite]\nsystem = 'mason'\ncolour = 1\n", "unknown field `colour`"),
        ("[base]\nnproxies = 3\n", "missing required field `suite`"),
        ("[suite]\nsystem = 'mason'\n[base]\nnproxiez = 3\n", "'nproxiez' is not an experiment"),
        ("[suite]\nsystem = 'mason'\n[base]\nname = 'x'\n", "'name' is not an experiment"),
        ("[suite]\nsystem = 'cassandra'\n", "unknown system 'cassandra'"),
        ("[suite]\nsystem = 'mason'\ntrials = 0\n", "trials must be at least 1"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM + GOOD_DIM, "dimension 'c' is defined twice"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM.replace("[1, 2]", "[1, 1]"), "values repeat"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM.replace("[1, 2]", "[]"), "non-empty list"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM.replace('"c"', '"C-1"'), "a key is lower"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM.replace("client_concurrency = 1",
                                                          "python = 1"), "not a numeric"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM.replace("= 1 }", "= 'colour' }"),
         "factor 'colour'"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM.replace("= 1 }", "= 1.5 }"),
         "Expected `int | str`, got `float`"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM + "[local]\nvalues = { c = [3] }\n",
         "must be a non-empty subset of [1, 2]"),
        ("[suite]\nsystem = 'mason'\n" + GOOD_DIM + "[local]\nvalues = { x = [1] }\n",
         "no dimension 'x'"),
        ("[suite]\nsystem = 'mason'\n[base]\nclient_concurrency = 4\n" + GOOD_DIM,
         "set both in a base table and by a dimension"),
        ("[suite]\nsystem = 'mason'\n[variants.writes]\n", "variants are appends, reads"),
        ("[suite]\nsystem = 'mason'\n[base]\nnproxies = 'three'\n",
         "Expected `int`, got `str`"),
    ],
)
def test_malformed_suite_file_is_one_line_naming_the_file(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        expand(load_suite(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    assert needle in message, message


def test_a_point_the_spec_rejects_names_the_file_and_point(tmp_path):
    path = write(tmp_path, "[suite]\nsystem = 'mason'\n" + GOOD_DIM.replace(
        "client_concurrency = 1", "nproxies = 2"))
    with pytest.raises(SuiteError) as info:
        expand(load_suite(path))
    assert str(info.value) == (f"{path}: point c1: --nproxies must be a positive multiple of 3, "
                               "not 2")


def test_unknown_and_odd_suite_names(tmp_path):
    with pytest.raises(SuiteError, match=r"no suite named 'nope'; suites: .*mason"):
        find_suite("nope")
    with pytest.raises(SuiteError, match=r"no such suite file"):
        find_suite(str(tmp_path / "missing.toml"))
    with pytest.raises(SuiteError, match=r"name a suite file with letters"):
        load_suite(write(tmp_path, "[suite]\nsystem = 'mason'\n", name="my suite.toml"))


# ---- resume states and the retry rules, through the runner seam ----------------------------------


def test_state_of_a_run_directory(tmp_path):
    assert state_of(tmp_path / "a-t1") == "new"
    (tmp_path / "a-t1").mkdir()
    assert state_of(tmp_path / "a-t1") == "partial"
    (tmp_path / "a-t1" / "failed").write_text("x\n")
    assert state_of(tmp_path / "a-t1") == "failed"
    (tmp_path / "a-t1" / "done").write_text("x\n")
    assert state_of(tmp_path / "a-t1") == "done"


class Scripted:
    """A RunOne (the seam a remote runner plugs into) that plays back given outcomes and
    leaves what a run leaves: client result files in the run directory."""

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = outcomes
        self.calls: list[str] = []

    def __call__(self, spec: ExperimentSpec, run_dir: Path) -> Attempt:
        self.calls.append(spec.name)
        outcome = self.outcomes.pop(0)
        run_dir.mkdir(parents=True)
        if outcome == "start-failure":
            (run_dir / "sequencer-0.log").write_text("error: port in use\n")
            return Attempt(False, False, "sequencer-0 died: port in use")
        (run_dir / "client-0.dat").write_text("0.001,10,20,30,40,0\n")
        if outcome == "verdict-failure":
            return Attempt(False, True, "contiguity: FAILED (a gap)")
        return Attempt(True, True, "", 0.1)


def test_a_failed_start_is_deleted_and_retried_then_given_up(tmp_path):
    console = Console(file=io.StringIO(), width=200)
    runs = plan(expand(mason()).points[:2], 1)
    runner = Scripted(["start-failure", "ok", "start-failure", "start-failure"])
    suite_dir = tmp_path / "mason"
    suite_dir.mkdir()
    outcome = run_suite(suite_dir, runs, runner, retries=1, console=console, retry_pause=0)
    assert runner.calls == ["s1-g1-c1-t1", "s1-g1-c1-t1", "s1-g1-c16-t1", "s1-g1-c16-t1"]
    assert outcome.ran == ["s1-g1-c1-t1"] and outcome.failed == ["s1-g1-c16-t1"]
    assert state_of(suite_dir / "s1-g1-c1-t1") == "done"
    assert state_of(suite_dir / "s1-g1-c16-t1") == "new"  # deleted: the next call redoes it
    log = (suite_dir / "failures.log").read_text().splitlines()
    assert len(log) == 3 and all("port in use" in line for line in log)
    assert "s1-g1-c16-t1 attempt 2/2" in log[-1]


def test_a_measured_run_whose_verdict_failed_is_kept_and_not_retried(tmp_path):
    console = Console(file=io.StringIO(), width=200)
    runs = [Run(expand(mason()).points[0], 1)]
    runner = Scripted(["verdict-failure"])
    suite_dir = tmp_path / "mason"
    suite_dir.mkdir()
    outcome = run_suite(suite_dir, runs, runner, retries=2, console=console)
    assert runner.calls == ["s1-g1-c1-t1"] and outcome.failed == ["s1-g1-c1-t1"]
    assert state_of(suite_dir / "s1-g1-c1-t1") == "failed"
    assert (suite_dir / "s1-g1-c1-t1" / "client-0.dat").exists()  # the evidence stays
    # Resuming skips it (and still reports it failed) instead of hiding it with a rerun.
    again = run_suite(suite_dir, runs, Scripted([]), retries=2, console=console)
    assert again.skipped == 1 and again.failed == ["s1-g1-c1-t1"] and again.ran == []


CORFU_SUITE = """
[suite]
system = "corfu"
[base]
ncorfu_servers = 2
[[dims]]
key = "s"
name = "log servers"
values = [2, 4]
scale = { ncorfu_servers = 1, nclients = 1 }
[variants.appends]
base = { appends = true }
[variants.reads]
base = { reads = true, max_log_position = 5000, entry_size = 128 }
"""


def test_a_corfu_suite_sets_the_log_flags_and_needs_server_machines(tmp_path):
    path = write(tmp_path, CORFU_SUITE.replace("ncorfu_servers = 2\n", ""))
    suite = load_suite(path)
    reads = expand(suite, "reads").points
    assert names(reads) == ["s2", "s4"]
    p = reads[1].params
    assert (p["reads"], p["appends"], p["max_log_position"], p["entry_size"]) == (
        True, False, 5000, 128)
    assert (p["ncorfu_servers"], p["nclients"], p["nproxies"]) == (4, 4, 0)
    assert reads[1].spec("s4-t1").system == "corfu"
    exp = expand(suite, "appends", machines=Capacity(sequencers=1, clients=4, servers=2))
    assert names(exp.points) == ["s2"] and exp.points[0].params["appends"]
    assert exp.dropped[0][1] == "needs 4 server machines, 2 listed"
    # a field set both in [base] and by a dimension is still refused for any system
    with pytest.raises(SuiteError, match="set both in a base table and by a dimension"):
        load_suite(write(tmp_path, CORFU_SUITE, name="twice.toml"))
    bad = write(tmp_path, CORFU_SUITE.replace("ncorfu_servers = 2\n", "").replace(
        "entry_size = 128", "nproxies = 3, kill_leader = 1.0"), name="bad.toml")
    with pytest.raises(SuiteError, match=r"point s2: --kill_leader does not apply to "
                                         r"--system corfu"):
        expand(load_suite(bad), "reads")


def test_corfumason_shards_scale_the_readme_way_on_testbeds_and_shrink_locally():
    suite = load_suite(find_suite("corfumason"))
    testbed = expand(suite, "appends", Capacity.from_counts(
        {"sequencer": 2, "proxy": 72, "client": 24, "server": 8}))
    k4 = next(p for p in testbed.points if p.name == "k4-c16")
    # Per shard: 2 servers, 6 triples of proxy machines, 6 client machines.
    assert (k4.params["ncorfu_servers"], k4.params["nproxies"], k4.params["nclients"]) == \
        (8, 72, 24)
    assert k4.params["appends"] and not k4.params["reads"]
    local = expand(suite, "reads")
    assert names(local.points) == ["k1-c1", "k1-c8", "k1-c32"]
    point = local.points[0].params
    assert (point["ncorfu_servers"], point["nproxies"], point["nclients"]) == (2, 3, 1)
    assert point["reads"] and point["max_log_position"] == 100_000


def local_scale(scale: str) -> str:
    return VARIANT_SUITE.replace("[variants.appends]", f"[local.scale]\n{scale}\n"
                                 "[variants.appends]")


@pytest.mark.parametrize("scale,needle", [
    ("x = { client_concurrency = 2 }", "names 'x', which is no dimension"),
    ("c = { nclients = 2 }", "scale the same fields as the dimension"),
    ("c = { client_concurrency = \"nope\" }", "factor 'nope' is not a numeric"),
])
def test_bad_local_scales_are_named(tmp_path, scale, needle):
    with pytest.raises(SuiteError, match=needle):
        expand(load_suite(write(tmp_path, local_scale(scale))), "appends")


def test_a_local_scale_applies_on_one_machine_only(tmp_path):
    suite = load_suite(write(tmp_path, local_scale(
        "c = { client_concurrency = 10 }")))
    assert [p.params["client_concurrency"] for p in expand(suite, "appends").points] == \
        [10, 20, 40]
    testbed = expand(suite, "appends", Capacity.from_counts(
        {"sequencer": 2, "proxy": 3, "client": 1, "server": 0}))
    assert [p.params["client_concurrency"] for p in testbed.points] == [1, 2, 4]


def test_rsmkeeper_sweep_is_the_original_loops_for_both_experiments():
    suite = load_suite(find_suite("rsmkeeper"))
    for variant, mix in (("setDatas", "setdatas"), ("getDatas", "getdatas")):
        exp = expand(suite, variant, machines=Capacity(sequencers=0, proxies=3, clients=1))
        assert exp.dropped == []
        assert names(exp.points) == [f"c{c}" for c in (1, 2, 4, 8, 16)]
        p = exp.points[-1].params
        assert p[mix] is True and p["client_concurrency"] == 16
        assert (p["nproxies"], p["nclients"], p["nclient_threads"], p["nkeys"]) == (3, 1, 8, 128)
        spec = exp.points[0].spec("c1-t1")
        assert spec.system == "rsmkeeper" and getattr(spec, mix)
    with pytest.raises(SuiteError, match="--setDatas"):
        expand(suite)
