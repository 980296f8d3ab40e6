"""The znode store's own invariants (nodes/zk/tree.py): the calls it refuses, the multi
journal's rollback of every change, and nodes put back from a snapshot."""

from __future__ import annotations

import pytest

from nodes.zk.requests import OPEN_ACL_UNSAFE, Acl
from nodes.zk.tree import DataTree, Znode

READ_ONLY = [Acl(1, "world", "anyone")]


def look(tree: DataTree) -> dict[str, tuple[object, ...]]:
    """Everything a client could read, and the ephemeral index."""
    return {path: (node.stat(), node.data, list(node.acl), sorted(node.children))
            for path, node in tree.items()} | {"ephemerals": (repr(tree.ephemerals),)}


def test_a_node_created_without_an_owner_is_persistent():
    tree = DataTree()
    node = tree.create("/a", b"x", OPEN_ACL_UNSAFE, 1, 10)
    assert node.ephemeral_owner == 0 and tree.ephemerals == {}
    tree.create("/a/b", b"", OPEN_ACL_UNSAFE, 2, 10)  # it may have children
    assert sorted(tree.get("/a").children) == ["b"]


def test_the_tree_refuses_what_would_break_it():
    tree = DataTree()
    tree.create("/a", b"", OPEN_ACL_UNSAFE, 1, 10)
    tree.create("/e", b"", OPEN_ACL_UNSAFE, 2, 10, ephemeral_owner=7)
    tree.create("/a/b", b"", OPEN_ACL_UNSAFE, 3, 10)
    before = look(tree)
    with pytest.raises(ValueError, match="^cannot create '/a'$"):
        tree.create("/a", b"", OPEN_ACL_UNSAFE, 4, 10)
    with pytest.raises(ValueError, match="^cannot create '/e/x'$"):
        tree.create("/e/x", b"", OPEN_ACL_UNSAFE, 4, 10)
    with pytest.raises(ValueError, match="^cannot delete '/a'$"):
        tree.delete("/a", 4)
    for special in ("/zookeeper/quota", "/zookeeper/config"):
        with pytest.raises(ValueError, match=f"^cannot delete '{special}'$"):
            tree.delete(special, 4)
    assert look(tree) == before


def test_a_rollback_undoes_every_change_of_the_journal():
    tree = DataTree()
    tree.create("/p", b"keep", OPEN_ACL_UNSAFE, 1, 10)
    tree.create("/p/c", b"", OPEN_ACL_UNSAFE, 2, 10, ephemeral_owner=7)
    tree.create("/r", b"", OPEN_ACL_UNSAFE, 2, 10)
    before = look(tree)
    tree.begin()
    tree.delete("/p/c", 3)  # each call the first change of its nodes in this journal
    tree.set_acl("/r", READ_ONLY)
    tree.set_data("/p", b"gone", 3, 20)
    tree.create("/q", b"", OPEN_ACL_UNSAFE, 3, 20)
    tree.rollback()
    assert look(tree) == before
    assert tree.get("/r").acl == list(OPEN_ACL_UNSAFE) and tree.ephemerals_of(7) == ["/p/c"]


def test_a_restored_node_replaces_a_starting_one_in_place():
    tree = DataTree()
    root = Znode(b"snap", list(OPEN_ACL_UNSAFE), 0, 0)
    tree.restore_node("/", root)  # as a snapshot's first node: nothing below it is restored yet
    assert tree.get("/") is root and sorted(root.children) == ["zookeeper"]
    owned = Znode(b"", list(OPEN_ACL_UNSAFE), 0, 0, ephemeral_owner=9)
    tree.restore_node("/zookeeper/quota", owned)
    assert tree.get("/zookeeper/quota") is owned and tree.ephemerals_of(9) == ["/zookeeper/quota"]
    assert sorted(tree.get("/zookeeper").children) == ["config", "quota"]
