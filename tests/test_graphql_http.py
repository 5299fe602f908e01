"""The one GraphQL-over-HTTP handler (govshare/graphql_http.py) behind POST /graphql and POST /admin/graphql: the
same checks of the body, the same refusals, and no unexpected failure's text ever sent, on either endpoint."""

from __future__ import annotations

import logging

import pytest

from admin import operations
from tests.test_admin_api import _admin

SECRET = "postgresql://platform:Tr0ub4dor-s3cret@10.0.8.21/govshare"  # what an exception's text may carry
MALFORMED = [
    (b"{not json", "BAD_REQUEST"),
    (b'{"query": 42}', "BAD_REQUEST"),
    (b'{"query": "{ __typename }", "variables": []}', "BAD_REQUEST"),
    (b'[{"query": "{ __typename }"}]', "BATCH_NOT_SUPPORTED"),
]


@pytest.fixture
async def endpoints(own_api):
    """(client, headers) for /graphql with a department key and /admin/graphql with a staff session."""
    admin = await _admin(own_api)
    yield (
        {
            "/graphql": (own_api.client, {"Authorization": f"Bearer {own_api.world.keys['hrss']}"}),
            "/admin/graphql": (admin.client, {"Authorization": f"Bearer {admin.token}"}),
        },
        own_api,
    )
    await admin.client.aclose()


@pytest.mark.parametrize(("body", "code"), MALFORMED)
async def test_both_endpoints_refuse_a_malformed_body_alike(endpoints, body, code):
    answers = {}
    for path, (client, headers) in endpoints[0].items():
        response = await client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.headers["x-request-id"]
        (error,) = response.json()["errors"]
        answers[path] = (error["extensions"]["code"], error["message"])
    assert answers["/graphql"] == answers["/admin/graphql"] and answers["/graphql"][0] == code


async def test_both_endpoints_answer_with_the_request_id_and_the_operation_named(endpoints):
    document = "query A { __typename } query B { b: __typename }"
    for path, (client, headers) in endpoints[0].items():
        response = await client.post(path, json={"query": document, "operationName": "B"}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"b": "Query"}}
        assert len(response.headers["x-request-id"]) == 36


async def test_an_unexpected_failure_in_an_admin_operation_is_internal_error_without_its_text(
    endpoints, monkeypatch, caplog
):
    async def broken(runtime):
        raise RuntimeError(f"could not reach {SECRET}")

    monkeypatch.setattr(operations, "history", broken)
    client, headers = endpoints[0]["/admin/graphql"]
    with caplog.at_level(logging.ERROR):
        response = await client.post("/admin/graphql", json={"query": "{ policyHistory { version } }"}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL_ERROR" and error["path"] == ["policyHistory"]
    assert "Tr0ub4dor" not in response.text and "10.0.8.21" not in response.text
    assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in caplog.records)  # logged, for the operator


async def test_an_unexpected_failure_before_execution_is_internal_error_without_its_text(
    endpoints, monkeypatch, caplog
):
    """A failure outside GraphQL (the platform database gone while the caller is identified) on either endpoint."""
    clients, api = endpoints
    runtime = api.app.state.runtime

    async def gone(*args, **kwargs):
        raise OSError(f"connection to {SECRET} refused")

    monkeypatch.setattr(runtime, "authenticate", gone)
    monkeypatch.setattr("admin.api.signed_in", gone)
    for path, (client, headers) in clients.items():
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            response = await client.post(path, json={"query": "{ __typename }"}, headers=headers)
        assert response.status_code == 500, (path, response.text)
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "INTERNAL_ERROR"
        assert "Tr0ub4dor" not in response.text and "10.0.8.21" not in response.text
        assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in caplog.records)


# ---------------------------------------------------------------------------------------------------------------
# GraphQL over HTTP (issue 13): media types, GET, the operation's choice, Content-Type, CORS

