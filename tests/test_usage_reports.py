"""Providers' usage reports (Art 24, oversight/usage.py): every figure against access records the test made itself
through the query API (several departments, purposes, grants, refusals, masks, China-time days around midnight),
the same on PostgreSQL, the same when counted record by record (archives), and who may see which figures: over
the console (pages, charts, exports), GraphQL and the command."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import openpyxl
import pytest
from sqlalchemy import create_engine, insert, select, text

from audit.tables import access_records
from govshare.errors import GovshareError
from govshare.platformdb import make_engine, metadata
from oversight import usage
from oversight.usage import NONE, Figures, Period
from tests.conftest import TEST_DATABASE_PREFIX, World, _api, make_settings, require_engine

PERSON = '{ person(idNumber: "371311197811261792") { idNumber name phone } }'
PERSONS = "{ personList(first: 5) { items { idNumber name countyCode } } }"
OTHER_COUNTY = '{ personList(first: 5, filter: {countyCode: {eq: "371302"}}) { items { name } } }'
ENTERPRISES = "{ enterpriseList(first: 3) { items { creditCode name legalRepIdNumber } } }"
LINKED = "{ enterpriseList(first: 3) { items { name legalRepresentative { name } } } }"
LICENCE, FOOD = "market.licence-review", "market.food-safety"
ENROLMENT, MARRIAGE, PROPERTY = "hrss.insurance-enrolment", "civil.marriage-registration", "land.property-registration"

BEFORE = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # outside the period
SUNDAY_NIGHT = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)  # China: Sunday 2026-11-29 23:30
MONDAY_EARLY = datetime(2026, 11, 29, 16, 30, tzinfo=UTC)  # China: Monday 2026-11-30 00:30
TUESDAY = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # China: Tuesday 2026-12-01 10:00
AFTER = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)  # China: 2026-12-02 00:30, outside the period
WEEK = Period(date(2026, 11, 25), date(2026, 12, 1))
POLICE = ["police.person"]


async def make_usage(api, now: list[datetime]) -> dict[str, str]:
    """The accesses every test here counts (what each one records is said beside it); the grants they used."""
    grants = {g.consumer: g.id for g in api.app.state.runtime.policy.policies.grants if g.resource == "police.person"}
    steps = [
        (BEFORE, PERSON, "market", LICENCE),
        # police.person: partial (phone NOT_SHARED), 1 row x 2 items, under market's grant; twice
        (SUNDAY_NIGHT, PERSON, "market", LICENCE),
        (SUNDAY_NIGHT, PERSON, "market", LICENCE),
        (SUNDAY_NIGHT, PERSON, "market", FOOD),  # denied PURPOSE_NOT_APPROVED
        (MONDAY_EARLY, PERSONS, "hrss", ENROLMENT),  # allowed, 5 rows x 3 items, idNumber masked, hrss's grant
        (MONDAY_EARLY, OTHER_COUNTY, "hrss", ENROLMENT),  # denied OUT_OF_SCOPE
        (MONDAY_EARLY, ENTERPRISES, "land", PROPERTY),  # market.enterprise: partial (NO_GRANT), 3 rows x 2 items
        (TUESDAY, PERSONS, "civil", MARRIAGE),  # partial: idNumber, name GRANT_EXPIRED; 5 rows x countyCode
        # market.enterprise allowed 3 rows x name; police.person (link) allowed 3 rows x name, market's grant
        (TUESDAY, LINKED, "market", LICENCE),
        (AFTER, PERSONS, "hrss", ENROLMENT),
    ]
    for moment, query, department, purpose in steps:
        now[0] = moment
        await api.query(query, department, purpose)
    return grants


@pytest.fixture
async def used(own_world: World):
    """The app on a world of the test's own, after ``make_usage``; its grants used by consumer."""
    now = [BEFORE]
    async for api in _api(own_world, clock=lambda: now[0]):
        grants = await make_usage(api, now)
        yield api, grants


