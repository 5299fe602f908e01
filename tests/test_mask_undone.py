"""Masks that cannot be undone (issue 11, section 1, the write-time half): a mask on an item is refused wherever it
could come into force beside another item the same consumer may read that reveals what it hides, and the reverse.

The attack: the demo's hrss grant masks idNumber with id_number (keep:6,4: the eight birth-date digits 7-14 hidden);
had it also granted birthDate, ``{ personList { items { idNumber birthDate } } }`` would rebuild every number (the
sequence and the check digit are kept). Over HTTP: that answer, and every way to bring the birth date in (the store,
the command, a staff rule, an application approved, deemed or coordinated). Then the pure check on tricky cases, and
the grant command's own checks (issue 11, section 2).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from admin import accounts
from catalog.loader import load_catalog
from demo.identifiers import is_valid_id_number
from govshare.clock import CHINA
from govshare.errors import GovshareError
from policies import disclosure
from policies.model import Grant, GrantKind, PolicySet
from policies.store import create_grant, load_policy_set
from tests.conftest import REPO, absent, connect, errors_by_item
from tests.test_cli import govshare_in_process as govshare
from tests.test_console import staffed, versions  # noqa: F401 - staffed is a fixture

DEMO_CATALOG = REPO / "catalog" / "demo"
CATALOG = load_catalog(DEMO_CATALOG)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ENROLMENT = "hrss.insurance-enrolment"
REBUILD = "{ personList(first: 5) { items { idNumber birthDate } } }"


def rebuilt(item: dict) -> str | None:
    """What a determined department makes of one answer row: the masked number's kept characters and the birth date."""
    masked, birth = item.get("idNumber"), item.get("birthDate")
    if not masked or not birth:
        return None
    return masked[:6] + birth.replace("-", "") + masked[14:]


async def assert_numbers_not_rebuilt(api, world) -> None:
    response = await api.post(REBUILD, department="hrss", purpose=ENROLMENT)
    result = response.json()
    items = result["data"]["personList"]["items"]
    assert len(items) == 5
    assert all(i["idNumber"][6:14] == "********" for i in items)
    assert all(i["birthDate"] is None for i in items)
    assert errors_by_item(result)["birthDate"] == "NO_GRANT"
    assert not any(rebuilt(i) and is_valid_id_number(rebuilt(i)) for i in items)
    for row in world.rows("police", "SELECT id_number, birth_date FROM person WHERE county_code = '371311'"):
        assert absent(row["id_number"], response)


# ---------------------------------------------------------------------------------------------------------------
# Over HTTP: the demo grant no longer lets hrss rebuild ID numbers, and nothing can bring the birth date back


