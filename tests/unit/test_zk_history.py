"""The client history format (nodes/zk/history.py): what the recorder writes the reader
gives back; malformed files are refused with the file and line; and `masonctl
check-linearizable` on written runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.linearizability import check_file, load_history
from benchmarks.register_sim import INITIAL, corrupt_value, ok_gets, simulate
from nodes.zk.codes import Err
from nodes.zk.history import (
    ERRORS,
    HistoryFormatError,
    HistoryRecorder,
    Operation,
    Outcome,
    VersionedData,
    read_history,
    recorded_error,
)
from tests.conftest import masonctl

CLOCK = "monotonic:test-boot"


def write_run(ops: list[Operation], run_dir: Path, initial: dict[str, VersionedData],
              clock: str = CLOCK) -> None:
    """One history file per process, each line written in time order, as clients would."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for process in sorted({o.process for o in ops}):
        mine = [o for o in ops if o.process == process]
        lines: list[tuple[int, int, Operation]] = []
        for o in mine:
            lines.append((o.invoke_ns, 0, o))
            if o.response_ns is not None:
                lines.append((o.response_ns, 1, o))
        ids: dict[int, int] = {}
        path = run_dir / f"client-{process}.history"
        with HistoryRecorder(path, process, clock, initial) as rec:
            for ns, completion, o in sorted(lines, key=lambda t: (t[0], t[1])):
                if not completion:
                    ids[id(o)] = rec.invoke(o.kind, o.path, o.value, o.version, ns=ns)
                elif o.outcome is Outcome.FAIL:
                    assert o.error is not None
                    rec.fail(ids[id(o)], o.error, ns=ns)
                elif o.kind == "get":
                    assert o.result is not None
                    rec.ok(ids[id(o)], o.result.value, o.result.version, ns=ns)
                else:
                    rec.ok(ids[id(o)], None,
                           o.result.version if o.result is not None else None, ns=ns)


def _key(o: Operation) -> tuple[object, ...]:
    return (o.process, o.kind, o.path, o.invoke_ns, o.response_ns, o.outcome, o.value,
            o.version, o.result, o.error)


def test_what_is_recorded_reads_back(tmp_path: Path) -> None:
    ops = simulate(7, 300, nclients=3, paths=("/a", "/b"), unknown_rate=0.05)
    write_run(ops, tmp_path, {"/a": INITIAL, "/b": INITIAL})
    history = load_history(tmp_path)
    assert history.files == 3
    assert history.initial == {"/a": INITIAL, "/b": INITIAL}
    assert sorted(map(_key, history.operations)) == sorted(map(_key, ops))


def test_an_invocation_without_completion_reads_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "c.history"
    with HistoryRecorder(path, 1, CLOCK) as rec:
        a = rec.invoke("set", "/k", b"v", -1, ns=10)
        rec.invoke("get", "/k", ns=20)
        rec.unknown(a, ns=30)
    history = read_history(path)
    assert [o.outcome for o in history.operations] == [Outcome.UNKNOWN, Outcome.UNKNOWN]
    assert [o.response_ns for o in history.operations] == [None, None]


def test_the_recorder_refuses_what_the_reader_would(tmp_path: Path) -> None:
    with HistoryRecorder(tmp_path / "c.history", 1, CLOCK) as rec:
        with pytest.raises(ValueError, match="set needs version"):
            rec.invoke("set", "/k", b"v")
        with pytest.raises(ValueError, match="is not one of"):
            rec.invoke("multi", "/k")
        op = rec.invoke("get", "/k")
        with pytest.raises(ValueError, match="error 'timeout'"):
            rec.fail(op, "timeout")


def test_zookeeper_errors_map_to_outcomes() -> None:
    assert recorded_error(Err.BAD_VERSION) == "bad_version"
    assert recorded_error(Err.NO_NODE) == "no_node"
    assert recorded_error(Err.NODE_EXISTS) == "node_exists"
    assert recorded_error(Err.BAD_ARGUMENTS) == "not_applied"
    for open_fate in (Err.CONNECTION_LOSS, Err.OPERATION_TIMEOUT, Err.SESSION_EXPIRED,
                      Err.REQUEST_TIMEOUT, Err.SYSTEM_ERROR):
        assert recorded_error(open_fate) is None
    assert {recorded_error(e) for e in Err} - {None} == set(ERRORS)


HEADER = '{"type":"header","format":1,"process":1,"clock":"c"}'
INVOKE = '{"type":"invoke","op":0,"kind":"get","path":"/k","ns":10}'


@pytest.mark.parametrize("lines,why", [
    ([], "empty, no header"),
    ([INVOKE], ":1: the first record must be the header"),
    ([HEADER, HEADER], ":2: a second header"),
    ([HEADER.replace('"format":1', '"format":2')], ":1: format 2"),
    ([HEADER, "{not json"], ":2: "),
    ([HEADER, '{"type":"ok","op":0,"ns":5}'], ":2: op 0 completes before its invocation"),
    ([HEADER, INVOKE, INVOKE], ":3: op 0 invoked twice"),
    ([HEADER, INVOKE, '{"type":"ok","op":0,"ns":5,"value":"YQ==","version":1}'],
     ":3: op 0 completes before it was invoked"),
    ([HEADER, INVOKE, '{"type":"ok","op":0,"ns":15}'], ":3: an ok get needs value"),
    ([HEADER, INVOKE, '{"type":"fail","op":0,"ns":15,"error":"oops"}'],
     ":3: error 'oops' is not one of"),
    ([HEADER, INVOKE, '{"type":"info","op":0,"ns":15}', '{"type":"info","op":0,"ns":16}'],
     ":4: op 0 completed twice"),
    ([HEADER, '{"type":"invoke","op":0,"kind":"set","path":"/k","ns":1,"value":"YQ=="}'],
     ":2: set needs version"),
    ([HEADER, '{"type":"invoke","op":0,"kind":"get","path":"/k","ns":1,"extra":1}'],
     ":2: Object contains unknown field"),
    ([HEADER, '{"type":"initial","path":"/k","value":"YQ==","version":-3}'],
     ":2: initial version -3 below 0"),
])
def test_malformed_histories_name_file_and_line(tmp_path: Path, lines: list[str],
                                                why: str) -> None:
    path = tmp_path / "bad.history"
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(HistoryFormatError) as caught:
        read_history(path)
    assert str(caught.value).startswith(str(path))
    assert why in str(caught.value)
    assert "\n" not in str(caught.value)


