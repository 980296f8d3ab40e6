"""Pinning: each machine's processes dealt onto its cores, round-robin when they are short."""

from __future__ import annotations

import os
import sys

import pytest

from orchestrator import pinning
from orchestrator.hosts import LocalHost


def test_one_core_each_while_they_last_and_round_robin_after():
    dealt = pinning.deal(
        {"proxy-0": ["proxy-0-0", "proxy-0-1", "proxy-0-2"], "client-0": ["client-0-0"]},
        {"proxy-0": [2, 5], "client-0": [0, 1, 2, 3]},
    )
    assert dealt.cores == {"proxy-0": {"proxy-0-0": 2, "proxy-0-1": 5, "proxy-0-2": 2},
                           "client-0": {"client-0-0": 0}}
    assert dealt.crowded == [
        "proxy-0: 3 processes on 2 core(s); pinned round-robin, so some share a core"]
    assert dealt.prefix("proxy-0", "proxy-0-1") == ["taskset", "-c", "5"]
    assert dealt.prefix("proxy-0", "elsewhere") == []


def test_the_cores_are_those_the_machine_lets_us_use():
    host = LocalHost(python=sys.executable)
    assert pinning.usable_cores(host) == sorted(os.sched_getaffinity(0))


def test_a_machine_that_cannot_tell_its_cores_is_one_line():
    host = LocalHost(python="/nonexistent/python3")
    with pytest.raises(pinning.PinningError, match="^cannot learn the cores of local: "):
        pinning.plan({"local": ["p"]}, {"local": host})
