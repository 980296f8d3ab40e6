"""The operation mix: the original's seven percentages, checked, and the draw.

The original client draws x uniform in [0, 1) and walks create, rename, setData, getData,
delete, exists, getChildren, adding up each kind's share, and issues the first kind whose
bucket holds x (spec zookeeper.md 4.1). Its flags were fractions summing to 1; ours are
percentages summing to 100, and `normalize` accepts either scale. The original's x = 0
dead slot is gone: a draw always lands in a bucket with a non-zero share.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Mapping

from nodes.config import ZK_OP_KINDS, ZkWorkload

# The workload field (and the original's flag) of each kind's share.
PERCENT_FIELDS: dict[str, str] = {
    "create": "create_percent",
    "rename": "rename_percent",
    "setData": "write_percent",
    "getData": "read_percent",
    "delete": "delete_percent",
    "exists": "exists_percent",
    "getChildren": "get_children_percent",
}
# The two experiments of the original's run_suite.sh (spec zookeeper.md 4.2).
PRESETS: dict[str, dict[str, float]] = {
    "setDatas": {"write_percent": 100.0},
    "getDatas": {"read_percent": 100.0},
}
_TOLERANCE = 1e-6


class MixError(ValueError):
    """An operation mix that cannot be used; the message is one line."""


def normalize(shares: Mapping[str, float]) -> dict[str, float]:
    """Percentages (field name -> share) summing to 100, from shares given as percentages
    or as the original's fractions summing to 1; every field of PERCENT_FIELDS is in the
    answer. All shares 0 is the original's default, 100 % setData. Raises MixError."""
    unknown = set(shares) - set(PERCENT_FIELDS.values())
    if unknown:
        raise MixError(f"unknown operation share(s): {', '.join(sorted(unknown))}")
    values = {field: float(shares.get(field, 0.0)) for field in PERCENT_FIELDS.values()}
    for field, value in values.items():
        if not 0.0 <= value <= 100.0:
            raise MixError(f"--{field} must be between 0 and 100, not {value:g}")
    total = sum(values.values())
    if total == 0.0:
        return {**values, **PRESETS["setDatas"]}
    if abs(total - 1.0) <= _TOLERANCE:
        return {field: value * 100.0 for field, value in values.items()}
    if abs(total - 100.0) > _TOLERANCE * 100:
        given = " + ".join(f"{field} {value:g}" for field, value in values.items() if value)
        raise MixError(f"operation shares must sum to 100 (or 1, as fractions): {given} = "
                       f"{total:g}")
    return values


def check(workload: ZkWorkload) -> None:
    """A node's own check of its config (percent scale only); raises MixError."""
    shares = {field: getattr(workload, field) for field in PERCENT_FIELDS.values()}
    total = sum(shares.values())
    if any(not 0.0 <= v <= 100.0 for v in shares.values()) or abs(total - 100.0) > 1e-4:
        raise MixError(f"workload percentages must each lie in [0, 100] and sum to 100, "
                       f"not {total:g}")
    if workload.value_size < 0 or workload.value_size > 1 << 20:
        raise MixError(f"value_size must be between 0 and 1 MiB, not {workload.value_size}")
    if workload.nkeys <= 0:
        raise MixError(f"nkeys must be positive, not {workload.nkeys}")
    prefix = workload.prefix
    if not prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise MixError(f"prefix {prefix!r} is not an absolute znode path")


class Mix:
    """Draws operation kinds with the workload's shares (only kinds with a share > 0)."""

    def __init__(self, workload: ZkWorkload, rng: random.Random) -> None:
        self.kinds: list[str] = []
        self.bounds: list[float] = []
        total = 0.0
        for kind in ZK_OP_KINDS:
            share = float(getattr(workload, PERCENT_FIELDS[kind]))
            if share > 0.0:
                total += share
                self.kinds.append(kind)
                self.bounds.append(total)
        if not self.kinds:
            raise MixError("the workload has no operation with a share above 0")
        self.total = total
        self._random = rng.random
        self.only = self.kinds[0] if len(self.kinds) == 1 else None

    def draw(self) -> str:
        if self.only is not None:
            return self.only
        i = bisect_right(self.bounds, self._random() * self.total)
        return self.kinds[min(i, len(self.kinds) - 1)]