GR = "application/graphql-response+json"
JS = "application/json"


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JS),
        ("", JS),
        ("*/*", JS),
        ("application/*", JS),
        (JS, JS),
        (f"{JS}; charset=utf-8", JS),
        (GR, GR),
        ("APPLICATION/GRAPHQL-RESPONSE+JSON", GR),
        (f"{GR}, {JS};q=0.9", GR),
        (f"{JS}, {GR};q=0.9", JS),
        (f"{GR}, {JS}", GR),  # a tie: the client named the new type
        (f"{JS};q=0.5, */*", GR),  # the wildcard's 1 beats application/json's 0.5
        (f"{GR};q=0, */*", JS),  # refused by name
        (f"{GR};q=zero, {JS};q=0.1", JS),  # a malformed q counts as 0
        ("text/html", JS),  # neither is accepted: disregarded, the default
        (f"{JS};q=0, {GR};q=0", JS),
    ],
)
def test_the_answer_s_media_type_follows_accept_with_its_q_values(accept, chosen):
    from govshare.graphql_http import response_media_type

    assert response_media_type(accept) == chosen


@pytest.mark.parametrize(
    ("accept", "page"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser's
        ("text/html", True),
        ("*/*", False),  # node's fetch, curl
        (None, False),
        (f"{JS}, text/html", False),
        (f"text/html;q=0.5, {JS}", False),
        (f"text/html, {JS};q=0.9", True),
    ],
)
def test_graphiql_is_for_a_client_that_prefers_a_page(accept, page):
    from govshare.graphql_http import prefers_html

    assert prefers_html(accept) is page


def _key(api, department="market") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.world.keys[department]}"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{"}, "GRAPHQL_INVALID"),
        ({"query": "{ noSuchField }"}, "GRAPHQL_INVALID"),
        ({"query": "query($id: String!) { __typename }", "variables": {"id": None}}, "GRAPHQL_INVALID"),
        ({"query": "query A { __typename }", "operationName": "B"}, "OPERATION_NOT_FOUND"),
        ({"query": "query A { __typename } query B { __typename }"}, "OPERATION_NAME_REQUIRED"),
        ({"query": "{ __typename } { __typename }"}, "GRAPHQL_INVALID"),  # an anonymous one must be alone
    ],
)
async def test_a_request_that_never_executes_has_no_data_and_is_4xx_under_the_new_media_type(api, body, code):
    answers = {}
    for accept in (JS, GR):
        response = await api.client.post("/graphql", json=body, headers={**_key(api), "Accept": accept})
        assert response.headers["content-type"] == accept
        assert response.headers["cache-control"] == "no-store"
        answer = response.json()
        assert "data" not in answer, answer
        assert answer["errors"][0]["extensions"]["code"] == code, answer
        answers[accept] = response.status_code
    assert answers == {JS: 200, GR: 400}


async def test_an_executed_operation_is_200_with_data_under_either_media_type(api, world):
    query = "query($id: String!) { person(idNumber: $id) { name phone } }"
    for accept in (JS, GR, None):
        headers = {**_key(api), "X-Purpose": "market.licence-review", **({"Accept": accept} if accept else {})}
        response = await api.client.post(
            "/graphql", json={"query": query, "variables": {"id": world.showcase["person_luozhuang"]}}, headers=headers
        )
        assert response.status_code == 200 and response.headers["content-type"] == (accept or JS)
        answer = response.json()
        assert answer["data"]["person"]["name"] and answer["data"]["person"]["phone"] is None
        assert [(e["path"], e["extensions"]["code"]) for e in answer["errors"]] == [(["person", "phone"], "NOT_SHARED")]


