"""`layout.json`: the shared log's layout of one run (corfu, corfumason), writer and reader.

The orchestrator writes it into the results directory when the run starts; the log
checker reads it to know which log-server dumps (`<name>.entries`) hold which chain.
Position p is on chain `p mod nchains` (nodes/logserver/layout.py); `chains[c]` names
chain c's log-server processes head first, tail last.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

LAYOUT_FILE = "layout.json"


class LogLayout(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    nchains: int
    replication: int  # replicas per chain
    entry_size: int  # bytes per appended entry
    chains: list[list[str]]  # per chain, log-server process names, head first


def write_layout(run_dir: str | Path, layout: LogLayout) -> Path:
    path = Path(run_dir) / LAYOUT_FILE
    path.write_bytes(msgspec.json.encode(layout) + b"\n")
    return path


def read_layout(run_dir: str | Path) -> LogLayout:
    """Raises ValueError with a one-line reason when there is no readable layout."""
    path = Path(run_dir) / LAYOUT_FILE
    try:
        layout = msgspec.json.decode(path.read_bytes(), type=LogLayout)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if len(layout.chains) != layout.nchains or any(
            len(chain) != layout.replication for chain in layout.chains):
        raise ValueError(f"{path}: {layout.nchains} chains of {layout.replication} expected, "
                         f"found {[len(c) for c in layout.chains]}")
    return layout
