"""Carries out what a group's service owes after commit: writes and reads on the shared log.

The service (nodes/services/) decides *what* is owed and stays free of I/O; this runner
owns the log-server connections (one ChainClient for the whole process) and does it.
"""

from __future__ import annotations

from typing import Any, Protocol

from nodes import wire
from nodes.config import ChainConfig
from nodes.logserver.chain import ChainClient, LogResult
from nodes.services import Effect, LogRead, LogWrite


class EffectRunner(Protocol):
    """What the replica needs of a runner: run an effect, and judge its result."""

    answers: bool  # results are the operations' answers (their reply payloads)

    def start(self) -> None: ...

    def stop(self) -> None: ...

    async def run(self, effect: Effect) -> Any: ...

    def finished(self, effect: Effect, result: Any) -> bool: ...

    def failed(self, result: Any) -> bool: ...


class LogEffects:
    answers = False  # an append's reply is its position; a read's is served directly

    def __init__(self, log: ChainConfig, name: str) -> None:
        self.chain = ChainClient(log, name=name, timeout_s=log.timeout_ms / 1000)

    def start(self) -> None:
        self.chain.start()

    def stop(self) -> None:
        self.chain.close()

    async def run(self, effect: Effect) -> LogResult:
        if isinstance(effect, LogWrite):
            return await self.chain.write(effect.position, effect.kind, effect.data)
        if isinstance(effect, LogRead):
            return await self.chain.read(effect.position)
        raise TypeError(f"no runner for {type(effect).__name__}")

    def finished(self, effect: Effect, result: LogResult) -> bool:
        return finished(effect, result)

    def failed(self, result: LogResult) -> bool:
        """Finished, but not done: a position holding other content."""
        return result.status != wire.LOG_OK


def finished(effect: Effect, result: LogResult) -> bool:
    """Whether the effect is done for good (True) or must be tried again (False).

    A write is done once the tail holds it (LOG_OK); a position already holding other
    content can never take it (write-once), so retrying would not help either."""
    return result.status in (wire.LOG_OK, wire.LOG_WRITTEN, wire.LOG_TRIMMED, wire.LOG_BAD,
                             wire.LOG_DIVERGED)