async def test_refusals_before_execution_keep_their_status_and_the_asked_media_type(api):
    anonymous = await api.client.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": GR})
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == GR
    assert "data" not in anonymous.json() and anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    bad = await api.client.post(
        "/graphql", json={"query": "{ __typename }", "variables": "x"}, headers={**_key(api), "Accept": GR}
    )
    assert bad.status_code == 400 and bad.headers["content-type"] == GR
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST" and "data" not in bad.json()


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/graphql", "application/x-www-form-urlencoded", f"{JS}; charset=latin-1"],
)
async def test_a_post_whose_body_is_not_json_by_its_content_type_is_refused_415(api, content_type):
    """A body's type must say JSON: forms and text/plain are what a page of another site can POST without asking
    (a "simple request"); no Content-Type at all is refused as the specification asks."""
    headers = {**_key(api), **({"Content-Type": content_type} if content_type else {})}
    response = await api.client.post("/graphql", content=b'{"query": "{ __typename }"}', headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert response.headers["accept-post"] == JS


async def test_a_post_of_json_in_utf_8_named_or_not_is_answered(api):
    for content_type in (JS, f"{JS}; charset=utf-8", f"{JS};charset=UTF-8", "Application/JSON"):
        response = await api.client.post(
            "/graphql",
            content='{"query": "{ __type(name: \\"Run🏃\\") { name } }"}',
            headers={**_key(api), "Content-Type": content_type},
        )
        assert response.status_code == 200 and response.json() == {"data": {"__type": None}}, content_type


async def _records(api, request_id: str) -> list[dict]:
    from sqlalchemy import select

    from audit.tables import access_records

    compared = [
        "department", "application", "key_id", "operator", "purpose", "resource", "operation", "items_returned",
        "items_masked", "items_denied", "row_count", "grants_used", "outcome", "error_code", "policy_version",
    ]  # fmt: skip
    async with api.app.state.runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(*(access_records.c[name] for name in compared)).where(access_records.c.request_id == request_id)
            )
        ).all()
    return sorted((dict(row._mapping) for row in rows), key=repr)


async def test_a_get_query_is_decided_and_recorded_exactly_as_the_same_post(api, world):
    import json

    query = """query Check($id: String!) { person(idNumber: $id) { name phone enterprises { name } }
                 personList(first: 3) { items { idNumber name } } }"""
    variables = {"id": world.showcase["person_luozhuang"]}
    headers = {**_key(api, "hrss"), "X-Purpose": "hrss.insurance-enrolment", "X-Operator": "officer-7"}
    post = await api.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    get = await api.client.get(
        "/graphql",
        params={"query": query, "variables": json.dumps(variables), "operationName": "Check"},
        headers={**headers, "Accept": GR},
    )
    assert get.status_code == post.status_code == 200
    assert get.headers["cache-control"] == "no-store" and get.headers["content-type"] == GR
    assert get.json() == post.json() and post.json()["errors"]
    posted = await _records(api, post.headers["x-request-id"])
    got = await _records(api, get.headers["x-request-id"])
    assert got == posted and len(got) >= 2 and {r["operator"] for r in got} == {"officer-7"}


@pytest.mark.parametrize(
    ("params", "chosen"),
    [
        ({"query": "mutation { __typename }"}, None),
        ({"query": "query Q { __typename } mutation M { __typename }", "operationName": "M"}, None),
    ],
)
async def test_a_mutation_over_get_is_405_and_runs_nothing(api, params, chosen):
    response = await api.client.get("/graphql", params=params, headers={**_key(api), "Accept": GR})
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED" and "data" not in response.json()
    assert await _records(api, response.headers["x-request-id"]) == []
    # The same query of that document over GET is answered.
    query = await api.client.get(
        "/graphql", params={"query": "query Q { __typename } mutation M { __typename }", "operationName": "Q"},
        headers=_key(api),
    )  # fmt: skip
    assert query.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("query_string", "code"),
    [
        ("query=%7B__typename%7D&query=%7B__typename%7D", "BAD_REQUEST"),  # a parameter twice
        ("query=%7B__typename%7D&variables=%7Bnot", "BAD_REQUEST"),
        ("query=%7B__typename%7D&variables=%5B%5D", "BAD_REQUEST"),
        ("variables=%7B%7D", "BAD_REQUEST"),
    ],
)
async def test_a_get_with_unreadable_parameters_is_a_bad_request(api, query_string, code):
    response = await api.client.get(f"/graphql?{query_string}", headers=_key(api))
    assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["code"] == code


