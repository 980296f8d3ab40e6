"""The etcd load generator (benchmarks/etcd_load.py) against a real 3-member etcd cluster:
its answers' revisions are the run's numbers, distinct and gap-free over two processes; the
check catches a gap, a duplicate or a slot going back in that real run's revisions; a Put
that fails ends the process with one line.

Needs Debian's etcd-server (scripts/system-deps.sh installs it) and grpcio (the `bench`
extra); without them the module skips, except in CI, where that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from benchmarks import etcd, etcd_load
from benchmarks.etcd_load import RevisionError, check_revisions, find_leader
from nodes.metrics import LatencyHistogram
from tests.conftest import free_port

lacking = etcd.missing() + etcd_load.missing()
if lacking:
    reason = f"the etcd load generator's tests need {', '.join(lacking)}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI cannot run them: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[etcd.Cluster]:
    with etcd.Cluster(3, tmp_path_factory.mktemp("etcd")) as members:
        yield members


def drive(endpoint: str, concurrency: int, outdir: Path, name: str,
          seconds: float = 0.5) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.etcd_load", endpoint,
                             str(concurrency), str(seconds), str(outdir), name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_load_generators_get_every_revision_once(cluster: etcd.Cluster,
                                                     tmp_path: Path) -> None:
    leader = asyncio.run(find_leader(cluster.endpoints))
    assert leader in cluster.endpoints
    procs = [drive(leader, 4, tmp_path, "a"), drive(cluster.endpoints[0], 3, tmp_path, "b")]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    slots = []
    for name, result in zip("ab", results, strict=True):
        mine = msgspec.json.decode((tmp_path / f"{name}.revisions.json").read_bytes(),
                                   type=list[list[int]])
        assert len(mine) == (4 if name == "a" else 3)
        assert sum(map(len, mine)) == result["puts"] > result["ops"] > 0
        hist = LatencyHistogram.read(tmp_path / f"{name}.hist")
        assert hist.count == result["ops"] and hist.percentile(0.5) > 0
        assert result["window_end_unix"] > result["window_start_unix"]
        slots += mine
    first, last = check_revisions(slots)
    assert last - first + 1 == sum(r["puts"] for r in results)

    # The same real revisions, each spoiled once, fail the check.
    longest = max(range(len(slots)), key=lambda k: len(slots[k]))
    gap = [s[:] for s in slots]
    dropped = gap[longest].pop(1)
    with pytest.raises(RevisionError, match=f"revisions {dropped}..{dropped} answered to"):
        check_revisions(gap)
    twice = [s[:] for s in slots] + [[slots[longest][1]]]
    with pytest.raises(RevisionError, match=f"revision {slots[longest][1]} answered twice"):
        check_revisions(twice)
    back = [s[:] for s in slots]
    back[longest][1], back[longest][2] = back[longest][2], back[longest][1]
    with pytest.raises(RevisionError, match=f"slot {longest}: revision"):
        check_revisions(back)


def test_a_failed_put_ends_the_load_generator_with_one_line(tmp_path: Path) -> None:
    proc = drive(f"127.0.0.1:{free_port()}", 2, tmp_path, "nobody")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("etcd load nobody: AioRpcError:"), err
    assert not (tmp_path / "nobody.revisions.json").exists()
