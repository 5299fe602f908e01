"""Per-application rate limiting: 429 with Retry-After, per key, shared by processes through Redis."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import _api
from tests.test_cache import _redis_or_skip

QUERY = "{ caller { department } }"


@pytest.mark.parametrize("storage", ["memory", "redis"])
async def test_over_the_limit_gets_429_with_retry_after(own_world, storage):
    url = "memory://" if storage == "memory" else _redis_or_skip(offset=-1)  # not the cache tests' database
    settings = dataclasses.replace(own_world.settings, rate_limit="3/minute", rate_limit_url=url)
    async for api in _api(own_world, settings=settings):
        assert [(await api.post(QUERY, department="land")).status_code for _ in range(3)] == [200] * 3
        refused = await api.post(QUERY, department="land")
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED" and "data" not in refused.json()
        assert (await api.post(QUERY, department="market")).status_code == 200  # another application's own budget
        if storage == "redis":  # a second server process shares the count
            async for other in _api(own_world, settings=settings):
                assert (await other.post(QUERY, department="land")).status_code == 429
