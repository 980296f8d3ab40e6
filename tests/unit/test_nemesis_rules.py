"""What the nemesis runs on a node: iptables rules, netem, and the node-side batch."""

from __future__ import annotations

import sys
import time

import pytest

from analysis.datfiles import FaultEvent, fault_intervals
from orchestrator import nemesis
from orchestrator.hosts import LocalHost


def test_a_two_way_cut_drops_both_directions_in_our_chain_only():
    rules = nemesis.cut_rules(["198.18.0.5", "198.18.0.6"], False, "partition_leader p")
    assert rules == [
        ["MASON-NEMESIS", "-s", "198.18.0.5,198.18.0.6", "-m", "comment", "--comment",
         "mason-nemesis partition_leader p", "-j", "DROP"],
        ["MASON-NEMESIS", "-d", "198.18.0.5,198.18.0.6", "-m", "comment", "--comment",
         "mason-nemesis partition_leader p", "-j", "DROP"],
    ]


def test_a_one_way_cut_drops_only_what_arrives():
    rules = nemesis.cut_rules(["10.0.0.2"], True, "x")
    assert len(rules) == 1 and rules[0][1:3] == ["-s", "10.0.0.2"]


def test_the_chain_is_rebuilt_fresh_and_torn_down_completely():
    setup = nemesis.chain_setup()
    # First whatever an earlier run left (allowed to fail), then the chain and its jumps.
    teardown = nemesis.chain_teardown()
    assert setup[: len(teardown)] == teardown
    assert all(not must for _, must in teardown)
    created = [argv for argv, must in setup[len(teardown):] if must]
    assert created[0][-2:] == ["-N", "MASON-NEMESIS"]
    assert {tuple(argv[-5:]) for argv in created[1:]} == {
        ("-I", "INPUT", "1", "-j", "MASON-NEMESIS"), ("-I", "OUTPUT", "1", "-j", "MASON-NEMESIS")}
    removed = [argv[3:] for argv, _ in teardown]
    assert removed == [["-D", "INPUT", "-j", "MASON-NEMESIS"],
                       ["-D", "OUTPUT", "-j", "MASON-NEMESIS"],
                       ["-F", "MASON-NEMESIS"], ["-X", "MASON-NEMESIS"]]
    # Every iptables call waits for the xtables lock instead of failing on it.
    assert all(argv[:2] == ["iptables", "-w"] for argv, _ in setup)


def test_netem_adds_and_removes_a_root_qdisc():
    assert nemesis.netem_add("eth0", 50) == [
        "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "50ms"]
    assert nemesis.netem_del("eth0") == ["tc", "qdisc", "del", "dev", "eth0", "root"]


def test_the_interface_is_the_one_holding_the_node_address():
    out = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
           "2: eth0@if5    inet 198.18.0.4/24 scope global eth0\\       valid_lft forever\n")
    assert nemesis.interface_of(out, "198.18.0.4") == "eth0"
    assert nemesis.interface_of(out, "198.18.0.9") is None


def test_a_non_root_login_goes_through_sudo():
    class Login(LocalHost):
        user = "alice"

    assert nemesis.privileged(Login(), ["tc"]) == ["sudo", "-n", "tc"]
    root = LocalHost()
    root.user = "root"
    assert nemesis.privileged(root, ["tc"]) == ["tc"]


def test_the_batch_stops_at_the_first_failure_that_matters():
    host = LocalHost(python=sys.executable)
    host.user = "root"  # no sudo for this check
    before = time.time() * 1000
    ok = nemesis.batch(host, [(["false"], False), (["echo", "last"], True)])
    assert ok.stdout == "last\n"
    assert before <= ok.unix_ms <= time.time() * 1000  # when the node finished, by its clock
    with pytest.raises(nemesis.NemesisError, match="false"):
        nemesis.batch(host, [(["false"], True), (["echo", "never"], True)])
    with pytest.raises(nemesis.NemesisError, match="no-such-command"):
        nemesis.batch(host, [(["no-such-command"], True)])


def test_fault_log_intervals_pair_each_start_with_its_targets_end():
    events = [FaultEvent(0, "measure_start", "clients"),
              FaultEvent(100, "pause_leader", "proxy-0-0"),
              FaultEvent(150, "partition_sequencer", "group-1"),
              FaultEvent(180, "kill_follower", "proxy-1-0"),
              FaultEvent(200, "heal", "group-1"),
              FaultEvent(300, "resume", "proxy-0-0"),
              FaultEvent(400, "latency_leader", "proxy-2-0")]
    intervals, instants = fault_intervals(events)
    assert [(i.start.event, i.start.unix_ms, i.end_ms) for i in intervals] == [
        ("pause_leader", 100, 300), ("partition_sequencer", 150, 200),
        ("latency_leader", 400, None)]
    assert [e.event for e in instants] == ["kill_follower"]
