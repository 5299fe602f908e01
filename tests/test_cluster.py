"""`make loadtest-cluster` (bench/cluster.py) cannot rot: its judgement fails the runs it must fail, and its tiny mode
runs the whole layout (HAProxy, two `govshare serve`, a PostgreSQL and a Redis of its own, the four faults) and
passes. Timing is reported by the script, never asserted here.

The tiny run is skipped when a binary it needs is absent (`apt-get install -y haproxy redis-server postgresql`;
.ci/run installs them), and fails instead under GOVSHARE_REQUIRE_SERVICES=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, REQUIRE_SERVICES, TEST_DATABASE_PREFIX, bench_script, make_settings, require_engine

SCRIPT = REPO / "bench" / "cluster.py"


def _cluster():
    return bench_script("cluster")


def _faults(cluster, **times):
    """The four faults, each with (started, repaired, recovered) from ``times`` or far in the past."""
    import dataclasses

    return [
        dataclasses.replace(f, started=s, repaired=s + 1, recovered=s + 2, down_seen=set())
        for f, s in ((f, times.get(f.name, -1000.0 - i * 100)) for i, f in enumerate(cluster.FAULTS))
    ]


def _answer(cluster, at, status=200, request_id="r", codes=(), mix=0, data=True, executed=None):
    executed = status == 200 if executed is None else executed
    return cluster.Answer(at, at + 0.1, "faults", mix, status, request_id, list(codes), data, executed)


def _records(*pairs, at=0.0):
    return {rid: {"count": n, "first": at, "last": at} for rid, n in pairs}


def test_a_clean_run_is_judged_whole():
    cluster = _cluster()
    fields = cluster.RESOURCE_FIELDS
    two = fields.index(2)
    answers = [_answer(cluster, 1.0, request_id="a"), _answer(cluster, 2.0, request_id="b", mix=two)]
    problems, counts = cluster.judge(answers, _records(("a", 1), ("b", 2)), _faults(cluster), fields)
    assert problems == []
    assert counts["answered_accesses"] == counts["access_records"] == 3


def test_an_internal_error_is_never_explained_by_the_platform_database_restart():
    cluster = _cluster()
    faults = _faults(cluster, platform_database_restart=100.0)
    failed = [_answer(cluster, 101.0 + i / 10, 500, f"e{i}", ["INTERNAL_ERROR"], data=False) for i in range(3)]
    coded = _answer(cluster, 101.5, 503, "c", ["PLATFORM_DATABASE_UNREACHABLE"], data=False)
    problems, counts = cluster.judge([*failed, coded], {}, faults, cluster.RESOURCE_FIELDS)
    assert problems == ["unexplained: 3 x 500 INTERNAL_ERROR (faults)"], problems
    assert counts["explained"]["platform_database_restart"] == {"503 PLATFORM_DATABASE_UNREACHABLE": 1}


def test_the_log_tells_a_key_lookup_on_a_database_gone_from_another_failure(tmp_path):
    cluster = _cluster()
    lookup = (
        'Traceback (most recent call last):\n  File "/srv/server.py", line 430, in authenticate\n'
        "    caller = await runtime.authenticate(snapshot, header)\n"
    )
    lines = [
        {"exc_info": lookup + "ConnectionRefusedError: [Errno 111] Connection refused"},
        {"exc_info": lookup + "sqlalchemy.exc.InterfaceError: (asyncpg.InterfaceError) connection is closed\n[SQL: x]"},
        {"exc_info": lookup + "KeyError: 'department'"},  # the lookup, but no database failure
        {"exc_info": 'File "/srv/resolvers/x.py", line 3, in fetch\nConnectionRefusedError: refused'},  # not the lookup
    ]
    log = tmp_path / "govshare.log"
    log.write_text(
        "".join(json.dumps({"message": "answering POST /graphql failed", **line}) + "\n" for line in lines)
        + json.dumps({"message": "something else", "exc_info": lookup + "ConnectionRefusedError: x"})
        + "\n"
    )
    assert cluster.logged_failures([log]) == (2, 2)


def test_a_5xx_is_explained_only_by_its_fault_in_progress():
    cluster = _cluster()
    faults = _faults(cluster, redis_down=100.0, worker_sigkill=200.0)  # Redis down 100-102 (+ grace)
    refused = ["RATE_LIMIT_UNAVAILABLE"]
    inside = _answer(cluster, 101.0, 503, "x", refused, data=False)
    problems, counts = cluster.judge([inside], {}, faults, cluster.RESOURCE_FIELDS)
    assert problems == [] and counts["explained"]["redis_down"] == {"503 RATE_LIMIT_UNAVAILABLE": 1}
    # the same refusal long after Redis came back, a govshare 500 no fault names, a proxy 502 outside the kill
    for late in (
        _answer(cluster, 150.0, 503, "x", refused, data=False),
        _answer(cluster, 101.0, 500, "y", ["INTERNAL_ERROR"], data=False),
        _answer(cluster, 101.0, 502, None, data=False),
        _answer(cluster, 101.0, 0, None, data=False),  # no HTTP answer at all: never explained
    ):
        problems, counts = cluster.judge([late], {}, faults, cluster.RESOURCE_FIELDS)
        assert counts["unexplained_5xx"] == 1 and problems[0].startswith("unexplained: 1 x"), problems
    # the kill explains a 502 or a closed connection of a request in flight at the kill, not of one sent later
    for status in (502, 0):
        in_flight = _answer(cluster, 199.9, status, None, data=False)
        assert cluster.judge([in_flight], {}, faults, cluster.RESOURCE_FIELDS)[0] == []
        later = _answer(cluster, 201.0, status, None, data=False)
        assert cluster.judge([later], {}, faults, cluster.RESOURCE_FIELDS)[1]["unexplained_5xx"] == 1


def test_records_must_match_the_answers_exactly():
    cluster = _cluster()
    fields, faults = cluster.RESOURCE_FIELDS, _faults(cluster, platform_database_restart=0.5, worker_sigkill=200.0)
    two = fields.index(2)
    answer = _answer(cluster, 1.0, request_id="a", mix=two)
    for records, broken in (
        ({}, "without their access records"),
        (_records(("a", 1)), "not one per resource access"),
        (_records(("a", 3)), "not one per resource access"),
    ):
        problems, _ = cluster.judge([answer], records, faults, fields)
        assert any(broken in p for p in problems), problems
    # a refusal without data that nevertheless has a record; a document refused before it ran (HTTP 200 under
    # application/json, no "data") that has one
    refusal = _answer(cluster, 1.0, 500, "b", ["AUDIT_UNAVAILABLE"], data=False)
    invalid = _answer(cluster, 1.0, 200, "b", ["GRAPHQL_INVALID"], data=False, executed=False)
    for refused in (refusal, invalid):
        problems, _ = cluster.judge([refused], _records(("b", 1)), faults, fields)
        assert any("answered without data" in p for p in problems), problems
        assert cluster.judge([refused], {}, faults, fields)[0] == []
    # a record of no answer: explained only when written just before the kill, with a request failed at the proxy
    orphan = _records(("lost", 1), at=199.5)
    in_flight = _answer(cluster, 199.95, 502, None, data=False)  # in flight as the process was killed
    problems, counts = cluster.judge([in_flight], orphan, faults, fields)
    assert problems == [] and counts["records_of_requests_killed_in_flight"] == 1
    for answers, records in (([], orphan), ([in_flight], _records(("lost", 1), at=50.0))):
        problems, _ = cluster.judge(answers, records, faults, fields)
        assert any("no answer reached their caller" in p for p in problems), problems


def test_the_tiny_cluster_run_passes(tmp_path):
    cluster = _cluster()
    absent = cluster.missing()
    if absent:
        reason = f"{', '.join(absent)} not installed (apt-get install -y haproxy redis-server postgresql; .ci/run does)"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    require_engine(make_settings(tmp_path / "var"), "postgres")  # the departments' databases
    results = tmp_path / "cluster.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVSHARE_", "CLUSTER_"))}
    env |= {"CLUSTER_TINY": "1", "CLUSTER_RESULTS": str(results), "CLUSTER_DB_PREFIX": f"{TEST_DATABASE_PREFIX}cl_"}
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads(results.read_text())
    assert document["tiny"] is True and document["problems"] == []
    assert [f["name"] for f in document["faults"]] == [f.name for f in cluster.FAULTS]
    assert document["counts"]["answered_accesses"] > 0
    assert document["audit_verify"]["exit"] == 0
    for processes in ("1", "2"):
        assert document["throughput"]["requests_per_second"][processes] > 0


def test_a_fault_counts_as_recovered_from_only_by_a_clean_answer_before_the_next_one():
    cluster = _cluster()
    redis, kill = _faults(cluster, redis_down=100.0, worker_sigkill=110.0)[1:3]  # Redis window ends at 104
    refused = _answer(cluster, 105.0, 503, "x", ["RATE_LIMIT_UNAVAILABLE"], data=False)
    clean, late = _answer(cluster, 105.5, request_id="y"), _answer(cluster, 111.0, request_id="z")
    assert not cluster.recovered_after(redis, [refused, late], until=kill.started)
    assert not cluster.recovered_after(redis, [_answer(cluster, 103.0, request_id="w")], until=kill.started)
    assert cluster.recovered_after(redis, [refused, clean], until=kill.started)
