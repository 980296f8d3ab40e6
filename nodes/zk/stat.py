"""A znode's Stat, in ZooKeeper's field order (the order jute writes it in)."""

from __future__ import annotations

import msgspec


class Stat(msgspec.Struct, frozen=True, array_like=True):
    czxid: int  # zxid of the create
    mzxid: int  # zxid of the last setData (or the create)
    ctime: int  # ms since the epoch, from the log entry that created the node
    mtime: int
    version: int  # number of setData since the create
    cversion: int  # number of child creates and deletes
    aversion: int  # number of setACL
    ephemeralOwner: int  # session id of an ephemeral node's owner, 0 otherwise
    dataLength: int
    numChildren: int
    pzxid: int  # zxid of the last change to the children