def F(**figures: int) -> Figures:
    return Figures(**figures)


# police.person in the week, access by access (see make_usage)
MARKET_PERSON = F(accesses=2, rows=2, values=4, partial=2, items_denied=2)
MARKET_FOOD = F(accesses=1, denied=1)
MARKET_LINK = F(accesses=1, rows=3, values=3, allowed=1)
HRSS_LIST = F(accesses=1, rows=5, values=15, allowed=1, masked=1, items_masked=1)
HRSS_REFUSED = F(accesses=1, denied=1)
CIVIL_LIST = F(accesses=1, rows=5, values=5, partial=1, items_denied=2)
POLICE_TOTAL = MARKET_PERSON + MARKET_FOOD + MARKET_LINK + HRSS_LIST + HRSS_REFUSED + CIVIL_LIST


async def figures(api, by, when=WEEK, resources=POLICE, **narrow) -> dict:
    async with api.app.state.runtime.engine.connect() as conn:
        return await usage.figures(conn, resources, when, by, **narrow)


async def test_each_figure_by_resource_department_purpose_and_grant(used):
    api, grants = used
    assert POLICE_TOTAL == F(
        accesses=7, rows=15, values=27, allowed=2, partial=3, denied=2, items_denied=4, masked=1, items_masked=1
    )
    assert await figures(api, "resource") == {("police.person",): POLICE_TOTAL}
    assert await figures(api, "resource", resources=None) == {
        ("police.person",): POLICE_TOTAL,
        ("market.enterprise",): F(accesses=2, rows=6, values=9, allowed=1, partial=1, items_denied=1),
    }
    assert await figures(api, "department") == {
        ("market",): MARKET_PERSON + MARKET_FOOD + MARKET_LINK,
        ("hrss",): HRSS_LIST + HRSS_REFUSED,
        ("civil",): CIVIL_LIST,
    }
    assert await figures(api, "purpose") == {
        (LICENCE,): MARKET_PERSON + MARKET_LINK,
        (FOOD,): MARKET_FOOD,
        (ENROLMENT,): HRSS_LIST + HRSS_REFUSED,
        (MARRIAGE,): CIVIL_LIST,
    }
    assert await figures(api, "grant") == {
        (grants["market"],): MARKET_PERSON + MARKET_LINK,
        (grants["hrss"],): HRSS_LIST,
        (NONE,): MARKET_FOOD + HRSS_REFUSED + CIVIL_LIST,
    }
    assert await figures(api, "department", department="hrss") == {("hrss",): HRSS_LIST + HRSS_REFUSED}
    assert await figures(api, "grant", purpose=ENROLMENT) == {(grants["hrss"],): HRSS_LIST, (NONE,): HRSS_REFUSED}


async def test_refusals_by_code_and_refused_items_by_reason(used):
    api, _ = used
    assert await figures(api, "refusal") == {
        ("denied", "PURPOSE_NOT_APPROVED"): MARKET_FOOD,
        ("denied", "OUT_OF_SCOPE"): HRSS_REFUSED,
    }
    assert await figures(api, "denied_item") == {
        ("phone", "NOT_SHARED"): MARKET_PERSON,
        ("idNumber", "GRANT_EXPIRED"): CIVIL_LIST,
        ("name", "GRANT_EXPIRED"): CIVIL_LIST,
    }


