"""No caller can stall the service (issue 11, part 3), attacked as a department with a valid key would:
fragments that double at every level, bodies that claim a gibibyte or never end, parallel sign-ins against
argon2 and the lock-out, 60 KB headers bound for the append-only audit, huge pages spending the service,
and a cursor with an absurd offset. Some run against a real `govshare serve` over a raw socket."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import select
import socket
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, text
from sqlalchemy import select as sql_select

from admin import accounts
from admin.tables import staff_accounts, staff_sessions
from audit.tables import access_records
from demo.build import build_demo
from tests.conftest import (
    TEST_DATABASE_PREFIX,
    World,
    _api,
    copied_world,
    copy_var,
    make_settings,
    production,
    require_engine,
)
from tests.test_cache import _redis_or_skip
from tests.test_cli import _Server, demo_keys

ANSWER_TIMEOUT = 30  # seconds a socket waits for an answer: a liveness bound, not a speed assertion
RSS_BOUND_KIB = 300 * 1024
GIBIBYTE = 1 << 30
HRSS, HRSS_PURPOSE = "hrss", "hrss.insurance-enrolment"


def doubling(
    levels: int, on: str = "Person", leaf: str = "name", root: str = "personList(first: 2) { items { %s } }"
) -> str:
    """``fragment F1 on Person { ...F0 ...F0 }`` and so on: 2^levels fields once expanded."""
    fragments = [f"fragment F0 on {on} {{ {leaf} }}"]
    fragments += [f"fragment F{i} on {on} {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)]
    return "{ " + root % f"...F{levels}" + " } " + " ".join(fragments)


# --- worlds -------------------------------------------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["development", "production"])
async def mode_api(request, own_world: World):
    settings = make_settings(own_world.settings.var_dir)
    settings = production(settings) if request.param else settings
    async for api in _api(own_world, settings):
        yield api


def _new_postgres_database(database: str, template: str | None = None) -> str:
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {database}" + (f" TEMPLATE {template}" if template else "")))
    finally:
        admin.dispose()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def built_platform(request, tmp_path_factory) -> World:
    """A small demo world whose platform database (access records, staff accounts) is on SQLite or PostgreSQL,
    built once per engine for this module; each test has a copy (``platform_world``)."""
    folder = tmp_path_factory.mktemp(f"platform-{request.param}")
    overrides = {}
    if request.param == "postgres":
        require_engine(make_settings(folder / "probe"), "postgres")
        overrides["database_url"] = _new_postgres_database(f"{TEST_DATABASE_PREFIX}stall_platform_built")
    # Sign-in rate limits off: these worlds test what holds without them (the lock-out, the worker pool).
    settings = make_settings(folder / "var", staff_sign_ins_per_address="", staff_sign_ins_per_user="", **overrides)
    built = await build_demo(settings, persons=200, enterprises=50)
    return World(settings, built.keys, built.showcase)


@pytest.fixture
async def platform_world(built_platform: World, tmp_path) -> World:
    """A copy of ``built_platform`` of the test's own: its var/, and on PostgreSQL its platform database made with
    the built one as template (no session is open on that: every app of the module runs on a copy)."""
    world = copied_world(built_platform, tmp_path / "var")
    if built_platform.settings.database_url.startswith("postgresql"):
        url = _new_postgres_database(
            f"{TEST_DATABASE_PREFIX}stall_platform", f"{TEST_DATABASE_PREFIX}stall_platform_built"
        )
        world = dataclasses.replace(world, settings=dataclasses.replace(world.settings, database_url=url))
    return world


@pytest.fixture
async def platform_api(platform_world: World):
    async for api in _api(platform_world):
        yield api


def staff_password(world: World) -> tuple[str, str]:
    staff = json.loads((world.settings.var_dir / "demo-staff.json").read_text())
    return staff["username"], staff["password"]


async def count(api, statement) -> int:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await conn.execute(statement)).scalar_one()


# --- 1. fragment doubling -------------------------------------------------------------------------------------


async def test_fragment_doubling_is_refused_before_it_is_expanded(mode_api):
    api = mode_api
    records = sql_select(func.count()).select_from(access_records)
    before = await count(api, records)
    for levels in (17, 39):
        response = await api.post(doubling(levels), department=HRSS, purpose=HRSS_PURPOSE)
        assert response.status_code == 200
        result = response.json()
        assert "data" not in result
        (error,) = result["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_LARGE" and error["extensions"]["limit"] == 2000
        assert "2000" in error["message"] and "个字段" in error["message"]
    english = await api.post(doubling(17), department=HRSS, purpose=HRSS_PURPOSE, headers={"Accept-Language": "en"})
    assert english.json()["errors"][0]["message"].startswith("The query holds more than 2000 fields")
    assert await count(api, records) == before  # the document never reached execution: nothing read, nothing recorded


async def test_a_fragment_spreading_itself_is_refused_as_unbounded(mode_api):
    cycle = (
        "{ personList(first: 1) { items { ...A } } } fragment A on Person { name ...B } fragment B on Person { ...A }"
    )
    result = (await mode_api.post(cycle, department=HRSS, purpose=HRSS_PURPOSE)).json()
    assert "data" not in result and result["errors"][0]["extensions"]["code"] == "QUERY_TOO_LARGE"


async def test_fragments_within_the_bound_answer_as_written_out(mode_api):
    # F9 expands to 512 copies of three items (1536 fields): within max_expanded_fields, the plain query's answer.
    query = doubling(9, leaf="idNumber name countyCode")
    plain = await mode_api.query("{ personList(first: 2) { items { idNumber name countyCode } } }", HRSS, HRSS_PURPOSE)
    assert await mode_api.query(query, HRSS, HRSS_PURPOSE) == plain
    assert len(plain["data"]["personList"]["items"]) == 2 and "errors" not in plain


async def test_a_plain_document_over_the_bound_is_refused_too(own_world: World):
    # No fragments at all: 2001 written fields (under a token limit of 4100) are over max_expanded_fields.
    settings = make_settings(own_world.settings.var_dir, max_tokens=4100)
    async for api in _api(own_world, settings):
        wide = "{ personList(first: 1) { items { " + "name " * 2001 + "} } }"
        result = (await api.post(wide, department=HRSS, purpose=HRSS_PURPOSE)).json()
        assert result["errors"][0]["extensions"]["code"] == "QUERY_TOO_LARGE"


async def test_fragment_doubling_on_the_admin_api_is_refused(own_api):
    username, password = staff_password(own_api.world)
    session = await own_api.client.post("/admin/session", json={"username": username, "password": password})
    token = session.json()["token"]
    query = doubling(20, on="Query", leaf="rules { id items }", root="%s")
    staff = {"Authorization": f"Bearer {token}"}
    response = await own_api.client.post("/admin/graphql", json={"query": query}, headers=staff)
    assert response.status_code == 200
    assert "data" not in response.json() and response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_LARGE"
    # A long document of plain fields is stopped while it is parsed, at the query service's token limit.
    wide = await own_api.client.post(
        "/admin/graphql", json={"query": "{ rules { " + "id " * 5000 + "} }"}, headers=staff
    )
    assert "data" not in wide.json() and "2000 tokens" in wide.json()["errors"][0]["message"]
    small = await own_api.client.post(
        "/admin/graphql", headers=staff, json={"query": doubling(3, on="Query", leaf="denyRules { id }", root="%s")}
    )
    assert "errors" not in small.json() and small.json()["data"]["denyRules"]


# --- 2. bodies, against a real server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(demo_folder, tmp_path_factory):
    """`govshare serve` in production mode on a demo world of its own (a copy of the one `govshare demo` built),
    with a staff session for the admin paths."""
    folder = tmp_path_factory.mktemp("stall")
    copy_var(demo_folder / "var", folder / "var")
    from audit.checkpoints import generate_key

    generate_key(folder / "outside-var" / "signing.key")  # production refuses the audit key and file under var/
    server = _Server(
        folder,
        {
            "GOVSHARE_PRODUCTION": "true",
            "GOVSHARE_RATE_LIMIT": "",
            "GOVSHARE_AUDIT_CHECKPOINT_SECONDS": "0",
            "GOVSHARE_AUDIT_SIGNING_KEY_FILE": str(folder / "outside-var" / "signing.key"),
            "GOVSHARE_AUDIT_CHECKPOINT_FILE": str(folder / "outside-var" / "checkpoints.jsonl"),
        },
    )
    try:
        server.wait_until_healthy()
        staff = json.loads((folder / "var" / "demo-staff.json").read_text())
        session = httpx.post(f"{server.url}/admin/session", json=staff, timeout=ANSWER_TIMEOUT)
        assert session.status_code == 200, session.text
        yield server, folder, session.json()["token"]
    finally:
        server.stop()


def rss_kib(server: _Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1))


def raw_request(port: int, head: str, body: bytes | None = None, chunks: int = 0, chunk: bytes = b"") -> bytes:
    """Sends ``head``, then ``body`` (what a Content-Length promised only the start of) or up to ``chunks`` chunks
    of a chunked body that never ends, stopping as soon as an answer comes; returns the answer (b"" if none)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT)
    try:
        sock.sendall(head.encode())
        if body is not None:
            sock.sendall(body)
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        for _ in range(chunks):
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(framed)
            except OSError:  # the server closed the connection after answering
                break
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            answer += data
            head_end = answer.find(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", answer[:head_end].lower()) if head_end >= 0 else None
            if length and len(answer) >= head_end + 4 + int(length.group(1)):
                break
        return answer
    finally:
        sock.close()


def refusal(answer: bytes) -> dict:
    assert answer, "no answer"
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    return json.loads(body)["errors"][0]


def _headers(path: str, token: str, framing: str) -> str:
    content_type = "application/x-www-form-urlencoded" if path.startswith("/console") else "application/json"
    auth = f"Authorization: Bearer {token}\r\n" if path in ("/admin/graphql", "/console/rules") else ""
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n{auth}{framing}\r\n"


BODY_PATHS = ["/graphql", "/admin/graphql", "/admin/session", "/console/login", "/console/rules"]


@pytest.mark.parametrize("path", BODY_PATHS)
def test_a_body_claiming_a_gibibyte_is_refused_before_it_is_read(served, path):
    server, folder, token = served
    answer = raw_request(server.port, _headers(path, token, f"Content-Length: {GIBIBYTE}\r\n"), body=b"{" * 1000)
    error = refusal(answer)
    assert error["extensions"]["code"] == "BODY_TOO_LARGE" and "字节上限" in error["message"]
    assert rss_kib(server) < RSS_BOUND_KIB
    assert httpx.get(f"{server.url}/healthz", timeout=ANSWER_TIMEOUT).status_code == 200


@pytest.mark.parametrize("path", BODY_PATHS)
def test_a_chunked_body_that_never_ends_is_cut_at_the_limit(served, path):
    server, folder, token = served
    # Up to 64 MiB of chunks (the server's limits are 64 KiB, 1 MiB on /admin/graphql); the answer comes long before.
    answer = raw_request(
        server.port, _headers(path, token, "Transfer-Encoding: chunked\r\n"), chunks=4096, chunk=b"x" * 16384
    )
    assert refusal(answer)["extensions"]["code"] == "BODY_TOO_LARGE"
    assert rss_kib(server) < RSS_BOUND_KIB
    assert httpx.get(f"{server.url}/healthz", timeout=ANSWER_TIMEOUT).status_code == 200


def test_a_real_server_refuses_doubling_and_stays_answering(served):
    server, folder, _ = served
    key = demo_keys(folder)[HRSS]
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": doubling(39)},
        timeout=ANSWER_TIMEOUT,
        headers={"Authorization": f"Bearer {key}", "X-Operator": "officer-0042"},
    )
    assert response.status_code == 200 and response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_LARGE"
    assert httpx.get(f"{server.url}/healthz", timeout=ANSWER_TIMEOUT).status_code == 200


