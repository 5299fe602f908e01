"""govshare as an Apollo Federation v2 subgraph behind a real `@apollo/gateway` (interop/gateway/), next to a small
subgraph extending govshare's Person by its key. The supergraph is composed offline (`govshare schema sdl
--federation`, then `@apollo/composition`), the mode the README recommends; every process listens on 127.0.0.1
and nothing reaches another host.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from audit.tables import access_records
from tests.conftest import REPO, REQUIRE_SERVICES, _world

GATEWAY_DIR = REPO / "interop" / "gateway"
GOVSHARE = str(Path(sys.executable).with_name("govshare"))
START_TIMEOUT = 60
MARKET = "market.licence-review"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "node and npm are needed for the Apollo gateway tests (interop/gateway/)"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    return node, npm


def _npm_ci(npm: str) -> None:
    """`npm ci` once per package-lock.json: the lock's hash is kept beside the installed packages."""
    digest = hashlib.sha256((GATEWAY_DIR / "package-lock.json").read_bytes()).hexdigest()
    marker = GATEWAY_DIR / "node_modules" / ".govshare-lock-sha256"
    if marker.exists() and marker.read_text() == digest:
        return
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=GATEWAY_DIR,
        check=True,
        capture_output=True,
        timeout=600,
    )
    marker.write_text(digest)


def _node_env(**extra: str) -> dict[str, str]:
    # As the README starts them: no NODE_ENV (Apollo Server's defaults for development), gateway.js sets the rest.
    env = {k: v for k, v in os.environ.items() if not k.startswith("APOLLO_") and k != "NODE_ENV"}
    return {**env, "APOLLO_TELEMETRY_DISABLED": "true", **extra}


class _Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.name, self.log = name, log
        self._out = log.open("w")
        self.process = subprocess.Popen(args, cwd=cwd, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def wait_for(self, url: str, *, method: str = "GET", **request) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                response = httpx.request(method, url, timeout=2, **request)
                if response.status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()  # by its own PID
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._out.close()


@pytest.fixture(scope="module")
async def federation(tmp_path_factory):
    node, npm = _need_node()
    _npm_ci(npm)
    home = tmp_path_factory.mktemp("gateway")
    world = await _world(home / "var")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")},
        "GOVSHARE_VAR_DIR": str(world.settings.var_dir),
        "GOVSHARE_CATALOG_DIR": str(REPO / "catalog" / "demo"),
        "GOVSHARE_RATE_LIMIT": "",
        "GOVSHARE_COST_BUDGET": "",
        "GOVSHARE_REFRESH_SECONDS": "0",
        # As in production (Art 22): every request through the gateway must carry the caller's X-Operator.
        "GOVSHARE_OPERATOR_REQUIRED": "true",
    }
    # The whole subgraph SDL, composed offline with the extending subgraph's
    sdl = home / "govshare.graphql"
    subprocess.run(
        [GOVSHARE, "schema", "sdl", "--federation", "-o", str(sdl)], cwd=home, env=env, check=True, timeout=120
    )
    ports = {name: _free_port() for name in ("govshare", "visits", "gateway", "introspecting")}
    urls = {
        "govshare": f"http://127.0.0.1:{ports['govshare']}/graphql",
        "visits": f"http://127.0.0.1:{ports['visits']}/",
        "gateway": f"http://127.0.0.1:{ports['gateway']}/",
        "introspecting": f"http://127.0.0.1:{ports['introspecting']}/",
    }
    composed = subprocess.run(
        [
            node,
            "compose.js",
            f"govshare={urls['govshare']}={sdl}",
            f"visits={urls['visits']}={GATEWAY_DIR / 'visits.graphql'}",
        ],
        cwd=GATEWAY_DIR,
        env=_node_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert composed.returncode == 0, composed.stderr
    supergraph = home / "supergraph.graphql"
    supergraph.write_text(composed.stdout)
    persons = world.rows("police", "SELECT id_number, name, county_code FROM person ORDER BY id_number LIMIT 3")
    visits = [
        {
            "id": f"V{i}",
            "hall": "罗庄区政务服务中心",
            "date": f"2026-11-0{i + 1}",
            "matter": "营业执照",
            "idNumber": p["id_number"],
        }
        for i, p in enumerate(persons)
    ]
    (home / "visits.json").write_text(json.dumps(visits, ensure_ascii=False))
    processes = []
    try:
        server = _Process(
            "govshare",
            [GOVSHARE, "serve", "--host", "127.0.0.1", "--port", str(ports["govshare"])],
            {**env, "GOVSHARE_LOG_FORMAT": "text"},
            home,
            home / "govshare.log",
        )
        processes.append(server)
        server.wait_for(f"http://127.0.0.1:{ports['govshare']}/healthz")
        subgraph = _Process(
            "visits subgraph",
            [node, "subgraph.js"],
            _node_env(VISITS_FILE=str(home / "visits.json"), PORT=str(ports["visits"])),
            GATEWAY_DIR,
            home / "visits.log",
        )
        processes.append(subgraph)
        subgraph.wait_for(urls["visits"], method="POST", json={"query": "{ __typename }"})
        gateway = _Process(
            "gateway",
            [node, "gateway.js"],
            _node_env(SUPERGRAPH_FILE=str(supergraph), PORT=str(ports["gateway"])),
            GATEWAY_DIR,
            home / "gateway.log",
        )
        processes.append(gateway)
        gateway.wait_for(urls["gateway"], method="POST", json={"query": "{ __typename }"})
        # The other mode: IntrospectAndCompose, reading `_service { sdl }` at start-up with a key of its own
        subgraphs = [{"name": "govshare", "url": urls["govshare"]}, {"name": "visits", "url": urls["visits"]}]
        introspecting = _Process(
            "introspecting gateway",
            [node, "gateway.js"],
            _node_env(
                SUBGRAPHS=json.dumps(subgraphs),
                GATEWAY_SCHEMA_KEY=world.keys["bigdata"],
                PORT=str(ports["introspecting"]),
            ),
            GATEWAY_DIR,
            home / "introspecting.log",
        )
        processes.append(introspecting)
        introspecting.wait_for(urls["introspecting"], method="POST", json={"query": "{ __typename }"})
        yield {
            "world": world,
            "url": urls["gateway"],
            "introspecting": urls["introspecting"],
            "persons": persons,
            "visits": visits,
            "sdl": sdl.read_text(),
        }
    finally:
        for process in reversed(processes):
            process.stop()


def _ask(
    federation,
    query: str,
    *,
    department: str | None = "market",
    purpose: str | None = MARKET,
    url=None,
    operator=True,
    **extra,
):
    operator = f"op-{uuid.uuid4().hex[:12]}" if operator else None
    headers = {"Content-Type": "application/json", "Accept-Language": "en"}
    if operator is not None:
        headers["X-Operator"] = operator
    if department is not None:
        headers["Authorization"] = f"Bearer {federation['world'].keys[department]}"
    if purpose is not None:
        headers["X-Purpose"] = purpose
    response = httpx.post(url or federation["url"], json={"query": query, **extra}, headers=headers, timeout=30)
    return response, operator


def _records(federation, operator: str) -> list:
    engine = create_engine(f"sqlite:///{federation['world'].settings.var_dir / 'platform.db'}")
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(access_records).where(access_records.c.operator == operator).order_by(access_records.c.seq)
            ).all()
    finally:
        engine.dispose()


