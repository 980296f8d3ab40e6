"""A rehearsal testbed as the testbed tests use it: its directories and the CLI calls."""

from __future__ import annotations

from pathlib import Path

from orchestrator import testbed
from tests.conftest import masonctl


class Bed:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "testbed"
        self.nodes = root / "nodes"
        self.info = root / "machine_info.txt"
        self.results = root / "results"

    def state(self) -> testbed.TestbedState:
        return testbed.load_state(self.dir)

    def up(self, hosts: int = 7):
        return masonctl("testbed", "up", "--hosts", str(hosts), "--dir", str(self.dir),
                        cwd=self.root)

    def setup(self, *extra: str):
        return masonctl("setup", "root", "--testbed", str(self.dir), "--workdir",
                        str(self.nodes), "--machine-info", str(self.info), *extra,
                        cwd=self.root, timeout=280)
