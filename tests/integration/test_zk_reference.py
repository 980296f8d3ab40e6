"""The ZooKeeper semantics suite (tests/zk_semantics.py) against Apache ZooKeeper itself,
through kazoo: the reference that keeps the cases honest, so that the tree, which runs the
same cases in tests/unit/zk/test_semantics.py, answers as ZooKeeper does.

Needs java and Debian's ZooKeeper jars (scripts/system-deps.sh installs `zookeeper`); without
them the module skips, except in CI, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from benchmarks import apache_zk
from tests.zk_semantics import CASES, Case, run_case


def _missing() -> list[str]:
    missing = apache_zk.missing()
    try:
        import kazoo  # noqa: F401
    except ImportError:
        missing.append("kazoo")
    return missing


if _missing():
    reason = f"the ZooKeeper reference run needs {', '.join(_missing())}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI cannot run it: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from tests.zk_kazoo_driver import KazooDriver, empty_tree  # noqa: E402 - needs kazoo


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with apache_zk.Ensemble(1, tmp_path_factory.mktemp("zookeeper"), heap_mb=256) as zk:
        yield zk.connect_string


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_apache_zookeeper_answers_the_semantics_suite(zookeeper: str, case: Case) -> None:
    empty_tree(zookeeper)
    driver = KazooDriver(zookeeper, raw_paths=case.raw_paths)
    try:
        run_case(driver, case.steps)
    finally:
        driver.stop()
