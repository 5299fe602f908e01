"""Freshness (Art 16, 20, 27): every answer says, per resource it read, when its source last changed, when the next
change is due and whether it is overdue, from what the platform recorded on its schedule; the coordinator and the
providers list the overdue resources; the coordinator restricts a lagging department in one action and lifts it."""

from __future__ import annotations

import datetime
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, insert, update

from admin import operations
from catalog import freshness
from catalog.loader import load_catalog
from catalog.model import Resource, ShareType
from connectors.freshness import read_last_change
from connectors.urls import sync_url
from demo.build import DEMO_LAGGING, MARKER_TABLE, ensure_database, source_url
from govshare.clock import CHINA
from govshare.errors import CatalogError, GovshareError
from tests.conftest import TEST_DATABASE_PREFIX, World, make_settings, require_engine
from tests.test_admin_api import _admin
from tests.test_cli import govshare_in_process

REPO = Path(__file__).resolve().parent.parent
PERSON = "371311197811261792"
MARKET = ("market", "market.licence-review")


def at(text_: str) -> datetime.datetime:
    """A China wall-clock time as an aware UTC moment."""
    return datetime.datetime.fromisoformat(text_).replace(tzinfo=CHINA).astimezone(UTC)


def resource(cycle: str) -> Resource:
    return Resource("x.thing", "thing", "物", "x", ShareType.UNCONDITIONAL, "thing", "id", (), update_cycle=cycle)


# --- what is due when ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cycle", "last", "due"),
    [
        ("daily", "2026-03-31 10:00", "2026-04-02 00:00"),  # by the end of the next day (China time)
        ("daily", "2026-03-31 23:59", "2026-04-02 00:00"),
        ("weekly", "2026-03-31 10:00", "2026-04-08 00:00"),
        ("monthly", "2026-03-31 10:00", "2026-05-01 00:00"),  # April has no 31st: by the end of April 30
        ("monthly", "2026-01-15 08:00", "2026-02-16 00:00"),
        ("quarterly", "2026-11-30 08:00", "2027-03-01 00:00"),  # February 2027 has 28 days
        ("half-yearly", "2026-08-31 08:00", "2027-03-01 00:00"),
        ("yearly", "2028-02-29 08:00", "2029-03-01 00:00"),
        ("realtime", "2026-03-31 10:00", "2026-03-31 11:00"),  # freshness_realtime_minutes after the change
    ],
)
def test_due_by_for_each_cycle(cycle, last, due):
    assert freshness.due_by(cycle, at(last), realtime_minutes=60) == at(due)


def test_overdue_only_once_the_due_time_has_passed_and_never_for_irregular_or_unknown():
    last = at("2026-03-31 10:00")
    recorded = freshness.Recorded("x.thing", last, last, True)
    daily = resource("daily")
    due = at("2026-04-02 00:00")
    assert freshness.state(daily, recorded, due, realtime_minutes=60).overdue is False
    late = freshness.state(daily, recorded, due + timedelta(seconds=1), realtime_minutes=60)
    assert (late.overdue, late.status, late.due_by, late.last_change) == (True, "overdue", due, last)
    years_later = last + timedelta(days=3650)
    irregular = freshness.state(resource("irregular"), recorded, years_later, realtime_minutes=60)
    assert (irregular.overdue, irregular.status, irregular.due_by) == (False, "irregular", None)
    for unknown in (None, freshness.Recorded("x.thing", None, last, False, "unreachable")):
        found = freshness.state(daily, unknown, years_later, realtime_minutes=60)
        assert (found.overdue, found.status, found.last_change, found.due_by) == (False, "unknown", None, None)
    realtime = freshness.state(resource("realtime"), recorded, last + timedelta(minutes=61), realtime_minutes=60)
    assert realtime.overdue and realtime.entry() == {
        "resource": "x.thing",
        "updateCycle": "realtime",
        "lastChange": "2026-03-31T02:00:00Z",
        "dueBy": "2026-03-31T03:00:00Z",
        "overdue": True,
        "state": "overdue",
    }


# --- the catalog declares it ---------------------------------------------------------------------------------


