"""What the tree answers, one record per reply shape; `ErrorResult` carries ZooKeeper's code."""

from __future__ import annotations

from typing import Union

import msgspec

from nodes.zk.codes import Err
from nodes.zk.requests import Acl
from nodes.zk.stat import Stat


class _Result(msgspec.Struct, frozen=True, tag=True, array_like=True):
    pass


class ErrorResult(_Result, frozen=True):
    err: Err


class OkResult(_Result, frozen=True):
    """delete, check, closeSession, addWatch, ping: nothing but success."""


class CreateResult(_Result, frozen=True):
    path: str  # the created path (with the sequential suffix)
    stat: Stat


class StatResult(_Result, frozen=True):
    """setData, setACL, exists."""

    stat: Stat


class DataResult(_Result, frozen=True):
    data: bytes
    stat: Stat


class ChildrenResult(_Result, frozen=True):
    children: list[str]  # names, sorted
    stat: Stat


class AclResult(_Result, frozen=True):
    acl: list[Acl]
    stat: Stat


class PathResult(_Result, frozen=True):
    """sync."""

    path: str


OpResult = Union[ErrorResult, OkResult, CreateResult, StatResult]  # noqa: UP007


class MultiResult(_Result, frozen=True):
    """One result per op. On failure every entry is an ErrorResult: OK for the ops before
    the failing one, its code for it, RUNTIME_INCONSISTENCY for the ops after it."""

    results: list[OpResult]

    @property
    def failed(self) -> bool:
        return any(isinstance(r, ErrorResult) for r in self.results)


class MultiReadResult(_Result, frozen=True):
    """One result per read, each on its own (a NoNode does not stop the others)."""

    results: list[Union[ErrorResult, DataResult, ChildrenResult]]  # noqa: UP007


class PathsResult(_Result, frozen=True):
    """getEphemerals: paths, sorted."""

    paths: list[str]


class CountResult(_Result, frozen=True):
    """getAllChildrenNumber."""

    count: int


class SessionResult(_Result, frozen=True):
    session: int
    timeout_ms: int  # as negotiated (clamped)
    password: bytes


class TickResult(_Result, frozen=True):
    expired: list[int]  # sessions closed by this tick, ascending


Result = Union[  # noqa: UP007 - msgspec needs a real Union of the tagged Structs
    ErrorResult, OkResult, CreateResult, StatResult, DataResult, ChildrenResult, AclResult,
    PathResult, MultiResult, MultiReadResult, PathsResult, CountResult, SessionResult,
    TickResult,
]


def error_of(result: Result) -> Err:
    """ZooKeeper's code for a result (OK for every success)."""
    return result.err if isinstance(result, ErrorResult) else Err.OK


class ZkError(Exception):
    """A request refused with ZooKeeper's code; the tree turns it into an ErrorResult."""

    def __init__(self, err: Err, detail: str = "") -> None:
        super().__init__(f"{err.name}{': ' + detail if detail else ''}")
        self.err = err
