"""`<name>.entries`: what a log server held when it stopped, for the log checker.

Writer and reader of the format live here. A text file:

    # mason log-server entries of logserver-0-0
    # chain <c> epoch <e> members <i,j|-> prefix <p>, then: chain position kind digest
    chain 0 epoch 2 members 1,2 prefix 0
    0 0 data 5f1c0e2a9b7d3c41
    0 4 hole -
    0 8 trimmed -

* One `chain` line per chain the server holds, before that chain's position lines: the
  chain's epoch and its view at the last seal (`-` = never sealed: the configured chain)
  and its prefix trim (every position below it is trimmed).
* One line per held position, ascending by chain then position: `data` with the digest of
  its bytes (nodes.logserver.values.digest), `hole` (a fill) and `trimmed` (a single
  trimmed position at or above the prefix) with digest `-`. Unwritten positions have no
  line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

DATA, HOLE, TRIMMED = "data", "hole", "trimmed"
KINDS = (DATA, HOLE, TRIMMED)
NO_DIGEST = "-"


class DumpFormatError(ValueError):
    """A malformed dump; the message names the file and the line."""


@dataclass
class ChainState:
    epoch: int = 0
    members: list[int] = field(default_factory=list)  # [] = never sealed
    prefix: int = 0


class Held(NamedTuple):
    chain: int
    kind: str  # DATA, HOLE or TRIMMED
    digest: str  # NO_DIGEST unless kind is DATA


@dataclass
class EntryDump:
    name: str
    chains: dict[int, ChainState] = field(default_factory=dict)
    entries: dict[int, Held] = field(default_factory=dict)  # position -> what it holds

    def state_of(self, position: int, chain: int) -> Held | None:
        """What this replica holds at `position` of `chain`: None when unwritten (or when the
        replica does not hold the chain); positions below the prefix read as trimmed."""
        st = self.chains.get(chain)
        if st is None:
            return None
        if position < st.prefix:
            return Held(chain, TRIMMED, NO_DIGEST)
        return self.entries.get(position)


def write_dump(path: str | os.PathLike[str], dump: EntryDump) -> None:
    """Written beside the target and renamed, so a reader never sees half a file."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    by_chain: dict[int, list[int]] = {c: [] for c in dump.chains}
    for position, held in dump.entries.items():
        if held.chain not in by_chain:
            raise ValueError(f"position {position} is on chain {held.chain}, not in the dump")
        by_chain[held.chain].append(position)
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(f"# mason log-server entries of {dump.name}\n")
        out.write("# chain <c> epoch <e> members <i,j|-> prefix <p>,"
                  " then: chain position kind digest\n")
        for chain in sorted(by_chain):
            st = dump.chains[chain]
            members = ",".join(map(str, st.members)) or "-"
            out.write(f"chain {chain} epoch {st.epoch} members {members} prefix {st.prefix}\n")
            for position in sorted(by_chain[chain]):
                held = dump.entries[position]
                out.write(f"{chain} {position} {held.kind} {held.digest}\n")
    os.replace(tmp, target)


def read_dump(path: str | os.PathLike[str]) -> EntryDump:
    """Raises DumpFormatError naming the line when the file is not a dump."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DumpFormatError(f"{path}: {exc}") from None
    name = path.name.removesuffix(".entries")
    dump = EntryDump(name)
    for lineno, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            if fields[0] == "chain":
                dump.chains[_int(fields[1])] = _chain_state(fields)
                continue
            if len(fields) != 4:
                raise ValueError("expected 'chain position kind digest'")
            chain, position, kind, dig = _int(fields[0]), _int(fields[1]), fields[2], fields[3]
            if chain not in dump.chains:
                raise ValueError(f"chain {chain} has no 'chain' line before it")
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
            if (kind == DATA) == (dig == NO_DIGEST):
                raise ValueError(f"a {kind} line with digest {dig!r}")
            if position in dump.entries:
                raise ValueError(f"position {position} listed twice")
            dump.entries[position] = Held(chain, kind, dig)
        except (ValueError, IndexError) as exc:
            raise DumpFormatError(f"{path}:{lineno}: {exc}: {line.strip()[:80]!r}") from None
    return dump


def _int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"negative number {value}")
    return value


def _chain_state(fields: list[str]) -> ChainState:
    if len(fields) != 8 or fields[2:7:2] != ["epoch", "members", "prefix"]:
        raise ValueError("expected 'chain <c> epoch <e> members <list|-> prefix <p>'")
    members = [] if fields[5] == "-" else [_int(m) for m in fields[5].split(",")]
    return ChainState(_int(fields[3]), members, _int(fields[7]))
