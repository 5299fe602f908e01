"""GraphQL over HTTP against a real uvicorn server: what only a real connection shows (keep-alive after a refusal or a
failure), and the README's `gql` snippet, run as written against the demo world."""

from __future__ import annotations

import contextlib
import io
import re
import types

import httpx
import pytest

from govshare import graphql_http
from tests.conftest import REPO, _world
from tests.served import serving


@pytest.fixture(scope="module")
async def served_world(tmp_path_factory):
    return await _world(tmp_path_factory.mktemp("var-served"))


@pytest.fixture(scope="module")
def served(served_world):
    with serving(served_world.settings) as url:
        yield url, served_world


def _connection(response: httpx.Response) -> object:
    """The client side (address, port) of the connection a response came on."""
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_an_unknown_operation_name_is_a_coded_error_and_the_connection_goes_on(served):
    url, world = served
    headers = {"Authorization": f"Bearer {world.keys['market']}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        unknown = client.post("/graphql", json={"query": "query A { __typename }", "operationName": "B"})
        assert unknown.status_code == 200 and unknown.headers["content-type"] == "application/json"
        assert unknown.json() == {
            "errors": [
                {
                    "message": "文档中没有名为 B 的操作（operationName）。",
                    "extensions": {
                        "code": "OPERATION_NOT_FOUND",
                        "reason": "文档中没有名为 B 的操作（operationName）。",
                    },
                }
            ]
        }
        strict = client.post(
            "/graphql",
            json={"query": "query A { __typename }", "operationName": 7},
            headers={"Accept": "application/graphql-response+json"},
        )
        assert strict.status_code == 400 and strict.headers["content-type"] == "application/graphql-response+json"
        assert strict.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST" and "data" not in strict.json()
        after = client.post("/graphql", json={"query": "{ __typename }"})
        assert after.status_code == 200 and after.json() == {"data": {"__typename": "Query"}}
        assert _connection(unknown) == _connection(strict) == _connection(after)  # one keep-alive connection


def test_a_failure_while_answering_is_internal_error_in_json_and_the_connection_goes_on(served, monkeypatch):
    """Why clients saw their next request reset: an exception that leaves the ASGI application is answered by
    Starlette (500, text/plain) and re-raised, and uvicorn then closes the connection. The handler lets none out."""
    url, world = served

    def broken(value):
        raise TypeError("cannot encode")

    monkeypatch.setattr(graphql_http, "msgspec", types.SimpleNamespace(json=types.SimpleNamespace(encode=broken)))
    headers = {"Authorization": f"Bearer {world.keys['market']}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        failed = client.post("/graphql", json={"query": "{ __typename }"})
        assert failed.status_code == 500 and failed.headers["content-type"] == "application/json"
        assert failed.json()["errors"][0]["extensions"]["code"] == "INTERNAL_ERROR"
        monkeypatch.undo()
        after = client.post("/graphql", json={"query": "{ __typename }"})
        assert after.json() == {"data": {"__typename": "Query"}}
        assert _connection(failed) == _connection(after)


def _readme_snippet() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## GraphQL over HTTP") :]
    (snippet,) = re.findall(r"```python\n(.*?)```", section[: section.index("\n## ", 5)], re.S)
    return snippet


def test_the_readme_gql_snippet_reads_partial_data_beside_the_denied_items(served):
    url, world = served
    snippet = _readme_snippet()
    keys_file = str(world.settings.var_dir / "demo-keys.json")
    for written, here in (("http://127.0.0.1:8000", url), ('"var/demo-keys.json"', repr(keys_file))):
        assert written in snippet
        snippet = snippet.replace(written, here)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "README.md", "exec"), {})
    name = world.row("police", "SELECT name FROM person WHERE id_number = ?", "371311197811261792")["name"]
    assert out.getvalue().splitlines() == [name, "['person', 'phone'] NOT_SHARED"]


def test_the_access_log_line_of_a_get_holds_no_part_of_its_query(served):
    """A GET's query (an ID number looked up) is in its URL; uvicorn's access line names the path only."""
    import logging

    url, world = served
    person = world.showcase["person_luozhuang"]
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    handler, level = Lines(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        response = httpx.get(
            f"{url}/graphql",
            params={"query": f'{{ person(idNumber: "{person}") {{ name }} }}'},
            headers={"Authorization": f"Bearer {world.keys['market']}", "X-Purpose": "market.licence-review"},
            timeout=10,
        )
        other = httpx.get(f"{url}/healthz?probe=1", timeout=10)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert response.status_code == 200 and response.json()["data"]["person"]["name"]
    assert other.status_code == 200
    assert any('"GET /graphql?… HTTP/1.1" 200' in line for line in lines), lines
    assert not any(person in line or "idNumber" in line for line in lines), lines
    assert any("/healthz?probe=1" in line for line in lines), lines  # other paths are logged as they are
