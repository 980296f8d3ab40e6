"""ZooKeeper's semantics (tests/zk_semantics.py) against the I/O-free state machine."""

import pytest

from tests.unit.zk.tree_driver import TreeDriver
from tests.zk_semantics import CASES, Case, run_case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_zookeeper_semantics(case: Case) -> None:
    run_case(TreeDriver(), case.steps)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_zookeeper_semantics_survive_a_snapshot_after_every_entry(case: Case) -> None:
    run_case(TreeDriver(restore_every_entry=True), case.steps)
