"""When the fault tests kill, and how long their runs last, derived from the nodes' own
detection timeouts rather than chosen by hand.

A test that kills the standby "after it took over" needs the takeover to be finished when
the kill lands, and every test needs the last recovery finished before the measured window
closes. Both depend on how fast a dead sequencer or leader is noticed, which is the nodes'
configuration; the budgets below are those timeouts times a slack for a loaded machine
(`MASON_FAULT_SLACK`, 4 by default: CI runs on two shared cores).
"""

from __future__ import annotations

import os

import msgspec

from nodes.config import CorfuClientConfig, ProxyConfig


def _default_of(config: type[msgspec.Struct], field: str) -> int:
    return next(f.default for f in msgspec.structs.fields(config) if f.name == field)


def _default(field: str) -> int:
    return _default_of(ProxyConfig, field)


SLACK = float(os.environ.get("MASON_FAULT_SLACK", "4"))

# A group leader declares the sequencer dead after this many silent heartbeat periods.
SEQUENCER_SILENCE_S = _default("heartbeat_ms") * _default("heartbeat_misses") / 1000
# A request to the sequencer (or a standby's switch, collect or fill) unanswered this long
# is resent: a takeover that lost one message costs one such round more.
RESEND_S = _default("seq_timeout_ms") / 1000
# The longest election timeout a follower can draw (Raft draws from [T, 2T)).
ELECTION_S = 2 * _default("election_ticks") * _default("tick_ms") / 1000

# Time for a standby to notice, switch every group, collect and fill.
TAKEOVER_S = SLACK * (SEQUENCER_SILENCE_S + RESEND_S)
# Time for a group to elect a new leader and serve again.
ELECTION_RECOVERY_S = SLACK * ELECTION_S
# Time for a Corfu client or proxy to count a silent log server as failed and reseal its
# chain without it.
LOGSERVER_RECOVERY_S = SLACK * _default_of(CorfuClientConfig, "timeout_ms") / 1000
# Measured time after the last recovery, so the run shows the system serving again.
SERVING_AFTER_S = 1.0


def run_length(last_fault_at: float, recovery_s: float) -> float:
    """The measured window's length for a run whose last fault lands at `last_fault_at` and
    whose recovery from it takes at most `recovery_s`."""
    return round(last_fault_at + recovery_s + SERVING_AFTER_S, 2)