def test_the_offline_sdl_is_the_servers_whole_subgraph(federation):
    sdl = federation["sdl"]
    assert sdl.startswith('schema @link(url: "https://specs.apollo.dev/federation/v2.11", import: ["@key"])')
    assert 'type Person @key(fields: "idNumber")' in sdl and 'type Enterprise @key(fields: "creditCode")' in sdl


def test_a_query_crosses_both_subgraphs_and_each_entity_fetch_is_recorded(federation):
    query = """{ serviceHallVisits { id visitor { idNumber name countyCode serviceHallVisits { id } } } }"""
    response, operator = _ask(federation, query)
    assert response.status_code == 200, response.text
    result = response.json()
    assert "errors" not in result, result
    visits = result["data"]["serviceHallVisits"]
    persons = {p["id_number"]: p for p in federation["persons"]}
    assert [v["id"] for v in visits] == [v["id"] for v in federation["visits"]]
    for visit in visits:
        person = persons[visit["visitor"]["idNumber"]]
        # govshare's fields reached through the extension's entity, and the extension's field on govshare's Person
        assert visit["visitor"]["name"] == person["name"] and visit["visitor"]["countyCode"] == person["county_code"]
        assert visit["visitor"]["serviceHallVisits"] == [{"id": visit["id"]}]
    (record,) = _records(federation, operator)  # three visitors: one entity access, one statement
    assert (record.operation, record.resource, record.department, record.purpose, record.operator) == (
        "entity",
        "police.person",
        "market",
        MARKET,
        operator,
    )
    assert record.row_count == 3 and record.outcome == "allowed"
    # and the other way round: the extension's field on a govshare Person from govshare's own lookup
    person = federation["persons"][0]
    response, operator = _ask(
        federation,
        "query($i: String!) { person(idNumber: $i) { name serviceHallVisits { hall date } } }",
        variables={"i": person["id_number"]},
    )
    result = response.json()
    assert result["data"]["person"] == {
        "name": person["name"],
        "serviceHallVisits": [{"hall": "罗庄区政务服务中心", "date": "2026-11-01"}],
    }
    (record,) = _records(federation, operator)
    assert (record.operation, record.operator) == ("lookup", operator)


def test_an_introspecting_gateway_composes_from_service_sdl_and_forwards_the_callers_headers(federation):
    query = "{ serviceHallVisits { id visitor { name phone } } }"
    response, operator = _ask(federation, query, url=federation["introspecting"])
    result = response.json()
    persons = {p["name"] for p in federation["persons"]}
    assert {v["visitor"]["name"] for v in result["data"]["serviceHallVisits"]} == persons
    assert [e["extensions"]["code"] for e in result["errors"]] == ["NOT_SHARED"]
    # the caller's key, purpose and operator, never the gateway's own key (bigdata's) for a caller's request
    (record,) = _records(federation, operator)
    assert (record.department, record.purpose, record.operation) == ("market", MARKET, "entity")
    response, operator = _ask(federation, query, url=federation["introspecting"], department=None)
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]
    assert _records(federation, operator) == []


