"""The live line of `masonctl run` when its output is not a terminal: a plain line a second
with the elapsed time, the throughput of the last second (read from the clients' growing
`.series` files) and the faults injected so far."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from analysis.datfiles import read_faults, read_summary
from tests.conftest import free_port_block, masonctl

WARMUP, KILL_AT, DURATION = 1.0, 2.0, 5.0
LINE = re.compile(r"^live: +(?P<elapsed>[\d.]+) s (?P<phase>[a-z-]+) \| "
                  r"(?P<rate>[\d,]+|-) ops/s \| "
                  r"(?P<faults>\d+) faults?(?: \(last: (?P<last>\w+)\))?$")


def test_plain_live_lines_show_throughput_and_the_fault_once_injected(tmp_path: Path):
    done = masonctl(
        "run", "--warmup", str(WARMUP), "--cooldown", "0.5", "--expduration", str(DURATION),
        "--kill_leader", str(KILL_AT), "--nclient_threads", "2",
        "--base_port", str(free_port_block(16)), "--outdir", "live",
        "--results", str(tmp_path), cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    lines = [m for m in map(LINE.match, out) if m]
    # About one a second over warm-up, measured window and cool-down.
    assert len(lines) >= WARMUP + DURATION - 1, done.stdout
    elapsed = [float(m["elapsed"]) for m in lines]
    assert elapsed == sorted(elapsed) and elapsed[0] < WARMUP + 1

    # The rates a user sees while measuring are those the clients' files give for the run.
    run = tmp_path / "live"
    summaries = [read_summary(p) for p in sorted((run / "clients").glob("client-*.summary.json"))]
    window = max(s.window_seconds for s in summaries)
    measured = sum(s.ops_measured for s in summaries) / window
    rates = [float(m["rate"].replace(",", "")) for m in lines
             if m["phase"] == "measuring" and m["rate"] != "-"]
    assert len(rates) >= DURATION - 2 and all(r > 0 for r in rates), done.stdout
    assert measured / 3 <= statistics.median(rates) <= measured * 3, (measured, rates)

    # No line counts the kill before the controller printed it; every line after does.
    (kill,) = [i for i, text in enumerate(out) if text.startswith("fault: kill_leader")]
    for i, text in enumerate(out):
        m = LINE.match(text)
        if m is None:
            continue
        if i < kill:
            assert m["faults"] == "0" and float(m["elapsed"]) < WARMUP + KILL_AT + 0.5, text
        else:
            assert (m["faults"], m["last"]) == ("1", "kill_leader"), text
            assert float(m["elapsed"]) >= WARMUP + KILL_AT, text
    assert any(LINE.match(text) for text in out[kill:]), "no live line after the fault"
    assert [e.event for e in read_faults(run / "faults.log")].count("kill_leader") == 1
