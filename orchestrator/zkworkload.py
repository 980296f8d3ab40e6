"""ZooKeeper workloads, for every system that serves ZooKeeper's protocol (rsmkeeper,
zkmason): the flags, their check, and the load-generator processes (nodes/zkclient).

A system plugs it in with three lines: `fields |= ZK_WORKLOAD_FIELDS`, `check_zk_workload`
in its `check_fields`, and `zk_client_procs` in its `place` with each group's ZooKeeper
endpoints; its start order ends with CLIENT_KIND.
"""

from __future__ import annotations

from typing import Any

import msgspec

from nodes.config import ZkWorkload
from nodes.zkclient import mix
from orchestrator.placement import MachineSlot, Proc
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.systems.base import check_positive

CLIENT_KIND = "zkclient"
PERCENT_FLAGS: tuple[str, ...] = tuple(mix.PERCENT_FIELDS.values())
ZK_WORKLOAD_FIELDS = frozenset({*PERCENT_FLAGS, "setdatas", "getdatas", "value_size",
                                "nkeys", "client_connections"})
# The flag spelling of the presets (the spec's fields are lower case).
PRESET_FLAGS = {"setdatas": "setDatas", "getdatas": "getDatas"}
MAX_VALUE_SIZE = 1 << 20  # ZooKeeper's jute.maxbuffer bounds a value to about 1 MiB


def _shares(spec: ExperimentSpec) -> dict[str, float]:
    return {flag: float(getattr(spec, flag)) for flag in PERCENT_FLAGS}


def check_zk_workload(spec: ExperimentSpec, records_history: bool = False) -> ExperimentSpec:
    """Check the ZooKeeper workload flags and settle the mix as percentages summing to 100
    (`--setDatas`/`--getDatas` set it; the shares may be given as percentages or as the
    original's fractions); raises SpecError in one line."""
    presets = [PRESET_FLAGS[f] for f in PRESET_FLAGS if getattr(spec, f)]
    if len(presets) > 1:
        raise SpecError("--setDatas and --getDatas cannot be combined: a run is one of the "
                        "two experiments")
    try:
        given = mix.normalize(_shares(spec))
        if presets:
            shares = mix.normalize(mix.PRESETS[presets[0]])
            if any(_shares(spec).values()) and given != shares:
                raise SpecError(f"--{presets[0]} sets the operation shares; leave out the "
                                "--*_percent flags")
        else:
            shares = given
    except mix.MixError as exc:
        raise SpecError(str(exc)) from None
    if not 0 <= spec.value_size <= MAX_VALUE_SIZE:
        raise SpecError(f"--value_size must be between 0 and {MAX_VALUE_SIZE} bytes, not "
                        f"{spec.value_size}")
    check_positive({"--nkeys": spec.nkeys, "--client_connections": spec.client_connections,
                    "--client_concurrency": spec.client_concurrency})
    if records_history and shares["rename_percent"] > 0:
        raise SpecError("--rename_percent cannot go into the history the linearizability "
                        "check reads (it has no rename): add --no-record-seqnums")
    return msgspec.structs.replace(spec, **shares)


def zk_workload(spec: ExperimentSpec) -> dict[str, Any]:
    """The [workload] table of every load generator of the run (nodes.config.ZkWorkload)."""
    work = {**_shares(spec), "value_size": spec.value_size, "nkeys": spec.nkeys}
    msgspec.convert(work, ZkWorkload)  # a field renamed on the node side fails here
    return work


def zk_client_procs(spec: ExperimentSpec, clients: list[MachineSlot],
                    groups: list[list[dict[str, Any]]], record_history: bool = False,
                    ) -> list[Proc]:
    """`nclient_threads` load generators per client machine, each with
    `client_connections` sessions of `client_concurrency` outstanding requests to the
    servers of one group (a group's endpoints {host, port}; each session starts at a
    different one). Processes go round-robin over the groups as Mason's clients do
    (orchestrator/placement.py): thread t of client machine j uses group
    (j * nproxy_threads + t) mod len(groups)."""
    if not groups or not all(groups):
        raise SpecError("the ZooKeeper load generators need at least one server")
    work = zk_workload(spec)
    procs = []
    for j, slot in enumerate(clients):
        for thread in range(spec.nclient_threads):
            name = f"{slot.name}-{thread}"
            group = (j * spec.nproxy_threads + thread) % len(groups)
            procs.append(Proc(name=name, kind=CLIENT_KIND, machine=slot.name, group=group,
                              context={
                "name": name, "outdir": slot.outdir(CLIENT_KIND),
                "client_id": j * spec.nclient_threads + thread,
                "servers": groups[group], "connections": spec.client_connections,
                "concurrency": spec.client_concurrency, "warmup_s": spec.warmup,
                "duration_s": spec.expduration, "cooldown_s": spec.cooldown,
                "timeout_ms": spec.client_timeout_ms, "record_history": record_history,
                "workload": work,
            }))
    return procs


def workload_text(spec: ExperimentSpec) -> str:
    """`100 % setData, 8 B values, 128 keys per client process`."""
    kinds = {flag: kind for kind, flag in mix.PERCENT_FIELDS.items()}
    mix_text = ", ".join(f"{share:g} % {kinds[flag]}"
                         for flag, share in _shares(spec).items() if share)
    return (f"{mix_text or '100 % setData'}, {spec.value_size} B values, {spec.nkeys} keys "
            "per client process")
