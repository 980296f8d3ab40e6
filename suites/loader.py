"""Suite files, read and checked as data (orchestrator/sweep.py expands them into runs).

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

This module knows the file's shape only; which system and experiment fields exist is the
orchestrator's, which checks them (and every point) when it expands a suite, so a bad file
fails before the first run, not hours into the sweep. Nothing here imports the orchestrator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import msgspec.toml

SUITES_DIR = Path(__file__).resolve().parent
VARIANT_FLAGS = ("appends", "reads", "setDatas", "getDatas")
_KEY = re.compile(r"[a-z][a-z0-9]*")
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


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
    # Per dimension key, the factors of its `scale` on one machine (a testbed's six proxy
    # triples per log shard are one triple here); the same fields, other factors.
    scale: dict[str, dict[str, int | str]] = {}


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

    def base_tables(self) -> list[tuple[str, dict[str, Any]]]:
        """Every table of experiment fields, with where it is in the file."""
        return [("[base]", self.base), ("[local.base]", self.local.base),
                *((f"[variants.{flag}]", v.base) for flag, v in self.variants.items())]


@dataclass(frozen=True)
class Suite:
    name: str  # the file's stem: the results go to <results>/<name>[-<variant>]/
    path: Path
    data: SuiteFile

    @property
    def system(self) -> str:
        return self.data.suite.system


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
        raise SuiteError(f"{path}: {one_line(str(exc))}") from None
    try:
        _check(data)
    except SuiteError as exc:
        raise SuiteError(f"{path}: {exc}") from None
    if not _STEM.fullmatch(path.stem):
        # The name becomes a results directory and, for a suite without loops, a run name.
        raise SuiteError(f"{path}: name a suite file with letters, digits, '-' and '_'")
    return Suite(path.stem, path, data)


def one_line(text: str) -> str:
    return " ".join(text.split())


def _check(data: SuiteFile) -> None:
    """What the Structs cannot say: keys are unique, subsets are subsets, a field is set
    in one place only."""
    if data.suite.trials < 1:
        raise SuiteError(f"[suite] trials must be at least 1, not {data.suite.trials}")
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
        for name in dim.scale:
            if name in scaled:
                raise SuiteError(f"{where}: {name!r} is already set by another dimension")
            scaled.add(name)
    for name in scaled & (set(data.base) | set(data.local.base)):
        raise SuiteError(f"{name!r} is set both in a base table and by a dimension")
    _check_values(data.local.values, keys, "[local.values]")
    for key, factors in data.local.scale.items():
        if key not in keys:
            raise SuiteError(f"[local.scale] names {key!r}, which is no dimension")
        if set(factors) != set(keys[key].scale):
            raise SuiteError(f"[local.scale] {key}: scale the same fields as the dimension "
                             f"({', '.join(sorted(keys[key].scale))})")
    for flag, variant in data.variants.items():
        where = f"[variants.{flag}]"
        if flag not in VARIANT_FLAGS:
            raise SuiteError(f"{where}: variants are {', '.join(VARIANT_FLAGS)}")
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
