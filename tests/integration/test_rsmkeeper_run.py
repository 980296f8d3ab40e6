"""`masonctl run --system rsmkeeper`: the load generator against a live group, with the
clients' histories checked for linearizability, also across a leader kill; and the checker
refuses the same run once one answer in it is corrupted."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from analysis.datfiles import read_faults
from tests.conftest import free_port_block, masonctl, our_processes
from tests.faults.timing import ELECTION_RECOVERY_S, run_length

MIX = ["--system", "rsmkeeper", "--write_percent", "50", "--read_percent", "50",
       "--warmup", "1", "--cooldown", "0.5", "--record-seqnums"]


def run(root: Path, name: str, *extra: str) -> tuple[Path, str]:
    done = masonctl("run", *MIX, *extra, "--base_port", str(free_port_block(16)),
                    "--outdir", name, "--results", str(root), cwd=root, timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert our_processes(str(root / name)) == []
    return root / name, output


def corrupt_first_read(run_dir: Path) -> None:
    """Make one answered getData return bytes no client ever wrote."""
    history = sorted((run_dir / "clients").glob("*.history"))[0]
    lines = history.read_text().splitlines()
    reads = {json.loads(line)["op"] for line in lines
             if '"kind":"get"' in line and '"type":"invoke"' in line}
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record["type"] == "ok" and record["op"] in reads:
            record["value"] = base64.b64encode(b"never written").decode()
            lines[i] = json.dumps(record, separators=(",", ":"))
            break
    else:
        raise AssertionError(f"no answered read in {history}")
    history.write_text("\n".join(lines) + "\n")


def test_a_leader_kill_keeps_the_reads_and_writes_linearizable(tmp_path):
    run_dir, output = run(tmp_path, "kill", "--kill_leader", "1",
                          "--expduration", str(run_length(1.0, ELECTION_RECOVERY_S)))
    assert "linearizability: OK" in output, output
    assert [e.event for e in read_faults(run_dir / "faults.log")
            if e.event.startswith("kill")] == ["kill_leader"]
    summaries = [json.loads(p.read_text())
                 for p in (run_dir / "clients").glob("client-*.summary.json")]
    assert summaries and all(s["ops_measured"] > 0 for s in summaries)

    corrupt_first_read(run_dir)
    checked = masonctl("check-linearizable", str(run_dir), cwd=tmp_path, timeout=120)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "linearizability: FAILED" in checked.stdout
