"""The alternatives benchmark's parsing: redis-benchmark's output, etcd's answers (bytes
captured from etcd 3.4.23, a fresh 3-member cluster) and the check of etcd's revisions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.alternatives import medians, parse_redis_benchmark_csv, ratios, split_evenly
from benchmarks.etcd_load import (
    ProtoError,
    RevisionError,
    check_revisions,
    field,
    fields,
    header,
    leader_of,
    put_request,
    revision,
)
from tests.conftest import REPO

# `redis-benchmark -t incr -c 64 -n 20000 --csv` (Redis 7.0.15).
REDIS_CSV = (
    '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
    '"p99_latency_ms","max_latency_ms"\n'
    '"INCR","55096.42","0.777","0.032","0.727","1.135","3.407","5.047"\n')
# The same with -q instead of --csv: progress lines ended by carriage returns.
REDIS_QUIET = (
    "INCR: rps=0.0 (overall: 0.0) avg_msec=-nan (overall: -nan)\r"
    "INCR: rps=57202.4 (overall: 56976.3) avg_msec=0.732 (overall: 0.732)\r"
    "INCR: 57142.86 requests per second, p50=0.711 msec\n\n")
# etcd's answer to the cluster's first Put, and its Maintenance/Status answer just before.
PUT_ANSWER = bytes.fromhex("0a1908d5c799868dc3f3aabe0110ebb3d184eef4f09b4b18022002")
STATUS_ANSWER = bytes.fromhex(
    "0a1908d5c799868dc3f3aabe0110ebb3d184eef4f09b4b180120021206332e342e32331880a00120ebb3d1"
    "84eef4f09b4b280b3002380b4880a001")
MEMBER = 5420015798063487467


def test_redis_benchmarks_csv_gives_its_rate_and_latencies_in_us() -> None:
    assert parse_redis_benchmark_csv(REDIS_CSV) == {
        "ops_per_s": 55096.42, "p50_us": pytest.approx(727.0), "p99_us": pytest.approx(3407.0)}


def test_redis_benchmark_output_without_the_csv_line_is_one_line_error() -> None:
    with pytest.raises(ValueError, match="printed no INCR line: INCR: rps=0.0") as caught:
        parse_redis_benchmark_csv(REDIS_QUIET)
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="malformed"):
        parse_redis_benchmark_csv(REDIS_CSV.replace('"0.727"', '"-nan-x"'))


def test_a_put_answer_gives_its_revision_and_the_member_that_answered() -> None:
    assert revision(PUT_ANSWER) == 2  # a fresh store is at revision 1
    assert dict(fields(header(PUT_ANSWER))) == {
        1: 13715094846203913173, 2: MEMBER, 3: 2, 4: 2}  # cluster, member, revision, term


def test_a_status_answer_names_the_leader() -> None:
    assert leader_of(STATUS_ANSWER) == (MEMBER, MEMBER)  # asked of the leader itself
    assert field(STATUS_ANSWER, 2, bytes) == b"3.4.23"
    assert dict(fields(header(STATUS_ANSWER)))[1] == dict(fields(header(PUT_ANSWER)))[1]


def test_a_put_request_is_key_then_value() -> None:
    assert put_request(b"k", b"v") == bytes.fromhex("0a016b120176")
    key = b"x" * 300  # a length over 127 takes a two-byte varint
    assert list(fields(put_request(key, b""))) == [(1, key), (2, b"")]


@pytest.mark.parametrize(("answer", "message"), [
    (PUT_ANSWER[:-3], "runs past the message's end"),
    (b"\x0a\xff", "ends inside a varint"),
    (b"\x0b", "unknown wire type 3"),
    (b"\x08\x01", "field 1 is not a bytes"),
    (b"\x10\x01", "no header"),
    (bytes.fromhex("0a0408011002"), "no revision"),
])
def test_a_malformed_answer_is_a_proto_error(answer: bytes, message: str) -> None:
    with pytest.raises(ProtoError, match=message):
        revision(answer)


def test_revisions_distinct_gap_free_and_increasing_per_slot_pass() -> None:
    assert check_revisions([[2, 5, 6], [3, 7], [4, 8, 9]]) == (2, 9)


@pytest.mark.parametrize(("slots", "message"), [
    ([[2, 4], [3, 6]], r"revisions 5\.\.5 answered to nobody"),
    ([[2, 3], [3, 4]], "revision 3 answered twice"),
    ([[2, 5, 4], [3]], "slot 0: revision 4 came after 5"),
    ([[], []], "no revision at all"),
])
def test_revisions_with_a_gap_a_duplicate_or_going_back_fail(slots: list[list[int]],
                                                            message: str) -> None:
    with pytest.raises(RevisionError, match=message):
        check_revisions(slots)


@pytest.mark.parametrize(("total", "least", "expected"), [
    (64, 1, (1, 64)), (256, 1, (4, 64)), (64, 2, (2, 32)), (100, 1, (1, 100)),
    (96, 2, (2, 48)), (7, 2, (1, 7)),
])
def test_outstanding_is_split_exactly_over_processes(total: int, least: int,
                                                      expected: tuple[int, int]) -> None:
    assert split_evenly(total, 64, least) == expected


def test_mason_is_compared_with_every_system_at_the_same_outstanding() -> None:
    rows = [{"system": "etcd", "outstanding": 64, "numbers_per_s": 5000.0},
            {"system": "mason, one group", "outstanding": 64, "numbers_per_s": 40000.0},
            {"system": "redis", "outstanding": 256, "numbers_per_s": 80000.0}]
    assert ratios(rows) == [{"outstanding": 64, "over": "etcd", "mason_over": 8.0}]


@pytest.mark.parametrize(("args", "message"), [
    (["127.0.0.1:2379", "many", "1"], "CONCURRENCY and SECONDS must be numbers"),
    (["127.0.0.1:2379", "0", "1"], "CONCURRENCY > 0"),
    (["127.0.0.1:2379", "4", "-1"], "SECONDS > 0"),
])
def test_the_etcd_load_generator_refuses_bad_arguments_in_one_line(
        args: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.etcd_load", *args,
                           str(tmp_path), "d"], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("etcd load d: ") and message in lines[0]


def test_each_point_keeps_its_median_round() -> None:
    measured = [
        {"system": "etcd", "outstanding": 64, "numbers_per_s": 3000.0, "p50_us": 1.0},
        {"system": "mason", "outstanding": 64, "numbers_per_s": 30000.0, "p50_us": 2.0},
        {"system": "etcd", "outstanding": 64, "numbers_per_s": 9000.0, "p50_us": 3.0},
        {"system": "mason", "outstanding": 64, "numbers_per_s": 20000.0, "p50_us": 4.0},
        {"system": "etcd", "outstanding": 64, "numbers_per_s": 5000.0, "p50_us": 5.0},
    ]
    etcd_row, mason_row = medians(measured)
    assert etcd_row == {"system": "etcd", "outstanding": 64, "numbers_per_s": 5000.0,
                        "p50_us": 5.0, "numbers_per_s_rounds": [3000.0, 9000.0, 5000.0]}
    assert mason_row["numbers_per_s"] == 20000.0 and mason_row["p50_us"] == 4.0
    assert medians(measured[:1]) == measured[:1]  # one round: the row as it was
