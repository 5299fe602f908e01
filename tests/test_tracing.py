"""Spans are not the audit: an exporter that is down changes nothing for the caller or the access records."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from audit.tables import access_records
from tests.conftest import _api


async def test_a_dead_trace_exporter_changes_nothing(own_world):
    settings = dataclasses.replace(own_world.settings, trace_exporter="otlp", otlp_endpoint="http://127.0.0.1:9/v1/traces")
    async for api in _api(own_world, settings=settings):
        responses = [await api.post("{ enterpriseList(first: 2) { items { name } } }", department="land",
                                    purpose="land.property-registration") for _ in range(5)]
        assert all(r.status_code == 200 and len(r.json()["data"]["enterpriseList"]["items"]) == 2 for r in responses)
        async with api.app.state.runtime.engine.connect() as conn:
            recorded = {r.request_id for r in (await conn.execute(select(access_records))).all()}
        assert {r.headers["X-Request-Id"] for r in responses} <= recorded
