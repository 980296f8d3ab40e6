"""Carries ZK-Mason's owed calls (nodes/services/zkmason.ZkCall) to the shard replicas.

- noops (and the numbers of an operation whose session was gone): NOOP to the shard's
  replicas; done when a majority advanced over them.
- one shard: EXEC at its number; the first answer is the result (every replica that
  executes number n has executed the same prefix), done when a majority executed it.
- several shards: HOLD each at its number and gather views (READ for more) until the
  coordinator (nodes/zk/coordinate.TxnRun) can decide, then DECIDE at every touched shard;
  done when a majority of each applied it. A shard that already decided hands back the
  outcome it applied, and that outcome is sent to the others: every leader that re-drives
  the transaction ends with the same one.

Each attempt has a deadline; an attempt that does not finish (a shard without a majority,
a replica far behind) answers UNAVAILABLE and the replica tries again later, from the
start: every step is idempotent at the shards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass

import msgspec

from nodes import wire
from nodes.config import Endpoint
from nodes.rpc import Conn, Peer
from nodes.services import Effect
from nodes.services.zkmason import Answer, ZkCall, encode_answer
from nodes.zk.codes import Err
from nodes.zk.coordinate import TxnOutcome, TxnRun
from nodes.zk.requests import Txn
from nodes.zk.results import ErrorResult, Result
from nodes.zk.shard_machine import ViewReply

log = logging.getLogger("mason.zk")

OK = 0
UNAVAILABLE = 1  # no majority answered in time: try again
BAD = 2  # the shards refuse it for good (only a bug does that)

_encoder = msgspec.msgpack.Encoder()
_result_decoder = msgspec.msgpack.Decoder(Result)
_views_decoder = msgspec.msgpack.Decoder(ViewReply)
_outcome_decoder = msgspec.msgpack.Decoder(TxnOutcome)


@dataclass(frozen=True, slots=True)
class ShardResult:
    status: int
    data: bytes = b""  # OK: the encoded Answer (nodes/services/zkmason.Answer)


class Unavailable(Exception):
    pass


def _drop(_: Conn, __: int, ___: object) -> None:
    """Shard replicas never call a proxy on these connections."""


class ShardEffects:
    answers = True  # an operation's reply carries its result

    def __init__(self, shards: list[list[Endpoint]], name: str, timeout_s: float) -> None:
        self.endpoints = shards
        self.name = name
        self.timeout = timeout_s
        self.peers: list[list[Peer]] = []
        self.majority = [len(replicas) // 2 + 1 for replicas in shards]

    def start(self) -> None:
        self.peers = [[Peer(e.host, e.port, _drop, name=f"{self.name}->shard{s}.{r}").start()
                       for r, e in enumerate(replicas)]
                      for s, replicas in enumerate(self.endpoints)]

    def stop(self) -> None:
        for replicas in self.peers:
            for peer in replicas:
                peer.stop()

    def finished(self, effect: Effect, result: ShardResult) -> bool:
        return result.status != UNAVAILABLE

    def failed(self, result: ShardResult) -> bool:
        return result.status == BAD

    async def run(self, effect: Effect) -> ShardResult:
        if not isinstance(effect, ZkCall):
            raise TypeError(f"no runner for {type(effect).__name__}")
        try:
            return await self._run(effect)
        except Unavailable:
            return ShardResult(UNAVAILABLE)
        except _Refused as exc:
            log.error("shards refused %s: %s", effect.key, exc)
            return ShardResult(BAD)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            # A shard's answer that makes no sense, or an operation the coordinator cannot
            # run: never retried (it would fail alike), never the end of the replica.
            log.error("cannot carry %s to the shards: %s", effect.key, exc)
            return ShardResult(BAD)

    async def _run(self, call: ZkCall) -> ShardResult:
        if call.noops or call.txn is None:
            await asyncio.gather(*(self._noop(space, first, last)
                                   for space, first, last in call.noops))
            return ShardResult(OK, call.settled)
        if call.local:
            return ShardResult(OK, await self._local(call, call.txn))
        return ShardResult(OK, await self._transaction(call, call.txn))

    async def _noop(self, space: int, first: int, last: int) -> None:
        msg = wire.ShardCall(space, first, last, wire.SHARD_NOOP, client_id=-1)
        await self._ask(space, msg, self.majority[space])

    async def _local(self, call: ZkCall, txn: Txn) -> bytes:
        shard, number = call.numbers[0]
        msg = wire.ShardCall(shard, number, number, wire.SHARD_EXEC, call.key[0], call.key[1],
                             call.origin, _encoder.encode(txn))
        replies = await self._ask(shard, msg, self.majority[shard])
        first = replies[0]
        if first.status == wire.SHARD_FORGOTTEN:
            # Executed so long ago that no replica keeps its answer: the client cannot be
            # told what happened (ZooKeeper's answer for a lost connection).
            return encode_answer(Answer(ErrorResult(Err.CONNECTION_LOSS), txn.zxid))
        result = _result_decoder.decode(first.body)
        return encode_answer(Answer(result, txn.zxid, [(shard, first.event_floor)]))

    async def _transaction(self, call: ZkCall, txn: Txn) -> bytes:
        numbers = dict(call.numbers)
        run = TxnRun(txn, len(self.endpoints))
        outcome: TxnOutcome | None = None
        asked: set[int] = set()
        while outcome is None:
            wanted = run.wanted()
            if not wanted:
                outcome = run.outcome()
                break
            shards = sorted(wanted)
            replies = await asyncio.gather(*(
                self._ask(s, wire.ShardCall(
                    s, numbers[s], numbers[s],
                    wire.SHARD_READ if s in asked else wire.SHARD_HOLD,
                    call.key[0], call.key[1], call.origin,
                    b"" if s in asked else _encoder.encode(txn),
                    _encoder.encode(wanted[s])), 1)
                for s in shards))
            asked.update(shards)
            for shard, got in zip(shards, replies, strict=True):
                reply = got[0]
                if reply.status == wire.SHARD_DECIDED:
                    outcome = _outcome_decoder.decode(reply.body)
                    break
                if reply.status == wire.SHARD_FORGOTTEN:
                    return encode_answer(Answer(ErrorResult(Err.CONNECTION_LOSS), txn.zxid))
                run.feed(shard, _views_decoder.decode(reply.body))
        body = _encoder.encode(outcome)
        touched = sorted(numbers)
        decided = await asyncio.gather(*(
            self._ask(s, wire.ShardCall(s, numbers[s], numbers[s], wire.SHARD_DECIDE,
                                        call.key[0], call.key[1], call.origin, body),
                      self.majority[s])
            for s in touched))
        floors = [(s, max(r.event_floor for r in replies))
                  for s, replies in zip(touched, decided, strict=True)]
        return encode_answer(Answer(outcome.result, txn.zxid, floors))

    async def _ask(self, shard: int, msg: wire.ShardCall, need: int) -> list[wire.ShardReply]:
        """Send `msg` to every replica of `shard`; the first `need` good answers, in arrival
        order. Raises Unavailable when fewer arrive before the deadline."""
        calls: list[Awaitable[object]] = [peer.call(msg, self.timeout)
                                          for peer in self.peers[shard]]
        waiting = {asyncio.ensure_future(c) for c in calls}
        got: list[wire.ShardReply] = []
        bad: list[str] = []
        while waiting and len(got) < need:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                if fut.exception() is not None:
                    continue
                reply = fut.result()
                if not isinstance(reply, wire.ShardReply):
                    continue
                if reply.status == wire.SHARD_BAD:
                    bad.append(reply.body.decode(errors="replace"))
                else:
                    got.append(reply)
        for fut in waiting:  # answers nobody waits for any more
            fut.add_done_callback(_consume)
        if len(got) >= need:
            return got
        if len(bad) >= self.majority[shard]:
            raise _Refused(bad[0])
        raise Unavailable


class _Refused(Exception):
    pass


def _consume(fut: asyncio.Future[object]) -> None:
    if not fut.cancelled():
        fut.exception()
