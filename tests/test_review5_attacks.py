"""Red team (review5) against issue 14's catalog workflow, freshness, corrections and form search: a department with
a valid key of its own attacks the paths they added. Each test here failed before the fix it names."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from admin import operations
from audit.chain import verify
from catalog import store
from catalog.workflow import _database
from govshare.keys import create_key
from tests.conftest import own_api, own_world
from tests.test_catalog_workflow import (
    APPROVE,
    RETIRE,
    SUBMISSIONS,
    SUBMIT,
    api,
    built,
    code_of,
    entries,
    process_kinds,
    run,
)
from tests.test_corrections import ANSWER, INBOX, MARKET, codes, report
from tests.test_operator import production_api, world

__all__ = ["api", "built", "own_api", "own_world", "production_api", "world"]  # the fixtures

LAND_SOURCE = 'source = "sqlite:///{var}/sources/land.db"'


async def _submissions(api) -> list[dict]:
    return (await run(api, SUBMISSIONS, "bigdata"))["data"]["catalogSubmissions"]


async def test_a_department_cannot_point_its_source_at_the_platform_database(api):
    # Attack: land's reviewer key resubmits its entries with its source moved to the platform's own database. The
    # conformance check then reads the platform DB's schema for it (its findings say which tables and columns exist
    # there: a schema oracle), and an approval would serve the platform's tables as land's resources.
    doc = entries("land", LAND_SOURCE, 'source = "sqlite:///{var}/platform.db"').replace(
        'table = "real_estate"', 'table = "api_keys"'
    )
    result = await run(api, SUBMIT, "land", doc=doc, reason="换库")

    assert code_of(result) == "CATALOG_SOURCE_NOT_ALLOWED"
    assert "api_keys" not in json.dumps(result, ensure_ascii=False)
    assert await _submissions(api) == []
    assert ("refused_action", "land", "CATALOG_SOURCE_NOT_ALLOWED") in await process_kinds(api)
    async with api.app.state.runtime.engine.connect() as conn:
        checked, broken = await verify(conn, "process")
    assert broken is None and checked > 0


async def test_a_department_cannot_point_its_source_at_another_departments_database(api):
    doc = entries("land", LAND_SOURCE, 'source = "sqlite:///{var}/sources/police.db"').replace(
        'table = "real_estate"', 'table = "person"'
    )
    result = await run(api, SUBMIT, "land", doc=doc, reason="换库")

    assert code_of(result) == "CATALOG_SOURCE_NOT_YOURS"
    assert await _submissions(api) == []


async def test_a_submission_cannot_point_its_source_at_any_file_of_the_server(api, tmp_path):
    # sqlite with an absolute path: the conformance check would open any SQLite file of the server for land (its
    # findings say which tables and columns it has), and publishing would serve it.
    target = tmp_path / "made-by-land.db"
    doc = entries("land", LAND_SOURCE, f'source = "sqlite:///{target}"')
    result = await run(api, SUBMIT, "land", doc=doc, reason="换库")

    assert code_of(result) == "CATALOG_SOURCE_NOT_YOURS"
    assert not target.exists()


async def test_even_the_coordinator_cannot_register_a_department_on_the_platform_database(api):
    # A new department is registered by the coordinating authority's key: not on the platform's own database.
    doc = (
        entries("land", LAND_SOURCE, 'source = "sqlite:///{var}/../var/./platform.db"')
        .replace('code = "land"', 'code = "newdept"', 1)
        .replace("land.", "newdept.")
        .replace('api_name = "realEstate"', 'api_name = "newRealEstate"')
        .replace('resource_code = "103002/000001"', 'resource_code = "103002/900001"')
    )
    result = await run(api, SUBMIT, "bigdata", doc=doc, reason="新部门")

    assert code_of(result) == "CATALOG_SOURCE_NOT_ALLOWED", result
    assert await _submissions(api) == []


async def test_catalog_diff_does_not_hand_a_department_another_departments_source_password(api):
    # The coordinator moves police to a PostgreSQL source with its reader's password (docs/catalog-fields.md); any
    # department's key then asked catalogDiff for the two versions and read the password.
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        current = await store.current(conn)
        assert current is not None
        police = replace(current.departments["police"], source="postgresql://reader:S3cret-pw@10.1.2.3:5432/police")
        moved = replace(current, departments={**current.departments, "police": police})
        after = await store.publish(
            conn, moved, source="test", loaded_by="operator", change="load", reason="迁库", department="police"
        )
    query = "query($a: Int!, $b: Int!) { catalogDiff(before: $a, after: $b) { entry field before after } }"
    answer = await run(api, query, "market", a=current.version, b=after)

    assert "errors" not in answer, answer
    assert "S3cret-pw" not in json.dumps(answer)
    first = await run(api, query, "market", a=1, b=after)
    assert "S3cret-pw" not in json.dumps(first)
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM catalog_versions"))).scalar() == after


async def test_a_retired_resource_is_not_revived_with_its_old_grants_by_resubmitting_it(api):
    # Attack: police retires police.person (its grants stop), then submits its unchanged file again; once the
    # coordinator publishes it, every grant of before answered again, though retiring stopped them.
    runtime = api.app.state.runtime
    person = runtime.catalog.resources["police.person"]
    retired = await run(api, RETIRE, "police", code="police.person", reason="并入人口综合库")
    assert isinstance(retired["data"]["retireResource"], int)

    again = await run(api, SUBMIT, "police", doc=entries("police"), reason="重新发布")
    if "errors" not in again:
        submission = again["data"]["submitCatalogEntries"]
        await run(api, APPROVE, "bigdata", id=submission["id"], reason="同意")
    else:
        assert code_of(again) == "CATALOG_RESOURCE_RETIRED"

    person = runtime.catalog.resources["police.person"]
    decided = runtime.policy.decide("market", "market.licence-review", person, ["name"], datetime.now(UTC))
    assert not decided.items["name"].allowed


async def test_a_department_cannot_approve_its_own_catalog_entries_with_a_second_key(api):
    # Attack: land holds a second key (another application of its own) that the operator gave the coordinator
    # role (as for coordinating applications); its reviewer key submits, the second key approves: land publishes its
    # own entries with no one else reviewing them. The own-submission rule compared key ids only.
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        _, second = await create_key(
            conn,
            department="land",
            application="不动产协同审核",
            departments=runtime.catalog.departments,
            roles=("coordinator",),
        )
    await runtime.changed()
    version = runtime.catalog.version
    submitted = await run(api, SUBMIT, "land", doc=entries("land", 'label = "坐落"', 'label = "自审"'), reason="改名")
    submission_id = submitted["data"]["submitCatalogEntries"]["id"]

    approved = await api.query(APPROVE, None, None, key=second, variables={"id": submission_id, "reason": "同意"})

    assert code_of(approved) == "CATALOG_OWN_SUBMISSION"
    assert runtime.catalog.version == version
    assert ("refused_action", "land", "CATALOG_OWN_SUBMISSION") in await process_kinds(api)


# ---------------------------------------------------------------------------------------------------------------
# Data corrections: flooding the disputes


async def test_a_department_cannot_dispute_the_same_value_again_and_again(own_api, own_world):
    # Attack: market files the same report over and over; each one is another open dispute in every consumer's
    # answers, another report in the provider's inbox and another rebuild of every process's snapshot.
    person = own_world.showcase["person_luozhuang"]
    first = await report(own_api, "market", MARKET, person)
    assert "errors" not in first, first
    again = await report(own_api, "market", MARKET, person, proposed="张三", reason="再报一次")
    assert codes(again) == ["REPORT_ALREADY_OPEN"]
    inbox = (await own_api.query(INBOX, "police", None))["data"]["dataErrorInbox"]
    assert [r["id"] for r in inbox] == [first["data"]["reportDataError"]["id"]]
    # another item of the same record is another report
    other = await report(own_api, "market", MARKET, person, item="gender", proposed="女")
    assert "errors" not in other, other


async def test_a_department_cannot_keep_more_open_reports_than_the_limit(own_api, own_world):
    runtime = own_api.app.state.runtime
    runtime.settings = replace(runtime.settings, data_error_open_limit=1)
    person = own_world.showcase["person_luozhuang"]
    filed = await report(own_api, "market", MARKET, person)
    assert "errors" not in filed
    over = await report(own_api, "market", MARKET, person, item="gender", proposed="女")
    assert codes(over) == ["REPORT_LIMIT_REACHED"]
    # once the provider has answered, the department may report again
    answered = await own_api.query(
        ANSWER,
        "police",
        None,
        variables={"id": filed["data"]["reportDataError"]["id"], "outcome": "rejected", "reason": "与户籍档案一致"},
    )
    assert "errors" not in answered, answered
    assert "errors" not in await report(own_api, "market", MARKET, person, item="gender", proposed="女")


async def test_a_refused_second_report_is_recorded_as_refused_and_the_chains_verify(own_api, own_world):
    runtime = own_api.app.state.runtime
    person = own_world.showcase["person_luozhuang"]
    await report(own_api, "market", MARKET, person)
    assert codes(await report(own_api, "market", MARKET, person, reason="再报")) == ["REPORT_ALREADY_OPEN"]
    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT outcome, error_code FROM access_records WHERE operation = 'report' ORDER BY seq")
            )
        ).all()
        assert [tuple(r) for r in rows] == [("allowed", None), ("denied", "REPORT_ALREADY_OPEN")]
        for chain in ("access", "process"):
            checked, broken = await verify(conn, chain)
            assert broken is None and checked > 0, chain


async def test_catalog_diff_shows_a_department_key_its_own_departments_entries_only(api):
    # Attack: catalogDiff handed any department key every other department's entries whole: their databases'
    # tables and columns, and in production resources the caller's view hides (README "production").
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        current = await store.current(conn)
        assert current is not None
        person = current.resources["police.person"]
        changed = replace(person, name=person.name + "（更名）", table="person_v2")
        after = await store.publish(
            conn,
            replace(current, resources={**current.resources, "police.person": changed}),
            source="test",
            loaded_by="operator",
            change="load",
            reason="更名",
            department="police",
        )
    query = "query($a: Int!, $b: Int!) { catalogDiff(before: $a, after: $b) { entry field before after } }"
    seen = (await run(api, query, "land", a=current.version, b=after))["data"]["catalogDiff"]
    assert seen == []
    own = (await run(api, query, "police", a=current.version, b=after))["data"]["catalogDiff"]
    assert {c["field"] for c in own} == {"name", "table"}
    coordinator = (await run(api, query, "bigdata", a=current.version, b=after))["data"]["catalogDiff"]
    assert {c["field"] for c in coordinator} == {"name", "table"}


# ---------------------------------------------------------------------------------------------------------------
# The required operator (Art 22) on the new paths


async def test_in_production_the_new_mutations_need_an_operator_and_blank_ones_are_refused(production_api):
    key = {"Authorization": f"Bearer {production_api.world.keys['land']}"}
    submit = {"query": SUBMIT, "variables": {"doc": entries("land"), "reason": "x"}}
    form = {"query": '{ formFields(labels: ["姓名"]) { label } }'}
    answers = [
        await production_api.client.post("/graphql", json=submit, headers=key),
        await production_api.client.post("/graphql", json=form, headers=key),
        await production_api.client.post("/graphql", json=form, headers={**key, "X-Operator": "   "}),
        await production_api.client.post("/graphql", json=form, headers={**key, "X-Operator": "\t"}),
    ]
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert [a.json()["errors"][0]["extensions"]["code"] for a in answers[:2]] == ["OPERATOR_REQUIRED"] * 2
    assert {a.json()["errors"][0]["extensions"]["code"] for a in answers[2:]} <= {"OPERATOR_REQUIRED", "HEADER_INVALID"}
    assert "data" not in answers[0].json()


@pytest.mark.parametrize(
    "platform, source",
    [
        ("postgresql+asyncpg://govshare:pw@127.0.0.1/platform", "postgresql://reader:x@localhost:5432/platform"),
        ("mysql+aiomysql://govshare@db.example/platform", "mariadb://reader@DB.example:3306/platform"),
        ("sqlite+aiosqlite:////srv/govshare/var/platform.db", "sqlite:////srv/govshare/var/../var/platform.db"),
    ],
)
def test_the_platform_database_is_recognised_however_its_url_is_spelled(platform, source):
    # the refusal of a source naming the platform's own database is not bypassed by a default port, a loopback
    # alias, another driver or a path with ".." in it
    assert _database(source) == _database(platform)
    assert _database(source.replace("platform", "other")) != _database(platform)


async def test_the_console_diff_shows_no_source_password(api):
    # The console's catalog diff (staff) showed every department's database password in the page.
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        current = await store.current(conn)
        assert current is not None
        police = replace(current.departments["police"], source="postgresql://reader:p@ss-S3cret@10.1.2.3:5432/police")
        after = await store.publish(
            conn,
            replace(current, departments={**current.departments, "police": police}),
            source="test",
            loaded_by="operator",
            change="load",
            reason="迁库",
            department="police",
        )
    changes = await operations.catalog_diff(runtime, current.version, after)
    shown = json.dumps([(c.entry, c.field, c.before, c.after) for c in changes], ensure_ascii=False)
    assert "postgresql://reader:***@10.1.2.3:5432/police" in shown
    assert "S3cret" not in shown and "p@ss" not in shown


async def test_catalog_history_shows_a_department_key_its_own_departments_changes_only(api):
    # Attack: catalogHistory(resource) told any department which resources exist (hidden ones too, in production)
    # and why and by whom another department's entries were changed.
    submitted = await run(
        api, SUBMIT, "land", doc=entries("land", 'label = "坐落"', 'label = "不动产坐落"'), reason="坐落更名"
    )
    await run(api, APPROVE, "bigdata", id=submitted["data"]["submitCatalogEntries"]["id"], reason="同意")
    query = "query($r: String) { catalogHistory(resource: $r) { version department reason } }"
    assert (await run(api, query, "market", r="land.real-estate"))["data"]["catalogHistory"] == []
    assert all(v["department"] in ("", "market") for v in (await run(api, query, "market"))["data"]["catalogHistory"])
    own = (await run(api, query, "land", r="land.real-estate"))["data"]["catalogHistory"]
    assert own[0]["reason"] == "同意"
    coordinator = (await run(api, query, "bigdata"))["data"]["catalogHistory"]
    assert coordinator[0]["department"] == "land"
