"""The nemesis's schedule: timed events with durations, from flags, a file or a seed.

An event starts `at` seconds after the warm-up (as the kill_* flags) and, except a kill,
ends `duration` seconds later:

- `pause_leader`, `pause_follower` (group `group`), `pause_sequencer` (the one serving):
  SIGSTOP, then SIGCONT;
- `partition_leader`: the group's leader machine cut from its followers' machines, both
  directions; `partition_oneway`: the leader hears nothing from its followers (what it
  sends still arrives); `partition_sequencer`: the group's machines cut from every
  sequencer machine;
- `latency_leader`: `delay_ms` of added delay on the leader machine's interface;
- `kill_leader`, `kill_follower`, `kill_sequencer`: kill -9 (no end).

The run's own kill flags (`--kill_leader`, `--kill_leader_machine`, `--kill_all_leaders`,
...; orchestrator/faults.py carries them out) join the schedule for the invariant's sake:
`validate` checks them together with the nemesis's events. A killed replica is down for
the rest of the run, or until `--restart_after` brings it back.

A schedule file is TOML, one `[[event]]` table per event:

    [[event]]
    at = 3.0
    kind = "partition_leader"
    duration = 2.0
    group = 0

`seed:N` instead of a file draws a reproducible random mix of pauses and kills (`seeded`),
`seed:N:net` adds partitions (a testbed run). Every schedule keeps
the invariant the system is built to survive: at no moment is more than one replica of any
group (a minority of three) down, that is killed, paused or partitioned away, and the
sequencer faults come one at a time, each with a standby left to take over
(`check_invariant`). A partition acts on machines, so it takes down one replica of every
group its machine hosts (all the groups of the triple); so do the machine kills, the
original's meaning of a leader kill: `kill_leader_machine` ends every process on the
first proxy machine (one replica of each group of triple 0), `kill_all_leaders` those on
the first machine of every triple (one replica of every group).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable
from pathlib import Path

import msgspec

from orchestrator.spec import ExperimentSpec, SpecError

PAUSES = ("pause_leader", "pause_follower", "pause_sequencer")
PARTITIONS = ("partition_leader", "partition_oneway", "partition_sequencer")
LATENCIES = ("latency_leader",)
KILLS = ("kill_leader", "kill_follower", "kill_sequencer")
KINDS = PAUSES + PARTITIONS + LATENCIES + KILLS
# The spec's kill flags that take proxy replicas, in the invariant's terms.
GROUP_KILL_FLAGS = ("kill_leader", "kill_follower", "kill_leader_mid_batch",
                    "kill_leader_machine", "kill_all_leaders")
NETWORK = PARTITIONS + LATENCIES  # need distinct node addresses and root on the nodes
SEQUENCER_KINDS = ("pause_sequencer", "kill_sequencer", "partition_sequencer")
# The event written to faults.log when an interval ends, by the kind's first word.
END_EVENT = {"pause": "resume", "partition": "heal", "latency": "clear"}
# The spec fields that schedule one event each, and the field holding its duration.
FLAG_EVENTS = {
    "pause_leader": "pause_for", "pause_follower": "pause_for", "pause_sequencer": "pause_for",
    "partition_leader": "heal_after", "partition_oneway": "heal_after",
    "partition_sequencer": "heal_after", "latency_leader": "heal_after",
}
SEED_PREFIX = "seed:"
SCHEDULE_FILE = "nemesis.toml"  # a run's schedule as it ran, beside its results
SETTLE_S = 1.0  # seeded schedules: quiet time after a fault before the same group is hit again


class Event(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    at: float  # seconds after the warm-up
    kind: str
    duration: float = 0.0  # seconds; 0 for a kill
    group: int = 0
    delay_ms: int = 0  # latency_leader only

    @property
    def is_kill(self) -> bool:
        return self.kind.startswith("kill_")

    @property
    def end(self) -> float:
        return math.inf if self.is_kill else self.at + self.duration

    @property
    def end_event(self) -> str:
        return END_EVENT.get(self.kind.split("_", 1)[0], "")


class _File(msgspec.Struct, forbid_unknown_fields=True):
    event: list[Event] = []


# ---- building and checking a schedule -------------------------------------------------------


def from_flags(spec: ExperimentSpec) -> list[Event]:
    """The events the spec's pause_*/partition_*/latency_* flags ask for (group 0's)."""
    events = []
    for kind, duration_field in FLAG_EVENTS.items():
        at = float(getattr(spec, kind))
        if at >= 0:
            events.append(Event(at=at, kind=kind, duration=float(getattr(spec, duration_field)),
                                delay_ms=spec.latency_ms if kind in LATENCIES else 0))
    return events


def load(path: Path) -> list[Event]:
    """A schedule file's events; SpecError (one line) for anything malformed."""
    import msgspec.toml

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"--faults {path}: {exc.strerror or exc}") from None
    try:
        return list(msgspec.toml.decode(data, type=_File).event)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SpecError(f"--faults {path}: {str(exc).splitlines()[0]}") from None


