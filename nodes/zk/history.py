"""`<name>.history`: the operations a ZooKeeper client issued and what came back, for the
linearizability checker (analysis/linearizability.py).

Writer (`HistoryRecorder`, in the client process) and reader (`read_history`) of the format
live here. JSON lines, one record per line, tagged by ``type``:

    {"type":"header","format":1,"process":3,"clock":"monotonic:<boot id>"}
    {"type":"initial","path":"/k0","value":"djA=","version":0}
    {"type":"invoke","op":0,"kind":"set","path":"/k0","value":"djE=","version":-1,"ns":1200}
    {"type":"ok","op":0,"ns":1900,"version":1}
    {"type":"invoke","op":1,"kind":"get","path":"/k0","ns":2000}
    {"type":"ok","op":1,"ns":2300,"value":"djE=","version":1}
    {"type":"fail","op":2,"ns":2500,"error":"bad_version"}
    {"type":"info","op":3,"ns":9000}

* ``header`` first, once: the writing process (any id unique among a run's clients) and the
  clock its times come from. Times of different files are compared, so every file of a
  run must name the same clock: ``monotonic:<boot id>`` is one machine's CLOCK_MONOTONIC,
  ``realtime`` the wall clock (only as good as the machines' clock sync).
* ``initial``: a znode's data and version before any recorded operation (a node the client
  set up before the run); a path without one starts absent. Files that name the same path
  must agree.
* ``invoke`` when the request is sent: ``kind`` is set (value, version = the expected version
  or -1), get, check (version), create (value) or delete (version or -1).
* then at most one completion: ``ok`` (set: the new version; get: value and version),
  ``fail`` with a definite error (the operation took no effect: ``no_node``,
  ``bad_version`` and ``node_exists`` are answers of the data model; ``not_applied`` is any
  other error that guarantees no effect), or ``info`` (timeout, connection loss: it may
  take effect at any time after its invocation, or never). An invocation with no
  completion (the run ended first) reads as ``info``. `recorded_error` says which of
  ZooKeeper's error codes is which.

Values are bytes (base64 in the JSON); times are integer nanoseconds.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NamedTuple

import msgspec

from nodes.metrics import BufferedFile
from nodes.zk.codes import Err

FORMAT = 1
KINDS = ("set", "get", "check", "create", "delete")
MODEL_ERRORS = ("no_node", "bad_version", "node_exists")
NOT_APPLIED = "not_applied"
ERRORS = (*MODEL_ERRORS, NOT_APPLIED)
REALTIME = "realtime"

StrPath = str | os.PathLike[str]


class HistoryFormatError(ValueError):
    """A malformed history; the message names the file and the line."""


class Outcome(str, Enum):
    OK = "ok"
    FAIL = "fail"  # a definite error: the operation took no effect
    UNKNOWN = "unknown"  # may take effect at any time after its invocation, or never


class VersionedData(NamedTuple):
    """A znode's data as the versioned register sees it."""

    value: bytes
    version: int


@dataclass(frozen=True)
class Operation:
    """One operation of a history, invocation and completion together.

    ``value`` and ``version`` are the arguments (set: data and expected version, -1 for
    any; check and delete: the version; create: the data). The result is in ``result``
    (get: the znode read; ok set: ``VersionedData(value, new version)``), or ``error`` for FAIL.
    ``response_ns`` is None for UNKNOWN.
    """

    process: int
    op: int
    kind: str
    path: str
    invoke_ns: int
    response_ns: int | None
    outcome: Outcome
    value: bytes | None = None
    version: int | None = None
    result: VersionedData | None = None
    error: str | None = None

    def describe(self) -> str:
        """One line for a verdict: who, what, when, what came back."""
        args = []
        if self.value is not None:
            args.append(show_value(self.value))
        if self.version is not None:
            args.append(f"v{self.version}")
        call = f"{self.kind}({', '.join([self.path, *args])})"
        if self.outcome is Outcome.OK:
            if self.kind == "get" and self.result is not None:
                got = f"({show_value(self.result.value)}, v{self.result.version})"
            elif self.kind == "set" and self.result is not None:
                got = f"v{self.result.version}"
            else:
                got = "ok"
        elif self.outcome is Outcome.FAIL:
            got = str(self.error)
        else:
            got = "unknown"
        end = "inf" if self.response_ns is None else str(self.response_ns)
        return f"p{self.process} #{self.op} {call} -> {got} [{self.invoke_ns}, {end}] ns"


