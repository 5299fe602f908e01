"""`make bench-peers` (bench/peers.py): govshare, PostGraphile and the hand-written endpoint give the same rows and
values on every workload before anything is measured. Runs the harness's check on its tiny world (PostgreSQL;
PostGraphile installed by `npm ci` from bench/peers/package-lock.json); no load, no timing asserted."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connectors.urls import sync_url
from govshare.config import Settings
from tests.conftest import REPO, REQUIRE_SERVICES, bench_script, make_settings, require_engine

PEERS = REPO / "bench" / "peers.py"


def _harness():
    return bench_script("peers")


def _require_node() -> None:
    if shutil.which("node") and shutil.which("npm"):
        return
    reason = "node and npm are needed for PostGraphile (bench/peers/)"
    if REQUIRE_SERVICES:
        pytest.fail(reason)
    pytest.skip(reason)


def _made_with(prefix: str) -> list[str]:
    server = make_url(Settings().demo_postgres_url).set(database="postgres")
    engine = create_engine(sync_url(server.render_as_string(hide_password=False)))
    try:
        with engine.connect() as conn:
            like = prefix.replace("_", r"\_") + "%"
            names = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": like})
            roles = conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"), {"p": like})
            return [*names.scalars(), *roles.scalars()]
    finally:
        engine.dispose()


def test_the_three_peers_give_the_same_rows_and_values_and_leave_nothing_behind(tmp_path):
    require_engine(make_settings(tmp_path / "var"), "postgres")
    _require_node()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVSHARE_", "PEERS_"))}
    env |= {"PEERS_TINY": "1"}
    done = subprocess.run(
        [sys.executable, str(PEERS), "--check"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "the same rows and values from govshare, postgraphile, handwritten: every workload" in done.stdout
    # Every database and role it made is named with the prefix it prints: none is left.
    prefix = re.search(r"^dropped (peers_\w+_)\*$", done.stdout, re.MULTILINE)
    assert prefix, done.stdout
    assert _made_with(prefix[1]) == []


def test_a_different_value_stops_the_bench_with_a_diff():
    peers = _harness()
    workload = peers.WORKLOADS[1]
    row = {"idNumber": "371311197811261792", "name": "张三", "gender": "男", "birthDate": "1978-11-26"}
    same = peers.normalised("govshare", workload, {"data": {"personList": {"items": [row]}}})
    other = peers.normalised("postgraphile", workload, {"data": {"personList": {"items": [{**row, "name": "李四"}]}}})
    peers.compare(workload, {"n": 1}, {"govshare": same, "handwritten": same})
    with pytest.raises(peers.PeersError) as raised:
        peers.compare(workload, {"n": 1}, {"govshare": same, "postgraphile": other})
    assert "postgraphile answers other rows or values than govshare" in str(raised.value)
    assert '-    "name": "张三"' in str(raised.value) and '+    "name": "李四"' in str(raised.value)


def test_an_error_in_an_answer_stops_the_bench_and_numbers_compare_by_value():
    peers = _harness()
    enterprises = peers.WORKLOADS[3]
    with pytest.raises(peers.PeersError, match="with errors"):
        peers.normalised("govshare", enterprises, {"data": None, "errors": [{"message": "x"}]})
    with pytest.raises(peers.PeersError, match="with errors"):
        peers.normalised(
            "govshare", enterprises, {"data": {"enterpriseList": {"items": []}}, "errors": [{"message": "x"}]}
        )
    as_number = {"data": {"enterpriseList": {"items": [{"registeredCapital": Decimal("100.0")}]}}}
    as_text = {"data": {"enterpriseList": {"items": [{"registeredCapital": "100.00"}]}}}
    assert peers.normalised("govshare", enterprises, as_number) == peers.normalised(
        "postgraphile", enterprises, as_text
    )


def test_the_committed_figures_name_every_workload_and_peer():
    document = json.loads((REPO / "bench" / "peers.json").read_text())
    assert document["tiny"] is False
    for key in "abcd":
        entry = document[key]
        for peer in ("govshare", "postgraphile", "handwritten"):
            assert {"p50_ms", "p99_ms", "rps", "rss_mb"} <= set(entry[peer]), (key, peer)
            assert entry[peer]["rps"] > 0
        assert entry["govshare_over_postgraphile"] > 0 and entry["handwritten_over_govshare"] > 0