def dump(events: Iterable[Event]) -> str:
    """A schedule file holding these events (what a run records as nemesis.toml)."""
    import msgspec.toml

    return msgspec.toml.encode(_File(list(events))).decode()


def seed_of(faults: str) -> tuple[int, tuple[str, ...]] | None:
    """(N, kinds) for `seed:N` (pauses and kills: any run can do them) or `seed:N:net`
    (partitions too: a testbed run); None for a file name; SpecError for a bad seed."""
    if not faults.startswith(SEED_PREFIX):
        return None
    text, _, mix = faults[len(SEED_PREFIX):].partition(":")
    if not text.isdigit() or mix not in ("", "net"):
        raise SpecError(f"--faults {faults}: want seed:N or seed:N:net (N a non-negative "
                        "integer)")
    return int(text), PAUSES + KILLS + (PARTITIONS if mix else ())


def check_event(event: Event, spec: ExperimentSpec) -> None:
    """One event's own fields against the run; SpecError naming the event."""
    where = f"fault {event.kind} at {event.at:g} s"
    if event.kind not in KINDS:
        raise SpecError(f"unknown fault kind {event.kind!r} (one of {', '.join(KINDS)})")
    if not 0 <= event.at < spec.expduration:
        raise SpecError(f"{where}: the time must fall in the {spec.expduration:g} s measured "
                        "window")
    if event.kind in KILLS:
        if event.duration:
            raise SpecError(f"{where}: a kill has no duration")
    elif not 0 < event.duration <= spec.expduration:
        raise SpecError(f"{where}: the duration must be positive and at most the measured "
                        f"window, not {event.duration:g}")
    if not 0 <= event.group < spec.ngroups:
        raise SpecError(f"{where}: group {event.group} does not exist ({spec.ngroups} "
                        "group(s))")
    if event.kind in LATENCIES:
        if not 1 <= event.delay_ms <= 10_000:
            raise SpecError(f"{where}: delay_ms must be 1..10000, not {event.delay_ms}")
    elif event.delay_ms:
        raise SpecError(f"{where}: delay_ms applies to latency_leader only")


def kill_flag_events(spec: ExperimentSpec) -> list[Event]:
    """The spec's replica-taking kill flags (GROUP_KILL_FLAGS) as events of group 0."""
    return [Event(at=float(getattr(spec, flag)), kind=flag) for flag in GROUP_KILL_FLAGS
            if getattr(spec, flag) >= 0]


def down_groups(event: Event, groups_per_triple: int, ngroups: int | None = None) -> range:
    """The groups that lose a replica while the event lasts (none: it takes no replica).
    `ngroups` (all the run's groups; None: one triple's) bounds `kill_all_leaders`."""
    if event.kind in ("pause_leader", "pause_follower", "kill_leader", "kill_follower",
                      "kill_leader_mid_batch"):
        return range(event.group, event.group + 1)
    if event.kind in ("partition_leader", "partition_oneway"):
        first = event.group // groups_per_triple * groups_per_triple
        return range(first, first + groups_per_triple)
    if event.kind == "kill_leader_machine":
        return range(groups_per_triple)  # every process of proxy-0: triple 0's groups
    if event.kind == "kill_all_leaders":
        return range(groups_per_triple if ngroups is None else ngroups)
    return range(0)