async def test_days_weeks_and_months_are_china_time_and_the_period_bounds_are_its_days(used):
    api, _ = used
    sunday = MARKET_PERSON + MARKET_FOOD
    monday = HRSS_LIST + HRSS_REFUSED
    tuesday = CIVIL_LIST + MARKET_LINK
    assert await figures(api, "period") == {("2026-11-29",): sunday, ("2026-11-30",): monday, ("2026-12-01",): tuesday}
    weekly = Period(WEEK.first, WEEK.last, "week")
    assert await figures(api, "period", weekly) == {("2026-11-23",): sunday, ("2026-11-30",): monday + tuesday}
    monthly = Period(WEEK.first, WEEK.last, "month")
    assert await figures(api, "period", monthly) == {("2026-11-01",): sunday + monday, ("2026-12-01",): tuesday}
    # the trend table has every bucket of the period, in order, the empty ones as zeros
    async with api.app.state.runtime.engine.connect() as conn:
        trend = await usage.table(conn, "trend", POLICE, WEEK)
    assert [k for k, _ in trend.rows] == [(f"2026-11-{d}",) for d in range(25, 31)] + [("2026-12-01",)]
    assert trend.rows[0][1] == Figures() and trend.total() == POLICE_TOTAL
    # one China day: Monday alone, though Monday 00:30 is Sunday in UTC
    assert await figures(api, "resource", Period(date(2026, 11, 30), date(2026, 11, 30))) == {
        ("police.person",): monday
    }
    # the days after: the access at 00:30 on 12-02 China time is there, none before it
    assert await figures(api, "resource", Period(date(2026, 12, 2), date(2026, 12, 31))) == {
        ("police.person",): HRSS_LIST
    }


async def test_top_purposes_come_most_used_first(used):
    api, _ = used
    async with api.app.state.runtime.engine.connect() as conn:
        purposes = await usage.table(conn, "purposes", POLICE, WEEK)
    assert [k for k, _ in purposes.rows] == [(LICENCE,), (ENROLMENT,), (MARRIAGE,), (FOOD,)]


async def test_counted_record_by_record_gives_the_same_figures(used):
    """``fold`` (how archived records will be counted) against the database's GROUP BY, every dimension."""
    api, _ = used
    async with api.app.state.runtime.engine.connect() as conn:
        records = (await conn.execute(select(access_records))).mappings().all()
    inside = [r for r in records if WEEK.since <= r["at"] < WEEK.until and r["resource"] == "police.person"]
    for by in usage.DIMENSIONS:
        for granularity in usage.GRANULARITIES:
            when = Period(WEEK.first, WEEK.last, granularity)
            assert usage.fold(inside, by, granularity) == await figures(api, by, when), (by, granularity)


@pytest.fixture
def postgres_platform(tmp_path, request):
    require_engine(make_settings(tmp_path), "postgres")
    name = f"{TEST_DATABASE_PREFIX}usage_{abs(hash(request.node.nodeid)) % 10**8}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


async def test_postgresql_counts_the_same_records_the_same(used, postgres_platform):
    api, _ = used
    async with api.app.state.runtime.engine.connect() as conn:
        records = [dict(r) for r in (await conn.execute(select(access_records))).mappings().all()]
    engine = make_engine(postgres_platform)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(access_records), records)
        for by in usage.DIMENSIONS:
            for granularity in usage.GRANULARITIES:
                when = Period(WEEK.first, WEEK.last, granularity)
                for resources in (POLICE, None):
                    async with engine.connect() as conn:
                        found = await usage.figures(conn, resources, when, by)
                    assert found == await figures(api, by, when, resources), (by, granularity, resources)
                    assert found  # not two empty answers
    finally:
        await engine.dispose()


def test_a_period_from_what_was_typed_or_a_coded_refusal():
    today = date(2026, 12, 1)
    assert usage.period(None, None, None, today=today) == Period(date(2026, 11, 2), today, "day")
    assert usage.period("2026-01-01", "2026-03-31", "month", today=today) == Period(
        date(2026, 1, 1), date(2026, 3, 31), "month"
    )
    for first, last, granularity, code in [
        ("2026-13-01", None, None, "USAGE_BAD_DATE"),
        ("2026-12-02", "2026-12-01", None, "USAGE_BAD_PERIOD"),
        (None, None, "year", "USAGE_BAD_GRANULARITY"),
        ("2020-01-01", "2026-01-01", None, "PERIOD_TOO_LONG"),
    ]:
        with pytest.raises(GovshareError) as refused:
            usage.period(first, last, granularity, today=today)
        assert refused.value.code == code