def _catalog_with(tmp_path: Path, lines: str) -> Path:
    text_ = (REPO / "catalog" / "demo" / "land.toml").read_text(encoding="utf-8")
    text_ = "\n".join(line for line in text_.splitlines() if not line.startswith("freshness =")) + "\n"
    text_ = text_.replace('update_cycle = "daily"\n', lines, 1)
    (tmp_path / "land.toml").write_text(text_, encoding="utf-8")
    return tmp_path / "land.toml"


@pytest.mark.parametrize(
    ("lines", "field", "code"),
    [
        ('update_cycle = "hourly"\n', "update_cycle", "FIELD_INVALID"),
        (
            'update_cycle = "daily"\nfreshness = { changed_column = "a", marker = "t.c" }\n',
            "freshness",
            "FIELD_INVALID",
        ),
        ('update_cycle = "daily"\nfreshness = { marker = "no_column" }\n', "freshness.marker", "FIELD_INVALID"),
        (
            'update_cycle = "daily"\nfreshness = { changed_column = "a b" }\n',
            "freshness.changed_column",
            "FIELD_INVALID",
        ),
        ('update_cycle = "daily"\nfreshness = { marker = "t.c", column = "a" }\n', "freshness.column", "FIELD_UNKNOWN"),
        ('update_cycle = "daily"\nfreshness = "updated_at"\n', "freshness", "FIELD_INVALID"),
    ],
)
def test_the_loader_refuses_a_bad_cycle_or_change_source_per_field(tmp_path, lines, field, code):
    with pytest.raises(CatalogError) as refused:
        load_catalog(_catalog_with(tmp_path, lines))
    assert [(p.field, p.code) for p in refused.value.problems] == [(field, code)]


def test_the_loader_reads_every_cycle_and_both_change_sources(tmp_path):
    for cycle in ("realtime", "weekly", "quarterly", "half-yearly", "yearly", "irregular"):
        loaded = load_catalog(_catalog_with(tmp_path, f'update_cycle = "{cycle}"\n'))
        assert loaded.resources["land.real-estate"].update_cycle == cycle
        assert loaded.resources["land.real-estate"].freshness is None
    column = load_catalog(_catalog_with(tmp_path, 'update_cycle = "daily"\nfreshness = { changed_column = "u" }\n'))
    assert column.resources["land.real-estate"].freshness.changed_column == "u"
    marker = load_catalog(_catalog_with(tmp_path, 'update_cycle = "daily"\nfreshness = { marker = "s.c" }\n'))
    assert marker.resources["land.real-estate"].freshness.table_and_column == ("s", "c")
    # kept through the catalog in force (its stored document)
    from catalog.model import Catalog

    again = Catalog.from_document(marker.to_document())
    assert again.resources["land.real-estate"].freshness == marker.resources["land.real-estate"].freshness


# --- reading a source's last change, on each engine -----------------------------------------------------------


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "mariadb"])
async def test_the_last_change_is_one_max_with_or_without_an_index_on_each_engine(tmp_path, engine):
    settings = make_settings(tmp_path / "var")
    require_engine(settings, engine)
    url = (
        f"sqlite:///{tmp_path / 'source.db'}"
        if engine == "sqlite"
        else source_url(settings, engine, "fresh_probe", "", TEST_DATABASE_PREFIX)
    )
    ensure_database(url)
    metadata = MetaData()
    records = Table(
        "records",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(20)),
        Column("updated_at", DateTime, index=True),
    )
    status = Table("status", metadata, Column("records_changed_at", DateTime), Column("note", String(10)))
    sync = create_engine(sync_url(url))
    try:
        with sync.begin() as conn:
            metadata.drop_all(conn)
            metadata.create_all(conn)
        empty = await read_last_change(url, "records", "updated_at")
        assert (empty.last_change, empty.indexed, empty.error) == (None, True, "")
        naive = [datetime.datetime(2026, 11, 30, 9, 15), datetime.datetime(2026, 11, 29, 23, 0)]  # noqa: DTZ001
        with sync.begin() as conn:
            conn.execute(insert(records), [{"id": i, "name": "a", "updated_at": t} for i, t in enumerate(naive, 1)])
            conn.execute(insert(status), [{"records_changed_at": datetime.datetime(2026, 12, 1, 8, 0), "note": "x"}])  # noqa: DTZ001
        found = await read_last_change(url, "records", "updated_at")
        # a naive time is China time: 09:15 in Linyi is 01:15 UTC
        assert found.last_change == datetime.datetime(2026, 11, 30, 1, 15, tzinfo=UTC)
        assert (found.indexed, found.error) == (True, "")
        marker = await read_last_change(url, "status", "records_changed_at")
        assert marker.last_change == datetime.datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
        assert (marker.indexed, marker.error) == (False, "")  # said, not refused: a one-row table needs no index
        assert (await read_last_change(url, "status", "note")).error == "not_a_time"
        assert (await read_last_change(url, "records", "missing")).error == "no_column"
        assert (await read_last_change(url, "nothing_here", "updated_at")).error == "no_table"
    finally:
        with sync.begin() as conn:
            metadata.drop_all(conn)
        sync.dispose()


