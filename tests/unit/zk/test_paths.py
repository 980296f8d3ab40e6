"""znode path validation (ZooKeeper's PathUtils) and the parent/name split."""

import pytest

from nodes.zk import paths

VALID = ["/", "/a", "/a/b", "/a.b/c..d", "/...", "/zookeeper", "/a-b_c 1", "/é/ü", "/a/b/c/d"]
INVALID = ["", "a", "a/b", "/a/", "//", "/a//b", "/.", "/..", "/a/.", "/a/../b", "/a\0b",
           "/a\x01", "/a\x1f", "/a\x7f", "/a\x9f", "/a\ud800", "/a\uf8ff", "/a\ufff0", "/a\uffff",
           "/a\U0001f600"]


@pytest.mark.parametrize("path", VALID)
def test_valid_paths_pass(path):
    paths.validate(path)


@pytest.mark.parametrize("path", INVALID)
def test_invalid_paths_raise(path):
    with pytest.raises(paths.BadPath):
        paths.validate(path)


def test_sequential_prefixes_may_end_with_a_slash():
    paths.validate("/q/", sequential=True)
    paths.validate("/", sequential=True)
    with pytest.raises(paths.BadPath):
        paths.validate("/q//", sequential=True)
    with pytest.raises(paths.BadPath):
        paths.validate("/q/", sequential=False)


def test_unicode_just_outside_the_forbidden_ranges_is_allowed():
    for c in ("\x20", "\xa0", "\ud7ff", "\uf900", "\uffef"):
        paths.validate("/a" + c)


def test_parent_name_join_and_ancestors():
    assert paths.parent("/") == "/"
    assert paths.parent("/a") == "/"
    assert paths.parent("/a/b/c") == "/a/b"
    assert paths.name("/a/b") == "b" and paths.name("/") == ""
    assert paths.join("/", "a") == "/a" and paths.join("/a", "b") == "/a/b"
    assert paths.ancestors("/a/b/c") == ["/a/b", "/a", "/"]
    assert paths.ancestors("/") == []