def test_sixteen_parallel_sign_ins_leave_healthz_answering(served):
    server, folder, _ = served
    answers: list[int] = []

    def sign_in(n: int) -> None:
        response = httpx.post(
            f"{server.url}/admin/session",
            timeout=ANSWER_TIMEOUT,
            json={"username": f"nobody-{n}", "password": "wrong password, long enough"},
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=sign_in, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    health = httpx.get(f"{server.url}/healthz", timeout=ANSWER_TIMEOUT)
    for thread in threads:
        thread.join()
    assert health.status_code == 200 and health.json()["status"] == "ok"
    # 30 a minute from one address: this module's one sign-in and these 16 are all checked (and refused).
    assert sorted(answers) == [401] * 16


async def test_json_nested_deeper_than_the_parser_goes_is_a_bad_request(own_api):
    # 30,000 nested arrays fit in 64 KiB; Python's JSON parser gives up with RecursionError (was: HTTP 500, no code).
    nested = b"[" * 30000 + b"]" * 30000
    username, password = staff_password(own_api.world)
    session = await own_api.client.post("/admin/session", json={"username": username, "password": password})
    for path, authorization in (
        ("/graphql", f"Bearer {own_api.world.keys[HRSS]}"),
        ("/admin/graphql", f"Bearer {session.json()['token']}"),
        ("/admin/session", None),
    ):
        body = b'{"query": "{ caller { department } }", "variables": {"a": ' + nested + b"}}"
        headers = {"Content-Type": "application/json", **({"Authorization": authorization} if authorization else {})}
        response = await own_api.client.post(path, content=body, headers=headers)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# --- 3. sign-in -------------------------------------------------------------------------------------------------


async def test_forty_parallel_wrong_passwords_then_the_right_one_get_no_session(platform_api):
    api = platform_api
    username, password = staff_password(api.world)
    limit = api.world.settings.staff_max_failures
    wrong = await asyncio.gather(
        *[
            api.client.post("/admin/session", json={"username": username, "password": f"wrong password {n}"})
            for n in range(40)
        ]
    )
    codes = [r.json()["errors"][0]["extensions"]["code"] for r in wrong]
    assert all(r.status_code == 401 for r in wrong)
    # Each attempt was counted before its check: exactly staff_max_failures passwords were checked, the rest refused.
    assert codes.count("STAFF_SIGN_IN_FAILED") == limit and codes.count("STAFF_LOCKED") == 40 - limit
    right = await api.client.post("/admin/session", json={"username": username, "password": password})
    assert right.status_code == 401 and right.json()["errors"][0]["extensions"]["code"] == "STAFF_LOCKED"
    assert "token" not in right.text
    assert await count(api, sql_select(func.count()).select_from(staff_sessions)) == 0
    async with api.app.state.runtime.engine.connect() as conn:
        account = (await conn.execute(sql_select(staff_accounts).where(staff_accounts.c.username == username))).one()
    assert account.locked_until is not None


async def test_sign_ins_hash_in_a_bounded_pool_off_the_event_loop(platform_api, monkeypatch):
    api = platform_api
    loop_thread = threading.get_ident()
    seen: list[int] = []
    running, most = 0, 0
    guard = threading.Lock()
    real = accounts._hasher

    class Watched:
        def verify(self, password_hash, password):
            nonlocal running, most
            with guard:
                running += 1
                most = max(most, running)
                seen.append(threading.get_ident())
            try:
                return real.verify(password_hash, password)
            finally:
                with guard:
                    running -= 1

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(accounts, "_hasher", Watched())
    username, password = staff_password(api.world)
    attempts = [
        api.client.post("/admin/session", json={"username": f"nobody-{n}", "password": "wrong password!!"})
        for n in range(15)
    ]
    attempts.append(api.client.post("/admin/session", json={"username": username, "password": password}))
    health = api.client.get("/healthz")
    *signed, health = await asyncio.gather(*attempts, health)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert [r.status_code for r in signed] == [401] * 15 + [200]
    assert len(seen) == 16 and loop_thread not in seen
    assert most <= accounts.HASH_WORKERS


async def test_sign_ins_are_limited_per_address_and_per_user_name(own_world: World):
    settings = make_settings(
        own_world.settings.var_dir, staff_sign_ins_per_address="6/minute", staff_sign_ins_per_user="3/minute"
    )
    async for api in _api(own_world, settings):
        username, password = staff_password(own_world)
        first = [
            await api.client.post("/admin/session", json={"username": "wang.wu", "password": "not it at all"})
            for _ in range(3)
        ]
        assert [r.status_code for r in first] == [401] * 3
        limited = await api.client.post("/admin/session", json={"username": "wang.wu", "password": "not it at all"})
        assert limited.status_code == 429
        assert limited.json()["errors"][0]["extensions"]["code"] == "STAFF_SIGN_IN_RATE_LIMITED"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Another user name from the same address: two more, then the address is over its six.
        others = [
            await api.client.post("/admin/session", json={"username": username, "password": "not it either"})
            for _ in range(2)
        ]
        assert [r.status_code for r in others] == [401, 401]
        over = await api.client.post("/admin/session", json={"username": username, "password": password})
        assert over.status_code == 429 and "token" not in over.text
        # From another address the right password signs in; wang.wu stays limited wherever it comes from.
        transport = httpx.ASGITransport(app=api.app, client=("10.0.0.7", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="https://govshare.test") as elsewhere:
            signed = await elsewhere.post("/admin/session", json={"username": username, "password": password})
            assert signed.status_code == 200 and signed.json()["token"]
            again = await elsewhere.post("/admin/session", json={"username": "wang.wu", "password": "not it at all"})
            assert again.status_code == 429
            page = await elsewhere.get("/console/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            console = await elsewhere.post(
                "/console/login",
                headers={"Origin": "https://govshare.test"},
                data={"username": "wang.wu", "password": "x", "csrf_token": csrf},
            )
            assert console.status_code == 429 and "STAFF_SIGN_IN_RATE_LIMITED" in console.text
            assert "retry-after" in console.headers


# --- 4. headers into the audit -----------------------------------------------------------------------------------

LONG = "A" * 60000


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Operator", LONG),
        ("X-Operator", "officer\t0042"),
        ("X-Operator", "o" * 65),
        ("X-Purpose", LONG),
        ("X-Purpose", "hrss.insurance-enrolment\tx"),
        ("X-Purpose", "not a purpose code"),
    ],
)
async def test_long_or_odd_headers_are_refused_before_anything_is_recorded(platform_api, header, value):
    api = platform_api
    records = sql_select(func.count()).select_from(access_records)
    before = await count(api, records)
    headers = {"X-Purpose": HRSS_PURPOSE, header: value}
    response = await api.client.post(
        "/graphql",
        json={"query": "{ personList(first: 3) { items { name } } }"},
        headers={"Authorization": f"Bearer {api.world.keys[HRSS]}", **headers},
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "HEADER_INVALID", "header": header, "reason": error["message"]}
    assert header in error["message"] and "data" not in response.json()
    assert await count(api, records) == before
    # An acceptable operator and purpose are recorded as sent.
    fine = await api.query(
        "{ personList(first: 1) { items { name } } }", HRSS, HRSS_PURPOSE, headers={"X-Operator": "officer-0042"}
    )
    assert fine["data"]["personList"]["items"]
    async with api.app.state.runtime.engine.connect() as conn:
        stored = (await conn.execute(sql_select(access_records.c.operator, access_records.c.purpose))).all()
    assert len(stored) == before + 1 and ("officer-0042", HRSS_PURPOSE) in stored
    assert all(len(o or "") <= 64 and len(p or "") <= 80 for o, p in stored)