def test_a_denied_item_reaches_the_client_through_the_gateway(federation):
    response, operator = _ask(federation, "{ serviceHallVisits { id visitor { name phone } } }")
    result = response.json()
    visits = result["data"]["serviceHallVisits"]
    assert all(v["visitor"]["name"] and v["visitor"]["phone"] is None for v in visits)
    coded = [e for e in result["errors"] if e.get("extensions", {}).get("code") == "NOT_SHARED"]
    assert coded and coded[0]["extensions"]["item"] == "phone"
    assert coded[0]["message"].startswith("police.person.phone is not shared")  # Accept-Language: en forwarded
    # govshare's ["_entities", 0, "phone"], mapped by the gateway onto the client's own response path
    assert coded[0]["path"] == ["serviceHallVisits", 0, "visitor", "phone"]
    phones = [p["phone"] for p in federation["world"].rows("police", "SELECT phone FROM person") if p["phone"]]
    assert phones and all(phone not in response.text for phone in phones)
    (record,) = _records(federation, operator)
    assert (record.operation, record.outcome, record.items_denied) == ("entity", "partial", {"phone": "NOT_SHARED"})


def test_without_a_purpose_the_entity_fetch_is_refused_and_recorded(federation):
    response, operator = _ask(federation, "{ serviceHallVisits { id visitor { name } } }", purpose=None)
    result = response.json()
    assert [v["id"] for v in result["data"]["serviceHallVisits"]] == [v["id"] for v in federation["visits"]]
    names = {p["name"] for p in federation["persons"]}
    assert all(name not in response.text for name in names)
    assert any(e.get("extensions", {}).get("code") == "PURPOSE_REQUIRED" for e in result["errors"]), result
    (record,) = _records(federation, operator)
    assert (record.operation, record.outcome, record.error_code) == ("entity", "denied", "PURPOSE_REQUIRED")


def test_without_a_key_govshare_answers_nothing(federation):
    response, operator = _ask(federation, "{ serviceHallVisits { id visitor { name } } }", department=None)
    result = response.json()
    names = {p["name"] for p in federation["persons"]}
    assert all(name not in response.text for name in names)
    assert all(v["visitor"]["name"] is None for v in result["data"]["serviceHallVisits"])
    # the gateway never lends a caller its own key: govshare's 401 UNAUTHENTICATED reaches the client
    assert [e["extensions"]["code"] for e in result["errors"]] == ["UNAUTHENTICATED"]
    assert _records(federation, operator) == []


def test_a_refused_request_reaches_the_client_as_govshares_own_error(federation):
    """A refusal of the whole subgraph request (401 here; 403 DOCUMENT_NOT_TRUSTED, 429 RATE_LIMITED alike) came
    through as Apollo's "401: Unauthorized" (403 as FORBIDDEN, 429 without a code) with govshare's internal URL."""
    response, _ = _ask(federation, "{ serviceHallVisits { id visitor { name } } }", department=None)
    (error,) = response.json()["errors"]
    assert error["message"].startswith("No application key"), error  # govshare's message, Accept-Language: en
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and error["extensions"]["serviceName"] == "govshare"
    assert "response" not in error["extensions"] and "127.0.0.1" not in response.text


def test_the_gateway_sends_no_stack_trace(federation):
    """gateway.js started as the README shows (no NODE_ENV) put the gateway's stack trace, with its file paths,
    into every error's extensions."""
    for department in ("market", None):
        response, _ = _ask(federation, "{ serviceHallVisits { id visitor { name phone } } }", department=department)
        errors = response.json()["errors"]
        assert errors and all("stacktrace" not in e.get("extensions", {}) for e in errors), errors
        assert "node_modules" not in response.text


def test_without_an_operator_govshare_refuses_through_the_gateway_and_records_nothing(federation):
    """Art 22 with operator_required (on in production): the gateway forwards the caller's X-Operator or nothing;
    a caller naming no officer gets govshare's OPERATOR_REQUIRED through the gateway, and nothing is read."""
    engine = create_engine(f"sqlite:///{federation['world'].settings.var_dir / 'platform.db'}")
    try:
        with engine.connect() as conn:
            before = conn.execute(select(func.count()).select_from(access_records)).scalar_one()
        for url in (federation["url"], federation["introspecting"]):
            response, _ = _ask(federation, "{ serviceHallVisits { id visitor { name } } }", operator=False, url=url)
            result = response.json()
            assert all(name not in response.text for name in {p["name"] for p in federation["persons"]})
            assert [e["extensions"]["code"] for e in result["errors"]] == ["OPERATOR_REQUIRED"], result
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(access_records)).scalar_one() == before
    finally:
        engine.dispose()
