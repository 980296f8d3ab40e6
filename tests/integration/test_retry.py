"""A node that fails to start is named with its log tail, and the run is retried."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from rich.console import Console

from orchestrator.experiment import RunMachines
from orchestrator.hosts import LocalHost
from orchestrator.runner import run_remote
from orchestrator.spec import build
from tests.conftest import free_port_block

FLAKY = """#!/bin/sh
# Fails the first time it starts a node (python -m nodes.<role>), then runs Python; the
# controller's own checks (python -c) always run.
if [ "$1" = "-m" ] && [ ! -e "{marker}" ]; then
  touch "{marker}"
  echo "error: simulated start failure"
  exit 3
fi
exec {python} "$@"
"""


def test_a_failed_start_is_shown_and_retried(tmp_path: Path):
    flaky = tmp_path / "flaky-python"
    flaky.write_text(FLAKY.format(marker=tmp_path / "failed-once", python=sys.executable))
    flaky.chmod(0o755)
    spec = build("retried", "mason", {
        "expduration": 1.5, "warmup": 0.5, "cooldown": 0.2, "record_seqnums": True,
        "record_noops": True, "base_port": free_port_block(16),
    })
    results = tmp_path / "results" / "retried"
    host = LocalHost(python=str(flaky), workdir=str(results))
    out, err = io.StringIO(), io.StringIO()
    try:
        result = run_remote(spec, RunMachines.local(spec, results.resolve(), host), results,
                            Console(file=out, width=200), Console(file=err, width=200),
                            retries=1)
    finally:
        host.close()
    errors = err.getvalue()
    assert "sequencer-0 on local died: error: simulated start failure" in errors
    assert "retrying the run" in errors
    assert result.ok and result.cause == "", out.getvalue() + errors
    assert "contiguity: OK" in out.getvalue()