# --- 5. cost ------------------------------------------------------------------------------------------------------

PAGE = "{ personList(first: 100) { items { idNumber name gender birthDate address countyCode } } }"


def answered_cost(result: dict) -> int:
    items = result["data"]["personList"]["items"]
    return len(items) * len({k for i in items for k, v in i.items() if v is not None})


async def _spend(api, budget: int) -> int:
    """Big pages until the key's budget is refused; returns the cost answered before that."""
    spent = 0
    for _ in range(budget // 100 + 2):
        response = await api.post(PAGE, department=HRSS, purpose=HRSS_PURPOSE)
        if response.status_code == 429:
            return spent
        assert response.status_code == 200, response.text
        spent += answered_cost(response.json())
    raise AssertionError(f"never refused; {spent} answered against a budget of {budget}")


async def test_a_key_that_spends_its_cost_budget_is_refused_and_another_is_not(own_world: World):
    settings = make_settings(own_world.settings.var_dir, cost_budget="3000/minute")
    async for api in _api(own_world, settings):
        spent = await _spend(api, 3000)
        assert spent >= 3000  # refused only once the budget is spent, not before
        refused = await api.post(PAGE, department=HRSS, purpose=HRSS_PURPOSE)
        assert refused.status_code == 429
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "COST_BUDGET_EXCEEDED" and "3000/minute" in error["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "data" not in refused.json()
        other = await api.query("{ personList(first: 100) { items { name } } }", "market", "market.licence-review")
        assert len(other["data"]["personList"]["items"]) == 100


async def test_the_cost_budget_is_shared_through_redis(own_world: World):
    url = _redis_or_skip()
    settings = make_settings(own_world.settings.var_dir, cost_budget="3000/minute", rate_limit_url=url)
    async for first in _api(own_world, settings):
        await _spend(first, 3000)
        async for second in _api(own_world, settings):  # another process's view of the same budget
            refused = await second.post(PAGE, department=HRSS, purpose=HRSS_PURPOSE)
            assert refused.status_code == 429
            assert refused.json()["errors"][0]["extensions"]["code"] == "COST_BUDGET_EXCEEDED"


# --- 6. cursors -----------------------------------------------------------------------------------------------------


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("offset", ["99999999999999999999999", "2147483648", "9223372036854775808"])
async def test_a_huge_cursor_offset_is_a_bad_cursor(api, offset):
    result = await api.query(
        "query($after: String) { personList(first: 2, after: $after) { items { name } } }",
        HRSS,
        HRSS_PURPOSE,
        variables={"after": cursor(f"o:{offset}")},
    )
    assert result["data"]["personList"] is None
    assert [e["extensions"]["code"] for e in result["errors"]] == ["BAD_CURSOR"]


async def test_the_largest_cursor_offset_answers_an_empty_page(api):
    query = "query($after: String) { personList(first: 2, after: $after) { items { name } pageInfo { hasNextPage } } }"
    result = await api.query(query, HRSS, HRSS_PURPOSE, variables={"after": cursor("o:2147483647")})
    assert result["data"] == {"personList": {"items": [], "pageInfo": {"hasNextPage": False}}}
    assert "errors" not in result  # an empty page still read the source: its freshness is said (README "Freshness")
    assert [e["resource"] for e in result["extensions"]["freshness"]] == ["police.person"]


async def test_huge_cursors_cannot_open_the_source_breaker_for_everyone(api):
    # Before the bound, PostgreSQL and MariaDB failed such offsets as source errors: three in a row opened the
    # police source's breaker, and every department's next query of it answered SOURCE_UNAVAILABLE.
    query = "query($after: String) { personList(first: 2, after: $after) { items { name } } }"
    attack = [
        await api.query(query, HRSS, HRSS_PURPOSE, variables={"after": cursor("o:99999999999999999999999")})
        for _ in range(api.world.settings.breaker_failures + 2)
    ]
    other = await api.query("{ personList(first: 2) { items { name } } }", "market", "market.licence-review")
    assert "errors" not in other and len(other["data"]["personList"]["items"]) == 2
    assert [[e["extensions"]["code"] for e in result["errors"]] for result in attack] == [["BAD_CURSOR"]] * len(attack)
