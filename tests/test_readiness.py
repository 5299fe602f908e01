"""/healthz (alive: nothing asked of any dependency) and /readyz (the platform database reachable and at the code's
revision, Redis where configured, a catalog loaded): 503 NOT_READY naming each failing check with its code."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import create_engine, text

from demo.build import build_demo
from tests.conftest import TEST_DATABASE_PREFIX, World, _api, connect, make_settings, require_engine
from tests.test_cache import _redis_or_skip


def failing(body: dict) -> dict[str, str]:
    """check -> code of each failing check of a 503 answer."""
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "NOT_READY"
    return {entry["check"]: entry["extensions"]["code"] for entry in error["extensions"]["checks"]}


async def test_ready_then_not_while_a_migration_is_pending_then_ready_again(own_api):
    client, database = own_api.client, own_api.world.settings.var_dir / "platform.db"
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "checks": {"platform_database": "ok", "access_records": "ok", "catalog": "ok", "policies": "ok"},
    }

    with connect(database) as conn, conn:
        (head,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        conn.execute("UPDATE alembic_version SET version_num = '0001_baseline'")
    pending = await client.get("/readyz", headers={"Accept-Language": "en"})
    assert pending.status_code == 503 and pending.headers["retry-after"] == "1"
    assert failing(pending.json()) == {"platform_database": "DB_REVISION_MISMATCH"}
    assert "govshare db upgrade" in pending.text  # what to do
    assert pending.json()["checks"]["catalog"] == "ok"
    # /healthz asks nothing of the database: alive all the same
    assert (await client.get("/healthz")).status_code == 200

    with connect(database) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (head,))
    assert (await client.get("/readyz")).status_code == 200


async def test_not_ready_without_a_catalog(tmp_path):
    settings = make_settings(tmp_path / "var")  # an empty platform database, created at head: no catalog loaded
    async for api in _api(World(settings, {}, {})):
        response = await api.client.get("/readyz")
        assert response.status_code == 503
        assert failing(response.json()) == {"catalog": "CATALOG_NOT_LOADED"}


async def test_not_ready_while_redis_is_unreachable(own_world):
    # rate limits counted in a Redis that is not there (a closed port): the server starts, but is not ready
    settings = dataclasses.replace(own_world.settings, rate_limit_url="redis://127.0.0.1:1/0")
    async for api in _api(own_world, settings):
        response = await api.client.get("/readyz")
        assert response.status_code == 503
        assert failing(response.json()) == {"redis": "REDIS_UNREACHABLE"}
        assert "rate_limit_url" in response.json()["errors"][0]["extensions"]["checks"][0]["message"]


@pytest.mark.parametrize(
    "down",
    [
        {"rate_limit_url": "redis://127.0.0.1:1/0", "rate_limit_unavailable": "open"},
        {"cache_url": "redis://127.0.0.1:1/0"},
        {"policy_notify_url": "redis://127.0.0.1:1/0"},
    ],
    ids=["rate-limits-counted-open", "cache", "announcements"],
)
async def test_ready_while_a_redis_it_can_answer_without_is_unreachable(own_world, down):
    # Rate limits that let requests by while their Redis is gone, the cache (the sources answer), the announcements
    # (policy changes come by the database check): the process answers, so a proxy must not take it out of service.
    settings = dataclasses.replace(own_world.settings, **down)
    async for api in _api(own_world, settings):
        response = await api.client.get("/readyz", headers={"Accept-Language": "en"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ready" and body["checks"]["redis"] == "REDIS_UNREACHABLE"
        (degraded,) = body["degraded"]
        assert degraded["check"] == "redis" and next(iter(down)) in degraded["message"]
        answered = await api.query(
            "{ enterpriseList(first: 1) { items { name } } }", "land", "land.property-registration"
        )
        assert answered["data"]["enterpriseList"]["items"], answered


async def test_ready_with_a_reachable_redis(own_world):
    settings = dataclasses.replace(own_world.settings, cache_url=_redis_or_skip())
    async for api in _api(own_world, settings):
        response = await api.client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["redis"] == "ok"


async def test_not_ready_while_the_platform_database_is_unreachable(tmp_path):
    name = f"{TEST_DATABASE_PREFIX}ready_platform"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    settings = make_settings(tmp_path / "var", database_url=url)
    require_engine(settings, "postgres")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        built = await build_demo(settings, persons=100, enterprises=10)
        async for api in _api(World(settings, built.keys, built.showcase)):
            assert (await api.client.get("/readyz")).status_code == 200
            # The database refuses every connection, and the server's are cut (as a restart or a network cut would).
            with admin.connect() as conn:
                conn.execute(text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"))
                conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            response = await api.client.get("/readyz")
            assert response.status_code == 503, response.text
            assert failing(response.json()) == {"platform_database": "PLATFORM_DATABASE_UNREACHABLE"}
            assert name not in response.text and "5432" not in response.text  # where it is goes to the log only
            assert (await api.client.get("/healthz")).status_code == 200
            with admin.connect() as conn:
                conn.execute(text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"))
            assert (await api.client.get("/readyz")).status_code == 200
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"))
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


class _WriterKilled(BaseException):
    """What no transaction catches (as a MemoryError or an interpreter shutdown would be): it ends the writer's thread."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_not_ready_once_the_access_record_writer_has_stopped(own_api):
    runtime = own_api.app.state.runtime
    query = "{ enterpriseList(first: 1) { items { name } } }"
    assert (await own_api.query(query, "land", "land.property-registration"))["data"]["enterpriseList"]["items"]
    assert (await own_api.client.get("/readyz")).status_code == 200

    def dying(rows):
        raise _WriterKilled

    runtime.audit._transaction = dying
    # The request whose write ended the thread is refused, and so is every later one: the process can answer nothing.
    for _ in range(2):
        refused = await own_api.post(query, department="land", purpose="land.property-registration")
        assert refused.json()["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE", refused.text
        assert (
            "data" not in refused.json() or not refused.json()["data"] or not refused.json()["data"]["enterpriseList"]
        )
    # The proxy is told to take it out of service.
    response = await own_api.client.get("/readyz", headers={"Accept-Language": "en"})
    assert response.status_code == 503
    assert failing(response.json()) == {"access_records": "AUDIT_UNAVAILABLE"}
