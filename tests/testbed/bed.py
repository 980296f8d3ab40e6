"""A rehearsal testbed as the testbed tests use it: its directories and the CLI calls."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator import testbed
from tests.conftest import masonctl


def cannot_run(reason: str) -> None:
    """Skip a testbed module with the reason, except in CI, where a missing requirement is a
    failure: CI is the place these tests must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI cannot run the testbed tests: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_testbed() -> None:
    """Root, iproute2 and sshd present, and no testbed already up on this box."""
    missing = testbed.missing_requirements()
    if missing:
        cannot_run(f"the rehearsal testbed needs {', '.join(missing)}")
    elif testbed.our_namespaces() or testbed.BRIDGE in testbed.our_links():
        cannot_run("a mason testbed is already up on this box (masonctl testbed down)")


class Bed:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "testbed"
        self.nodes = root / "nodes"
        self.info = root / "machine_info.txt"
        self.results = root / "results"

    def state(self) -> testbed.TestbedState:
        return testbed.load_state(self.dir)

    def up(self, hosts: int = 7, roles: str = ""):
        shape = ["--roles", roles] if roles else ["--hosts", str(hosts)]
        return masonctl("testbed", "up", *shape, "--dir", str(self.dir), cwd=self.root)

    def setup(self, *extra: str):
        return masonctl("setup", "root", "--testbed", str(self.dir), "--workdir",
                        str(self.nodes), "--machine-info", str(self.info), *extra,
                        cwd=self.root, timeout=280)


@contextmanager
def set_up_bed(tmp_path_factory: pytest.TempPathFactory, name: str,
               roles: str = "") -> Iterator[Bed]:
    """A testbed up and set up for a test module (the default 7 hosts, or `roles` as
    `masonctl testbed up --roles` takes them); down again (and its nodes' files gone)
    however the module ends."""
    require_testbed()  # another module's testbed must be down again
    bed = Bed(tmp_path_factory.mktemp(name))
    try:
        up = bed.up(roles=roles)
        assert up.returncode == 0, up.stderr
        setup = bed.setup()
        assert setup.returncode == 0, setup.stdout + setup.stderr
        yield bed
    finally:
        testbed.down(bed.dir)
        shutil.rmtree(bed.nodes, ignore_errors=True)
