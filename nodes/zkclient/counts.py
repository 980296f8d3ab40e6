"""`<name>.zkops.json`: how a ZooKeeper load generator's operations were answered.

Per operation kind, the answers with err 0 and, by error name, the others; and the
session events of the run. Writer and reader of the format are both here.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from nodes.metrics import write_atomic
from nodes.zk.codes import Err

StrPath = str | os.PathLike[str]
# An answer that parsed but whose getData value had another size than every value written.
WRONG_SIZE = "WRONG_SIZE"


class CountsFormatError(ValueError):
    """A malformed counts file; the message names the file."""


class KindCounts(msgspec.Struct, forbid_unknown_fields=True):
    ok: int = 0
    errors: dict[str, int] = {}

    @property
    def answered(self) -> int:
        return self.ok + sum(self.errors.values())


class ZkOpCounts(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    client_id: int
    kinds: dict[str, KindCounts]  # operation kind (config.ZK_OP_KINDS) -> answers
    setup_ops: int  # creates (and resets) of the key space before the run
    sessions_opened: int  # sessions the servers created (a re-attach opens none)
    reconnects: int  # connections lost and re-established
    sessions_expired: int  # re-attaches refused: a new session was opened
    notifications: int  # watch events received


def error_name(code: int) -> str:
    try:
        return Err(code).name
    except ValueError:
        return str(code)


def write_counts(path: StrPath, counts: ZkOpCounts) -> None:
    write_atomic(path, msgspec.json.encode(counts) + b"\n")


def read_counts(path: StrPath) -> ZkOpCounts:
    try:
        return msgspec.json.decode(Path(path).read_bytes(), type=ZkOpCounts)
    except OSError as exc:
        raise CountsFormatError(f"{path}: {exc.strerror or exc}") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CountsFormatError(f"{path}: {exc}") from None
