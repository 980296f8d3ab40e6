"""znode paths: ZooKeeper's validation rules (PathUtils.validatePath) and the parent/name split.

A valid path is absolute, has no empty segment, no "." or ".." segment, does not end in "/"
(except the root itself) and holds no null, control, surrogate or private-use character.
"""

from __future__ import annotations

ROOT = "/"


class BadPath(ValueError):
    """A path ZooKeeper refuses (answered with BadArguments)."""


def _invalid_char(c: str) -> bool:
    o = ord(c)
    return (
        0x00 < o <= 0x1F
        or 0x7F <= o <= 0x9F
        or 0xD800 <= o <= 0xF8FF
        or 0xFFF0 <= o
    )  # above U+FFFF: Java sees a surrogate pair, which ZooKeeper refuses


def validate(path: str, *, sequential: bool = False) -> None:
    """Raise BadPath unless `path` is a valid znode path.

    A sequential create's path is completed by a numeric suffix, so it is checked as ZooKeeper
    checks it: with a digit appended ("/q/" is a valid sequential prefix)."""
    if sequential:
        path = path + "1"
    if not path:
        raise BadPath("path must not be empty")
    if path[0] != "/":
        raise BadPath(f"path must start with / : {path!r}")
    if path == ROOT:
        return
    if path[-1] == "/":
        raise BadPath(f"path must not end with / : {path!r}")
    for segment in path[1:].split("/"):
        if not segment:
            raise BadPath(f"empty node name in {path!r}")
        if segment in (".", ".."):
            raise BadPath(f"relative paths not allowed: {path!r}")
    for c in path:
        if c == "\x00":
            raise BadPath(f"null character in {path!r}")
        if _invalid_char(c):
            raise BadPath(f"invalid character U+{ord(c):04X} in {path!r}")


def parent(path: str) -> str:
    """The parent of a valid path; the root is its own parent."""
    cut = path.rfind("/")
    return ROOT if cut <= 0 else path[:cut]


def name(path: str) -> str:
    """The last segment of a valid path ("" for the root)."""
    return path[path.rfind("/") + 1:]


def join(parent_path: str, child: str) -> str:
    return ("" if parent_path == ROOT else parent_path) + "/" + child


def ancestors(path: str) -> list[str]:
    """Every proper ancestor of a valid path, nearest first, ending with the root."""
    out: list[str] = []
    while path != ROOT:
        path = parent(path)
        out.append(path)
    return out
