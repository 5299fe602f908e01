"""Faults under load (issue 17), each answering every caller with a coded error, never a hang, and losing no access
record: the platform database (PostgreSQL) restarted mid-load, or no longer answering mid-load, a worker of `govshare
serve --workers 2` killed with SIGKILL mid-load, and a source slowed beyond its timeout. (Redis down:
tests/test_redis_down.py.)

The platform database's faults are a relay between the server and PostgreSQL (``Proxy``, tests/test_propagation.py):
a restart cuts every connection and resets every new one for a few seconds, then lets them through again; a database
that stops answering has its bytes held, its connections open, until every client has been answered meanwhile. The
shared PostgreSQL itself is never stopped. Answers are matched to their access records by the request id each carries
(``X-Request-Id``). Clients wait far longer than any bound of the server's own: an answer that does not come is a
hang, not a slow machine."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from audit.tables import access_records
from demo.build import build_demo
from tests.conftest import TEST_DATABASE_PREFIX, World, _api, environment, make_settings, require_engine
from tests.test_cli import _Server
from tests.test_propagation import Proxy
from tests.test_serve_workers import (
    LOOKUP,
    MARKET_PURPOSE,
    Workers,
    _answered_by,
    _ask,
    _close_connections,
    _govshare_in_process,
    _records,
    world,  # noqa: F401 - the fixture (here on PostgreSQL only)
)

# Far above every bound of the server's own (a source's 5 s, the platform database's 10 s (server.PLATFORM_WAIT) and
# its pool's 30 s wait, policies unconfirmed after 30 s): a request not answered by then hangs.
CLIENT_TIMEOUT = 120
DEADLINE = 60  # for what a loaded machine takes time to do: start, recover, answer enough requests
CLIENTS = 6
OUTAGE_SECONDS = 4
ON_POSTGRES = pytest.mark.parametrize("world", ["postgres"], indirect=True)


@dataclass
class Asked:
    """One request of a client and how it ended: its answer (status, body, request id), or the failure of its
    connection where no answer came."""

    started: float
    ended: float
    status: int | None = None
    body: dict | None = None
    request_id: str | None = None
    retry_after: str | None = None
    failure: str | None = None

    def answered(self, person: str) -> bool:
        """A 200 carrying the person asked for, and no error."""
        body = self.body or {}
        person_data = (body.get("data") or {}).get("person") or {}
        return self.status == 200 and person_data.get("idNumber") == person and not body.get("errors")

    def codes(self) -> list[str | None]:
        return [(e.get("extensions") or {}).get("code") for e in (self.body or {}).get("errors") or []]


def _lookup(port: int, key: str, person: str) -> Asked:
    """One lookup on a connection of its own (a connection the server held when it failed fails only this request)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        body = json.dumps({"query": LOOKUP, "variables": {"id": person}})
        headers = {"Authorization": f"Bearer {key}", "X-Purpose": MARKET_PURPOSE, "Content-Type": "application/json"}
        conn.request("POST", "/graphql", body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return Asked(started, time.monotonic(), failure=repr(exc))
    finally:
        conn.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = {"not JSON": raw.decode(errors="replace")}
    request_id, retry_after = response.getheader("X-Request-Id"), response.getheader("Retry-After")
    return Asked(started, time.monotonic(), response.status, parsed, request_id, retry_after)


class Load:
    """``clients`` threads asking the lookup over and over until ``stop``."""

    def __init__(self, port: int, key: str, person: str, clients: int = CLIENTS) -> None:
        self.port, self.key, self.person = port, key, person
        self.asked: list[Asked] = []
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def _client(self) -> None:
        while not self._stopping.is_set():
            self.asked.append(_lookup(self.port, self.key, self.person))

    def wait_answered(self, count: int, since: float, log: list[str]) -> None:
        """Until ``count`` requests started at ``since`` or later have been answered with data."""
        deadline = time.monotonic() + DEADLINE
        while sum(1 for a in list(self.asked) if a.started >= since and a.answered(self.person)) < count:
            assert time.monotonic() < deadline, f"not answered again: {self.asked[-3:]}\n" + "".join(log[-60:])
            time.sleep(0.05)

    def stop(self) -> list[Asked]:
        self._stopping.set()
        for thread in self._threads:
            thread.join(CLIENT_TIMEOUT + 10)
            assert not thread.is_alive(), "a client is still waiting for its answer"
        return list(self.asked)


def _check_records(url: str, answered: list[str], others: list[str], unanswered: int = 0) -> int:
    """Every answer sent with data has its one access record; a request answered with an error has none or one (its
    record committed before its commit was acknowledged); at most ``unanswered`` records belong to requests no answer
    reached. The records' count."""
    records = _records(url)
    assert {r: records.get(r) for r in answered if records.get(r) != 1} == {}, "an answer sent without its record"
    assert {r: n for r, n in records.items() if n > 1} == {}, "a record written twice"
    known = set(answered) | set(others)
    assert len(set(records) - known) <= unanswered, "records of requests nobody was answered"
    return sum(records.values())


def _verify(folder: Path, url: str, records: int) -> None:
    verify = _govshare_in_process(
        folder, ["audit", "verify"], environment(folder, "en") | {"GOVSHARE_DATABASE_URL": url}
    )
    assert verify.exit_code == 0, verify.stdout + verify.stderr
    assert f"The access chain is intact: {records} records." in verify.stdout, verify.stdout


def _no_limits(folder: Path) -> None:
    # Clients ask as fast as they are answered: the per-key limits would refuse them with their own (coded) 429.
    (folder / "govshare.toml").write_text('rate_limit = ""\ncost_budget = ""\n')


# How each refusal of a platform database fault is answered: (status, code); every 503 says when to retry.
PLATFORM_REFUSALS = {
    (500, "AUDIT_UNAVAILABLE"),  # the records could not be written: nothing sent
    (503, "PLATFORM_DATABASE_UNREACHABLE"),  # the caller's key could not be looked up
    (503, "POLICY_UNCONFIRMED"),  # no check has confirmed the policies for policy_stale_seconds
}


def _through_a_platform_fault(world, fault: Callable[[Proxy, _Server, Load], None]) -> list[Asked]:
    """A server on PostgreSQL through a relay, under load; ``fault`` breaks the relay and mends it; then the same
    process answers with data again. Every caller was answered, with data and its one record or refused with a code;
    `govshare audit verify` passes. The refusals."""
    folder, env, key, person = world
    direct = env["GOVSHARE_DATABASE_URL"]
    proxy = Proxy(5432)
    _no_limits(folder)
    server = _Server(folder, {"GOVSHARE_DATABASE_URL": direct.replace(":5432/", f":{proxy.port}/")})
    load = None
    try:
        server.wait_until_healthy()
        load = Load(server.port, key, person)
        load.wait_answered(20, float("-inf"), server.lines)
        fault(proxy, server, load)
        load.wait_answered(20, time.monotonic(), server.lines)  # the same process answers again, without a restart
        asked = load.stop()
        load = None
        assert server.process.poll() is None, "the server exited"
        assert httpx.get(f"{server.url}/readyz", timeout=CLIENT_TIMEOUT).status_code == 200
    finally:
        if load is not None:
            load.stop()
        server.stop()
        proxy.cut()

    answered, refused = [], []
    for a in asked:
        assert a.failure is None, f"a caller got no answer: {a}"
        assert a.request_id, a
        if a.answered(person):
            answered.append(a.request_id)
        else:  # refused as a whole, with a code and without the person's data
            assert not (a.body or {}).get("data"), a
            assert len(a.codes()) == 1 and (a.status, a.codes()[0]) in PLATFORM_REFUSALS, a
            assert a.status != 503 or a.retry_after == "1", a
            assert str(proxy.port) not in json.dumps(a.body), a  # where the database is goes to the log only
            refused.append(a)
    print(f"{len(answered)} answered, {len(refused)} refused: {sorted({c for a in refused for c in a.codes()})}")
    records = _check_records(direct, answered, [a.request_id for a in refused])
    _verify(folder, direct, records)
    return refused


@ON_POSTGRES
def test_the_platform_database_restarted_mid_load_loses_no_record_and_leaves_no_caller_waiting(world):
    def restart(proxy: Proxy, server: _Server, load: Load) -> None:
        proxy.drop()  # PostgreSQL goes down: every connection cut, every new one refused...
        down = time.monotonic()
        not_ready = httpx.get(f"{server.url}/readyz", timeout=CLIENT_TIMEOUT)
        assert not_ready.status_code == 503, not_ready.text
        checks = not_ready.json()["errors"][0]["extensions"]["checks"]
        assert {c["check"]: c["extensions"]["code"] for c in checks}["platform_database"] == (
            "PLATFORM_DATABASE_UNREACHABLE"
        )
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))
        proxy.restore()  # ...and is back
        outage.append(down)

    outage: list[float] = []
    refused = _through_a_platform_fault(world, restart)
    assert [a for a in refused if a.ended >= outage[0]], "no request fell in the outage"


