"""The closed loop: `connections` ZooKeeper sessions x `concurrency` outstanding requests.

Key space (private to the process, as the original's keys were to a client thread): key i
is `<prefix>/c<client>-<i>/k`; its parent `<prefix>/c<client>-<i>` is what getChildren
lists. The set-up phase, on the first session, creates the prefix, the parents and the keys
with a `value_size`-byte value (a key left by an earlier run is reset with setData), before
the warm-up starts: the original's set-up for its getDatas and setDatas experiments.

After that each slot draws a kind (mix.py) and a key uniformly, as the original did:
- create: a new sibling `<parent>/<7 random letters>` takes the key's place (the old znode
  stays); with `sequential`, a sequential znode `<parent>/n<sequence number>` instead, and
  the key stays;
- rename: a multi of delete(key) and create(new sibling) (ZooKeeper has no rename; this is
  the original's delete-and-create in one atomic step), the new name takes the key's place
  when it succeeds;
- setData (version -1, a fresh value), getData, delete (version -1; the key stays in the
  list, so later operations on it see NO_NODE, as in the original), exists, getChildren
  of the parent. Reads leave watches when `watch` is set.

Every answer is checked: its error code is counted per kind (counts.py), an OK body is
parsed, and a getData value must have `value_size` bytes. Latency runs from an operation's
first transmission to its answer (nodes/client/measure.py).

Retry policy: a request in flight when its connection is lost is sent again once the
session re-attaches (session.py); latency keeps counting from the first transmission. A
resent create can then answer NODE_EXISTS and a resent delete NO_NODE; they are counted as
answered. With `record_history` the lost attempt is recorded as of unknown fate and the
resend as a new operation, which is what a linearizability checker needs; rename is then
refused (the history has no rename), exists and getChildren are not recorded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string
import time
from pathlib import Path

from nodes import runtime
from nodes.client.measure import Measurement
from nodes.config import ZK_OP_KINDS, ZkClientConfig
from nodes.zk import wire
from nodes.zk.codes import CreateMode, Err
from nodes.zk.history import HistoryRecorder, recorded_error
from nodes.zk.jute import JuteError, Reader
from nodes.zkclient import mix
from nodes.zkclient.counts import WRONG_SIZE, KindCounts, ZkOpCounts, error_name, write_counts
from nodes.zkclient.session import Session

log = logging.getLogger("mason.zkclient")

_LETTERS = string.ascii_letters
_CONNECT_TIMEOUT_S = 30.0
# The history's name for each recorded kind (the others are not recorded).
_HISTORY_KIND = {"create": "create", "setData": "set", "getData": "get", "delete": "delete"}


class Request:
    """One operation: what was asked, where, since when; resent as is after a loss."""

    __slots__ = ("kind", "index", "path", "body", "first_ns", "session", "hist", "setup")

    def __init__(self, kind: str, index: int, path: str, body: wire.Record, session: int,
                 setup: bool = False) -> None:
        self.kind = kind
        self.index = index  # the key slot it works on (-1: a set-up node)
        self.path = path  # create, rename: the new znode
        self.body = body
        self.first_ns = time.perf_counter_ns()
        self.session = session
        self.hist = -1  # its history op id (-1: not recorded)
        self.setup = setup


class LoadGenerator:
    def __init__(self, conf: ZkClientConfig) -> None:
        self.conf = conf
        work = conf.workload
        try:
            mix.check(work)
        except mix.MixError as exc:
            raise runtime.NodeError(str(exc)) from None
        if conf.connections <= 0 or conf.concurrency <= 0:
            raise runtime.NodeError("connections and concurrency must be positive")
        if not conf.servers:
            raise runtime.NodeError("the config names no ZooKeeper server")
        if conf.session_timeout_ms <= 0 or conf.timeout_ms <= 0:
            raise runtime.NodeError("session_timeout_ms and timeout_ms must be positive")
        if conf.record_history and work.rename_percent > 0:
            raise runtime.NodeError("record_history cannot record renames: set "
                                    "rename_percent to 0")
        if conf.record_history and work.sequential and work.create_percent > 0:
            raise runtime.NodeError("record_history cannot record sequential creates (the "
                                    "server names the znode): set sequential to false")
        rng = random.Random(work.seed * 1_000_003 + conf.client_id)
        self.mix = mix.Mix(work, rng)
        self.random = rng.random
        self.randrange = rng.randrange
        self.choices = rng.choices
        self.parents = [f"{work.prefix}/c{conf.client_id}-{i}" for i in range(work.nkeys)]
        self.keys = [f"{parent}/k" for parent in self.parents]
        self.value_size = work.value_size
        self.watch = work.watch
        self.create_flags = int(CreateMode.PERSISTENT_SEQUENTIAL) if work.sequential else 0
        self.values_written = 0
        self.counts = {kind: KindCounts() for kind in ZK_OP_KINDS}
        self.measure = Measurement(conf)
        self.issuing = False
        self.outstanding = 0
        self.idle = asyncio.Event()
        self.retransmits = 0
        self.refused = 0
        self.read_misses = 0
        self.setup_ops = 0
        self.setup_left = 0
        self.setup_done = asyncio.Event()
        self.setup_error = ""
        servers = [(e.host, e.port) for e in conf.servers]
        self.sessions = [
            Session(servers, conf.client_id * conf.connections + c,
                    name=f"{conf.name}/{c}", session_timeout_ms=conf.session_timeout_ms,
                    request_timeout_ms=conf.timeout_ms, on_reply=self.on_reply,
                    on_lost=self.on_lost)
            for c in range(conf.connections)
        ]
        self.history = (
            HistoryRecorder(Path(conf.outdir) / f"{conf.name}.history", conf.client_id)
            if conf.record_history else None
        )

    # ---- values and names -----------------------------------------------------------------

    def value(self) -> bytes:
        """A fresh value of value_size bytes (distinct while it fits), for the history."""
        self.values_written += 1
        text = f"{self.conf.client_id}:{self.values_written}:".encode()
        return text.ljust(self.value_size, b".")[: self.value_size]

    def sibling(self, index: int) -> str:
        return f"{self.parents[index]}/{''.join(self.choices(_LETTERS, k=7))}"

    # ---- sending --------------------------------------------------------------------------

    def build(self, kind: str, session: int) -> Request:
        index = self.randrange(len(self.keys))
        key = self.keys[index]
        body: wire.Record
        path = key
        if kind == "setData":
            body = wire.SetDataRequest(key, self.value(), -1)
        elif kind == "getData":
            body = wire.GetDataRequest(key, self.watch)
        elif kind == "exists":
            body = wire.ExistsRequest(key, self.watch)
        elif kind == "getChildren":
            body = wire.GetChildrenRequest(self.parents[index], self.watch)
        elif kind == "delete":
            body = wire.DeleteRequest(key, -1)
        elif kind == "create":
            path = f"{self.parents[index]}/n" if self.create_flags else self.sibling(index)
            body = wire.CreateRequest(path, self.value(), wire.OPEN_ACL_UNSAFE,
                                      self.create_flags)
        else:  # rename
            path = self.sibling(index)
            body = wire.MultiRequest((
                wire.DeleteRequest(key, -1),
                wire.CreateRequest(path, self.value(), wire.OPEN_ACL_UNSAFE, 0)))
        return Request(kind, index, path, body, session)

    def send(self, req: Request) -> None:
        if self.history is not None and req.kind in _HISTORY_KIND:
            body = req.body
            if isinstance(body, wire.SetDataRequest):
                req.hist = self.history.invoke("set", body.path, body.data, body.version)
            elif isinstance(body, wire.CreateRequest):
                req.hist = self.history.invoke("create", body.path, body.data)
            elif isinstance(body, wire.DeleteRequest):
                req.hist = self.history.invoke("delete", body.path, version=body.version)
            elif isinstance(body, wire.GetDataRequest):
                req.hist = self.history.invoke("get", body.path)
        self.sessions[req.session].submit(req.body, req)

    def issue(self, session: int) -> None:
        self.outstanding += 1
        self.send(self.build(self.mix.draw(), session))

    # ---- answers --------------------------------------------------------------------------

    def on_reply(self, req: Request, header: wire.ReplyHeader, body: Reader) -> None:
        err = header.err
        version = -1
        data: bytes | None = None
        wrong_size = False
        try:
            if err == 0:
                kind = req.kind
                if kind in ("setData", "exists"):
                    version = wire.read_stat(body).version
                elif kind == "getData":
                    data = body.read_buffer() or b""
                    version = wire.read_stat(body).version
                    wrong_size = len(data) != self.value_size
                elif kind == "create":
                    body.read_ustring()
                elif kind == "getChildren":
                    body.read_ustring_vector()
                elif kind == "rename":
                    err = next((e for _, e in wire.read_multi_results(body) if e), 0)
        except JuteError as exc:
            log.error("%s answer to %s does not parse: %s", req.kind, req.path, exc)
            err = Err.MARSHALLING_ERROR
        self.record_history(req, err, data, version)
        if req.setup:
            self.setup_answered(req, err)
            return
        counts = self.counts[req.kind]
        if err == 0 and not wrong_size:
            counts.ok += 1
            if req.kind == "rename" or (req.kind == "create" and not self.create_flags):
                self.keys[req.index] = req.path
        else:
            name = WRONG_SIZE if err == 0 else error_name(err)
            counts.errors[name] = counts.errors.get(name, 0) + 1
            self.refused += 1
            if req.kind == "getData" and err == Err.NO_NODE:
                self.read_misses += 1
        self.measure.done(req.first_ns)
        if self.issuing:
            self.send(self.build(self.mix.draw(), req.session))
        else:
            self.outstanding -= 1
            if self.outstanding == 0:
                self.idle.set()

    def record_history(self, req: Request, err: int, data: bytes | None,
                       version: int) -> None:
        history = self.history
        if history is None or req.hist < 0:
            return
        if err == 0:
            if req.kind == "getData":
                history.ok(req.hist, data, version)
            elif req.kind == "setData":
                history.ok(req.hist, version=version)
            else:
                history.ok(req.hist)
            return
        try:
            name = recorded_error(Err(err))
        except ValueError:
            name = None
        if name is None:
            history.unknown(req.hist)
        else:
            history.fail(req.hist, name)

    def on_lost(self, lost: list[object]) -> None:
        """Requests whose connection dropped: their fate is open; send them again."""
        for req in lost:
            assert isinstance(req, Request)
            if self.history is not None and req.hist >= 0:
                self.history.unknown(req.hist)
                req.hist = -1
            self.retransmits += 1
            self.send(req)

    # ---- set-up -----------------------------------------------------------------------------

    async def setup(self) -> None:
        """The prefix, the parents and the keys, pipelined on the first session."""
        work = self.conf.workload
        parts = work.prefix.strip("/").split("/")
        nodes = ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        nodes += self.parents
        self.setup_left = len(nodes) + len(self.keys)
        for path in nodes:
            self.send(Request("create", -1, path,
                              wire.CreateRequest(path, b"", wire.OPEN_ACL_UNSAFE, 0), 0,
                              setup=True))
        for index, key in enumerate(self.keys):
            self.send(Request("create", index, key,
                              wire.CreateRequest(key, self.value(), wire.OPEN_ACL_UNSAFE, 0),
                              0, setup=True))
        try:
            await asyncio.wait_for(self.setup_done.wait(), _CONNECT_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise runtime.NodeError(
                f"set-up of {len(self.keys)} keys unanswered after {_CONNECT_TIMEOUT_S:g} s"
            ) from None
        if self.setup_error:
            raise runtime.NodeError(self.setup_error)

    def setup_answered(self, req: Request, err: int) -> None:
        self.setup_ops += 1
        if err == Err.NODE_EXISTS and req.index >= 0 and req.kind == "create":
            # A key left by an earlier run: give it this run's value size.
            self.send(Request("setData", req.index, req.path,
                              wire.SetDataRequest(req.path, self.value(), -1), 0, setup=True))
            return
        if err not in (0, Err.NODE_EXISTS) and not self.setup_error:
            self.setup_error = (f"set-up {req.kind} of {req.path} answered "
                                f"{error_name(err)}")
        self.setup_left -= 1
        if self.setup_left == 0:
            self.setup_done.set()

    # ---- the run ------------------------------------------------------------------------------

    async def run(self, stop: runtime.Stop) -> None:
        conf = self.conf
        for session in self.sessions:
            session.start()
        for c, session in enumerate(self.sessions):
            if not await session.wait_connected(_CONNECT_TIMEOUT_S):
                where = ", ".join(f"{e.host}:{e.port}" for e in conf.servers)
                await self.close()
                raise runtime.NodeError(f"session {c} cannot reach ZooKeeper ({where}) "
                                        f"within {_CONNECT_TIMEOUT_S:g} s")
        try:
            await self.setup()
        except runtime.NodeError:
            await self.close()
            raise
        runtime.mark_ready(conf, f"zkclient {conf.client_id}")
        self.issuing = True
        for c in range(len(self.sessions)):
            for _ in range(conf.concurrency):
                self.issue(c)
        await self.measure.timeline(stop)
        self.issuing = False
        if self.outstanding:
            self.idle.clear()
            try:
                await asyncio.wait_for(self.idle.wait(), conf.drain_s)
            except asyncio.TimeoutError:
                log.warning("%d operations unanswered after %.1f s", self.outstanding,
                            conf.drain_s)
        unanswered = self.outstanding
        await self.close()
        self.measure.write(retransmits=self.retransmits,
                           redirects=sum(s.reconnects for s in self.sessions),
                           unanswered=unanswered, read_misses=self.read_misses,
                           refused=self.refused)
        write_counts(Path(conf.outdir) / f"{conf.name}.zkops.json", ZkOpCounts(
            name=conf.name, client_id=conf.client_id,
            kinds={k: c for k, c in self.counts.items() if c.answered},
            setup_ops=self.setup_ops,
            sessions_opened=sum(s.opened for s in self.sessions),
            reconnects=sum(s.reconnects for s in self.sessions),
            sessions_expired=sum(s.expired for s in self.sessions),
            notifications=sum(s.notifications for s in self.sessions)))

    async def close(self) -> None:
        """closeSession on every session, then the history is flushed."""
        await asyncio.gather(*(s.close() for s in self.sessions))
        if self.history is not None:
            self.history.close()
            self.history = None


async def run(conf: ZkClientConfig, stop: runtime.Stop) -> None:
    await LoadGenerator(conf).run(stop)
