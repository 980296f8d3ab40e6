"""The ZooKeeper workload: the operation mix and its draw (nodes/zkclient/mix.py), the
flags' check and the load generators' configs (orchestrator/zkworkload.py), and the
client-side reading of a multi's answers."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from nodes import config as node_config
from nodes.config import ZK_OP_KINDS, ZkWorkload
from nodes.zk import wire
from nodes.zk.codes import Err, Op
from nodes.zk.jute import JuteError, Reader
from nodes.zk.stat import Stat
from nodes.zkclient import mix
from orchestrator.placement import MachineSlot
from orchestrator.render import render
from orchestrator.spec import ExperimentSpec, SpecError
from orchestrator.zkworkload import (
    check_zk_workload,
    workload_text,
    zk_client_procs,
    zk_workload,
)
from tests.conftest import masonctl

ZERO = {field: 0.0 for field in mix.PERCENT_FIELDS.values()}


def spec(**values: object) -> ExperimentSpec:
    return msgspec.convert({"name": "t", "system": "rsmkeeper", **values}, ExperimentSpec)


# ---- normalize ------------------------------------------------------------------------------


def test_percentages_summing_to_100_are_kept() -> None:
    shares = {"write_percent": 30, "read_percent": 70}
    assert mix.normalize(shares) == {**ZERO, "write_percent": 30.0, "read_percent": 70.0}


def test_the_originals_fractions_become_percentages() -> None:
    got = mix.normalize({"create_percent": 0.1, "read_percent": 0.9})
    assert got == pytest.approx({**ZERO, "create_percent": 10.0, "read_percent": 90.0})


def test_no_share_is_the_originals_default_of_all_setdata() -> None:
    assert mix.normalize({}) == {**ZERO, "write_percent": 100.0}


@pytest.mark.parametrize(("shares", "message"), [
    ({"read_percent": 50}, "operation shares must sum to 100 (or 1, as fractions): "
     "read_percent 50 = 50"),
    ({"read_percent": 0.5, "write_percent": 0.6}, "operation shares must sum to 100 (or 1, as "
     "fractions): write_percent 0.6 + read_percent 0.5 = 1.1"),
    ({"read_percent": 150, "write_percent": -50}, "--write_percent must be between 0 and 100, "
     "not -50"),
    ({"reed_percent": 100}, "unknown operation share(s): reed_percent"),
])
def test_bad_shares_are_one_line(shares: dict[str, float], message: str) -> None:
    with pytest.raises(mix.MixError) as info:
        mix.normalize(shares)
    assert str(info.value) == message


# ---- the draw -------------------------------------------------------------------------------


def test_the_draw_follows_the_shares() -> None:
    work = ZkWorkload(create_percent=10, rename_percent=5, write_percent=25, read_percent=30,
                      delete_percent=5, exists_percent=15, get_children_percent=10)
    draw = mix.Mix(work, random.Random(7))
    n = 100_000
    seen = Counter(draw.draw() for _ in range(n))
    for kind in ZK_OP_KINDS:
        share = getattr(work, mix.PERCENT_FIELDS[kind]) / 100
        assert seen[kind] / n == pytest.approx(share, abs=0.01), kind


def test_a_kind_with_no_share_is_never_drawn() -> None:
    work = ZkWorkload(write_percent=0, read_percent=60, exists_percent=40)
    draw = mix.Mix(work, random.Random(1))
    assert draw.kinds == ["getData", "exists"]
    assert set(draw.draw() for _ in range(10_000)) == {"getData", "exists"}


def test_the_draw_never_falls_outside_a_bucket() -> None:
    # The original's x = 0 issued nothing and killed the slot; x at the top must not either.
    work = ZkWorkload(write_percent=50, read_percent=50)

    class Edges(random.Random):
        values = iter([0.0, 0.999999999999, 0.5])

        def random(self) -> float:
            return next(self.values)

    draw = mix.Mix(work, Edges())
    assert [draw.draw() for _ in range(3)] == ["setData", "getData", "getData"]


def test_the_node_refuses_a_mix_not_summing_to_100() -> None:
    with pytest.raises(mix.MixError, match="sum to 100, not 90"):
        mix.check(ZkWorkload(write_percent=40, read_percent=50))
    with pytest.raises(mix.MixError, match="not an absolute znode path"):
        mix.check(ZkWorkload(prefix="mason/"))
    with pytest.raises(mix.MixError, match="nkeys must be positive"):
        mix.check(ZkWorkload(nkeys=0))
    mix.check(ZkWorkload())


# ---- the flags ------------------------------------------------------------------------------


def test_presets_set_the_mix() -> None:
    assert check_zk_workload(spec(setdatas=True)).write_percent == 100.0
    got = check_zk_workload(spec(getdatas=True))
    assert (got.read_percent, got.write_percent) == (100.0, 0.0)
    # Recorded as settled, the spec checks again unchanged (experiment.toml reruns).
    assert check_zk_workload(got) == got


@pytest.mark.parametrize(("values", "message"), [
    ({"setdatas": True, "getdatas": True}, "--setDatas and --getDatas cannot be combined"),
    ({"getdatas": True, "write_percent": 1}, "--getDatas sets the operation shares"),
    ({"read_percent": 50}, "operation shares must sum to 100"),
    ({"value_size": -1}, "--value_size must be between 0 and 1048576 bytes, not -1"),
    ({"nkeys": 0}, "--nkeys must be positive, not 0"),
    ({"client_connections": 0}, "--client_connections must be positive, not 0"),
])
def test_bad_flags_are_one_line(values: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as info:
        check_zk_workload(spec(**values))
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_renames_are_refused_when_histories_are_recorded() -> None:
    values = {"rename_percent": 50, "write_percent": 50}
    check_zk_workload(spec(**values))
    with pytest.raises(SpecError, match="add --no-record-seqnums"):
        check_zk_workload(spec(**values), records_history=True)


def test_the_load_generators_configs_render_and_validate() -> None:
    settled = check_zk_workload(spec(getdatas=True, nclient_threads=3, client_connections=2,
                                     client_concurrency=4, value_size=100, nkeys=16))
    clients = [MachineSlot(f"client-{j}", "client", j, f"10.0.0.{j + 1}", f"/r/client-{j}")
               for j in range(2)]
    servers = [{"host": "10.0.1.1", "port": 2181}, {"host": "10.0.1.2", "port": 2181}]
    procs = zk_client_procs(settled, clients, [servers], record_history=True)
    assert [p.name for p in procs] == [f"client-{j}-{t}" for j in range(2) for t in range(3)]
    confs = [node_config.parse(render(p.kind, p.context), node_config.ZkClientConfig)
             for p in procs]
    assert [c.client_id for c in confs] == list(range(6))
    first = confs[0]
    assert (first.connections, first.concurrency, first.record_history) == (2, 4, True)
    assert [(e.host, e.port) for e in first.servers] == [("10.0.1.1", 2181), ("10.0.1.2", 2181)]
    assert first.workload == ZkWorkload(write_percent=0, read_percent=100, value_size=100,
                                        nkeys=16)
    assert zk_workload(settled)["read_percent"] == 100.0
    assert workload_text(settled) == "100 % getData, 100 B values, 16 keys per client process"


def test_a_boolean_workload_field_renders_as_a_toml_boolean() -> None:
    settled = check_zk_workload(spec(create_percent=100))
    slot = MachineSlot("client-0", "client", 0, "127.0.0.1", "/r/client-0")
    proc = zk_client_procs(settled, [slot], [[{"host": "127.0.0.1", "port": 2181}]])[0]
    proc.context["workload"].update(sequential=True, watch=False)
    conf = node_config.parse(render(proc.kind, proc.context), node_config.ZkClientConfig)
    assert conf.workload.sequential is True and conf.workload.watch is False


# ---- a multi's answers, read by the client ----------------------------------------------------


def test_a_multis_answers_are_read_in_order() -> None:
    stat = Stat(1, 2, 3, 4, 5, 6, 7, 0, 8, 0, 9)
    ok = wire.multi_body([wire.DeleteResult(), wire.CreateResult("/b"),
                          wire.SetDataResult(stat), wire.CheckResult()])
    assert wire.read_multi_results(Reader(ok)) == [
        (Op.DELETE, 0), (Op.CREATE, 0), (Op.SET_DATA, 0), (Op.CHECK, 0)]
    failed = wire.multi_body(wire.multi_failure(2, 0, Err.NO_NODE))
    assert wire.read_multi_results(Reader(failed)) == [
        (Op.ERROR, Err.NO_NODE), (Op.ERROR, Err.RUNTIME_INCONSISTENCY)]
    with pytest.raises(JuteError, match="closing header"):
        wire.read_multi_results(Reader(ok[:-9]))


def test_the_flags_are_refused_in_one_line_where_they_do_not_apply(tmp_path: Path) -> None:
    for flags, message in [
        (["--getDatas"], "error: --getdatas does not apply to --system mason"),
        (["--read-percent", "50"], "error: --read_percent does not apply to --system mason"),
    ]:
        done = masonctl("run", *flags, "--dry-run", cwd=tmp_path, timeout=60)
        assert done.returncode == 2
        assert done.stderr.strip() == message, done.stderr
