"""What each system does with a group's operations: one small, I/O-free object per system.

The proxy replica (nodes/proxy/replica.py) hosts a Raft group and is the same for every
system: it admits, batches, sequences, logs and answers. It asks the group's service the
questions where systems differ, and carries out what the service returns:

- `admit(req)`: the numbers an operation needs per space, checked before any state
  changes (a bad operation is refused with a one-line reason, never half-applied);
- `direct(req)`: an operation served without the log (a CorfuMason read), as an effect;
- `apply(ops, noop)`: at commit, on every replica, deterministic; returns, per operation,
  the effects the leader must finish before the operation is done (CorfuMason: the chain
  write of an append, the hole fills of a noop), or None when nothing is owed;
- `done(effect)` / `take_notes()` / `apply_notes()`: the leader reports finished effects
  through the log, so every replica knows what a new leader would still owe;
- `pending()`: what a new leader re-drives: effects of committed operations never
  reported done;
- `acked(client, ack)`: the client holds every answer up to `ack` (ZK-Mason forgets the
  calls it kept to answer them again);
- `snapshot()` / `restore()`: the service's share of the group's snapshot.

A service whose operations need no numbers (RSMKeeper) runs with nspaces 0: `admit`
returns no counts, the proxy config names no sequencer, and the replica logs each batch
as soon as it closes. Notes are also how a leader gives every replica a value only it may
choose (RSMKeeper: the leader's clock, so all replicas apply an entry at the same time).

Effects are plain data (`LogWrite`, `LogRead`); the replica's effect runner owns the
sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Union

from nodes import wire
from nodes.proxy.entries import OpRecord


class Refused(Exception):
    """An operation the service will not take; the message is one line for the client."""


@dataclass(frozen=True, slots=True)
class LogWrite:
    """Write (kind, data) at `position` on every replica of its chain, head to tail."""

    position: int
    kind: int
    data: bytes
    owner: tuple[int, int]  # (client id, reqid) of the operation; NOOP_CLIENT for fills


@dataclass(frozen=True, slots=True)
class LogRead:
    """Read `position` from its chain's tail."""

    position: int


if TYPE_CHECKING:
    from nodes.services.zkmason import ZkCall

Effect = Union[LogWrite, LogRead, "ZkCall"]  # noqa: UP007 - a forward reference


class Service(Protocol):
    name: str
    direct_kinds: frozenset[int]  # operation kinds served by `direct`, without the log
    # Whether a request may carry a run of operations (OpRequest.nops > 1): only where an
    # operation is its numbers alone; the others take one operation, with its payload,
    # per request.
    runs: bool

    def admit(self, req: wire.OpRequest) -> list[int]: ...

    def direct(self, req: wire.OpRequest) -> Effect | None: ...

    def apply(self, ops: list[OpRecord], noop: bool) -> list[list[Effect]] | None: ...

    def done(self, effect: Effect) -> None: ...

    def take_notes(self) -> bytes: ...

    def apply_notes(self, notes: bytes) -> None: ...

    def pending(self) -> list[Effect]: ...

    def acked(self, client_id: int, ack: int) -> None: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


SERVICES = ("mason", "corfumason", "rsmkeeper", "zkmason")


def make_service(name: str, nspaces: int, max_entry_bytes: int = 4096,
                 zk_tick_ms: int = 2000, group: int = 0) -> Service:
    """The service object for a proxy config's `service` name."""
    if name == "mason":
        from nodes.services.mason import MasonService

        return MasonService(nspaces)
    if name == "corfumason":
        from nodes.services.corfumason import CorfuMasonService

        return CorfuMasonService(nspaces, max_entry_bytes)
    if name == "rsmkeeper":
        from nodes.services.rsmkeeper import RsmKeeperService

        if nspaces:
            raise ValueError("rsmkeeper's operations need no numbers: nspaces must be 0")
        return RsmKeeperService(zk_tick_ms)
    if name == "zkmason":
        from nodes.services.zkmason import ZkMasonService

        return ZkMasonService(nspaces, group, zk_tick_ms)
    raise ValueError(f"unknown service {name!r}; proxies serve {', '.join(SERVICES)}")
