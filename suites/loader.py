"""Suite files -> named experiment points.

A suite file (TOML) says what the original ``run_suite.sh`` said in nested shell loops:

- ``[suite]``: the system, a description, the default number of trials.
- ``[base]``: experiment fields every point shares (ExperimentSpec names).
- ``[[dims]]``: the loops, outermost first. Each has a short ``key`` (the point name is the
  keys and values joined: ``s2-g4-c16``), its ``values``, and ``scale``: the fields it sets,
  each to value x factor, where a factor is a number or the name of a ``[base]`` field
  (``nproxy_leaders = "nproxy_threads"``: groups = triples x proxy threads).
- ``[local]``: ``base`` overrides and per-dimension ``values`` (a subset of the full lists)
  for a run on one machine, where every process shares a few cores.
- ``[variants.<flag>]``: per-workload tables for systems run with ``--appends``/``--reads``
  or ``--setDatas``/``--getDatas``; each may override ``base`` and narrow ``values``.

Points keep the same names whatever the scale, so a local sweep's results line up with the
full one's. Every point is validated as an ExperimentSpec when the suite is expanded, so a
bad file fails before the first run, not hours into the sweep.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import msgspec.toml

from orchestrator.spec import (
    LOCAL_DEFAULTS,
    TESTBED_DEFAULTS,
    ExperimentSpec,
    SpecError,
    normalise_system,
    validate,
)

SUITES_DIR = Path(__file__).resolve().parent
VARIANT_FLAGS = ("appends", "reads", "setDatas", "getDatas")
# Fields a suite may not set: the runner names each run, the header names the system.
_RESERVED = ("name", "system")
_KEY = re.compile(r"[a-z][a-z0-9]*")
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# Per role: the spec field saying how many machines a point needs, the Capacity attribute.
_ROLE_FIELDS = {"sequencer": ("nsequencers", "sequencers"), "proxy": ("nproxies", "proxies"),
                "client": ("nclients", "clients"), "server": ("nservers", "servers")}


class SuiteError(ValueError):
    """A suite that cannot be expanded; the message is one line naming the file."""


class Header(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    system: str
    description: str = ""
    trials: int = 1


class Dim(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    key: str
    name: str
    values: list[int]
    scale: dict[str, int | str]


class Local(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    base: dict[str, Any] = {}
    values: dict[str, list[int]] = {}


class Variant(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    description: str = ""
    base: dict[str, Any] = {}
    values: dict[str, list[int]] = {}


class SuiteFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    suite: Header
    base: dict[str, Any] = {}
    dims: list[Dim] = []
    local: Local = msgspec.field(default_factory=Local)
    variants: dict[str, Variant] = {}


@dataclass(frozen=True)
class Suite:
    name: str  # the file's stem: the results go to <results>/<name>[-<variant>]/
    path: Path
    data: SuiteFile

    @property
    def system(self) -> str:
        return self.data.suite.system


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """One experiment of a sweep: its stable name, its loop values, its full parameters."""

    name: str
    coords: dict[str, int]  # dimension key -> value, e.g. {"s": 2, "g": 4, "c": 16}
    params: dict[str, Any]  # every ExperimentSpec field but the name, validated

    def spec(self, run_name: str) -> ExperimentSpec:
        return msgspec.convert({**self.params, "name": run_name}, ExperimentSpec)


class Capacity(msgspec.Struct, frozen=True, kw_only=True):
    """Machines available per role (from machine_info.txt); a point needing more is dropped."""

    sequencers: int = 0
    proxies: int = 0
    clients: int = 0
    servers: int = 0

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> Capacity:
        return cls(sequencers=counts.get("sequencer", 0), proxies=counts.get("proxy", 0),
                   clients=counts.get("client", 0), servers=counts.get("server", 0))

    def shortfall(self, params: dict[str, Any]) -> str | None:
        """Why a point does not fit ("needs 6 proxy machines, 3 listed"), or None."""
        for role, (name, attr) in _ROLE_FIELDS.items():
            need = int(params.get(name, 0) or 0)
            have = int(getattr(self, attr))
            if need > have:
                return f"needs {need} {role} machines, {have} listed"
        return None


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


# ---- finding and loading --------------------------------------------------------------------


def list_suites(directory: Path = SUITES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def find_suite(name: str, directory: Path = SUITES_DIR) -> Path:
    """A suite by name (``mason`` -> suites/mason.toml) or by the path of a TOML file."""
    if name.endswith(".toml") or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise SuiteError(f"{path}: no such suite file")
        return path
    path = directory / f"{name}.toml"
    if not _KEY.fullmatch(name) or not path.is_file():
        known = ", ".join(list_suites(directory)) or "none"
        raise SuiteError(f"no suite named {name!r}; suites: {known} (or give a .toml path)")
    return path


def load_suite(path: Path) -> Suite:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = msgspec.convert(msgspec.toml.decode(raw), SuiteFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SuiteError(f"{path}: {_one_line(str(exc))}") from None
    try:
        _check(data)
    except SuiteError as exc:
        raise SuiteError(f"{path}: {exc}") from None
    if not _STEM.fullmatch(path.stem):
        # The name becomes a results directory and, for a suite without loops, a run name.
        raise SuiteError(f"{path}: name a suite file with letters, digits, '-' and '_'")
    return Suite(path.stem, path, data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


_FIELDS = ExperimentSpec.__struct_fields__
_NUMERIC = {name for name, default in zip(_FIELDS[-len(ExperimentSpec.__struct_defaults__):],
                                          ExperimentSpec.__struct_defaults__, strict=True)
            if isinstance(default, (int, float)) and not isinstance(default, bool)}


def _check_fields(table: dict[str, Any], where: str) -> None:
    for key in table:
        if key in _RESERVED or key not in _FIELDS:
            raise SuiteError(f"{where}: {key!r} is not an experiment field one can set")


def _check(data: SuiteFile) -> None:
    """What the Structs cannot say: names exist, keys are unique, subsets are subsets."""
    try:
        normalise_system(data.suite.system)
    except SpecError as exc:
        raise SuiteError(f"[suite] {exc}") from None
    if data.suite.trials < 1:
        raise SuiteError(f"[suite] trials must be at least 1, not {data.suite.trials}")
    _check_fields(data.base, "[base]")
    _check_fields(data.local.base, "[local.base]")
    keys: dict[str, Dim] = {}
    scaled: set[str] = set()
    for dim in data.dims:
        where = f"dimension {dim.key!r}"
        if not _KEY.fullmatch(dim.key):
            raise SuiteError(f"{where}: a key is lower-case letters and digits, e.g. 's'")
        if dim.key in keys:
            raise SuiteError(f"{where} is defined twice")
        keys[dim.key] = dim
        if not dim.values or any(v <= 0 for v in dim.values):
            raise SuiteError(f"{where}: values must be a non-empty list of positive numbers")
        if len(set(dim.values)) != len(dim.values):
            raise SuiteError(f"{where}: values repeat")
        if not dim.scale:
            raise SuiteError(f"{where}: scale sets no field")
        for name, factor in dim.scale.items():
            if name not in _NUMERIC:
                raise SuiteError(f"{where}: scale names {name!r}, not a numeric experiment field")
            if name in scaled:
                raise SuiteError(f"{where}: {name!r} is already set by another dimension")
            scaled.add(name)
            if isinstance(factor, str) and factor not in _NUMERIC:
                raise SuiteError(f"{where}: factor {factor!r} is not a numeric experiment field")
    for name in scaled & (set(data.base) | set(data.local.base)):
        raise SuiteError(f"{name!r} is set both in a base table and by a dimension")
    _check_values(data.local.values, keys, "[local.values]")
    for flag, variant in data.variants.items():
        where = f"[variants.{flag}]"
        if flag not in VARIANT_FLAGS:
            raise SuiteError(f"{where}: variants are {', '.join(VARIANT_FLAGS)}")
        _check_fields(variant.base, where)
        for name in scaled & set(variant.base):
            raise SuiteError(f"{where}: {name!r} is set by a dimension")
        _check_values(variant.values, keys, f"{where} values")


def _check_values(table: dict[str, list[int]], dims: dict[str, Dim], where: str) -> None:
    for key, values in table.items():
        if key not in dims:
            raise SuiteError(f"{where}: no dimension {key!r} (dimensions: {', '.join(dims)})")
        extra = [v for v in values if v not in dims[key].values]
        if extra or not values:
            # A subset keeps the names and the results comparable with the full sweep.
            raise SuiteError(f"{where}: {key} = {values} must be a non-empty subset of "
                             f"{dims[key].values}")


# ---- expansion ----------------------------------------------------------------------------


def expand(
    suite: Suite,
    variant: str | None = None,
    machines: Capacity | None = None,
    overrides: dict[str, Any] | None = None,
) -> Expansion:
    """Every point of the sweep, outer loops first.

    ``machines`` None means a local run: the ``[local]`` table applies and nothing is
    dropped. Otherwise the testbed defaults apply and points needing more machines of a
    role than ``machines`` has are dropped (returned in ``dropped`` with the reason).
    ``overrides`` (``--set``) win over every table but may not touch a swept field.
    """
    data = suite.data
    chosen = _variant(suite, variant)
    local = machines is None
    base: dict[str, Any] = dict(LOCAL_DEFAULTS if local else TESTBED_DEFAULTS)
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
            for fname, factor in dim.scale.items():
                params[fname] = coords[dim.key] * _factor(factor, base)
        point = Point(name=name, coords=coords,
                      params=_validated(suite, name, params, overrides or {}))
        reason = machines.shortfall(point.params) if machines is not None else None
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
    return base[factor] if factor in base else getattr(ExperimentSpec(name="-"), factor)


def _validated(
    suite: Suite, name: str, params: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    try:
        spec = msgspec.convert({**params, "name": name, "system": suite.system}, ExperimentSpec)
        spec = validate(spec)
    except msgspec.ValidationError as exc:
        message = _one_line(str(exc))
        bad = re.search(r"at `\$\.(\w+)`", message)
        if bad and bad[1] in overrides:  # the value came from the command line
            raise SuiteError(f"--set {bad[1]}={overrides[bad[1]]}: {message}") from None
        raise SuiteError(f"{suite.path}: point {name}: {message}") from None
    except SpecError as exc:
        raise SuiteError(f"{suite.path}: point {name}: {exc}") from None
    out = msgspec.to_builtins(spec)
    del out["name"]
    return out
