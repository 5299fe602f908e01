"""Shared fixtures: a demo world built once per session into a temporary var/, and the app over HTTP (ASGI)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import hypothesis
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import create_engine, event, text

from audit.records import AccessRecord
from connectors.urls import sync_url
from demo.build import build_demo, source_url
from govshare.config import Settings, load_settings
from server import create_app

REPO = Path(__file__).resolve().parent.parent

# Hypothesis: the suite runs a fixed set of examples (derandomized, no example database: every CI run tries the
# same cases, so a red run is reproducible and nothing is written to .hypothesis/); `make test-deep` loads "deep"
# (`--hypothesis-profile=deep`): random examples, many more of each (see ``examples``), failures kept in and
# replayed from .hypothesis/.
hypothesis.settings.register_profile("suite", derandomize=True, database=None)
hypothesis.settings.register_profile("deep", derandomize=False, print_blob=True)
if hypothesis.settings.get_current_profile_name() == "default":  # not chosen with --hypothesis-profile
    hypothesis.settings.load_profile("suite")


def examples(variable: str, *, suite: int, deep: int) -> int:
    """How many examples a property test draws: ``variable`` (an environment variable) if set, else ``deep`` under
    the deep profile and ``suite`` otherwise. Read when the test module is imported, after pytest chose the profile."""
    chosen = os.environ.get(variable)
    if chosen:
        return int(chosen)
    return deep if hypothesis.settings.get_current_profile_name() == "deep" else suite


ENGINES = ("sqlite", "postgres", "mariadb")
# Under .ci/run a missing service fails the run; on a laptop without it, its tests are skipped.
REQUIRE_SERVICES = os.environ.get("GOVSHARE_REQUIRE_SERVICES") == "1"
TEST_DATABASE_PREFIX = os.environ.get(
    "GOVSHARE_TEST_DB_PREFIX", "govshare_test_"
)  # a second checkout testing at once sets its own


OPERATOR = "officer-0001"  # the acting officer the tests' requests name where the server requires one (Art 22)


def require_engine(settings: Settings, engine: str) -> None:
    if engine == "sqlite":
        return
    url = sync_url(source_url(settings, engine, "probe", "", ""))
    server = create_engine(
        url.rsplit("/", 1)[0] + ("/postgres" if engine == "postgres" else "/"), connect_args={"connect_timeout": 3}
    )
    try:
        with server.connect():
            pass
    except Exception as exc:
        reason = f"{engine} is not reachable at {url.rsplit('/', 1)[0]} ({exc.__class__.__name__}); .ci/run starts it"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        server.dispose()


def _plain(value):
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def make_settings(var_dir: Path, **overrides) -> Settings:
    # A page of 200 lets the link tests load 200 parents in one level.
    # Source caching off unless a test turns it on, so that statement counts never depend on test order.
    overrides = {"max_page_size": 200, "cache_max_seconds": 0, "rate_limit": "", "cost_budget": "", **overrides}
    return load_settings(
        env={}, var_dir=var_dir, catalog_dir=REPO / "catalog" / "demo", refresh_seconds=0.0, **overrides
    )


def production(settings: Settings) -> Settings:
    """``settings`` in production, with the audit checkpoint file and a signing key beside var_dir rather than
    in it (production refuses them under var_dir)."""
    import dataclasses

    from audit.checkpoints import generate_key

    outside = settings.var_dir.parent / "audit-outside-var"
    key = outside / "checkpoint-signing.key"
    if not key.exists():
        generate_key(key)
    return dataclasses.replace(
        settings,
        production=True,
        audit_signing_key_file=str(key),
        audit_checkpoint_file=str(outside / "checkpoints.jsonl"),
    )


@dataclass
class World:
    settings: Settings
    keys: dict[str, str]
    showcase: dict[str, str]

    engine: str = "sqlite"

    def rows(self, department: str, sql: str, *params) -> list[dict]:
        """Rows straight from a department's source (``?`` placeholders), dates as ISO text, decimals as floats."""
        names = iter(range(len(params)))
        statement = re.sub(r"\?", lambda _: f":p{next(names)}", sql)
        url = self.settings.expand(self._sources[department])
        engine = create_engine(sync_url(url))
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement), {f"p{i}": v for i, v in enumerate(params)}).mappings().all()
        finally:
            engine.dispose()
        return [{k: _plain(v) for k, v in row.items()} for row in result]

    def row(self, department: str, sql: str, *params) -> dict:
        return self.rows(department, sql, *params)[0]

    @property
    def _sources(self) -> dict[str, str]:
        return json.loads((self.settings.var_dir / "demo-sources.json").read_text())