async def test_an_unreachable_source_is_recorded_as_such_and_keeps_its_last_known_change(tmp_path):
    missing = f"sqlite:///{tmp_path / 'gone.db'}"
    found = await read_last_change(missing, "records", "updated_at")
    assert found.error == "unreachable" and found.last_change is None


# --- answers carry it ----------------------------------------------------------------------------------------


def _entries(answer: dict) -> dict[str, dict]:
    return {e["resource"]: e for e in answer.get("extensions", {}).get("freshness", [])}


def _marker(world: World, department: str, table: str) -> datetime.datetime:
    value = world.row(department, f"SELECT {table}_changed_at AS t FROM {MARKER_TABLE}")["t"]
    moment = datetime.datetime.fromisoformat(str(value).replace(" ", "T"))
    return moment.replace(tzinfo=CHINA).astimezone(UTC)


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_a_list_carries_the_freshness_of_its_resource_from_the_recorded_state(api):
    answer = await api.query("{ personList(first: 2) { items { name } } }", *MARKET)
    assert "errors" not in answer
    last = _marker(api.world, "police", "person")
    assert answer["extensions"]["freshness"] == [
        {
            "resource": "police.person",
            "updateCycle": "daily",
            "lastChange": _iso(last),
            "dueBy": _iso(freshness.due_by("daily", last, realtime_minutes=60)),
            "overdue": False,
            "state": "current",
        }
    ]


async def test_a_lookup_and_the_overdue_resource(api):
    lookup = await api.query(f'{{ person(idNumber: "{PERSON}") {{ name phone }} }}', *MARKET)
    assert lookup["errors"][0]["extensions"]["code"] == "NOT_SHARED"  # a partial read still read the source
    assert list(_entries(lookup)) == ["police.person"]
    marriages = await api.query(
        "{ marriageList(first: 1) { items { registrationNo } } }", "civil", "civil.marriage-registration"
    )
    [entry] = marriages["extensions"]["freshness"]
    assert (entry["resource"], entry["overdue"], entry["state"]) == (DEMO_LAGGING, True, "overdue")
    assert entry["lastChange"] == _iso(_marker(api.world, "civil", "marriage"))


async def test_links_carry_every_resource_they_read_once_each(api):
    answer = await api.query(
        "{ enterpriseList(first: 3) { items { name legalRepresentative { name } socialInsurance { insuranceStatus } } }"
        " more: enterpriseList(first: 1) { items { name } } }",
        *MARKET,
    )
    # once each, in the order of the codes (the hops run concurrently: the order they finish in is none)
    assert [e["resource"] for e in answer["extensions"]["freshness"]] == [
        "hrss.social-insurance",
        "market.enterprise",
        "police.person",
    ]
    assert _entries(answer)["hrss.social-insurance"]["updateCycle"] == "monthly"


async def test_entities_carry_the_freshness_of_their_resource(api):
    answer = await api.query(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }",
        *MARKET,
        variables={"r": [{"__typename": "Person", "idNumber": PERSON}]},
    )
    assert answer["data"]["_entities"][0]["name"]
    assert list(_entries(answer)) == ["police.person"]


async def test_a_resource_refused_as_a_whole_or_not_touched_carries_none(api):
    restricted = await api.query(
        "{ enterpriseList(first: 1) { items { name } } }", "civil", "civil.marriage-registration"
    )
    assert restricted["errors"][0]["extensions"]["code"] == "DEPARTMENT_RESTRICTED"
    assert "extensions" not in restricted
    expired = await api.query("{ personList(first: 1) { items { name } } }", "civil", "civil.marriage-registration")
    assert expired["errors"][0]["extensions"]["code"] == "GRANT_EXPIRED" and "extensions" not in expired
    assert "extensions" not in await api.query("{ caller { department } }", "market", None)
    # one resource read, one refused: only the one read
    both = await api.query(
        "{ marriageList(first: 1) { items { registrationNo } } enterpriseList(first: 1) { items { name } } }",
        "civil",
        "civil.marriage-registration",
    )
    assert list(_entries(both)) == [DEMO_LAGGING]


