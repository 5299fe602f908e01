"""Shared fixtures: a demo world built once per session into a temporary var/, and the app over HTTP (ASGI)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from demo.build import build_demo
from govshare.config import Settings, load_settings
from server import create_app

REPO = Path(__file__).resolve().parent.parent


def make_settings(var_dir: Path, **overrides) -> Settings:
    return load_settings(env={}, var_dir=var_dir, catalog_dir=REPO / "catalog" / "demo", refresh_seconds=0.0, **overrides)


@dataclass
class World:
    settings: Settings
    keys: dict[str, str]
    showcase: dict[str, str]

    def source(self, department: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.settings.var_dir / "sources" / f"{department}.db")
        conn.row_factory = sqlite3.Row
        return conn

    def row(self, department: str, sql: str, *params) -> sqlite3.Row:
        with self.source(department) as conn:
            return conn.execute(sql, params).fetchone()


class Api:
    """Speaks to the app as a department application would."""

    def __init__(self, client: httpx.AsyncClient, world: World, spans: InMemorySpanExporter, app) -> None:
        self.client, self.world, self.spans, self.app = client, world, spans, app

    async def post(self, query: str, *, department: str | None = None, purpose: str | None = None,
                   variables: dict | None = None, headers: dict | None = None, key: str | None = None) -> httpx.Response:
        sent = dict(headers or {})
        if key is None and department is not None:
            key = self.world.keys[department]
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        if purpose is not None:
            sent["X-Purpose"] = purpose
        return await self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=sent)

    async def query(self, query: str, department: str, purpose: str | None, **kwargs) -> dict:
        response = await self.post(query, department=department, purpose=purpose, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


async def _api(world: World, **runtime_options):
    spans = InMemorySpanExporter()
    app = create_app(world.settings, span_exporter=spans, **runtime_options)
    runtime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://govshare.test") as client:
            yield Api(client, world, spans, app)
    finally:
        await runtime.stop()


async def _world(var_dir: Path) -> World:
    settings = make_settings(var_dir)
    built = await build_demo(settings, persons=1500, enterprises=400)
    return World(settings, built.keys, built.showcase)


@pytest.fixture(scope="session")
async def world(tmp_path_factory) -> World:
    """The shared demo world. Tests using it must not change grants, restrictions, keys or the catalog."""
    return await _world(tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="session")
async def api(world: World):
    async for api in _api(world):
        yield api


@pytest.fixture
async def own_world(tmp_path) -> World:
    """A demo world of the test's own, for tests that change policies, keys or the catalog."""
    return await _world(tmp_path / "var")


@pytest.fixture
async def own_api(own_world: World):
    async for api in _api(own_world):
        yield api


def absent(value: str, response: dict | httpx.Response) -> bool:
    """True when ``value`` appears nowhere in the whole response body."""
    body = response.text if isinstance(response, httpx.Response) else json.dumps(response, ensure_ascii=False)
    return value not in body


def errors_by_item(result: dict) -> dict[str, str]:
    return {e["extensions"].get("item", "/".join(map(str, e["path"]))): e["extensions"]["code"] for e in result.get("errors", [])}
