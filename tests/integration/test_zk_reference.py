"""The ZooKeeper semantics suite (tests/zk_semantics.py) against Apache ZooKeeper itself,
through kazoo: the reference that keeps the cases honest, so that the tree, which runs the
same cases in tests/unit/zk/test_semantics.py, answers as ZooKeeper does.

Needs java and Debian's ZooKeeper jars (scripts/system-deps.sh installs `zookeeper`); without
them the module skips, except in CI, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for
from tests.zk_semantics import CASES, Case, run_case

JAVA_DIR = Path("/usr/share/java")
# What a standalone server loads with the admin server off (Debian's jar names).
JARS = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "metrics-core.jar"]


def _missing() -> list[str]:
    missing = [] if shutil.which("java") else ["java"]
    missing += [str(JAVA_DIR / j) for j in JARS if not (JAVA_DIR / j).exists()]
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


def _answers_imok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"ruok")
            return s.recv(4) == b"imok"
    except OSError:
        return False


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("zookeeper")
    port = free_port()
    cfg = home / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={home / 'data'}\nclientPort={port}\n"
                   "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                   "4lw.commands.whitelist=ruok\n")
    log = open(home / "zookeeper.log", "wb")
    server = subprocess.Popen(
        ["java", "-Xmx256m", "-cp", ":".join(str(JAVA_DIR / j) for j in JARS),
         "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: server.poll() is not None or _answers_imok(port), 90,
                 "Apache ZooKeeper to answer ruok")
        assert server.poll() is None, (home / "zookeeper.log").read_text()
        yield f"127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()
        log.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_apache_zookeeper_answers_the_semantics_suite(zookeeper: str, case: Case) -> None:
    empty_tree(zookeeper)
    driver = KazooDriver(zookeeper, raw_paths=case.raw_paths)
    try:
        run_case(driver, case.steps)
    finally:
        driver.stop()
