"""Between the wire and the tree: wire request records (nodes/zk/wire.py) to the tree's
typed requests (nodes/zk/requests.py), and the tree's results back to reply frames.

The one place that knows which opcode answers with which body shape: several opcodes share
one tree request (create, create2, createContainer and createTTL are all a `Create`), so the
reply is shaped from the wire record that asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from nodes.zk import requests as rq
from nodes.zk import results as rs
from nodes.zk import wire
from nodes.zk.codes import AddWatchMode, CreateMode, Err
from nodes.zk.results import ZkError

# Tree requests that change nothing: with local reads a replica serves them on its own.
LOCAL_READS = (rq.GetData, rq.Exists, rq.GetChildren, rq.GetAcl, rq.GetEphemerals,
               rq.GetAllChildrenNumber, rq.MultiRead, rq.AddWatch)


# Requests that are a path and a watch flag, or a path alone, on both sides.
_WATCHING_READS: dict[type, type[rq.GetData | rq.Exists | rq.GetChildren]] = {
    wire.GetDataRequest: rq.GetData, wire.ExistsRequest: rq.Exists,
    wire.GetChildrenRequest: rq.GetChildren, wire.GetChildren2Request: rq.GetChildren}
_PATH_ONLY: dict[type, type[rq.GetAcl | rq.Sync | rq.GetEphemerals | rq.GetAllChildrenNumber]] = {
    wire.GetACLRequest: rq.GetAcl, wire.SyncRequest: rq.Sync,
    wire.GetEphemeralsRequest: rq.GetEphemerals,
    wire.GetAllChildrenNumberRequest: rq.GetAllChildrenNumber}


def _mode(flags: int) -> CreateMode:
    try:
        return CreateMode(flags)
    except ValueError:
        raise ZkError(Err.BAD_ARGUMENTS, f"create flags {flags}") from None


def _create(body: wire.CreateRequest) -> rq.Create:
    if isinstance(body, wire.CreateContainerRequest):
        mode = CreateMode.CONTAINER
    else:
        mode = _mode(body.flags)
    ttl = body.ttl if isinstance(body, wire.CreateTTLRequest) else 0
    return rq.Create(body.path, body.data, list(body.acl), mode, ttl)


def _multi_op(body: wire.Record) -> rq.MultiOp:
    if isinstance(body, wire.CreateRequest):
        return _create(body)
    if isinstance(body, wire.DeleteRequest):
        return rq.Delete(body.path, body.version)
    if isinstance(body, wire.SetDataRequest):
        return rq.SetData(body.path, body.data, body.version)
    if isinstance(body, wire.CheckVersionRequest):
        return rq.Check(body.path, body.version)
    raise ZkError(Err.BAD_ARGUMENTS, f"{type(body).__name__} in a multi")


def to_request(body: wire.Record) -> rq.Request:
    """The tree request for a wire record that goes to the tree; ZkError (answered with its
    code) for a meaning the tree cannot take, TypeError for a record the connection itself
    serves (ping, auth, setWatches, ...)."""
    if isinstance(body, wire.CreateRequest):
        return _create(body)
    if isinstance(body, (wire.DeleteRequest, wire.SetDataRequest, wire.CheckVersionRequest)):
        return _multi_op(body)
    if isinstance(body, (wire.GetDataRequest, wire.ExistsRequest, wire.GetChildrenRequest,
                         wire.GetChildren2Request)):
        return _WATCHING_READS[type(body)](body.path, body.watch)
    if isinstance(body, (wire.GetACLRequest, wire.SyncRequest, wire.GetEphemeralsRequest,
                         wire.GetAllChildrenNumberRequest)):
        return _PATH_ONLY[type(body)](body.path)
    if isinstance(body, wire.SetACLRequest):
        return rq.SetAcl(body.path, list(body.acl), body.version)
    if isinstance(body, wire.AddWatchRequest):
        try:
            mode = AddWatchMode(body.mode)
        except ValueError:
            raise ZkError(Err.BAD_ARGUMENTS, f"addWatch mode {body.mode}") from None
        return rq.AddWatch(body.path, mode)
    if isinstance(body, wire.MultiRequest):
        return rq.Multi([_multi_op(op) for op in body.ops])
    if isinstance(body, wire.MultiReadRequest):
        reads: list[rq.GetData | rq.GetChildren] = [
            rq.GetData(op.path) if isinstance(op, wire.GetDataRequest)
            else rq.GetChildren(op.path) for op in body.ops]
        return rq.MultiRead(reads)
    if isinstance(body, wire.CloseSessionRequest):
        return rq.CloseSession()
    raise TypeError(f"{type(body).__name__} is not a tree request")


def set_watches(body: wire.SetWatchesRequest) -> rq.SetWatches:
    persistent: tuple[str, ...] = ()
    recursive: tuple[str, ...] = ()
    if isinstance(body, wire.SetWatches2Request):
        persistent, recursive = body.persistent_watches, body.persistent_recursive_watches
    return rq.SetWatches(body.relative_zxid, list(body.data_watches), list(body.exist_watches),
                         list(body.child_watches), list(persistent), list(recursive))


# ---- results back to the wire -------------------------------------------------------------


def _multi_results(ops: Sequence[wire.Record], results: Sequence[rs.OpResult]
                   ) -> list[wire.OpResult]:
    out: list[wire.OpResult] = []
    for op, result in zip(ops, results, strict=True):
        if isinstance(result, rs.ErrorResult):
            out.append(wire.ErrorResult(result.err))
        elif isinstance(result, rs.CreateResult):
            if type(op) is wire.CreateRequest:
                out.append(wire.CreateResult(result.path))
            else:
                out.append(wire.Create2Result(result.path, result.stat))
        elif isinstance(result, rs.StatResult):
            out.append(wire.SetDataResult(result.stat))
        elif isinstance(op, wire.DeleteRequest):
            out.append(wire.DeleteResult())
        else:
            out.append(wire.CheckResult())
    return out


def _read_results(results: Sequence[rs.ErrorResult | rs.DataResult | rs.ChildrenResult]
                  ) -> list[wire.OpResult]:
    out: list[wire.OpResult] = []
    for result in results:
        if isinstance(result, rs.ErrorResult):
            out.append(wire.ErrorResult(result.err))
        elif isinstance(result, rs.DataResult):
            out.append(wire.GetDataResult(result.data, result.stat))
        else:
            out.append(wire.GetChildrenResult(tuple(result.children)))
    return out


def reply_body(body: wire.Record, result: rs.Result) -> bytes:
    """The reply body, shaped by the opcode that asked, for a successful result."""
    if isinstance(result, rs.CreateResult):
        if type(body) is wire.CreateRequest:
            return wire.path_body(result.path)
        return wire.path_stat_body(result.path, result.stat)
    if isinstance(result, rs.StatResult):
        return wire.stat_body(result.stat)
    if isinstance(result, rs.DataResult):
        return wire.data_stat_body(result.data, result.stat)
    if isinstance(result, rs.ChildrenResult):
        if isinstance(body, wire.GetChildren2Request):
            return wire.children_stat_body(result.children, result.stat)
        return wire.children_body(result.children)
    if isinstance(result, rs.AclResult):
        return wire.acl_stat_body(result.acl, result.stat)
    if isinstance(result, rs.PathResult):
        return wire.path_body(result.path)
    if isinstance(result, rs.PathsResult):
        return wire.children_body(result.paths)
    if isinstance(result, rs.CountResult):
        return wire.int_body(result.count)
    if isinstance(result, rs.MultiResult):
        assert isinstance(body, wire.MultiRequest)
        return wire.multi_body(_multi_results(body.ops, result.results))
    if isinstance(result, rs.MultiReadResult):
        return wire.multi_body(_read_results(result.results))
    if isinstance(body, wire.AddWatchRequest):
        return wire.int_body(0)
    return b""


def reply(xid: int, zxid: int, body: wire.Record, result: rs.Result) -> bytes:
    """The whole reply frame. A failed multi is no error at the header (every op says what
    happened to it); any other failure is the header's code alone."""
    if isinstance(result, rs.ErrorResult):
        return wire.error_reply(xid, zxid, result.err)
    return wire.reply_frame(xid, zxid, 0, reply_body(body, result))
