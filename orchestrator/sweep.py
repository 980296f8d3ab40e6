"""A suite (suites/, data) -> named experiment points, each a validated ExperimentSpec.

The suite file's own shape is checked by suites.loader; here its system and experiment
fields are checked against the registry (orchestrator/systems/) and every point is
validated as a spec when the suite is expanded, so a bad file fails before the first run.
Points keep the same names whatever the scale, so a local sweep's results line up with the
full one's.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from orchestrator import systems
from orchestrator.spec import ExperimentSpec, SpecError, field_defaults, validate
from suites.loader import Suite, SuiteError, Variant, one_line

# Fields a suite may not set: the runner names each run, the header names the system.
_RESERVED = ("name", "system")
_FIELDS = ExperimentSpec.__struct_fields__
_NUMERIC = {name for name, default in field_defaults().items()
            if isinstance(default, (int, float)) and not isinstance(default, bool)}


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """One experiment of a sweep: its stable name, its loop values, its full parameters."""

    name: str
    coords: dict[str, int]  # dimension key -> value, e.g. {"s": 2, "g": 4, "c": 16}
    params: dict[str, Any]  # every ExperimentSpec field but the name, validated

    def spec(self, run_name: str) -> ExperimentSpec:
        return msgspec.convert({**self.params, "name": run_name}, ExperimentSpec)


class Capacity(msgspec.Struct, frozen=True, kw_only=True):
    """Machines available per role (from machine_info.txt); a point needing more is dropped.
    A field per machine role of the registry, named after it: `proxies` for `proxy`."""

    sequencers: int = 0
    proxies: int = 0
    clients: int = 0
    servers: int = 0

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> Capacity:
        return cls(**{_plural(role): counts.get(role, 0) for role in systems.MACHINE_ROLES})

    def shortfall(self, spec: ExperimentSpec) -> str | None:
        """Why a point does not fit ("needs 6 proxy machines, 3 listed"), or None."""
        for role, need in systems.get(spec.system).machines_needed(spec).items():
            have = int(getattr(self, _plural(role)))
            if need > have:
                return f"needs {need} {role} machines, {have} listed"
        return None


def _plural(role: str) -> str:
    return f"{role[:-1]}ies" if role.endswith("y") else f"{role}s"


@dataclass
class Expansion:
    suite: Suite
    variant: str | None
    local: bool
    points: list[Point]
    dropped: list[tuple[Point, str]] = field(default_factory=list)  # (point, shortfall)

    @property
    def results_name(self) -> str:
        return self.suite.name + (f"-{self.variant}" if self.variant else "")


# ---- checking the fields -------------------------------------------------------------------


def _check_fields(table: dict[str, Any], where: str) -> None:
    for key in table:
        if key in _RESERVED or key not in _FIELDS:
            raise SuiteError(f"{where}: {key!r} is not an experiment field one can set")


def check_suite(suite: Suite) -> None:
    """The system exists and every field the file names is one an experiment has."""
    data = suite.data
    try:
        try:
            systems.canonical(data.suite.system)
        except SpecError as exc:
            raise SuiteError(f"[suite] {exc}") from None
        for where, table in data.base_tables():
            _check_fields(table, where)
        for dim in data.dims:
            where = f"dimension {dim.key!r}"
            for name, factor in [*dim.scale.items(),
                                 *data.local.scale.get(dim.key, {}).items()]:
                if name not in _NUMERIC:
                    raise SuiteError(f"{where}: scale names {name!r}, not a numeric "
                                     "experiment field")
                if isinstance(factor, str) and factor not in _NUMERIC:
                    raise SuiteError(f"{where}: factor {factor!r} is not a numeric "
                                     "experiment field")
    except SuiteError as exc:
        raise SuiteError(f"{suite.path}: {exc}") from None


# ---- expansion ----------------------------------------------------------------------------


def expand(
    suite: Suite,
    variant: str | None = None,
    machines: Capacity | None = None,
    overrides: dict[str, Any] | None = None,
) -> Expansion:
    """Every point of the sweep, outer loops first.

    ``machines`` None means a local run: the system's local defaults and the ``[local]``
    table apply and nothing is dropped. Otherwise the system's testbed defaults apply and
    points needing more machines of a role than ``machines`` has are dropped (returned in
    ``dropped`` with the reason). ``overrides`` (``--set``) win over every table but may
    not touch a swept field.
    """
    check_suite(suite)
    data = suite.data
    system = systems.get(data.suite.system)
    chosen = _variant(suite, variant)
    local = machines is None
    base: dict[str, Any] = dict(system.local_defaults if local else system.testbed_base)
    base.update(data.base)
    values = {d.key: list(d.values) for d in data.dims}
    if chosen is not None:
        base.update(chosen.base)
        values.update({k: list(v) for k, v in chosen.values.items()})
    if local:
        base.update(data.local.base)
        for key, capped in data.local.values.items():
            values[key] = [v for v in values[key] if v in capped]
    if overrides:
        _check_fields(overrides, "--set")
        swept = {name for d in data.dims for name in d.scale}
        for name in swept & set(overrides):
            raise SuiteError(f"--set {name}: the suite sweeps this field; use --only instead")
        base.update(overrides)

    exp = Expansion(suite, variant, local, [])
    for combo in itertools.product(*(values[d.key] for d in data.dims)):
        coords = {d.key: v for d, v in zip(data.dims, combo, strict=True)}
        name = "-".join(f"{k}{v}" for k, v in coords.items()) or suite.name
        params = dict(base)
        for dim in data.dims:
            scale = data.local.scale.get(dim.key, dim.scale) if local else dim.scale
            for fname, factor in scale.items():
                params[fname] = coords[dim.key] * _factor(factor, base)
        spec = _validated(suite, name, params, overrides or {})
        out = msgspec.to_builtins(spec)
        del out["name"]
        point = Point(name=name, coords=coords, params=out)
        reason = machines.shortfall(spec) if machines is not None else None
        if reason is None:
            exp.points.append(point)
        else:
            exp.dropped.append((point, reason))
    return exp


def _variant(suite: Suite, variant: str | None) -> Variant | None:
    variants = suite.data.variants
    flags = ", ".join(f"--{v}" for v in variants)
    if variant is None:
        if variants:
            raise SuiteError(f"suite {suite.name} needs one of {flags}")
        return None
    if variant not in variants:
        have = f"its variants are {flags}" if variants else "it has no variants"
        raise SuiteError(f"suite {suite.name} has no --{variant} variant; {have}")
    return variants[variant]


def _factor(factor: int | str, base: dict[str, Any]) -> Any:
    if isinstance(factor, int):
        return factor
    # A field named as the factor: its value in this point's base, else the spec default.
    return base[factor] if factor in base else field_defaults()[factor]


def _validated(
    suite: Suite, name: str, params: dict[str, Any], overrides: dict[str, Any]
) -> ExperimentSpec:
    try:
        spec = msgspec.convert({**params, "name": name, "system": suite.system}, ExperimentSpec)
        return validate(spec)
    except msgspec.ValidationError as exc:
        message = one_line(str(exc))
        bad = re.search(r"at `\$\.(\w+)`", message)
        if bad and bad[1] in overrides:  # the value came from the command line
            raise SuiteError(f"--set {bad[1]}={overrides[bad[1]]}: {message}") from None
        raise SuiteError(f"{suite.path}: point {name}: {message}") from None
    except SpecError as exc:
        raise SuiteError(f"{suite.path}: point {name}: {exc}") from None