async def test_answers_follow_the_schedule_not_the_source(own_api):
    """The source changes; answers keep saying what was recorded until the schedule reads it again (no source is
    asked per request), then say the new change and no longer overdue."""
    world, runtime = own_api.world, own_api.app.state.runtime
    query = ("{ marriageList(first: 1) { items { registrationNo } } }", "civil", "civil.marriage-registration")
    before = _entries(await own_api.query(*query))[DEMO_LAGGING]
    assert before["overdue"] is True
    now_local = datetime.datetime.now(CHINA).replace(tzinfo=None, microsecond=0)
    source = create_engine(sync_url(world.settings.expand(runtime.catalog.departments["civil"].source)))
    try:
        with source.begin() as conn:
            conn.execute(
                update(Table(MARKER_TABLE, MetaData(), Column("marriage_changed_at", DateTime))).values(
                    marriage_changed_at=now_local
                )
            )
    finally:
        source.dispose()
    assert _entries(await own_api.query(*query))[DEMO_LAGGING] == before
    recorded = await runtime.check_freshness()
    assert recorded[DEMO_LAGGING].last_change == now_local.replace(tzinfo=CHINA).astimezone(UTC)
    after = _entries(await own_api.query(*query))[DEMO_LAGGING]
    assert (after["overdue"], after["lastChange"]) == (False, _iso(now_local.replace(tzinfo=CHINA).astimezone(UTC)))


# --- overdue lists and the Art 20 restriction ------------------------------------------------------------------


async def test_the_demo_has_exactly_one_overdue_resource_for_the_coordinator_and_its_provider(api):
    everything = await api.query("{ overdueResources { resource provider overdue state dueBy } }", "bigdata", None)
    assert [r["resource"] for r in everything["data"]["overdueResources"]] == [DEMO_LAGGING]
    own = await api.query("{ overdueResources { resource } }", "civil", None)
    assert own["data"]["overdueResources"] == [{"resource": DEMO_LAGGING}]
    assert (await api.query("{ overdueResources { resource } }", "market", None))["data"]["overdueResources"] == []
    mine = await api.query("{ overdueResources(all: true) { resource state } }", "market", None)
    assert {r["resource"]: r["state"] for r in mine["data"]["overdueResources"]} == {
        "market.enterprise": "current",
        "market.licence": "current",
    }
    runtime = api.app.state.runtime
    states = await operations.freshness_states(runtime)
    assert {s.resource for s in states} == {r.code for r in runtime.catalog.published()}
    assert [s.resource for s in states if s.overdue] == [DEMO_LAGGING]


RESTRICT = """mutation($d: String!, $reason: String!) { restrictLaggingDepartment(department: $d, reason: $reason) {
  version ruleId } }"""
LIFT = "mutation($id: String!, $reason: String!) { removeRule(id: $id, reason: $reason) { version } }"
HOUSEHOLDS = "{ householdList(first: 1) { items { householdId memberCount } } }"


