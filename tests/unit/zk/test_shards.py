"""The shard rule: normalize, shard_of, plan, counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes.zk import requests as rq
from nodes.zk.codes import AddWatchMode, CreateMode
from nodes.zk.shards import Plan, counts, create_shard, normalize, plan, shard_of


@pytest.mark.parametrize(("path", "key"), [
    ("/", "/"),
    ("/a", "/a"),
    ("/q/n0000000003", "/q/n"),
    ("/q/lock--000000001", "/q/lock-"),  # a wrapped (negative) counter
    ("/q/0000000004", "/q/"),  # a sequential create of "/q/": the name is the suffix
    ("/q/n000000003", "/q/n000000003"),  # nine digits: no suffix
    ("/q0000000001/n", "/q0000000001/n"),  # only the last segment
    ("/q/n0000000000000000001", "/q/n000000000"),  # one suffix only
    ("/q/n-00000001", "/q/n-00000001"),
])
def test_normalize_strips_one_sequential_suffix_of_the_last_segment(path: str,
                                                                     key: str) -> None:
    assert normalize(path) == key


def test_shard_of_is_blake2b_of_the_normalized_path() -> None:
    import hashlib
    digest = hashlib.blake2b(b"/q/n", digest_size=8).digest()
    assert shard_of("/q/n0000000007", 5) == int.from_bytes(digest, "big") % 5
    assert shard_of("/anything", 1) == 0
    with pytest.raises(ValueError, match="nshards"):
        shard_of("/a", 0)
    with pytest.raises(ValueError, match="nshards"):
        plan(rq.Sync("/a"), 0)


cversions = st.integers(-999_999_999, 2**31 - 1)
prefixes = st.text(max_size=12).map(lambda s: "/" + s)


@given(prefixes, cversions, st.integers(1, 7))
def test_every_name_a_sequential_create_can_take_lives_where_the_plan_says(
        prefix: str, cversion: int, nshards: int) -> None:
    create = rq.Create(prefix, mode=CreateMode.EPHEMERAL_SEQUENTIAL)
    made = f"{prefix}{cversion:010d}"
    assert shard_of(made, nshards) == create_shard(create, nshards)
    assert shard_of(made, nshards) in plan(create, nshards).shards


def test_plan_touches_node_and_parent_for_create_and_delete() -> None:
    n = 8
    for request in (rq.Create("/a/b"), rq.Delete("/a/b")):
        p = plan(request, n)
        assert p.shards == tuple(sorted({shard_of("/a/b", n), shard_of("/a", n)}))
        assert p.local == (len(p.shards) == 1)
        assert set(p.paths) == {"/a/b", "/a"}
    seq = plan(rq.Create("/a/b", mode=CreateMode.PERSISTENT_SEQUENTIAL), n)
    assert seq.paths == ("/a",)  # the name is not known before the parent's cversion


def test_plan_of_single_node_ops_multis_and_every_shard_ops() -> None:
    n = 6
    request: rq.Request
    for request in (rq.SetData("/x", b""), rq.GetData("/x"), rq.Exists("/x"),
                    rq.GetChildren("/x"), rq.GetAcl("/x"), rq.SetAcl("/x", []),
                    rq.Check("/x"), rq.Sync("/x"), rq.AddWatch("/x")):
        assert plan(request, n) == Plan((shard_of("/x", n),), True, ("/x",))
    everything = tuple(range(n))
    for request in (rq.CloseSession(), rq.Tick(), rq.GetEphemerals(),
                    rq.GetAllChildrenNumber("/x"),
                    rq.AddWatch("/x", AddWatchMode.PERSISTENT_RECURSIVE)):
        assert plan(request, n).shards == everything
        assert not plan(request, n).local
    for request in (rq.CreateSession(1000), rq.Ping()):
        assert plan(request, n) == Plan((), False, ())
    multi = rq.Multi([rq.SetData("/x", b""), rq.Delete("/y/z"), rq.Check("/x")])
    assert set(plan(multi, n).shards) == {shard_of(p, n) for p in ("/x", "/y/z", "/y")}
    assert plan(multi, n).paths == ("/x", "/y/z", "/y")
    reads = rq.MultiRead([rq.GetData("/x"), rq.GetChildren("/w")])
    assert set(plan(reads, n).shards) == {shard_of("/x", n), shard_of("/w", n)}
    assert plan(rq.Multi([]), n) == Plan((shard_of("/", n),), True, ())


def test_counts_mark_the_touched_spaces() -> None:
    assert counts(Plan((0, 2), False), 4) == [1, 0, 1, 0]
    assert counts(Plan((), False), 3) == [0, 0, 0]


any_path = st.text(max_size=20)
any_request = st.one_of(
    st.builds(lambda p, m: rq.Create(p, mode=m), any_path, st.sampled_from(list(CreateMode))),
    st.builds(rq.Delete, any_path), st.builds(rq.SetData, any_path, st.just(b"")),
    st.builds(rq.GetData, any_path), st.builds(rq.GetAllChildrenNumber, any_path),
    st.builds(rq.AddWatch, any_path, st.sampled_from(list(AddWatchMode))),
    st.builds(lambda ps: rq.Multi([rq.Delete(p) for p in ps]), st.lists(any_path, max_size=3)),
)


@given(any_request, st.integers(1, 5))
def test_plan_never_raises_and_is_sorted_and_distinct(request: rq.Request,
                                                      nshards: int) -> None:
    p = plan(request, nshards)
    assert list(p.shards) == sorted(set(p.shards))
    assert all(0 <= k < nshards for k in p.shards)
    assert p.local == (len(p.shards) == 1)