def check_invariant(events: list[Event], groups_per_triple: int, nsequencers: int,
                    settle: float = 0.0, *, ngroups: int | None = None,
                    restart_after: float = -1.0) -> str:
    """Why the schedule could take a group's majority or the last sequencer ('' if it
    cannot).

    An event holds its replicas from `at` to its end plus `settle` (a kill: to the end of
    the run, or to its restart `restart_after` seconds later when that is >= 0).
    Sequencer faults come one at a time, each with a standby left, and nothing
    else happens from a sequencer fault's start to its end plus `settle`: the standby's
    takeover needs every group's leader, and a group that loses its leader meanwhile may
    ask a later standby, which would spend two standbys on one fault.
    """
    ordered = sorted(events, key=lambda e: e.at)
    held: dict[int, list[tuple[float, Event]]] = {}  # group -> (held until, by)
    for event in ordered:
        end = event.at + restart_after if event.is_kill and restart_after >= 0 else event.end
        for group in down_groups(event, groups_per_triple, ngroups):
            for until, other in held.get(group, []):
                if event.at < until:
                    return (f"{event.kind} at {event.at:g} s and {other.kind} at {other.at:g} s "
                            f"would take two of group {group}'s three replicas down at once")
            held.setdefault(group, []).append((end + settle, event))
    sequencer = [e for e in ordered if e.kind in SEQUENCER_KINDS]
    for before, event in itertools.pairwise(sequencer):
        if event.at < disturbance(before, settle):
            return (f"{event.kind} at {event.at:g} s overlaps {before.kind} at "
                    f"{before.at:g} s: one sequencer fault at a time")
    for event in sequencer:
        for other in ordered:
            if other is not event and other.at < disturbance(event, settle) \
                    and event.at < disturbance(other, settle):
                return (f"{other.kind} at {other.at:g} s falls in the takeover after "
                        f"{event.kind} at {event.at:g} s (a standby needs every group's leader)")
    if len(sequencer) > nsequencers - 1:
        return (f"{len(sequencer)} sequencer fault(s) need {len(sequencer) + 1} "
                f"sequencers (a standby for each), not {nsequencers}")
    return ""


def disturbance(event: Event, settle: float) -> float:
    """Until when an event disturbs the run: a kill until the failover after it settled,
    any other event until its end settled."""
    return event.at + settle if event.is_kill else event.end + settle


def sequencers_needed(events: list[Event]) -> int:
    """One sequencer plus a standby for each sequencer fault."""
    return 1 + sum(e.kind in SEQUENCER_KINDS for e in events)


def planned(spec: ExperimentSpec) -> list[Event]:
    """The whole schedule of a spec: its flags' events and its --faults, by time."""
    events = from_flags(spec)
    if spec.faults:
        seeded_by = seed_of(spec.faults)
        if seeded_by is None:
            events += load(Path(spec.faults))
        else:
            events += seeded(seeded_by[0], spec, seeded_by[1])
    return sorted(events, key=lambda e: e.at)


def validate(spec: ExperimentSpec, flagged: int = 0) -> int:
    """Check the spec's schedule; returns the sequencers it needs, counting `flagged`
    standbys that the system's own kill flags spend. SpecError (one line)."""
    events = planned(spec)
    for event in events:
        check_event(event, spec)
    nsequencers = max(spec.nsequencers, sequencers_needed(events) + flagged)
    why = check_invariant(events + kill_flag_events(spec), spec.nproxy_threads, nsequencers,
                          ngroups=spec.ngroups, restart_after=spec.restart_after)
    if why:
        raise SpecError(f"fault schedule: {why}")
    return nsequencers


# ---- seeded schedules --------------------------------------------------------------------------


def seeded(seed: int, spec: ExperimentSpec, kinds: tuple[str, ...] = PAUSES + KILLS,
           count: int = 0) -> list[Event]:
    """A reproducible random mix of `kinds` over the measured window.

    `count` events are drawn (0: about one per 2 s of window, at least two); a draw that
    would break the invariant (with SETTLE_S of quiet after each fault, so a healed replica
    catches up before its group is hit again) is drawn again, up to a bound, so a crowded
    window ends with fewer events. Sequencer faults are drawn only while a standby is left
    (spec.nsequencers - 1 of them). Every interval ends inside the window, so every run
    also shows the recovery.
    """
    rng = random.Random(seed)
    window = spec.expduration
    want = count or max(2, int(window // 2))
    latest = window * 0.8
    longest = max(0.3, min(3.0, window * 0.25))
    events: list[Event] = []
    for _ in range(want * 20):
        if len(events) == want:
            break
        kind = rng.choice(kinds)
        at = round(rng.uniform(min(0.5, latest / 2), latest), 2)
        duration = 0.0 if kind in KILLS else round(rng.uniform(0.3, longest), 2)
        if at + duration >= window:
            continue
        group = rng.randrange(spec.ngroups)
        event = Event(at=at, kind=kind, duration=duration,
                      group=0 if kind in ("pause_sequencer", "kill_sequencer") else group,
                      delay_ms=rng.choice((20, 50, 100)) if kind in LATENCIES else 0)
        trial = events + [event]
        if not check_invariant(trial, spec.nproxy_threads, spec.nsequencers, SETTLE_S):
            events = trial
    return sorted(events, key=lambda e: e.at)
