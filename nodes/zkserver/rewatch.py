"""setWatches on a ZK-Mason proxy replica: a client that moved here re-registers its
watches, and this replica holds no tree to check them against.

So every watched path goes through the log to its shard as a sequenced read of the
session that leaves the watch's interest for this replica there (the shard then sends
this replica the path's later changes): exists(watch) for a data or exist watch,
getChildren(watch) for a child watch, addWatch for a persistent one. The read's stat is
the node as of the read's number, and the one-shot watch is decided against it exactly as
a replica that holds the tree decides it (watches.py: fired at once when it changed after
the client's last zxid, else registered); a change after the read reaches this replica
as an event, after the answer (answers wait for the events before them), so it fires the
registered watch.

The reads are the session's own (a closed session's are refused) but this replica's
internal operations: their answers come back here (`ZkListener.submit_internal`), never
to the client, whose connection only waits for them before its later replies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nodes.zk.codes import AddWatchMode, Err
from nodes.zk.machine import Applied
from nodes.zk.requests import AddWatch, Exists, GetChildren, Request, SetWatches
from nodes.zk.results import ChildrenResult, StatResult, error_of
from nodes.zk.stat import Stat
from nodes.zk.watches import Rewatch, one_shots, persistents

if TYPE_CHECKING:
    from nodes.zkserver.connection import ZkConnection
    from nodes.zkserver.listener import ZkListener


def rewatch_at_shards(listener: ZkListener, conn: ZkConnection, request: SetWatches,
                      done: Callable[[], None]) -> None:
    """Re-register `request`'s watches for `conn`'s session; `done` once every path is
    decided (its notification sent or its watch registered)."""
    session = conn.session
    asks: list[tuple[Request, Callable[[Applied], None]]] = []

    def here() -> bool:
        # The answer may come after the connection closed or the session moved on.
        return not conn.closed and listener.sessions.get(session) is conn

    def one_shot(kind: Rewatch, path: str) -> Callable[[Applied], None]:
        def decide(applied: Applied) -> None:
            answered, stat = _stat_of(applied)
            if answered and here():
                fired = listener.watch_table.rewatch(session, kind, path, stat,
                                                     request.relative_zxid)
                if fired is not None:
                    listener.deliver(fired)
        return decide

    for kind, path in one_shots(request):
        read = (GetChildren(path, watch=True) if kind == Rewatch.CHILD
                else Exists(path, watch=True))
        asks.append((read, one_shot(kind, path)))
    def persistent(path: str, mode: AddWatchMode) -> Callable[[Applied], None]:
        def register(applied: Applied) -> None:
            if error_of(applied.result) == Err.OK and here():
                listener.watch_table.add_persistent(session, path, mode)
        return register

    for path, mode in persistents(request):
        asks.append((AddWatch(path, mode), persistent(path, mode)))

    left = len(asks)
    if not left:
        done()
        return

    def answered(then: Callable[[Applied], None]) -> Callable[[Applied], None]:
        def on_answer(applied: Applied) -> None:
            nonlocal left
            then(applied)
            left -= 1
            if left == 0:
                done()
        return on_answer

    for ask, then in asks:
        listener.submit_internal(session, ask, answered(then))


def _stat_of(applied: Applied) -> tuple[bool, Stat | None]:
    """Whether a rewatch read answered the node's state, and its stat (None: no such node).
    A read refused otherwise (the session expired) decides nothing."""
    result = applied.result
    if isinstance(result, (StatResult, ChildrenResult)):
        return True, result.stat
    return error_of(result) == Err.NO_NODE, None