def show_value(value: object) -> str:
    """Data for people: quoted when it is printable ASCII, else hex."""
    if isinstance(value, bytes):
        try:
            text = value.decode("ascii")
            if text.isprintable():
                return repr(text)
        except UnicodeDecodeError:
            pass
        return "0x" + value.hex()
    return repr(value)


# ---- records ---------------------------------------------------------------------------------


class _Record(msgspec.Struct, tag_field="type", forbid_unknown_fields=True,
              omit_defaults=True):
    pass


class Header(_Record, tag="header"):
    format: int
    process: int
    clock: str


class Initial(_Record, tag="initial"):
    path: str
    value: bytes
    version: int


class Invoke(_Record, tag="invoke"):
    op: int
    kind: str
    path: str
    ns: int
    value: bytes | None = None
    version: int | None = None


class _Completion(_Record):
    op: int
    ns: int


class Ok(_Completion, tag="ok"):
    value: bytes | None = None
    version: int | None = None


class Fail(_Completion, tag="fail"):
    error: str = ""


class Info(_Completion, tag="info"):
    pass


Record = Header | Initial | Invoke | Ok | Fail | Info

# Which arguments each kind takes, and which results its ok completion carries.
_ARGS = {"set": (True, True), "get": (False, False), "check": (False, True),
         "create": (True, False), "delete": (False, True)}
_RESULTS = {"set": (False, True), "get": (True, True), "check": (False, False),
            "create": (False, False), "delete": (False, False)}


# ---- writer ----------------------------------------------------------------------------------

_MODEL_ERRORS = {Err.NO_NODE: "no_node", Err.BAD_VERSION: "bad_version",
                 Err.NODE_EXISTS: "node_exists"}
# Refused before the operation reached the tree: it took no effect.
_REFUSED = {Err.BAD_ARGUMENTS, Err.NO_AUTH, Err.INVALID_ACL, Err.UNIMPLEMENTED,
            Err.THROTTLED_OP, Err.NOT_READ_ONLY}


def recorded_error(err: Err) -> str | None:
    """How a ZooKeeper error is recorded: an error name for :meth:`HistoryRecorder.fail`,
    or None when the operation's fate is open (connection loss, timeouts, an expired
    session and anything not known to be refused): record it with `unknown`."""
    if err in _MODEL_ERRORS:
        return _MODEL_ERRORS[err]
    return NOT_APPLIED if err in _REFUSED else None



