"""Source results cached (memory, or Redis shared by processes) under keys that cover the whole source query."""

from __future__ import annotations

import dataclasses
import os

import pytest
import redis

from tests.conftest import REQUIRE_SERVICES, StatementLog, _api

QUERY = "{ personList(first: 50) { items { countyCode name } } }"


def _redis_or_skip(offset: int = 0) -> str:
    """A Redis database of the tests' own, emptied (GOVSHARE_TEST_REDIS_DB: a second checkout testing at once sets its own)."""
    url = f"redis://127.0.0.1:6379/{int(os.environ.get('GOVSHARE_TEST_REDIS_DB', '15')) + offset}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is not reachable at {url}: {exc}")
        pytest.skip(f"Redis is not reachable at {url} ({exc}); .ci/run starts it")
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(params=["memory", "redis"])
def cache_url(request) -> str:
    return "memory://" if request.param == "memory" else _redis_or_skip()


async def test_same_question_from_two_scopes_gets_each_its_own_rows(world, cache_url):
    settings = dataclasses.replace(world.settings, cache_url=cache_url, cache_max_seconds=300)
    async for api in _api(world, settings=settings):
        log = StatementLog(api, world, "police")
        try:
            first_market = await api.query(QUERY, "market", "market.licence-review")
            first_hrss = await api.query(QUERY, "hrss", "hrss.insurance-enrolment")
            assert len(log.seen) == 2  # different scope: a different source query, not a cache hit
            again_market = await api.query(QUERY, "market", "market.licence-review")
            again_hrss = await api.query(QUERY, "hrss", "hrss.insurance-enrolment")
            assert len(log.seen) == 2  # both answered from the cache
        finally:
            log.close()
        assert again_market == first_market and again_hrss == first_hrss
        market_counties = {i["countyCode"] for i in first_market["data"]["personList"]["items"]}
        hrss_counties = {i["countyCode"] for i in first_hrss["data"]["personList"]["items"]}
        assert len(market_counties) > 1 and hrss_counties == {"371311"}


async def test_a_cache_hit_is_still_decided_and_recorded(world):
    settings = dataclasses.replace(world.settings, cache_max_seconds=300)
    async for api in _api(world, settings=settings):
        await api.query(QUERY, "market", "market.licence-review")
        # Another department, same question, same (unscoped) source query, but no grant: nothing is served.
        denied = await api.query(QUERY, "land", "land.property-registration")
        assert all(i["name"] is None for i in denied["data"]["personList"]["items"])
        response = await api.post(QUERY, department="market", purpose="market.licence-review")
        from sqlalchemy import select

        from audit.tables import access_records

        async with api.app.state.runtime.engine.connect() as conn:
            (record,) = (
                await conn.execute(
                    select(access_records).where(access_records.c.request_id == response.headers["X-Request-Id"])
                )
            ).all()
        assert record.row_count == 50 and record.items_returned == ["countyCode", "name"]


async def test_resources_without_cache_permission_always_ask_the_source(world):
    settings = dataclasses.replace(world.settings, cache_max_seconds=300)
    async for api in _api(world, settings=settings):
        log = StatementLog(api, world, "land")
        try:
            for _ in range(2):
                await api.query(
                    "{ realEstateList(first: 5) { items { ownerName } } }", "land", "land.property-registration"
                )
        finally:
            log.close()
        assert len(log.seen) == 2  # land.real-estate has no cache_seconds in the catalog


async def test_concurrent_identical_misses_make_one_source_query(world):
    import asyncio

    settings = dataclasses.replace(world.settings, cache_max_seconds=300)
    async for api in _api(world, settings=settings):
        log = StatementLog(api, world, "market")
        try:
            results = await asyncio.gather(
                *(
                    api.query("{ enterpriseList(first: 7) { items { name } } }", "land", "land.property-registration")
                    for _ in range(8)
                )
            )
        finally:
            log.close()
        assert len(log.seen) == 1
        assert all(r == results[0] for r in results) and len(results[0]["data"]["enterpriseList"]["items"]) == 7