@ON_POSTGRES
def test_a_platform_database_that_stops_answering_mid_load_is_refused_in_bounded_time_not_waited_on(world):
    def hang(proxy: Proxy, server: _Server, load: Load) -> None:
        # PostgreSQL stops answering, its connections open (hung, or a network dropping packets). Every caller is
        # answered while it stays so: none waits for the database to come back.
        proxy.hold()
        held = time.monotonic()
        deadline = held + DEADLINE
        while sum(1 for a in list(load.asked) if a.started >= held) < 2 * CLIENTS:
            assert time.monotonic() < deadline, "callers left waiting on a database that does not answer"
            time.sleep(0.05)
        hung.extend(a for a in list(load.asked) if a.started >= held)
        proxy.release()

    hung: list[Asked] = []
    _through_a_platform_fault(world, hang)
    assert hung and not [a for a in hung if a.answered(world[3])], "answered with data while it could not be recorded"


def _gone(pid: int) -> bool:
    """The process has ended (reaped, or a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@ON_POSTGRES
def test_a_worker_killed_mid_load_fails_only_its_requests_in_flight_and_loses_no_record(world):
    folder, env, key, person = world
    url = env["GOVSHARE_DATABASE_URL"]
    _no_limits(folder)
    server = Workers(folder, 2, env)
    load = None
    replaced: list[tuple[int, http.client.HTTPResponse, bytes]] = []
    try:
        server.wait_started(2)
        victim, survivor = server.pids()
        load = Load(server.port, key, person)
        load.wait_answered(30, float("-inf"), server.lines)

        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + DEADLINE
        while not _gone(victim):
            assert time.monotonic() < deadline, "the killed worker did not end"
            time.sleep(0.01)
        dead = time.monotonic()
        load.wait_answered(20, dead, server.lines)  # answered meanwhile, by the survivor
        server.wait_started(3)
        replacement = server.pids()[-1]
        load.wait_answered(20, time.monotonic(), server.lines)
        asked = load.stop()
        load = None
        for _ in range(20):  # until the replacement has answered a connection itself
            replaced = _ask(server.port, key, person, 12)
            by = _answered_by(server.port, [client for client, _, _ in replaced], [survivor, replacement])
            if replacement in by.values():
                break
            _close_connections()
        assert replacement in by.values(), "the replacement worker answered no connection"
        _close_connections()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=DEADLINE) == 0, "".join(server.lines)
    finally:
        _close_connections()
        if load is not None:
            load.stop()
        if server.process.poll() is None:
            server.kill_all()

    failed = [a for a in asked if a.failure is not None]
    # Only the requests the killed worker held: every failure was asked before it had ended.
    assert [a for a in failed if a.started >= dead] == [], "a request failed that the dead worker never held"
    sent = [a for a in asked if a.failure is None]
    assert [a for a in sent if not a.answered(person)] == [], "an answer of a live worker was not the data"
    for _, response, body in replaced:
        assert response.status == 200 and json.loads(body)["data"]["person"]["idNumber"] == person, body
    answered = [a.request_id for a in sent] + [response.getheader("X-Request-Id") for _, response, _ in replaced]
    print(f"{len(answered)} answered, {len(failed)} failed in flight: {[a.failure for a in failed]}")

    records = _check_records(url, answered, [], unanswered=len(failed))
    _verify(folder, url, records)


SLOW = "{ realEstateList(first: 3) { items { ownerName } } }"  # land's own source, slowed
OTHER = "{ enterpriseList(first: 3) { items { name } } }"  # market's, answering as ever
LAND, LAND_PURPOSE = "land", "land.property-registration"
SOURCE_TIMEOUT = 1.0
HANG_GUARD = 30 * SOURCE_TIMEOUT


async def _outcomes(api, response: httpx.Response) -> dict[str, tuple[str, str | None]]:
    """resource -> (outcome, error code) of the access records of ``response``'s request."""
    async with api.app.state.runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(access_records).where(access_records.c.request_id == response.headers["X-Request-Id"])
            )
        ).all()
    return {r.resource: (r.outcome, r.error_code) for r in rows}