def local_clock() -> str:
    """The name of this machine's CLOCK_MONOTONIC: it is one clock per boot."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = socket.gethostname()
    return f"monotonic:{boot}"


class HistoryRecorder(BufferedFile):
    """Appends a client's invocations and completions; buffered, like the seqnum recorder.

    Call :meth:`invoke` just before sending a request and one of :meth:`ok`, :meth:`fail`,
    :meth:`unknown` when its fate is known. Times default to ``time.monotonic_ns()``.
    """

    def __init__(self, path: StrPath, process: int, clock: str | None = None,
                 initial: dict[str, VersionedData] | None = None) -> None:
        super().__init__(path, binary=True)
        self._encoder = msgspec.json.Encoder()
        self._next_op = 0
        self._write(Header(FORMAT, process, clock or local_clock()))
        for znode_path, znode in (initial or {}).items():
            self._write(Initial(znode_path, znode.value, znode.version))

    def _write(self, record: Record) -> None:
        self._file().write(self._encoder.encode(record) + b"\n")

    def invoke(self, kind: str, path: str, value: bytes | None = None,
               version: int | None = None, ns: int | None = None) -> int:
        """Record a request about to be sent; returns its op id for the completion."""
        problem = _invoke_problem(kind, value, version)
        if problem:
            raise ValueError(problem)
        op = self._next_op
        self._next_op += 1
        self._write(Invoke(op, kind, path, _now(ns), value, version))
        return op

    def ok(self, op: int, value: bytes | None = None, version: int | None = None,
           ns: int | None = None) -> None:
        self._write(Ok(op, _now(ns), value, version))

    def fail(self, op: int, error: str, ns: int | None = None) -> None:
        if error not in ERRORS:
            raise ValueError(f"error {error!r} is not one of {', '.join(ERRORS)}")
        self._write(Fail(op, _now(ns), error))

    def unknown(self, op: int, ns: int | None = None) -> None:
        self._write(Info(op, _now(ns)))


def _now(ns: int | None) -> int:
    return time.monotonic_ns() if ns is None else ns


def _invoke_problem(kind: str, value: bytes | None, version: int | None) -> str:
    if kind not in _ARGS:
        return f"kind {kind!r} is not one of {', '.join(KINDS)}"
    wants_value, wants_version = _ARGS[kind]
    if wants_value != (value is not None):
        return f"{kind} {'needs' if wants_value else 'takes no'} value"
    if wants_version != (version is not None):
        return f"{kind} {'needs' if wants_version else 'takes no'} version"
    if version is not None and version < -1:
        return f"version {version} below -1"
    return ""


# ---- reader ----------------------------------------------------------------------------------


@dataclass
class ClientHistory:
    process: int
    clock: str
    initial: dict[str, VersionedData] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)


_decoder = msgspec.json.Decoder(Record)


def read_history(path: StrPath) -> ClientHistory:
    """Raises HistoryFormatError naming the line when the file is not a history."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HistoryFormatError(f"{path}: {exc.strerror or exc}") from None
    history: ClientHistory | None = None
    invoked: dict[int, Invoke] = {}
    done: dict[int, Operation] = {}
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = _decoder.decode(line)
            if history is None:
                if not isinstance(record, Header):
                    raise ValueError("the first record must be the header")
                if record.format != FORMAT:
                    raise ValueError(f"format {record.format}, this reader knows {FORMAT}")
                history = ClientHistory(record.process, record.clock)
            elif isinstance(record, Header):
                raise ValueError("a second header")
            elif isinstance(record, Initial):
                if record.version < 0:
                    raise ValueError(f"initial version {record.version} below 0")
                if record.path in history.initial:
                    raise ValueError(f"initial state of {record.path} given twice")
                history.initial[record.path] = VersionedData(record.value, record.version)
            elif isinstance(record, Invoke):
                problem = _invoke_problem(record.kind, record.value, record.version)
                if problem:
                    raise ValueError(problem)
                if record.op in invoked:
                    raise ValueError(f"op {record.op} invoked twice")
                invoked[record.op] = record
            else:
                inv = invoked.get(record.op)
                if inv is None:
                    raise ValueError(f"op {record.op} completes before its invocation")
                if record.op in done:
                    raise ValueError(f"op {record.op} completed twice")
                if record.ns < inv.ns:
                    raise ValueError(f"op {record.op} completes before it was invoked")
                done[record.op] = _completed(history.process, inv, record)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            text = line.decode("utf-8", "replace").strip()[:80]
            raise HistoryFormatError(f"{path}:{lineno}: {exc}: {text!r}") from None
    if history is None:
        raise HistoryFormatError(f"{path}: empty, no header")
    for op, inv in invoked.items():
        history.operations.append(done.get(op) or _operation(history.process, inv,
                                                             None, Outcome.UNKNOWN))
    return history


def _operation(process: int, inv: Invoke, response_ns: int | None, outcome: Outcome,
               result: VersionedData | None = None, error: str | None = None) -> Operation:
    return Operation(process, inv.op, inv.kind, inv.path, inv.ns, response_ns, outcome,
                     inv.value, inv.version, result, error)


def _completed(process: int, inv: Invoke, record: Ok | Fail | Info) -> Operation:
    if isinstance(record, Info):
        return _operation(process, inv, None, Outcome.UNKNOWN)
    if isinstance(record, Fail):
        if record.error not in ERRORS:
            raise ValueError(f"error {record.error!r} is not one of {', '.join(ERRORS)}")
        return _operation(process, inv, record.ns, Outcome.FAIL, error=record.error)
    wants_value, wants_version = _RESULTS[inv.kind]
    if wants_value != (record.value is not None):
        raise ValueError(f"an ok {inv.kind} {'needs' if wants_value else 'has no'} value")
    if wants_version != (record.version is not None):
        raise ValueError(f"an ok {inv.kind} {'needs' if wants_version else 'has no'} version")
    result = None
    if record.version is not None:
        if record.version < 0:
            raise ValueError(f"version {record.version} below 0")
        # An ok set leaves its own data at the version it returns.
        value = record.value if record.value is not None else inv.value
        assert value is not None
        result = VersionedData(value, record.version)
    return _operation(process, inv, record.ns, Outcome.OK, result=result)
