"""GET /metrics (govshare/metrics.py): what requests, refusals, decisions and access-record writes do to the counts,
who may scrape them, and that nothing a caller sent or was answered is in them."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from govshare.config import load_settings
from govshare.errors import ConfigError
from tests.conftest import _api

LOOKUP = "query($id: String!) { person(idNumber: $id) { idNumber name gender birthDate address phone } }"
MARKET, MARKET_PURPOSE = "market", "market.licence-review"
HRSS, HRSS_PURPOSE = "hrss", "hrss.insurance-enrolment"
TOKEN = "metrics-scraper-token-0123456789abcdef"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> tuple[Samples, str]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text), response.text


async def test_metrics_count_requests_refusals_decisions_and_record_writes(own_api):
    world, client = own_api.world, own_api.client
    person = world.showcase["person_luozhuang"]
    before, _ = await scrape(client)

    # market's grant covers five of the six items; phone is not shared: a partial answer, one access record.
    answer = await own_api.query(LOOKUP, MARKET, MARKET_PURPOSE, variables={"id": person})
    assert answer["data"]["person"]["name"] and answer["data"]["person"]["phone"] is None
    # hrss reads ID numbers masked (371311********2554) in its county.
    listed = await own_api.query(
        "{ personList(first: 3) { items { idNumber name } } }", HRSS, HRSS_PURPOSE, variables=None
    )
    assert "*" in listed["data"]["personList"]["items"][0]["idNumber"]
    # a key that is no key: refused before anything is read or recorded
    refused = await own_api.post(LOOKUP, key="gs_not_a_key", purpose=MARKET_PURPOSE, variables={"id": person})
    assert refused.status_code == 401
    # a purpose not registered for market: refused as a whole request
    unregistered = await own_api.post(LOOKUP, department=MARKET, purpose="hrss.insurance-enrolment")
    code = unregistered.json()["errors"][0]["extensions"]["code"]

    after, text = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("govshare_requests_total", endpoint="graphql", outcome="partial", code="") == 1
    assert delta("govshare_requests_total", endpoint="graphql", outcome="answered", code="") == 1
    assert delta("govshare_requests_total", endpoint="graphql", outcome="refused", code="KEY_INVALID") == 1
    assert code and delta("govshare_requests_total", endpoint="graphql", outcome="refused", code=code) == 1
    assert delta("govshare_requests_total", endpoint="metrics", outcome="answered", code="") == 1  # the first scrape
    # decisions of the items of the records written: 5 allowed + 1 NOT_SHARED (market), 1 masked + 1 allowed (hrss)
    assert delta("govshare_decisions_total", reason="NOT_SHARED") == 1
    assert delta("govshare_decisions_total", reason="MASKED") == 1
    assert delta("govshare_decisions_total", reason="ALLOWED") == 6
    # two access records (one per request that read), each in a transaction of its own (one request at a time)
    assert delta("govshare_access_records_written_total") == 2
    assert delta("govshare_access_record_write_seconds_count", outcome="ok") == 2
    assert value(after, "govshare_access_record_queue_depth") == 0
    # both read police's source: timed, and its breaker closed
    assert delta("govshare_source_seconds_count", source="police", outcome="ok") == 2
    assert value(after, "govshare_source_breaker_state", source="police") == 0
    runtime = own_api.app.state.runtime
    assert value(after, "govshare_policy_version") == runtime.snapshot.policy.policies.version
    assert value(after, "govshare_catalog_version") == runtime.snapshot.catalog.version > 0
    # nothing a caller sent or was answered: no key, no ID number, no name, no purpose
    for secret in (world.keys[MARKET], "gs_not_a_key", person, answer["data"]["person"]["name"], MARKET_PURPOSE):
        assert secret not in text


async def test_a_failing_source_opens_its_breaker_in_the_metrics(own_api, monkeypatch):
    runtime = own_api.app.state.runtime
    person = own_api.world.showcase["person_luozhuang"]
    source = runtime.connectors.get(runtime.settings.expand(runtime.catalog.departments["police"].source))
    source.breaker.threshold = 1  # the first failure opens it

    async def refused_connection(statement, params):
        raise OSError("connection refused")

    monkeypatch.setattr(source, "_read", refused_connection)
    failed = await own_api.post(LOOKUP, department=MARKET, purpose=MARKET_PURPOSE, variables={"id": person})
    assert failed.json()["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
    scraped, _ = await scrape(own_api.client)
    assert value(scraped, "govshare_source_breaker_state", source="police") == 2
    assert value(scraped, "govshare_source_seconds_count", source="police", outcome="failed") >= 1


async def test_metrics_are_refused_to_a_scraper_without_the_token(own_world):
    settings = dataclasses.replace(own_world.settings, metrics_token=TOKEN)
    async for api in _api(own_world, settings):
        key = own_world.keys[MARKET]
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Bearer {key}"}):
            response = await api.client.get("/metrics", headers={**headers, "Accept-Language": "en"})
            assert response.status_code == 401, response.text
            assert response.json()["errors"][0]["extensions"]["code"] == "METRICS_TOKEN_REQUIRED"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "govshare_requests_total" not in response.text
        scraped, _ = await scrape(api.client, Authorization=f"Bearer {TOKEN}")
        assert value(
            scraped, "govshare_requests_total", endpoint="metrics", outcome="refused", code="METRICS_TOKEN_REQUIRED"
        )


async def test_without_a_token_metrics_are_for_direct_loopback_clients_only(own_world):
    async for api in _api(own_world):
        app = api.app
        # a client of another machine
        transport = httpx.ASGITransport(app=app, client=("10.20.30.40", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://govshare.test") as remote:
            response = await remote.get("/metrics")
        assert response.status_code == 403
        assert response.json()["errors"][0]["extensions"]["code"] == "METRICS_NOT_ALLOWED"
        # a client of another machine through a proxy on this one: the connection is from loopback
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            response = await api.client.get("/metrics", headers={header: "10.20.30.40"})
            assert response.status_code == 403, header
        await scrape(api.client)  # this machine's own scraper


def test_a_short_metrics_token_is_refused():
    with pytest.raises(ConfigError) as refused:
        load_settings(env={"GOVSHARE_METRICS_TOKEN": "short"})
    assert refused.value.code == "METRICS_TOKEN_TOO_SHORT"


def _scrape_port(port: int) -> Samples:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 200, body
    return samples(body)


def test_two_workers_counts_sum_on_one_scrape_and_a_dead_workers_gauges_go(own_folder):
    from tests.test_serve_workers import Workers, _answered_by, _ask, _close_connections

    key = json.loads((own_folder / "var" / "demo-keys.json").read_text())[MARKET]
    person = "371311197811261792"  # the README's example person of the demo world
    (own_folder / "govshare.toml").write_text('rate_limit = ""\ncost_budget = ""\n')
    server = Workers(own_folder, 2, {})
    try:
        server.wait_started(2)
        first, second = server.pids()
        # the directory of this start's metric files, as the workers were given it
        environ = dict(
            entry.split("=", 1) for entry in Path(f"/proc/{second}/environ").read_text().split("\0") if "=" in entry
        )
        directory = Path(environ["PROMETHEUS_MULTIPROC_DIR"])
        assert directory.name.startswith("govshare-metrics-") and any(directory.glob("counter_*.db"))
        answered: dict[int, int] = {}
        for _ in range(20):  # rounds of 8 connections at once, until both workers have answered
            asked = _ask(server.port, key, person, 8)
            by = _answered_by(server.port, [client for client, _, _ in asked], [first, second])
            for client, response, body in asked:
                assert response.status == 200, body
                answered[by[client]] = answered.get(by[client], 0) + 1
            _close_connections()
            if len(answered) == 2:
                break
        assert set(answered) == {first, second}, answered
        sent = sum(answered.values())

        # one scrape, answered by either worker, counts both workers' requests, records and decisions
        scraped = _scrape_port(server.port)
        assert value(scraped, "govshare_requests_total", endpoint="graphql", outcome="answered", code="") == sent
        assert value(scraped, "govshare_access_records_written_total") == sent
        assert value(scraped, "govshare_decisions_total", reason="ALLOWED") == 2 * sent  # idNumber and name
        versions = {dict(labels)["pid"] for name, labels in scraped if name == "govshare_policy_version"}
        assert versions == {str(first), str(second)}  # one version a live worker

        # a worker killed: its replacement starts, its counts stay in the sums, its live gauges go
        os.kill(first, signal.SIGKILL)
        server.wait_started(3)
        third = server.pids()[-1]
        deadline = time.monotonic() + 30
        while True:
            scraped = _scrape_port(server.port)
            versions = {dict(labels)["pid"] for name, labels in scraped if name == "govshare_policy_version"}
            if versions == {str(second), str(third)} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert versions == {str(second), str(third)}
        assert value(scraped, "govshare_requests_total", endpoint="graphql", outcome="answered", code="") == sent
        assert value(scraped, "govshare_access_records_written_total") == sent
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0, "".join(server.lines)
    finally:
        _close_connections()
        if server.process.poll() is None:
            server.kill_all()
    assert not directory.exists()  # removed with the files as the command stopped


def test_each_start_has_a_directory_of_its_own_and_one_abandoned_by_a_killed_command_goes():
    import subprocess
    import tempfile

    from govshare.metrics import DIRECTORY_PREFIX, MULTIPROCESS_VARIABLE, multiprocess_directory

    gone = subprocess.Popen(["true"])  # its process id is no longer a process's
    gone.wait()
    abandoned = Path(tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{gone.pid}-"))
    (abandoned / "counter_1.db").write_bytes(b"")
    alive = Path(tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-"))  # a command still running: this one
    try:
        with multiprocess_directory() as path:
            assert os.environ[MULTIPROCESS_VARIABLE] == path and Path(path).is_dir()
            assert not any(Path(path).iterdir())  # new and empty
            assert not abandoned.exists() and alive.exists()
        assert not Path(path).exists() and MULTIPROCESS_VARIABLE not in os.environ
    finally:
        shutil.rmtree(alive, ignore_errors=True)
        shutil.rmtree(abandoned, ignore_errors=True)