class Api:
    """Speaks to the app as a department application would."""

    def __init__(self, client: httpx.AsyncClient, world: World, spans: InMemorySpanExporter, app) -> None:
        self.client, self.world, self.spans, self.app = client, world, spans, app
        # Where the server requires an operator (Art 22: production), every request names one unless its headers
        # say otherwise; in development none is sent, as a department system may not.
        self.operator = OPERATOR if app.state.runtime.settings.requires_operator else None

    async def post(
        self,
        query: str,
        *,
        department: str | None = None,
        purpose: str | None = None,
        variables: dict | None = None,
        headers: dict | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if self.operator is not None and not any(h.lower() == "x-operator" for h in sent):
            sent["X-Operator"] = self.operator
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


async def _api(world: World, settings: Settings | None = None, **runtime_options):
    spans = InMemorySpanExporter()
    app = create_app(settings or world.settings, span_exporter=spans, **runtime_options)
    runtime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://govshare.test") as client:
            yield Api(client, world, spans, app)
    finally:
        await runtime.stop()


async def _world(var_dir: Path, engine: str = "sqlite", database_prefix: str = TEST_DATABASE_PREFIX) -> World:
    settings = make_settings(var_dir)
    require_engine(settings, engine)
    built = await build_demo(settings, persons=1500, enterprises=400, engine=engine, database_prefix=database_prefix)
    return World(settings, built.keys, built.showcase, engine)


@pytest.fixture(scope="session", params=ENGINES)
async def world(request, tmp_path_factory) -> World:
    """The shared demo world, once on each source engine. Tests using it must not change grants, restrictions,
    keys or the catalog."""
    return await _world(tmp_path_factory.mktemp(f"var-{request.param}"), request.param)


@pytest.fixture(scope="session")
async def api(world: World):
    async for api in _api(world):
        yield api


def copied_world(built: World, var_dir: Path) -> World:
    """A world of its own made from ``built`` by copying its var/ folder (platform database, SQLite sources, keys,
    secrets) to ``var_dir``: what building it again would give, without the build. Sources on PostgreSQL or MariaDB
    stay ``built``'s, so a test on a copy may change policies, keys and the catalog, but not source rows."""
    copy_var(built.settings.var_dir, var_dir)
    return World(dataclasses.replace(built.settings, var_dir=var_dir), built.keys, built.showcase, built.engine)


@pytest.fixture(scope="session")
async def built_world(tmp_path_factory) -> World:
    """The SQLite demo world every ``own_world`` is copied from (never used directly)."""
    return await _world(tmp_path_factory.mktemp("built") / "var")


@pytest.fixture
async def own_world(built_world: World, tmp_path) -> World:
    """A demo world of the test's own, for tests that change policies, keys, the catalog or source rows."""
    return copied_world(built_world, tmp_path / "var")


@pytest.fixture
async def own_api(own_world: World):
    async for api in _api(own_world):
        yield api


async def grant_in_force(
    api,
    consumer: str,
    items: list[str],
    purposes: list[str],
    *,
    scope: dict | None = None,
    masks: dict | None = None,
    resource: str = "police.person",
) -> str:
    """A direct grant (2026-2031) recorded through the store, with its checks, and in force in ``api``'s process."""
    from policies.store import create_grant

    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        grant_id = await create_grant(
            conn,
            runtime.catalog,
            consumer=consumer,
            resource=resource,
            items=items,
            purposes=purposes,
            valid_from=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
            valid_until=datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC),
            row_scope=scope or {},
            masks=masks or {},
            created_by="test",
        )
    await runtime.refresh()
    return grant_id