async def test_a_get_longer_than_the_limit_is_414_with_a_code(api):
    limit = api.world.settings.max_query_string_bytes
    query = "{ __typename }" + " " * limit
    response = await api.client.get("/graphql", params={"query": query}, headers={**_key(api), "Accept-Language": "en"})
    assert response.status_code == 414 and response.headers["cache-control"] == "no-store"
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "URI_TOO_LONG" and str(limit) in error["message"]
    fits = await api.client.get("/graphql", params={"query": "{ __typename }" + " " * (limit // 2)}, headers=_key(api))
    assert fits.json() == {"data": {"__typename": "Query"}}


async def test_operation_names_are_checked_alike_on_both_endpoints_and_admin_refuses_get(endpoints):
    clients, api = endpoints
    for path, (client, headers) in clients.items():
        for invalid in (42, {"a": 1}, ["A"], False):
            response = await client.post(
                path, json={"query": "query A { __typename }", "operationName": invalid}, headers=headers
            )
            assert response.status_code == 400, (path, invalid, response.text)
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        for document, name, code in (
            ("query A { __typename }", "B", "OPERATION_NOT_FOUND"),
            ("query A { __typename } query B { b: __typename }", None, "OPERATION_NAME_REQUIRED"),
        ):
            body = {"query": document, **({"operationName": name} if name else {})}
            response = await client.post(path, json=body, headers={**headers, "Accept": GR})
            assert response.status_code == 400 and "data" not in response.json(), (path, response.text)
            assert response.json()["errors"][0]["extensions"]["code"] == code
    # The admin API is for scripts that POST: a GET is refused with a code, whatever it carries.
    client, headers = clients["/admin/graphql"]
    for params in ({"lang": "en"}, {"lang": "en", "query": "{ policyHistory { version } }"}):
        response = await client.get("/admin/graphql", params=params, headers=headers)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED"
        assert error["message"] == "Use POST: this address answers POST requests only."


async def test_a_console_session_cookie_is_no_key_on_the_query_endpoint(endpoints):
    """/graphql reads the caller from Authorization only: a browser's cookies (the console's session) identify no
    one there, so a page of another site cannot make a browser query with them."""
    from admin.auth import SESSION_COOKIE

    clients, api = endpoints
    _, admin_headers = clients["/admin/graphql"]
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    for method in ("GET", "POST"):
        response = await api.client.request(
            method,
            "/graphql",
            params={"query": "{ caller { department } }"} if method == "GET" else None,
            json={"query": "{ caller { department } }"} if method == "POST" else None,
            headers={"Cookie": f"{SESSION_COOKIE}={token}", "Accept": JS},
        )
        assert response.status_code == 401 and response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# CORS ----------------------------------------------------------------------------------------------------------

ALLOWED = "https://apps.linyi.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, x-purpose, x-operator, content-type, accept-language",
}


def _cors_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_cors_is_off_by_default_no_header_and_no_preflight(api):
    assert api.world.settings.cors_origins == ""
    post = await api.client.post("/graphql", json={"query": "{ __typename }"}, headers={**_key(api), "Origin": ALLOWED})
    assert post.status_code == 200 and _cors_headers(post) == {}
    preflight = await api.client.options("/graphql", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert preflight.status_code == 405 and _cors_headers(preflight) == {}


@pytest.fixture
async def cors_api(world):
    import dataclasses

    from tests.conftest import _api

    settings = dataclasses.replace(world.settings, cors_origins=f"{ALLOWED}, http://127.0.0.1:5173")
    async for api in _api(world, settings=settings):
        yield api


async def test_a_listed_origin_s_preflight_and_answers_carry_cors_headers(cors_api):
    preflight = await cors_api.client.options("/graphql", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert preflight.status_code == 200
    headers = _cors_headers(preflight)
    assert headers["access-control-allow-origin"] == ALLOWED
    assert set(headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-purpose", "x-operator", "content-type", "accept", "accept-language"} <= allowed
    assert headers["access-control-max-age"] == "600" and "access-control-allow-credentials" not in headers
    assert "Origin" in preflight.headers["vary"]
    for method in ("GET", "POST"):
        response = await cors_api.client.request(
            method,
            "/graphql",
            params={"query": "{ __typename }"} if method == "GET" else None,
            json={"query": "{ __typename }"} if method == "POST" else None,
            headers={**_key(cors_api), "Origin": "http://127.0.0.1:5173"},
        )
        assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
        headers = _cors_headers(response)
        assert headers["access-control-allow-origin"] == "http://127.0.0.1:5173"
        assert "access-control-allow-credentials" not in headers
        assert "x-request-id" in headers["access-control-expose-headers"].lower()
        assert "Origin" in response.headers["vary"]


async def test_an_origin_not_listed_gets_no_cors_header_at_all(cors_api):
    for origin in ("https://evil.example", "null", "https://apps.linyi.example.evil.example", ALLOWED + ":8443"):
        preflight = await cors_api.client.options("/graphql", headers={"Origin": origin, **PREFLIGHT})
        assert preflight.status_code == 403 and _cors_headers(preflight) == {}, origin
        assert preflight.headers["vary"] == "Origin"
        post = await cors_api.client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={**_key(cors_api), "Origin": origin}
        )
        assert _cors_headers(post) == {} and "Origin" in post.headers["vary"], origin
    # A header the query endpoint does not take is not allowed either, for a listed origin.
    odd = await cors_api.client.options(
        "/graphql",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-secret",
        },
    )
    assert odd.status_code == 400


async def test_a_refused_preflight_is_a_coded_error_in_the_callers_language(cors_api):
    """Starlette answered a refused preflight with English text and no code ("Disallowed CORS origin")."""
    cases = [
        ({"Origin": "https://evil.example", **PREFLIGHT}, 403, "CORS_ORIGIN_NOT_ALLOWED", "cors_origins"),
        (
            {"Origin": ALLOWED, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "x-secret"},
            400,
            "CORS_PREFLIGHT_REFUSED",
            "X-Purpose",
        ),
    ]
    for headers, status, code, named in cases:
        for lang, marker in (("zh-CN", "本接口"), ("en", "this endpoint")):
            refused = await cors_api.client.options("/graphql", headers={**headers, "Accept-Language": lang})
            assert refused.status_code == status and refused.headers["content-type"] == "application/json"
            (error,) = refused.json()["errors"]
            assert error["extensions"]["code"] == code and marker in error["message"] and named in error["message"]
            assert "Origin" in refused.headers["vary"]
    not_listed = await cors_api.client.options("/graphql", headers=cases[0][0])
    assert _cors_headers(not_listed) == {}  # still nothing of CORS for an origin not listed


async def test_cors_is_only_on_the_query_endpoint(cors_api):
    """The console and the admin API are sessions in cookies: no page of another origin is ever allowed there."""
    for path in ("/admin/graphql", "/admin/session", "/console", "/healthz"):
        preflight = await cors_api.client.options(path, headers={"Origin": ALLOWED, **PREFLIGHT})
        assert "access-control-allow-origin" not in preflight.headers, path
        answer = await cors_api.client.get(path, headers={"Origin": ALLOWED})
        assert _cors_headers(answer) == {}, path


@pytest.mark.parametrize(
    "origins", ["*", "https://apps.linyi.example/path", "apps.linyi.example", "https://a.example, *", "ftp://a.example"]
)
def test_cors_origins_that_are_no_origin_are_refused(origins):
    from govshare.config import load_settings
    from govshare.errors import ConfigError

    with pytest.raises(ConfigError, match="cors_origins"):
        load_settings(env={}, cors_origins=origins)
    assert load_settings(env={}, cors_origins="https://a.example, http://127.0.0.1:8080").origins() == (
        "https://a.example",
        "http://127.0.0.1:8080",
    )


async def test_head_is_answered_as_get_and_never_runs_a_mutation(api):
    query = await api.client.head("/graphql", params={"query": "{ __typename }"}, headers=_key(api))
    assert query.status_code == 200 and query.headers["cache-control"] == "no-store"
    mutation = await api.client.head("/graphql", params={"query": "mutation { __typename }"}, headers=_key(api))
    assert mutation.status_code == 405 and mutation.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "request_args", "zh", "en"),
    [
        ("POST", {"content": b"{not json"}, "请求体不是有效的 JSON（第 1 行第 2 列）。", "(line 1, column 2)"),
        ("POST", {"json": {"query": 42}}, "缺少字符串参数 query。", "expected a 'query' string"),
        ("POST", {"json": {"query": "{ __typename }", "operationName": 5}}, "参数 operationName 须为字符串或 null。",
         "'operationName' must be a string or null"),
        ("POST", {"json": {"query": "{ __typename }", "variables": []}}, "参数 variables 须为 JSON 对象或 null。",
         "'variables' must be an object or null"),
        ("GET", {"params": {"query": "{ __typename }", "variables": "{not"}},
         "参数 variables 不是有效的 JSON（第 1 行第 2 列）。", "'variables' is not valid JSON (line 1, column 2)"),
    ],
)  # fmt: skip
async def test_a_bad_request_says_what_is_wrong_in_the_callers_language(api, method, request_args, zh, en):
    """BAD_REQUEST's detail was English (and the JSON parser's own text) inside the Chinese message."""
    headers = {**_key(api), "Content-Type": "application/json"}
    answers = {}
    for lang in ("zh-CN", "en"):
        response = await api.client.request(
            method, "/graphql", headers={**headers, "Accept-Language": lang}, **request_args
        )
        assert response.status_code == 400, response.text
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        answers[lang] = error["message"]
    assert answers["zh-CN"] == f"请求无法解析：{zh}"
    assert answers["en"].startswith("The request cannot be read: ") and en in answers["en"]
    assert "Expecting" not in answers["en"]  # nothing of the parser's own English text


async def test_an_invalid_document_says_so_in_the_callers_language_beside_graphql_cores_message(api):
    """GRAPHQL_INVALID carried graphql-core's English message alone, and no ``reason`` as every other error does."""
    for query in ("{", "{ noSuchField }", "query($n: Int) { __typename }"):
        answers = {}
        for lang in ("zh-CN", "en"):
            response = await api.client.post(
                "/graphql",
                json={"query": query, "variables": {"n": "x"}},
                headers={**_key(api), "Accept-Language": lang},
            )
            (error,) = response.json()["errors"]
            assert error["extensions"]["code"] == "GRAPHQL_INVALID", error
            answers[lang] = error
        assert "GraphQL 文档或其变量无效" in answers["zh-CN"]["extensions"]["reason"]
        assert answers["en"]["extensions"]["reason"].startswith("The GraphQL document or its variables are not valid")
        assert answers["zh-CN"]["message"] == answers["en"]["message"]  # the fault itself, as graphql-core names it


async def test_another_method_is_a_coded_405_naming_the_methods_allowed(api):
    """PUT, PATCH, DELETE (and OPTIONS without CORS) on /graphql were Starlette's text/plain 'Method Not Allowed',
    no code, and 'Allow: POST' although GET answers queries; on /admin/graphql the same text."""
    for path, allowed in (("/graphql", {"GET", "HEAD", "POST"}), ("/admin/graphql", {"POST"})):
        for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
            response = await api.client.request(
                method, path, json={"query": "{ __typename }"}, headers={**_key(api), "Accept-Language": "en"}
            )
            assert response.status_code == 405, (path, method, response.text)
            assert response.headers["content-type"] == "application/json", (path, method)
            (error,) = response.json()["errors"]
            assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED" and "data" not in response.json()
            assert {m.strip() for m in response.headers["allow"].split(",")} == allowed, (path, method)
            assert all(m in error["message"] for m in allowed - {"HEAD"}), error["message"]
