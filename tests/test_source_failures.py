"""Real sources failing mid-run: the failed resource is null with SOURCE_UNAVAILABLE, the rest is answered,
the failure is recorded, a source that keeps failing is skipped, and all recovers when the source does."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import create_engine, event, select, text

from audit.tables import access_records
from catalog import store as catalog_store
from connectors.base import Column, SourceQuery, SourceUnavailable
from connectors.breaker import Breaker
from connectors.sql import SqlConnector
from connectors.urls import sync_url
from tests.conftest import TEST_DATABASE_PREFIX, _api, _world

QUERY = "{ realEstateList(first: 3) { items { ownerName } } enterpriseList(first: 3) { items { name } } }"
FAILURE_SETTINGS = {"breaker_failures": 2, "breaker_reset_seconds": 0.3, "source_timeout_seconds": 2.0}


async def _ask(api):
    response = await api.post(QUERY, department="land", purpose="land.property-registration")
    result = response.json()
    async with api.app.state.runtime.engine.connect() as conn:
        records = (
            await conn.execute(
                select(access_records).where(access_records.c.request_id == response.headers["X-Request-Id"])
            )
        ).all()
    return result, {r.resource: r.outcome for r in records}


def _admin(world, department: str):
    url = sync_url(world.settings.expand(world._sources[department]))
    return create_engine(
        url.rsplit("/", 1)[0] + ("/postgres" if url.startswith("postgresql") else "/"), isolation_level="AUTOCOMMIT"
    ), url.rsplit("/", 1)[1].split("?")[0]


async def _failure_then_recovery(api, break_source, mend_source):
    result, outcomes = await _ask(api)
    assert result["data"]["realEstateList"]["items"] and outcomes["land.real-estate"] == "allowed"

    break_source()
    for _ in range(3):  # fails twice, then the breaker skips the source
        result, outcomes = await _ask(api)
        assert result["data"]["realEstateList"] is None
        assert len(result["data"]["enterpriseList"]["items"]) == 3
        assert [e["extensions"]["code"] for e in result["errors"]] == ["SOURCE_UNAVAILABLE"]
        assert outcomes == {"land.real-estate": "failed", "market.enterprise": "allowed"}
    (connector,) = [c for url, c in api.app.state.runtime.connectors._by_url.items() if "land" in url]
    assert connector.breaker.state in ("open", "half-open")

    mend_source()
    await asyncio.sleep(0.4)  # past breaker_reset_seconds: the next call is the trial
    result, outcomes = await _ask(api)
    assert result["data"]["realEstateList"]["items"] and "errors" not in result
    assert connector.breaker.state == "closed"


async def test_postgresql_database_made_unreachable_and_back(tmp_path):
    world = await _world(tmp_path / "var", "postgres", database_prefix=f"{TEST_DATABASE_PREFIX}fail_")
    admin, database = _admin(world, "land")

    def cut():
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": database}
            )

    def mend():
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))

    try:
        async for api in _api(world, settings=dataclasses.replace(world.settings, **FAILURE_SETTINGS)):
            await _failure_then_recovery(api, cut, mend)
    finally:
        mend()
        admin.dispose()


async def test_mariadb_table_dropped_and_restored(tmp_path):
    world = await _world(tmp_path / "var", "mariadb", database_prefix=f"{TEST_DATABASE_PREFIX}fail_")
    admin, database = _admin(world, "land")

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f"CREATE TABLE `{database}`.real_estate_saved AS SELECT * FROM `{database}`.real_estate"))
            conn.execute(text(f"DROP TABLE `{database}`.real_estate"))

    def restore():
        with admin.connect() as conn:
            conn.execute(text(f"RENAME TABLE `{database}`.real_estate_saved TO `{database}`.real_estate"))

    try:
        async for api in _api(world, settings=dataclasses.replace(world.settings, **FAILURE_SETTINGS)):
            await _failure_then_recovery(api, drop, restore)
    finally:
        admin.dispose()


async def test_a_source_that_never_answers_costs_its_timeout_only_until_the_breaker_opens(own_world):
    connections = []

    async def silent(reader, writer):  # accepts, then says nothing: a hung department server
        connections.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = dataclasses.replace(
        own_world.settings, breaker_failures=2, breaker_reset_seconds=60, source_timeout_seconds=1.0
    )  # long enough that the healthy sources answer on a loaded machine
    try:
        async for api in _api(own_world, settings=settings):
            runtime = api.app.state.runtime
            catalog = runtime.catalog
            land = dataclasses.replace(catalog.departments["land"], source=f"postgresql://nobody@127.0.0.1:{port}/land")
            async with runtime.engine.begin() as conn:
                await catalog_store.publish(
                    conn,
                    dataclasses.replace(catalog, departments={**catalog.departments, "land": land}),
                    source="test",
                    loaded_by="test",
                )
            await runtime.refresh()
            reached = []
            for _attempt in range(4):
                result, outcomes = await _ask(api)
                assert result["data"]["realEstateList"] is None and result["data"]["enterpriseList"]["items"]
                # A timeout is the source's failure, said with its code (not an internal error of ours).
                assert {e["extensions"]["code"] for e in result["errors"]} == {"SOURCE_UNAVAILABLE"}
                assert outcomes["land.real-estate"] == "failed"
                reached.append(len(connections))
            # Two timed-out attempts reached the silent server; the open breaker kept the next two away.
            assert reached[0] > 0 and reached[1] > reached[0] and reached[3] == reached[2] == reached[1]
            for writer in connections:  # hang up, so that closing the pools does not wait on them
                writer.close()
    finally:
        for writer in connections:
            writer.close()
        server.close()


def _drop_connections(admin, database: str, engine: str) -> int:
    """Close, on the database server's side, every connection to ``database`` (a restart or an idle timeout would):
    how many were closed."""
    with admin.connect() as conn:
        if engine == "postgres":
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :d AND pid <> pg_backend_pid()"
                    ),
                    {"d": database},
                ).all()
            )
        ids = conn.execute(
            text("SELECT id FROM information_schema.processlist WHERE db = :d AND id <> CONNECTION_ID()"),
            {"d": database},
        ).scalars()
        killed = 0
        for connection_id in list(ids):
            conn.execute(text(f"KILL {int(connection_id)}"))
            killed += 1
        return killed


async def _dropped_connections_are_replaced(tmp_path, engine: str) -> None:
    world = await _world(tmp_path / "var", engine, database_prefix=f"{TEST_DATABASE_PREFIX}drop_")
    admin, database = _admin(world, "land")
    try:
        async for api in _api(world, settings=dataclasses.replace(world.settings, **FAILURE_SETTINGS)):
            result, outcomes = await _ask(api)
            assert result["data"]["realEstateList"]["items"] and outcomes["land.real-estate"] == "allowed"
            (connector,) = [c for url, c in api.app.state.runtime.connectors._by_url.items() if "land" in url]
            assert _drop_connections(admin, database, engine) >= 1  # the pooled connection, now gone
            await asyncio.sleep(0.2)
            # The next read finds its connection closed and is read again on a fresh one: answered, no failure
            # counted against the source (without the second read it fails with SOURCE_UNAVAILABLE).
            result, outcomes = await _ask(api)
            assert "errors" not in result, result
            assert result["data"]["realEstateList"]["items"] and outcomes["land.real-estate"] == "allowed"
            assert connector.breaker.state == "closed"
    finally:
        admin.dispose()


async def test_postgresql_connections_the_server_closed_are_replaced_without_a_failure(tmp_path):
    await _dropped_connections_are_replaced(tmp_path, "postgres")


async def test_mariadb_connections_the_server_closed_are_replaced_without_a_failure(tmp_path):
    await _dropped_connections_are_replaced(tmp_path, "mariadb")


def _pooled_source(tmp_path, pool_size: int, timeout: float):
    """A SqlConnector on a SQLite file of a few rows, and the query that reads them."""
    path = tmp_path / "source.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v TEXT)"))
        conn.execute(text("INSERT INTO t VALUES ('a'), ('b')"))
    engine.dispose()
    connector = SqlConnector(
        f"sqlite:///{path}", timeout=timeout, breaker=Breaker(failures=3, reset_seconds=10.0), pool_size=pool_size
    )
    return connector, SourceQuery(table="t", columns=(Column("v", "string"),), order_by=(Column("v", "string"),))


async def test_reads_beyond_the_pool_wait_for_a_kept_connection_instead_of_opening_one(tmp_path):
    """source_pool_size connections at most: eight reads at once on a pool of two share the two (an extra connection
    opened and closed per read cost more than the read), and every read is answered."""
    connector, query = _pooled_source(tmp_path, pool_size=2, timeout=30.0)
    opened: list[object] = []
    event.listen(connector._engine.sync_engine, "connect", lambda dbapi, record: opened.append(dbapi))
    try:
        answers = await asyncio.gather(*(connector.fetch(query) for _ in range(8)))
        assert answers == [[{"v": "a"}, {"v": "b"}]] * 8
        assert len(opened) == 2
    finally:
        await connector.close()


async def test_a_read_that_waits_for_a_connection_past_the_timeout_fails_as_a_timeout(tmp_path):
    """Every kept connection busy for longer than the source's timeout: the read fails (SOURCE_UNAVAILABLE, a failure
    counted) rather than waiting for ever or opening one more."""
    connector, query = _pooled_source(tmp_path, pool_size=1, timeout=0.3)
    try:
        async with connector._engine.connect() as held:  # the only connection, busy
            await held.execute(text("SELECT 1"))
            with pytest.raises(SourceUnavailable):
                await connector.fetch(query)
            assert connector.breaker.failures == 1
        assert await connector.fetch(query) == [{"v": "a"}, {"v": "b"}]  # free again: answered
    finally:
        await connector.close()