def absent(value: str, response: dict | httpx.Response) -> bool:
    """True when ``value`` appears nowhere in the whole response body."""
    body = response.text if isinstance(response, httpx.Response) else json.dumps(response, ensure_ascii=False)
    return value not in body


def errors_by_item(result: dict) -> dict[str, str]:
    return {
        e["extensions"].get("item", "/".join(map(str, e["path"]))): e["extensions"]["code"]
        for e in result.get("errors", [])
    }


class StatementLog:
    """Statements a department's source receives, captured on its connector's engine."""

    def __init__(self, api, world, department: str) -> None:
        runtime = api.app.state.runtime
        url = world.settings.expand(runtime.catalog.departments[department].source)
        self.engine = runtime.connectors.get(url)._engine.sync_engine
        self.seen: list[tuple[str, tuple]] = []
        event.listen(self.engine, "before_cursor_execute", self._capture)

    def _capture(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append((statement, tuple(parameters)))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._capture)


def access_record(n: int) -> AccessRecord:
    """An access record of request ``r<n>`` (land listing enterprises' names, ``n`` rows), for the writer's tests."""
    return AccessRecord(
        at=datetime.datetime.now(datetime.UTC),
        request_id=f"r{n}",
        trace_id="0" * 32,
        department="land",
        application="a",
        key_id="k",
        operator=None,
        purpose="p",
        resource="market.enterprise",
        operation="list",
        items_returned=["name"],
        row_count=n,
    )


def connect(path: Path) -> contextlib.closing[sqlite3.Connection]:
    """A SQLite connection closed on leaving the block (sqlite3's own context manager only commits)."""
    return contextlib.closing(sqlite3.connect(path))


def govshare_command() -> str:
    candidate = Path(sys.executable).with_name("govshare")
    found = str(candidate) if candidate.exists() else shutil.which("govshare")
    assert found, "the govshare command is not installed: pip install -e '.[test]'"
    return found


def environment(folder: Path, language: str | None = None) -> dict[str, str]:
    """The environment of a `govshare` command run in ``folder``: its var/ there, the demo catalog, no other
    GOVSHARE_* variable of the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
    env |= {"GOVSHARE_VAR_DIR": str(folder / "var"), "GOVSHARE_CATALOG_DIR": str(REPO / "catalog" / "demo")}
    if language:
        env["GOVSHARE_LANGUAGE"] = language
    return env


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A folder with var/ built by a real `govshare demo` subprocess, once per session, and that first run.
    Tests must not change it: those that add keys, grants or restrictions use ``own_folder``."""
    folder = tmp_path_factory.mktemp("cli")
    first = subprocess.run(
        [govshare_command(), "demo"], cwd=folder, env=environment(folder), capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    return folder, first


@pytest.fixture(scope="session")
def demo_folder(demo) -> Path:
    return demo[0]


@pytest.fixture
def own_folder(demo_folder, tmp_path) -> Path:
    """A copy of the `govshare demo` world for a test that adds keys, grants or restrictions."""
    copy_var(demo_folder / "var", tmp_path / "var")
    return tmp_path


def copy_var(source: Path, target: Path) -> None:
    """Copies a var/ folder; the platform database through SQLite's backup, so its write-ahead log comes along."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("platform.db*"))
    if not (source / "platform.db").exists():  # the platform database is elsewhere (PostgreSQL)
        return
    with connect(source / "platform.db") as origin, connect(target / "platform.db") as copy:
        origin.backup(copy)


def bench_script(name: str):
    """bench/NAME.py as a module, loaded once (bench/ is no package): what tests of a bench script call."""
    import importlib.util

    module_name = f"bench_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, REPO / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while it is being executed
    spec.loader.exec_module(module)
    return module
