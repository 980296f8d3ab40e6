"""In CI the testbed tests cannot skip themselves: a missing requirement fails the run."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
from tests.testbed.bed import cannot_run

cannot_run("the rehearsal testbed needs sshd")

def test_never_reached():
    pass
"""


def run_probe(tmp_path, ci: str | None) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(probe)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_outside_ci_the_module_is_skipped_with_its_reason(tmp_path):
    done = run_probe(tmp_path, None)
    assert done.returncode == 5 and "1 skipped" in done.stdout, done.stdout  # 5: none ran


def test_in_ci_the_same_module_fails_with_one_line(tmp_path):
    done = run_probe(tmp_path, "true")
    assert done.returncode != 0, done.stdout
    assert "CI cannot run the testbed tests: the rehearsal testbed needs sshd" in done.stdout