async def test_hrss_cannot_rebuild_id_numbers_on_the_demo_world(api, world):
    await assert_numbers_not_rebuilt(api, world)
    # What the mask keeps is still answered: the county and the last four characters, not the birth date.
    result = await api.query("{ personList(first: 5) { items { idNumber name countyCode } } }", "hrss", ENROLMENT)
    assert "errors" not in result
    assert all(re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", i["idNumber"]) for i in result["data"]["personList"]["items"])


async def test_the_store_refuses_a_grant_that_would_undo_the_mask_either_way(own_api, own_world):
    runtime = own_api.app.state.runtime
    common = dict(
        resource="police.person",
        valid_from=datetime(2026, 1, 1, tzinfo=CHINA),
        valid_until=datetime(2030, 1, 1, tzinfo=CHINA),
        created_by="test",
    )
    async with runtime.engine.begin() as conn:
        in_force = {g.id: g for g in (await load_policy_set(conn)).grants}
        masked = next(g for g in in_force.values() if g.consumer == "hrss" and g.masks == {"idNumber": "id_number"})
        with pytest.raises(GovshareError) as refused:  # the birth date beside hrss's masked number
            await create_grant(
                conn,
                runtime.catalog,
                consumer="hrss",
                items=["birthDate"],
                purposes=["hrss.employment-subsidy"],
                **common,
            )
    assert refused.value.code == "GRANT_MASK_UNDONE"
    assert refused.value.params["item"] == "idNumber" and refused.value.params["grant"] == masked.id
    assert "birthDate" in refused.value.params["revealing"] and "birth_year" in refused.value.params["facts"]

    async with runtime.engine.begin() as conn:  # the other direction: a mask beside a birth date already granted
        civil = await create_grant(
            conn,
            runtime.catalog,
            consumer="civil",
            items=["birthDate"],
            purposes=["civil.subsistence-allowance"],
            **common,
        )
        with pytest.raises(GovshareError) as refused:
            await create_grant(
                conn,
                runtime.catalog,
                consumer="civil",
                items=["idNumber"],
                masks={"idNumber": "id_number"},
                purposes=["civil.marriage-registration"],
                **common,
            )
    assert refused.value.code == "GRANT_MASK_UNDONE" and civil in refused.value.params["revealing"]
    await runtime.refresh()
    await assert_numbers_not_rebuilt(own_api, own_world)


async def _staff(api):
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        await accounts.create_account(conn, runtime.settings, "mask.check", "correct horse battery staple", "脱敏检查")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="https://govshare.test")
    session = await client.post(
        "/admin/session", json={"username": "mask.check", "password": "correct horse battery staple"}
    )
    assert session.status_code == 200, session.text
    token = session.json()["token"]

    async def run(query: str, **variables) -> dict:
        response = await client.post(
            "/admin/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    return client, run


PUT_RULE = """mutation($rule: RuleInput!) { putRule(rule: $rule, reason: "参保核验需要出生日期") { version ruleId } }"""
RULE = {
    "department": "hrss",
    "resource": "police.person",
    "items": ["birthDate"],
    "purposes": ["hrss.employment-subsidy"],
    "validFrom": "2026-01-01T00:00:00+08:00",
    "validUntil": "2030-01-01T00:00:00+08:00",
}


async def test_a_staff_rule_cannot_undo_a_mask_through_the_admin_api(own_api, own_world):
    client, run = await _staff(own_api)
    try:
        before = (await run("{ policy { version } }"))["data"]["policy"]
        refused = await run(PUT_RULE, rule=RULE)
        error = refused["errors"][0]["extensions"]
        assert error["code"] == "POLICY_INVALID"
        (problem,) = error["problems"]
        assert problem["code"] == "GRANT_MASK_UNDONE" and problem["field"] == "items"
        assert "police.person.idNumber" in problem["message"] and "birthDate" in problem["message"]
        assert (await run("{ policy { version } }"))["data"]["policy"] == before

        # A rule masking the number beside a rule granting the birth date: refused on the masked rule.
        both = (
            '[[rule]]\nid = "P-000001"\ndepartment = "civil"\nresource = "police.person"\nitems = ["birthDate"]\n'
            'purposes = ["civil.subsistence-allowance"]\nvalid_from = 2026-01-01T00:00:00+08:00\n'
            "valid_until = 2030-01-01T00:00:00+08:00\n\n"
            '[[rule]]\nid = "P-000002"\ndepartment = "civil"\nresource = "police.person"\nitems = ["idNumber"]\n'
            'purposes = ["civil.marriage-registration"]\nvalid_from = 2026-01-01T00:00:00+08:00\n'
            'valid_until = 2030-01-01T00:00:00+08:00\nmasks = { idNumber = "keep:6,4" }\n'
        )
        checked = (await run("query($d: String!) { validatePolicy(document: $d) }", d=both))["data"]["validatePolicy"]
        assert [(p["rule"], p["field"], p["code"]) for p in checked] == [("P-000002", "masks", "GRANT_MASK_UNDONE")]
        imported = await run('mutation($d: String!) { importPolicy(document: $d, reason: "试点") { version } }', d=both)
        assert imported["errors"][0]["extensions"]["code"] == "POLICY_INVALID"
        assert (await run("{ policy { version } }"))["data"]["policy"] == before
    finally:
        await client.aclose()
    await assert_numbers_not_rebuilt(own_api, own_world)


async def test_the_console_rule_form_refuses_a_rule_that_would_undo_a_mask(staffed, own_world):
    api, console = staffed
    await console.sign_in()
    before = await versions(api)
    response = await console.submit(
        "/console/rules/new",
        "/console/rules",
        {
            "department": "hrss",
            "resource": "police.person",
            "items": "birthDate",
            "purposes": "hrss.employment-subsidy",
            "valid_from": "2026-01-01T00:00",
            "valid_until": "2030-01-01T00:00",
            "reason": "参保核验",
        },
    )
    assert response.status_code == 400
    assert "GRANT_MASK_UNDONE" in response.text and "police.person.idNumber" in response.text
    assert "birthDate" in response.text and "未保存，现行规则不变" in response.text
    assert await versions(api) == before
    await assert_numbers_not_rebuilt(api, own_world)


APPLY = """mutation($input: ShareApplicationInput!) { applyForShare(input: $input) { id status } }"""


def application(items: list[str]) -> dict:
    return {
        "resource": "police.person",
        "items": items,
        "purpose": "hrss.employment-subsidy",
        "users": "就业补贴窗口",
        "validFrom": "2026-01-01",
        "validUntil": "2027-12-31",
        "acknowledged": True,
    }


async def test_an_application_that_silence_could_approve_is_refused_at_once(own_api, own_world):
    result = await own_api.query(APPLY, "hrss", None, variables={"input": application(["birthDate", "name"])})
    assert result["data"]["applyForShare"] is None
    error = result["errors"][0]["extensions"]
    assert error["code"] == "APPLICATION_INVALID"
    assert [(p["field"], p["code"]) for p in error["problems"]] == [("items", "GRANT_MASK_UNDONE")]
    assert "idNumber" in error["problems"][0]["reason"] and "birthDate" in error["problems"][0]["reason"]
    assert (await own_api.query("{ applicationInbox { id } }", "police", None))["data"]["applicationInbox"] == []
    await assert_numbers_not_rebuilt(own_api, own_world)


async def test_approving_or_coordinating_an_application_cannot_undo_the_mask(own_api, own_world):
    # With a not-shared item (phone) silence cannot approve it, so it is decided, and checked, by a person.
    for step in ("approve", "coordinate"):
        applied = await own_api.query(APPLY, "hrss", None, variables={"input": application(["birthDate", "phone"])})
        assert "errors" not in applied, applied
        application_id = applied["data"]["applyForShare"]["id"]
        if step == "approve":
            decided = await own_api.query(
                'mutation($id: ID!) { approveApplication(id: $id, items: ["birthDate"]) { status } }',
                "police",
                None,
                variables={"id": application_id},
            )
        else:
            asked = await own_api.query(
                'mutation($id: ID!) { requestCoordination(id: $id, reason: "参保核验") { status } }',
                "hrss",
                None,
                variables={"id": application_id},
            )
            assert "errors" not in asked, asked
            decided = await own_api.query(
                'mutation($id: ID!) { decideCoordination(id: $id, approve: true, reason: "确有需要") { status } }',
                "bigdata",
                None,
                variables={"id": application_id},
            )
        assert decided["errors"][0]["extensions"]["code"] == "GRANT_MASK_UNDONE", decided
        assert "birthDate" in decided["errors"][0]["message"]
        await assert_numbers_not_rebuilt(own_api, own_world)
    with connect(own_world.settings.var_dir / "platform.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM grants WHERE consumer = 'hrss'").fetchone()[0] == 1


# ---------------------------------------------------------------------------------------------------------------
# The command: grant create refuses the same; catalog load reports; the grant command's own checks


def grant_count(folder: Path) -> int:
    with connect(folder / "var" / "platform.db") as conn:
        return conn.execute("SELECT COUNT(*) FROM grants").fetchone()[0]


def china_day(offset_days: int) -> str:
    return (datetime.now(CHINA).date() + timedelta(days=offset_days)).isoformat()


BIRTH_DATE_FOR_HRSS = [
    "--consumer",
    "hrss",
    "--resource",
    "police.person",
    "--items",
    "birthDate,name",
    "--purposes",
    "hrss.employment-subsidy",
    "--from",
    "2026-01-01",
    "--until",
    "2029-12-31",
]


def test_grant_create_refuses_a_grant_that_would_undo_a_mask(own_folder):
    before = grant_count(own_folder)
    run = govshare(own_folder, "grant", "create", *BIRTH_DATE_FOR_HRSS, language="en")
    assert run.returncode == 1 and run.stdout == ""
    assert "[GRANT_MASK_UNDONE] The mask id_number on police.person.idNumber" in run.stderr
    assert "birth_year, birth_month, birth_day, from birthDate (new)" in run.stderr
    own = govshare(
        own_folder,
        "grant",
        "create",
        "--consumer",
        "land",
        "--resource",
        "police.person",
        "--items",
        "idNumber,ethnicity",
        "--mask",
        "idNumber=keep:6,0",
        "--purposes",
        "land.property-registration",
        "--from",
        "2026-01-01",
        "--until",
        "2029-12-31",
    )
    assert (
        own.returncode == 1 and "[GRANT_MASK_UNDONE]" in own.stderr and "gender" in own.stderr
    )  # gender: unconditional
    assert grant_count(own_folder) == before
    # What undoes nothing is granted: for hrss, a narrower mask beside its id_number one (it learns nothing more)
    # and another item, in the same rows (in every county, keep:6,0 would hide the gender digit gender shows).
    fine = govshare(
        own_folder,
        "grant",
        "create",
        "--consumer",
        "hrss",
        "--resource",
        "police.person",
        "--items",
        "idNumber,ethnicity",
        "--mask",
        "idNumber=keep:6,0",
        "--purposes",
        "hrss.employment-subsidy",
        "--scope",
        "countyCode=371311",
        "--from",
        "2026-01-01",
        "--until",
        "2029-12-31",
    )
    assert fine.returncode == 0, fine.stderr


def test_catalog_load_reports_a_mask_a_newly_unconditional_item_undoes(own_folder, tmp_path):
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(DEMO_CATALOG, catalog_dir)
    police = catalog_dir / "police.toml"
    text = police.read_text(encoding="utf-8")
    old = '  name = "birthDate"\n  label = "出生日期"\n  type = "date"\n'
    assert text.count(old) == 1
    police.write_text(text.replace(old, old + '  share_type = "unconditional"\n'), encoding="utf-8")
    with connect(own_folder / "var" / "platform.db") as conn:
        (hrss,) = conn.execute("SELECT id FROM grants WHERE consumer = 'hrss'").fetchone()
    run = govshare(own_folder, "catalog", "load", str(catalog_dir), language="en")
    assert run.returncode == 0, run.stderr  # loaded: the new catalog is the one that knows the birth date is open
    (warning,) = [line for line in run.stderr.splitlines() if "GRANT_MASK_UNDONE" in line or "undone" in line]
    assert warning.startswith("Warning: The mask id_number on police.person.idNumber") and f"({hrss})" in warning
    assert "birthDate" in warning
    unchanged = govshare(own_folder, "catalog", "load", str(DEMO_CATALOG))
    assert unchanged.returncode == 0 and unchanged.stderr == ""


def test_grant_create_refuses_a_scope_on_an_item_neither_granted_nor_filterable(own_folder):
    args = [
        "--consumer",
        "land",
        "--resource",
        "police.person",
        "--purposes",
        "land.property-registration",
        "--from",
        "2026-01-01",
        "--until",
        "2029-12-31",
    ]
    before = grant_count(own_folder)
    refused = govshare(own_folder, "grant", "create", *args, "--items", "name", "--scope", "ethnicity=汉")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "[GRANT_SCOPE_NOT_FILTERABLE] 行范围不能限定在 ethnicity 上" in refused.stderr
    assert grant_count(own_folder) == before
    for items, scope in (("name,ethnicity", "ethnicity=汉"), ("name", "countyCode=371302")):  # granted; filterable
        accepted = govshare(own_folder, "grant", "create", *args, "--items", items, "--scope", scope)
        assert accepted.returncode == 0, accepted.stderr


def test_grant_create_refuses_a_grant_already_over_unless_forced(own_folder):
    args = [
        "--consumer",
        "land",
        "--resource",
        "police.person",
        "--items",
        "name",
        "--purposes",
        "land.property-registration",
        "--from",
        china_day(-40),
        "--until",
        china_day(-1),
    ]
    before = grant_count(own_folder)
    refused = govshare(own_folder, "grant", "create", *args)
    assert refused.returncode == 1 and refused.stdout == ""
    assert (
        f"[GRANT_ALREADY_EXPIRED] 截止时间 {china_day(0)} 00:00 (UTC+8) 已过" in refused.stderr
        and "--force" in refused.stderr
    )
    assert grant_count(own_folder) == before
    forced = govshare(own_folder, "grant", "create", *args, "--force")
    assert forced.returncode == 0 and re.fullmatch(r"G-[0-9a-f]{6}\n", forced.stdout)
    assert f"{china_day(0)} 00:00 (UTC+8)" in forced.stderr and "--force" in forced.stderr
    listed = govshare(own_folder, "grant", "list").stdout
    assert re.search(rf"^{forced.stdout.strip()}\s+land\s+.*\s已到期\s+name$", listed, re.MULTILINE), listed


def test_grant_list_shows_period_state_scope_and_masks_as_the_console_and_explain(demo_folder):
    with connect(demo_folder / "var" / "platform.db") as conn:
        (hrss,) = conn.execute("SELECT id FROM grants WHERE consumer = 'hrss'").fetchone()
        (civil,) = conn.execute("SELECT id FROM grants WHERE consumer = 'civil'").fetchone()
    lines = {line.split()[0]: line for line in govshare(demo_folder, "grant", "list").stdout.splitlines()}
    assert re.fullmatch(
        rf"{hrss}\s+hrss\s+police\.person\s+hrss\.insurance-enrolment\s+"
        r"2026-01-01 00:00 \(UTC\+8\) – 2031-01-01 00:00 \(UTC\+8\)  生效中  idNumber,name,countyCode,address"
        r"  行范围 countyCode ∈ 371311  脱敏 idNumber: id_number",
        lines[hrss],
    ), lines[hrss]
    assert re.search(r"2024-01-01 00:00 \(UTC\+8\) – 2026-01-01 00:00 \(UTC\+8\)  已到期  ", lines[civil]), lines[civil]
    english = {
        line.split()[0]: line for line in govshare(demo_folder, "grant", "list", language="en").stdout.splitlines()
    }
    assert english[hrss].endswith(
        "  in force  idNumber,name,countyCode,address  row scope countyCode ∈ 371311  masks idNumber: id_number"
    )
    # The same end as explain tells a department whose grant expired.
    assert (
        "2026-01-01 00:00 (UTC+8)"
        in govshare(
            demo_folder,
            "policy",
            "explain",
            "--department",
            "civil",
            "--purpose",
            "civil.marriage-registration",
            "--resource",
            "police.person",
        ).stdout
    )


# ---------------------------------------------------------------------------------------------------------------
# The check itself (policies/disclosure.py), on the demo catalog


def grant(
    id_: str,
    items,
    masks=None,
    *,
    consumer="hrss",
    resource="police.person",
    start=2026,
    end=2031,
    revoked: datetime | None = None,
    kind=GrantKind.GRANT,
) -> Grant:
    return Grant(
        id_,
        kind,
        consumer,
        resource,
        tuple(items),
        (ENROLMENT,),
        datetime(start, 1, 1, tzinfo=UTC),
        datetime(end, 1, 1, tzinfo=UTC),
        {},
        dict(masks or {}),
        revoked_at=revoked,
    )


def undone(*grants: Grant, catalog=CATALOG) -> dict[tuple[str, str], disclosure.MaskUndone]:
    return {(p.grant, p.item): p for p in disclosure.find_undone(catalog, grants, now=NOW)}


def test_the_co_granted_birth_date_undoes_the_id_number_mask():
    found = undone(grant("G-1", ["idNumber", "name", "birthDate"], {"idNumber": "id_number"}))
    assert set(found) == {("G-1", "idNumber")}
    problem = found[("G-1", "idNumber")]
    assert problem.facts == ("birth_year", "birth_month", "birth_day")
    assert problem.revealed_by == (("birthDate", "G-1"),) and problem.others == ()
    assert problem.code == "GRANT_MASK_UNDONE" and problem.mask == "id_number"
    # Without the birth date the demo grant holds: county and gender (unconditional) are characters it keeps.
    assert undone(grant("G-1", ["idNumber", "name", "countyCode", "address"], {"idNumber": "id_number"})) == {}


def test_two_grants_with_complementary_keep_masks_undo_each_other():
    found = undone(
        grant("G-1", ["idNumber"], {"idNumber": "keep:0,12"}), grant("G-2", ["idNumber"], {"idNumber": "keep:6,0"})
    )
    assert set(found) == {("G-1", "idNumber"), ("G-2", "idNumber")}
    assert ("idNumber", "G-2") in found[("G-1", "idNumber")].revealed_by and found[("G-1", "idNumber")].others == (
        "G-2",
    )
    assert "birth_year" in found[("G-2", "idNumber")].facts and "sequence" in found[("G-2", "idNumber")].facts
    # A narrower mask beside a wider one of the same period learns nothing the wider one does not show.
    assert (
        undone(
            grant("G-1", ["idNumber"], {"idNumber": "id_number"}), grant("G-2", ["idNumber"], {"idNumber": "keep:3,4"})
        )
        == {}
    )
    # Reading the number in clear under another grant is no conflict: the value is held lawfully...
    assert undone(grant("G-1", ["idNumber", "birthDate"], {"idNumber": "id_number"}), grant("G-2", ["idNumber"])) == {}
    # ...only while that grant lasts: one ending first leaves the mask undone after it.
    assert set(
        undone(grant("G-1", ["idNumber", "birthDate"], {"idNumber": "id_number"}), grant("G-2", ["idNumber"], end=2028))
    ) == {("G-1", "idNumber")}


def test_a_year_mask_on_the_birth_date_against_the_id_number_mask():
    found = undone(
        grant("G-1", ["idNumber"], {"idNumber": "id_number"}), grant("G-2", ["birthDate"], {"birthDate": "year"})
    )
    assert set(found) == {("G-1", "idNumber")}  # the year is shown, and the number's mask hides it
    assert found[("G-1", "idNumber")].facts == ("birth_year",)
    assert found[("G-1", "idNumber")].revealed_by == (("birthDate", "G-2"),)
    # A number mask that keeps the year itself (keep:10,4) is not undone by the year.
    assert (
        undone(
            grant("G-1", ["idNumber"], {"idNumber": "keep:10,4"}), grant("G-2", ["birthDate"], {"birthDate": "year"})
        )
        == {}
    )
    # The other way: the number in clear gives month and day, which the year mask hides.
    reverse = undone(grant("G-1", ["birthDate"], {"birthDate": "year"}), grant("G-2", ["idNumber"]))
    assert reverse[("G-1", "birthDate")].facts == ("birth_month", "birth_day")
    # A date nullified beside the number in clear is rebuilt whole; beside the masked number it is not.
    assert ("G-1", "birthDate") in undone(
        grant("G-1", ["birthDate"], {"birthDate": "nullify"}), grant("G-2", ["idNumber"])
    )
    assert undone(grant("G-1", ["birthDate", "idNumber"], {"birthDate": "nullify", "idNumber": "id_number"})) == {}


def test_unconditional_items_undo_a_mask_hiding_their_facts_but_not_an_opaque_one():
    county = undone(grant("G-1", ["idNumber"], {"idNumber": "keep:0,12"}))[("G-1", "idNumber")]
    assert county.facts == ("county",) and county.revealed_by == (("countyCode", None),) and county.others == ()
    gender = undone(grant("G-1", ["idNumber"], {"idNumber": "keep:6,0"}))[("G-1", "idNumber")]
    assert gender.facts == ("gender",) and gender.revealed_by == (("gender", None),)
    # A value shown not at all is not rebuilt from the county and the gender alone.
    for mask in ("nullify", "hash", "full"):
        assert undone(grant("G-1", ["idNumber"], {"idNumber": mask})) == {}, mask
    # A mask on an item this department may read in clear anyway (the enterprise's credit code) undoes nothing.
    assert (
        undone(grant("G-1", ["creditCode"], {"creditCode": "keep:2,0"}, consumer="land", resource="market.enterprise"))
        == {}
    )


RELATED = """[department]
code = "city"
name = "市政务服务中心"
org_code = "113713000041910781"
source = "sqlite:///{var}/sources/city.db"

[[resources]]
code = "city.applicant"
api_name = "applicant"
name = "办事人"
abstract = "办事人的身份信息。"
resource_code = "307002/000001"
publish_date = "2026-01-05"
share_type = "unconditional"
share_condition = "公民身份号码经审核同意后使用。"
related_departments = ["hrss"]
update_cycle = "daily"
table = "applicant"
key = "idNumber"

  [[resources.items]]
  name = "idNumber"
  label = "公民身份号码"
  type = "string"
  share_type = "conditional"
  length = 18
  parts = { county = "1-6", birth_year = "7-10", birth_month = "11-12", birth_day = "13-14", sequence = "15-16", gender = "17", check = "18" }

  [[resources.items]]
  name = "birthDate"
  label = "出生日期"
  type = "date"
  parts = { birth_year = "1-4", birth_month = "6-7", birth_day = "9-10" }
"""


def test_an_item_shared_among_related_departments_undoes_a_mask_only_for_them(tmp_path):
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    (tmp_path / "catalog" / "city.toml").write_text(RELATED, encoding="utf-8")
    catalog = load_catalog(tmp_path / "catalog")
    for consumer, expected in (("hrss", {("G-1", "idNumber")}), ("land", set())):
        masked = grant("G-1", ["idNumber"], {"idNumber": "id_number"}, consumer=consumer, resource="city.applicant")
        found = undone(masked, catalog=catalog)
        assert set(found) == expected, consumer
        if found:
            assert found[("G-1", "idNumber")].revealed_by == (("birthDate", None),)


def test_revoked_and_ended_grants_do_not_count_and_one_not_yet_started_does():
    masked = grant("G-1", ["idNumber"], {"idNumber": "id_number"})
    assert undone(masked, grant("G-2", ["birthDate"], revoked=datetime(2026, 6, 1, tzinfo=UTC))) == {}
    assert undone(masked, grant("G-2", ["birthDate"], start=2024, end=2026)) == {}  # ended at the start of 2026
    assert set(undone(masked, grant("G-2", ["birthDate"], start=2029, end=2030))) == {("G-1", "idNumber")}
    # An application silence will approve is a source too (the store compiles it as a deemed grant).
    assert set(undone(masked, grant("A-1", ["birthDate"], kind=GrantKind.DEEMED, start=2027))) == {("G-1", "idNumber")}
    # A revoked or ended mask is no longer checked at all.
    assert undone(replace(masked, revoked_at=NOW), grant("G-2", ["birthDate"])) == {}
    # Other consumers and other resources never count.
    assert (
        undone(
            masked,
            grant("G-2", ["birthDate"], consumer="market"),
            grant("G-3", ["idNumber"], resource="hrss.social-insurance"),
        )
        == {}
    )


def test_mask_problems_reports_what_the_new_grant_brings_either_way():
    masked = grant("G-1", ["idNumber", "name"], {"idNumber": "id_number"})
    (problem,) = disclosure.mask_problems(CATALOG, [masked], grant("new", ["birthDate"]), now=NOW)
    assert (problem.grant, problem.item, problem.revealing, problem.others) == (
        "G-1",
        "idNumber",
        ("birthDate",),
        ("new",),
    )
    assert problem.params()["revealing"] == "birthDate (new)"
    (own,) = disclosure.mask_problems(
        CATALOG, [grant("G-2", ["birthDate"])], grant("new", ["idNumber"], {"idNumber": "id_number"}), now=NOW
    )
    assert (own.grant, own.item, own.others) == ("new", "idNumber", ("G-2",))
    # A change to a grant of the same id replaces it: taking the birth date out of it is no problem.
    assert (
        disclosure.mask_problems(
            CATALOG,
            [grant("G-1", ["idNumber", "birthDate"], {"idNumber": "id_number"})],
            grant("G-1", ["idNumber"], {"idNumber": "id_number"}),
            now=NOW,
        )
        == []
    )
    # A conflict that was there before is not the new grant's: it is not reported against it.
    old = [grant("G-1", ["idNumber", "birthDate"], {"idNumber": "id_number"})]
    assert disclosure.mask_problems(CATALOG, old, grant("new", ["address"]), now=NOW) == []
    # Removing the grant that held the value in clear leaves two complementary masks undone.
    pair = [grant("G-1", ["idNumber"], {"idNumber": "keep:0,12"}), grant("G-2", ["idNumber"], {"idNumber": "keep:6,0"})]
    assert {
        (p.grant, p.item) for p in disclosure.newly_undone(CATALOG, [*pair, grant("G-3", ["idNumber"])], pair, now=NOW)
    } == {("G-1", "idNumber"), ("G-2", "idNumber")}


def test_undone_masks_lists_every_grant_and_item_of_a_policy_set():
    policies = PolicySet(
        grants=(
            grant("G-1", ["idNumber", "birthDate"], {"idNumber": "id_number"}),
            grant(
                "G-2",
                ["legalRepIdNumber"],
                {"legalRepIdNumber": "keep:0,12"},
                consumer="land",
                resource="market.enterprise",
            ),
            grant("G-3", ["idNumber", "name"], {"idNumber": "id_number", "name": "name"}, consumer="civil"),
            grant("G-4", ["birthDate"], {"birthDate": "year"}, consumer="civil"),
        ),
        version=7,
    )
    assert disclosure.undone_masks(CATALOG, policies, now=NOW) == {("G-1", "idNumber"), ("G-3", "idNumber")}
    # The enterprise's own county is not the legal representative's: keep:0,12 hides rep_county, which nothing reveals.
    assert disclosure.undone_masks(CATALOG, PolicySet(grants=policies.grants[1:2]), now=NOW) == frozenset()


def test_the_demo_grants_pass_the_check():
    from demo.build import DEMO_GRANTS, day

    policies = PolicySet(
        grants=tuple(
            Grant(
                f"G-{n}",
                GrantKind.LEGAL_BASIS if basis else GrantKind.GRANT,
                consumer,
                resource,
                tuple(items),
                tuple(purposes),
                day(start),
                day(end),
                {k: tuple(v) for k, v in scope.items()},
                dict(masks),
                basis,
            )
            for n, (consumer, resource, items, purposes, start, end, scope, masks, basis) in enumerate(DEMO_GRANTS)
        )
    )
    assert any(g.masks == {"idNumber": "id_number"} for g in policies.grants)  # a masked ID number is still shown
    assert disclosure.undone_masks(CATALOG, policies, now=NOW) == frozenset()


async def test_a_mask_undone_by_rows_written_past_the_checks_is_denied_by_the_query_service(own_api, own_world):
    # An insider writes the birth-date grant straight into the platform database: no check runs. The engine
    # checks the policies in force as a whole and withholds the masked number instead (fail closed).
    from govshare.platformdb import bump_policy_version
    from policies.tables import grants

    runtime = own_api.app.state.runtime
    async with runtime.engine.begin() as conn:
        await conn.execute(
            grants.insert().values(
                id="G-insider",
                kind="grant",
                consumer="hrss",
                resource="police.person",
                items=["birthDate"],
                purposes=[ENROLMENT],
                valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                valid_until=datetime(2031, 1, 1, tzinfo=UTC),
                row_scope={},
                masks={},
                created_by="insider",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
        await bump_policy_version(conn)
    await runtime.refresh()
    response = await own_api.post(REBUILD, department="hrss", purpose=ENROLMENT)
    result = response.json()
    items = result["data"]["personList"]["items"]
    assert items and all(i["idNumber"] is None and i["birthDate"] for i in items)
    assert errors_by_item(result) == {"idNumber": "MASK_UNDONE"}
    for row in own_world.rows("police", "SELECT id_number FROM person WHERE county_code = '371311'"):
        assert absent(row["id_number"], response)