def test_files_on_different_clocks_are_not_combined(tmp_path: Path) -> None:
    ops = simulate(1, 50, nclients=2)
    write_run([o for o in ops if o.process == 0], tmp_path, {"/k0": INITIAL})
    write_run([o for o in ops if o.process == 1], tmp_path, {"/k0": INITIAL},
              clock="monotonic:another-boot")
    with pytest.raises(HistoryFormatError) as refused:
        load_history(tmp_path)
    assert str(refused.value) == (
        f"{tmp_path / 'client-1.history'}: clock 'monotonic:another-boot', but "
        f"{tmp_path / 'client-0.history'} has 'monotonic:test-boot'; times from different "
        "clocks cannot be ordered")


def test_files_disagreeing_on_an_initial_state_are_refused(tmp_path: Path) -> None:
    ops = simulate(1, 50, nclients=2)
    write_run([o for o in ops if o.process == 0], tmp_path, {"/k0": INITIAL})
    write_run([o for o in ops if o.process == 1], tmp_path, {"/k0": VersionedData(b"other", 0)})
    with pytest.raises(HistoryFormatError) as refused:
        load_history(tmp_path)
    assert str(refused.value) == (f"{tmp_path / 'client-1.history'}: initial state of /k0 "
                                  "disagrees with another file's")


def test_one_process_in_two_files_is_refused(tmp_path: Path) -> None:
    ops = [o for o in simulate(1, 50, nclients=2) if o.process == 0]
    write_run(ops, tmp_path / "a", {"/k0": INITIAL})
    (tmp_path / "a" / "client-0.history").rename(tmp_path / "a" / "again.history")
    write_run(ops, tmp_path / "a", {"/k0": INITIAL})
    with pytest.raises(HistoryFormatError) as refused:
        load_history(tmp_path / "a")
    assert str(refused.value) == (f"{tmp_path / 'a' / 'client-0.history'}: process 0 also "
                                  f"wrote {tmp_path / 'a' / 'again.history'}")


def test_a_history_is_a_file_or_a_directory_of_them(tmp_path: Path) -> None:
    ops = simulate(1, 50, nclients=2)
    write_run(ops, tmp_path, {"/k0": INITIAL})
    one = load_history(tmp_path / "client-1.history")
    assert one.files == 1 and {o.process for o in one.operations} == {1}
    assert one.initial == {"/k0": INITIAL}
    both = load_history(tmp_path)
    assert both.files == 2 and len(both.operations) == len(ops)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HistoryFormatError) as refused:
        load_history(tmp_path / "empty")
    assert str(refused.value) == f"{tmp_path / 'empty'}: no *.history files"
    with pytest.raises(HistoryFormatError) as refused:
        load_history(tmp_path / "nothing")
    assert str(refused.value) == f"{tmp_path / 'nothing'}: no such file or directory"


def test_check_file_keeps_to_its_step_budget(tmp_path: Path) -> None:
    write_run(simulate(5, 200, nclients=4), tmp_path, {"/k0": INITIAL})
    assert check_file(tmp_path).ok
    assert check_file(tmp_path, max_steps=10).undecided


def test_check_file_on_written_runs(tmp_path: Path) -> None:
    ops = simulate(4, 400, nclients=4, paths=("/a", "/b"), unknown_rate=0.05)
    write_run(ops, tmp_path / "good", {"/a": INITIAL, "/b": INITIAL})
    assert check_file(tmp_path / "good").ok
    on_b = [i for i in ok_gets(ops) if ops[i].path == "/b"]
    write_run(corrupt_value(ops, on_b[0]), tmp_path / "bad", {"/a": INITIAL, "/b": INITIAL})
    verdict = check_file(tmp_path / "bad")
    assert [k.path for k in verdict.keys if not k.ok] == ["/b"]


def test_masonctl_check_linearizable(tmp_path: Path) -> None:
    ops = simulate(2, 200, nclients=3)
    write_run(ops, tmp_path / "good", {"/k0": INITIAL})
    write_run(corrupt_value(ops, ok_gets(ops)[5]), tmp_path / "bad", {"/k0": INITIAL})
    (tmp_path / "broken.history").write_text(HEADER + "\n{oops\n")

    good = masonctl("check-linearizable", str(tmp_path / "good"), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "linearizability: OK (1 znodes" in good.stdout

    bad = masonctl("check-linearizable", str(tmp_path / "bad"), cwd=tmp_path)
    assert bad.returncode == 1
    assert "linearizability: FAILED on /k0" in bad.stdout
    assert "cannot place:" in bad.stdout

    broken = masonctl("check-linearizable", str(tmp_path / "broken.history"), cwd=tmp_path)
    assert broken.returncode == 2
    assert broken.stderr.count("\n") == 1 and "broken.history:2:" in broken.stderr
    assert "Traceback" not in broken.stderr

    missing = masonctl("check-linearizable", str(tmp_path / "nothing"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
