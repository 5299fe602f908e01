"""What a new user tripped on (issue 12): the CLI's help in the configured language, one policy version from the
console to the log to /healthz, a demo whose console shows rules, aligned `key list` columns, `audit checkpoint`
and `catalog check` saying what they did, and access records that say a refusal was one.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from audit.tables import access_records
from cli import ENGLISH_HELP, _help_texts
from cli import main as govshare_main
from policies import documents
from policies.store import create_grant
from tests.test_cli import CJK, COMMAND_PATHS, environment, govshare, govshare_in_process
from tests.test_console import Console, staffed  # noqa: F401 (the fixture)

USAGE = "{ usageRecords(first: 5) { resource operation outcome errorCode itemsReturned rowCount } }"


def _help(path: tuple[str, ...], folder, language: str | None) -> str:
    result = CliRunner().invoke(
        govshare_main, [*path, "--help"], env=environment(folder, language), prog_name="govshare"
    )
    assert result.exit_code == 0, result.output
    return result.output


# --- the CLI's help follows the language setting ------------------------------------------------------------


def test_english_help_on_request_chinese_by_default(tmp_path, monkeypatch):
    run = govshare(tmp_path, "--help", language="en")
    assert run.returncode == 0, run.stderr
    assert not CJK.search(run.stdout), run.stdout
    assert "online-query service" in run.stdout
    monkeypatch.chdir(tmp_path)
    for path in [(), *COMMAND_PATHS]:
        english = _help(path, tmp_path, "en")
        assert not CJK.search(english), f"govshare {' '.join(path)} --help in English:\n{english}"
        chinese = _help(path, tmp_path, None)  # after an English run in this process: Chinese again
        assert CJK.search(chinese), f"govshare {' '.join(path)} --help by default:\n{chinese}"
    # Every command and option has its English help, and no entry is left for one that is gone.
    assert set(ENGLISH_HELP) == {where for where, _ in _help_texts(govshare_main)}
    english = _help(("grant", "create"), tmp_path, "en")
    assert "Consuming department code." in english and "Mask: item=kind" in english


def test_grant_help_names_the_application_process_that_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    chinese, english = _help(("grant",), tmp_path, None), _help(("grant",), tmp_path, "en")
    assert "后续版本" not in chinese and "later version" not in english
    flat = chinese.replace("\n", "").replace(" ", "")
    assert "applyForShare" in flat and "applyForShare" in english


# --- one policy version ---------------------------------------------------------------------------------------


async def test_console_log_and_healthz_name_one_policy_version(staffed, caplog):
    api, console = staffed
    await console.sign_in()
    with caplog.at_level(logging.INFO, logger="govshare"):
        saved = await console.submit(
            "/console/deny/new",
            "/console/deny",
            {"department": "land", "resource": "*", "basis": "迟报", "reason": "迟报"},
        )
        assert saved.status_code == 303, saved.text
    health = (await console.client.get("/healthz")).json()
    page = (await console.client.get("/console/rules")).text
    status = re.search(r'<p class="status" id="version">(.*?)</p>', page).group(1)
    shown = int(re.search(r"现行策略版本：第 (\d+) 版", status).group(1))
    assert shown == health["policy_version"] == health["last_reload"]["policy_version"]
    logged = [
        int(m.group(1)) for r in caplog.records if (m := re.match(r"policy version (\d+) in force", r.getMessage()))
    ]
    assert logged and logged[-1] == shown
    # The rules document's own number (history, rollback, based_on) is still there, labelled as such.
    async with api.app.state.runtime.engine.connect() as conn:
        document_version = (await documents.current_document(conn))[0]
    assert document_version != shown  # on the demo they differ: grants bump the policy version too
    assert f"规则文件第 {document_version} 版" in status
    # explain names the same number
    explained = (
        await console.client.get(
            "/console/explain",
            params={"department": "civil", "purpose": "civil.subsistence-allowance", "resource": "police.household"},
        )
    ).text
    assert f"依据策略版本第 {shown} 版" in explained
    english = (await console.client.get("/console/deny?lang=en")).text
    assert f"Policy version in force: {shown}" in english and f"rules document version {document_version}" in english


# --- the demo teaches the console's first page ----------------------------------------------------------------


async def test_the_demo_console_shows_an_allow_rule_and_a_deny_rule(staffed):
    api, console = staffed
    await console.sign_in()
    rules = (await console.client.get("/console/rules")).text
    (rule_id,) = re.findall(r'id="rule-(P-[0-9a-f]{6})"', rules)
    deny = (await console.client.get("/console/deny")).text
    assert len(re.findall(r'id="deny-(D-[0-9a-f]{6})"', deny)) == 1
    # The rule decides: the household's size for subsistence-allowance review, by that rule, nothing more.
    result = await api.query(
        "{ householdList(first: 3) { items { memberCount address } } }", "civil", "civil.subsistence-allowance"
    )
    rows = result["data"]["householdList"]["items"]
    assert len(rows) == 3 and all(isinstance(r["memberCount"], int) and r["address"] is None for r in rows)
    assert [(e["extensions"]["code"], e["extensions"]["item"]) for e in result["errors"]] == [("NO_GRANT", "address")]
    async with api.app.state.runtime.engine.connect() as conn:
        record = (await conn.execute(select(access_records).order_by(access_records.c.id.desc()).limit(1))).one()
    assert record.grants_used == [rule_id] and record.outcome == "partial"


# --- the CLI's output -----------------------------------------------------------------------------------------


def _columns(line: str) -> list[int]:
    """Display columns at which each field after a run of 2+ spaces (or one space after padding) starts."""
    width, starts = 0, []
    for i, c in enumerate(line):
        if i and line[i - 1] == " " and c != " ":
            starts.append(width)
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return starts


def test_key_list_columns_line_up_with_chinese_application_names(own_folder):
    created = govshare_in_process(own_folder, "key", "create", "--department", "hrss", "--app", "社保经办系统")
    assert created.returncode == 0, created.stderr
    listed = govshare_in_process(own_folder, "key", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any("社保经办系统" in line for line in lines) and len(lines) == 7
    assert len({tuple(_columns(line)) for line in lines}) == 1, "\n" + listed.stdout


def test_audit_checkpoint_says_what_it_wrote(own_folder):
    run = govshare_in_process(own_folder, "audit", "checkpoint")
    assert run.returncode == 0, run.stderr
    written = re.fullmatch(r"检查点 #(\d+) 已签名写入 (\S+)：access (\d+), policy (\d+), process (\d+)\n", run.stdout)
    assert written, run.stdout
    assert int(written.group(4)) >= 2  # the demo's allow rule and deny rule
    again = govshare_in_process(own_folder, "audit", "checkpoint", language="en")
    assert re.fullmatch(
        rf"Checkpoint #{int(written.group(1)) + 1} signed and written to \S+: access \d+, policy "
        rf"{written.group(4)}, process {written.group(5)}\n",
        again.stdout,
    ), again.stdout


def test_catalog_check_of_a_bad_file_says_nothing_was_loaded(own_folder, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [\n", encoding="utf-8")
    checked = govshare_in_process(own_folder, "catalog", "check", str(bad))
    assert checked.returncode == 1
    assert "保持不变" not in checked.stderr and "仅作检查，未加载" in checked.stderr, checked.stderr
    assert "TOML" in checked.stderr  # the problem itself is still told
    english = govshare_in_process(own_folder, "catalog", "check", str(bad), language="en")
    assert "unchanged" not in english.stderr and "checked only: nothing was loaded" in english.stderr
    loaded = govshare_in_process(own_folder, "catalog", "load", str(bad))  # load does refuse: there it is right
    assert loaded.returncode == 1 and "现行目录保持不变" in loaded.stderr


# --- the record says a refusal was one ------------------------------------------------------------------------


async def test_a_lookup_not_found_in_scope_is_recorded_as_refused(own_api, own_world):
    runtime = own_api.app.state.runtime
    async with runtime.engine.begin() as conn:
        await create_grant(
            conn,
            runtime.catalog,
            consumer="land",
            resource="police.person",
            items=["idNumber", "name"],
            purposes=["land.property-registration"],
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            valid_until=datetime(2031, 1, 1, tzinfo=UTC),
            row_scope={"countyCode": ["371311"]},
            masks={},
            created_by="test",
        )
    await runtime.refresh()
    outside = own_world.row("police", "SELECT * FROM person WHERE county_code = '371302' LIMIT 1")
    inside = own_world.row("police", "SELECT * FROM person WHERE county_code = '371311' LIMIT 1")
    query = "query($id: String!) { person(idNumber: $id) { name } }"
    found = await own_api.query(query, "land", "land.property-registration", variables={"id": inside["id_number"]})
    assert found["data"]["person"] == {"name": inside["name"]}
    refused = await own_api.query(query, "land", "land.property-registration", variables={"id": outside["id_number"]})
    assert refused["data"]["person"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["NOT_FOUND_IN_SCOPE"]
    async with runtime.engine.connect() as conn:
        record = (await conn.execute(select(access_records).order_by(access_records.c.id.desc()).limit(1))).one()
    assert (record.outcome, record.error_code, record.row_count) == ("denied", "NOT_FOUND_IN_SCOPE", 0)
    usage = (await own_api.query(USAGE, "police", None))["data"]["usageRecords"]
    assert usage[:2] == [
        {
            "resource": "police.person",
            "operation": "lookup",
            "outcome": "denied",
            "errorCode": "NOT_FOUND_IN_SCOPE",
            "itemsReturned": [],
            "rowCount": 0,
        },
        {
            "resource": "police.person",
            "operation": "lookup",
            "outcome": "allowed",
            "errorCode": None,
            "itemsReturned": ["name"],
            "rowCount": 1,
        },
    ]


@pytest.mark.parametrize(
    "department, purpose, query, provider, code",
    [
        (
            "civil",
            "civil.marriage-registration",
            "query($c: String!) { enterprise(creditCode: $c) { name } }",
            "market",
            "DEPARTMENT_RESTRICTED",
        ),
        (
            "hrss",
            "hrss.insurance-enrolment",
            '{ personList(filter: {countyCode: {eq: "371302"}}) { items { name } } }',
            "police",
            "OUT_OF_SCOPE",
        ),
    ],
)
async def test_a_request_level_refusal_reaches_usage_records_with_its_code(
    own_api, own_world, department, purpose, query, provider, code
):
    variables = {"c": own_world.showcase["enterprise"]} if "$c" in query else None
    answer = await own_api.query(query, department, purpose, variables=variables)
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code]
    (record,) = (await own_api.query(USAGE, provider, None))["data"]["usageRecords"]
    assert (record["outcome"], record["errorCode"]) == ("denied", code)
    assert (record["itemsReturned"], record["rowCount"]) == ([], 0)