async def test_the_coordinator_restricts_a_lagging_department_in_one_action_and_lifts_it(own_api):
    api = own_api
    admin = await _admin(api)
    try:
        allowed = await api.query(HOUSEHOLDS, "civil", "civil.subsistence-allowance")
        assert "errors" not in allowed and allowed["data"]["householdList"]["items"]

        refused = await admin.run(RESTRICT, d="market", reason="第二十条")
        assert refused["errors"][0]["extensions"]["code"] == "DEPARTMENT_NOT_OVERDUE"
        assert (await admin.run(RESTRICT, d="civil", reason=" "))["errors"][0]["extensions"][
            "code"
        ] == "REASON_REQUIRED"

        made = await admin.run(RESTRICT, d="civil", reason="婚姻登记数据逾期未更新（第二十条）")
        assert "errors" not in made, made
        rule_id = made["data"]["restrictLaggingDepartment"]["ruleId"]
        restricted = await api.query(HOUSEHOLDS, "civil", "civil.subsistence-allowance")
        error = restricted["errors"][0]
        assert error["extensions"]["code"] == "DEPARTMENT_RESTRICTED"
        assert "婚姻登记数据逾期未更新（第二十条）" in error["message"]
        rules = (await admin.run('{ denyRules(department: "civil") { id resource reason overdue } }'))["data"]
        [rule] = [r for r in rules["denyRules"] if r["id"] == rule_id]
        marriage = _marker(api.world, "civil", "marriage")
        assert rule["resource"] == "*" and rule["overdue"] == [
            {
                "resource": DEMO_LAGGING,
                "update_cycle": "daily",
                "last_change": _iso(marriage),
                "due_by": _iso(freshness.due_by("daily", marriage, realtime_minutes=60)),
            }
        ]
        history = (await admin.run("{ policyHistory { version author reason } }"))["data"]["policyHistory"][0]
        assert (history["author"], history["reason"]) == ("ops.bot", "婚姻登记数据逾期未更新（第二十条）")

        lifted = await admin.run(LIFT, id=rule_id, reason="已补报并恢复每日更新")
        assert "errors" not in lifted, lifted
        assert await api.query(HOUSEHOLDS, "civil", "civil.subsistence-allowance") == allowed
        history = (await admin.run("{ policyHistory { reason } }"))["data"]["policyHistory"][0]
        assert history["reason"] == "已补报并恢复每日更新"
    finally:
        await admin.client.aclose()


def test_the_commands_list_overdue_resources_and_restrict_and_lift(own_folder):
    listed = govshare_in_process(own_folder, "catalog", "overdue")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(DEMO_LAGGING) and "逾期未更新" in lines[0]
    assert lines[1] == "逾期未更新的资源：1 个。"
    assert govshare_in_process(own_folder, "catalog", "overdue", "--department", "market").stdout.splitlines() == [
        "逾期未更新的资源：0 个。"
    ]
    every = govshare_in_process(own_folder, "catalog", "overdue", "--all", "--check").stdout.splitlines()
    assert len(every) == 8 and sum("逾期未更新" in line for line in every) == 1

    refused = govshare_in_process(
        own_folder, "restriction", "add", "--department", "land", "--overdue", "--reason", "x"
    )
    assert refused.returncode != 0 and "DEPARTMENT_NOT_OVERDUE" in refused.stderr
    made = govshare_in_process(
        own_folder,
        "restriction",
        "add",
        "--department",
        "civil",
        "--overdue",
        "--reason",
        "逾期（第二十条）",
        "--by",
        "lead",
    )
    assert made.returncode == 0, made.stderr
    rule_id = made.stdout.splitlines()[0]
    assert rule_id.startswith("D-") and DEMO_LAGGING in made.stdout.splitlines()[1]
    listing = govshare_in_process(own_folder, "restriction", "list").stdout
    assert rule_id in listing and f"逾期：{DEMO_LAGGING}（daily）" in listing
    lifted = govshare_in_process(own_folder, "restriction", "lift", rule_id, "--reason", "已更新", "--by", "lead")
    assert lifted.returncode == 0, lifted.stderr
    assert rule_id not in govshare_in_process(own_folder, "restriction", "list").stdout
    english = govshare_in_process(own_folder, "catalog", "overdue", language="en").stdout.splitlines()
    assert english[-1] == "Overdue resources: 1." and "overdue" in english[0]


async def test_a_restriction_edited_later_keeps_its_overdue_facts(own_api):
    runtime = own_api.app.state.runtime

    class Staff:
        username = "coordinator"

    rule_id, _, _ = await operations.restrict_lagging(runtime, Staff(), "civil", reason="逾期")
    await operations.put_deny(
        runtime,
        Staff(),
        {"id": rule_id, "department": "civil", "resource": "*", "reason": "逾期，限期一周"},
        reason="补充",
    )
    _, document = await operations.document_in_force(runtime)
    rule = document.deny_rule(rule_id)
    assert rule.reason == "逾期，限期一周" and [f.resource for f in rule.overdue] == [DEMO_LAGGING]
    with pytest.raises(GovshareError) as unknown:
        await operations.overdue(runtime, provider="nobody")
    assert unknown.value.code == "DEPARTMENT_NOT_FOUND"