async def test_a_source_slowed_beyond_its_timeout_is_a_coded_failure_in_bounded_time_and_recorded(tmp_path):
    proxy = Proxy(5432)  # land's department database on PostgreSQL, through a relay that will hold its bytes back
    settings = make_settings(
        tmp_path / "var",
        demo_postgres_url=f"postgresql://postgres@127.0.0.1:{proxy.port}/",
        source_timeout_seconds=SOURCE_TIMEOUT,
        source_pool_size=2,  # fewer connections than callers: a wait for one is bounded by the timeout too
        breaker_failures=3,
        breaker_reset_seconds=0.5,
    )
    try:
        require_engine(settings, "postgres")
        built = await build_demo(
            settings,
            persons=100,
            enterprises=30,
            engines={LAND: "postgres"},
            database_prefix=f"{TEST_DATABASE_PREFIX}faults_",
        )
        async for api in _api(World(settings, built.keys, built.showcase)):
            answered = await api.post(SLOW, department=LAND, purpose=LAND_PURPOSE)
            assert answered.json()["data"]["realEstateList"]["items"], answered.text

            proxy.delay = 4 * SOURCE_TIMEOUT  # every byte the source sends arrives well after the timeout

            async def ask(query: str, api=api) -> httpx.Response:
                return await asyncio.wait_for(api.post(query, department=LAND, purpose=LAND_PURPOSE), HANG_GUARD)

            slow = [asyncio.create_task(ask(SLOW)) for _ in range(5)]
            others = [await ask(OTHER) for _ in range(5)]  # while the slow ones wait on the source
            slowed = await asyncio.gather(*slow)
            for response in others:
                assert response.status_code == 200 and "errors" not in response.json(), response.text
                assert len(response.json()["data"]["enterpriseList"]["items"]) == 3
                assert await _outcomes(api, response) == {"market.enterprise": ("allowed", None)}
            for response in slowed:
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["data"] == {"realEstateList": None}, body
                (error,) = body["errors"]
                assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE" and error["path"] == ["realEstateList"], body
                assert "land.real-estate" in error["message"], body  # the resource named, nothing of the source's
                assert await _outcomes(api, response) == {"land.real-estate": ("failed", "SOURCE_UNAVAILABLE")}
            (connector,) = [c for u, c in api.app.state.runtime.connectors._by_url.items() if f":{proxy.port}/" in u]
            assert connector.breaker.state in ("open", "half-open")

            proxy.delay = 0.0  # the source is fast again: answered once the breaker lets a read through
            deadline = time.monotonic() + DEADLINE
            while True:
                again = await ask(SLOW)
                if "errors" not in again.json():
                    break
                assert time.monotonic() < deadline, again.text
                await asyncio.sleep(0.2)
            assert again.json()["data"]["realEstateList"]["items"]
            assert await _outcomes(api, again) == {"land.real-estate": ("allowed", None)}
    finally:
        proxy.delay = 0.0
        proxy.cut()
