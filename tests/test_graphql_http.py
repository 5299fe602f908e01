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
