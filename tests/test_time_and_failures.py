"""Grants checked at query time on the server's clock, and a source that fails while the rest still answers."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from sqlalchemy import select

from audit.tables import access_records
from tests.conftest import _api, absent, errors_by_item


async def test_the_same_grant_allows_before_its_end_and_denies_after(own_world):
    query = "{ personList(first: 3) { items { name } } }"
    # civil's demo grant ran from 2024-01-01 to the end of 2025 (China time).
    async for api in _api(own_world, clock=lambda: datetime(2025, 12, 31, 15, 59, tzinfo=UTC)):
        inside = await api.query(query, "civil", "civil.marriage-registration")
        assert all(i["name"] for i in inside["data"]["personList"]["items"]) and "errors" not in inside
    async for api in _api(own_world, clock=lambda: datetime(2025, 12, 31, 16, 0, tzinfo=UTC)):
        after = await api.query(query, "civil", "civil.marriage-registration")
        assert errors_by_item(after) == {"name": "GRANT_EXPIRED"}
    async for api in _api(own_world, clock=lambda: datetime(2023, 12, 31, tzinfo=UTC)):
        before = await api.query(query, "civil", "civil.marriage-registration")
        assert errors_by_item(before) == {"name": "GRANT_NOT_YET_VALID"}


async def test_a_failing_source_nulls_its_fields_and_the_rest_is_answered(own_api, own_world):
    with sqlite3.connect(own_world.settings.var_dir / "sources" / "land.db") as conn:
        conn.execute("DROP TABLE real_estate")
    query = """{ realEstateList(first: 2) { items { ownerName } } enterpriseList(first: 2) { items { name } } }"""
    response = await own_api.post(query, department="land", purpose="land.property-registration")
    result = response.json()
    assert result["data"]["realEstateList"] is None
    assert len(result["data"]["enterpriseList"]["items"]) == 2
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "SOURCE_UNAVAILABLE" and "land.real-estate" in error["message"]
    assert absent("real_estate", response)  # no SQL or driver detail reaches the caller
    async with own_api.app.state.runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(access_records)
                .where(access_records.c.request_id == response.headers["X-Request-Id"])
                .order_by(access_records.c.id)
            )
        ).all()
    outcomes = {r.resource: (r.outcome, r.error_code) for r in rows}
    assert outcomes == {"land.real-estate": ("failed", "SOURCE_UNAVAILABLE"), "market.enterprise": ("allowed", None)}
