"""Partitions on the rehearsal testbed: iptables inside the node namespaces, under load.

A group's leader cut from its followers is replaced, and after the heal rejoins as a
follower; a group cut from every sequencer serves again after the heal; no number is lost
or handed out twice (the checker ends every run), and no rule of ours stays behind. The
tests watch the nodes' `.role` files (nodes/status.py) on the shared disk while the run
goes on, each wait with a deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from analysis.contiguity import check_run
from analysis.datfiles import read_faults
from analysis.plots import total_series
from nodes.status import FOLLOWER, LEADER, parse_role
from orchestrator.nemesis import CHAIN
from tests.conftest import REPO, interrupt
from tests.testbed.bed import Bed, require_testbed, set_up_bed

pytestmark = pytest.mark.testbed

require_testbed()

GROUP0 = ("proxy-0", "proxy-1", "proxy-2")  # machine m holds replica m of group 0


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with set_up_bed(tmp_path_factory, "rehearsal-nemesis") as ready:
        yield ready


def start(bed: Bed, name: str, *faults: str) -> subprocess.Popen[str]:
    """masonctl run in the background, as a user would start it."""
    argv = [
        sys.executable, "-c", "from orchestrator.cli import main; main()",
        "run", "--machine-info", str(bed.info), "--testbed", str(bed.dir),
        "--nproxies", "3", "--nproxy_threads", "1", "--nclients", "1",
        "--nclient_threads", "2", "--client_concurrency", "16", "--nsequence_spaces", "2",
        "--election_timeout_ms", "300", "--heartbeat_ms", "100", "--record-seqnums",
        "--warmup", "1", "--cooldown", "0.5", "--expduration", "12", *faults,
        "--outdir", name, "--results", str(bed.results),
    ]
    return subprocess.Popen(argv, cwd=bed.root, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})


def role(bed: Bed, run: str, machine: str) -> tuple[str, int] | None:
    path = bed.nodes / machine / "runs" / run / f"{machine}-0.role"
    try:
        return parse_role(path.read_text())
    except OSError:
        return None


def fault_events(bed: Bed, run: str) -> list[tuple[str, str]]:
    path = bed.results / run / "faults.log"
    return [(e.event, e.target) for e in read_faults(path)] if path.exists() else []


def wait(condition: Callable[[], object], timeout: float, what: str,
         run: subprocess.Popen[str]) -> object:
    """Poll until condition() is truthy (returned); fails naming `what` at the deadline
    or when the run ended first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if run.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{run.stdout.read() if run.stdout else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def finish(run: subprocess.Popen[str], bed: Bed, name: str) -> Path:
    """The run's end: exit 0, the checker green, and no chain of ours on any node."""
    output, _ = run.communicate(timeout=240)
    assert run.returncode == 0, output
    assert "contiguity: OK" in output, output
    run_dir = bed.results / name
    verdict = check_run(run_dir)
    assert verdict.ok, "\n".join(verdict.lines())
    for host in bed.state().hosts:
        rules = subprocess.run(["ip", "netns", "exec", host.netns, "iptables", "-S"],
                               capture_output=True, text=True, check=True).stdout
        assert CHAIN not in rules, f"{host.name} kept our rules:\n{rules}"
    return run_dir


def test_a_leader_cut_from_its_followers_is_replaced_and_rejoins_as_follower(bed: Bed):
    name = "partition-leader"
    run = start(bed, name, "--partition_leader", "3", "--heal_after", "4")
    try:
        cut = str(wait(lambda: next((t for e, t in fault_events(bed, name)
                                     if e == "partition_leader"), None),
                       90, "the partition", run))
        old = cut.rsplit("-", 1)[0]  # proxy-<m>-0 runs on machine proxy-<m>
        assert old in GROUP0

        def new_leader() -> str | None:
            if ("heal", cut) in fault_events(bed, name):
                pytest.fail("healed before the majority side elected a leader")
            for machine in GROUP0:
                r = role(bed, name, machine)
                if machine != old and r is not None and r[0] == LEADER:
                    return machine
            return None

        wait(new_leader, 4, "a new leader among the followers", run)
        wait(lambda: ("heal", cut) in fault_events(bed, name), 10, "the heal", run)

        def rejoined() -> bool:
            now = {m: role(bed, name, m) for m in GROUP0}
            leaders = [m for m, r in now.items() if r is not None and r[0] == LEADER]
            mine = now[old]
            return mine is not None and mine[0] == FOLLOWER and len(leaders) == 1 \
                and leaders[0] != old
        wait(rejoined, 5, f"{old} to rejoin as a follower of a leader elsewhere", run)
    except BaseException:
        interrupt(run)
        raise
    run_dir = finish(run, bed, name)
    events = [e for e, _ in fault_events(bed, name)]
    assert events.index("partition_leader") < events.index("heal")
    assert (run_dir / "nemesis.toml").exists()


def test_a_group_cut_from_the_sequencers_serves_again_after_the_heal(bed: Bed):
    name = "partition-sequencer"
    run = start(bed, name, "--partition_sequencer", "3", "--heal_after", "3")
    try:
        wait(lambda: ("heal", "group-0") in fault_events(bed, name), 120, "the heal", run)
    except BaseException:
        interrupt(run)
        raise
    run_dir = finish(run, bed, name)
    at = {e.event: e.unix_ms for e in read_faults(run_dir / "faults.log")}
    series = total_series(run_dir, 50)
    t, ops = series["unix_ms"].to_numpy(), series["ops"].to_numpy() * 20.0  # ops/s
    start_ms = at["partition_sequencer"]
    before = ops[(t >= start_ms - 2500) & (t < start_ms - 500)]
    cut = ops[(t >= start_ms + 1000) & (t < at["heal"])]
    after = ops[(t >= at["heal"] + 2000) & (t < at["measure_end"])]
    assert len(before) and len(cut) and len(after)
    # Without numbers the only group stalls; after the heal it serves at its old pace.
    assert float(np.mean(cut)) < 0.1 * float(np.mean(before)), (before, cut)
    assert float(np.mean(after)) >= 0.5 * float(np.mean(before)), (before, after)
