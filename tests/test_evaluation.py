"""The coordinator's evaluation of departments (oversight/evaluation.py): every figure against records the test
itself makes (applications answered in time, late, deemed, refused and overruled; data-error reports answered in time,
overdue and corrected; accesses; feedback; a restriction made and lifted), the drill-down holding exactly the records
counted, weights that change the ranking and are validated, and ``departmentEvaluation`` over GraphQL for the
coordinator and auditors only."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from applications.process import approve, decide_coordination, refuse, request_coordination
from applications.workdays import WorkCalendar
from audit.chain import append
from connectors.conformance import Mismatch
from corrections import process as corrections
from govshare.clock import CHINA
from govshare.errors import GovshareError
from govshare.keys import Caller
from oversight import evaluation, feedback
from policies import documents
from tests.conftest import access_record
from tests.test_applications import COORDINATOR, LAND, POLICE, SUBMITTED, _submit
from tests.test_console import staffed  # noqa: F401 - the console fixture

START, END = date(2026, 2, 1), date(2026, 3, 31)  # the applications' deadlines (4 March) fall in it
REPORTED = datetime(2026, 3, 2, 2, tzinfo=UTC)  # Mon 2 Mar, 10:00 in Beijing: due five working days later
IN_MARCH = datetime(2026, 3, 10, 4, tzinfo=UTC)
NO_MISMATCH: dict[str, list[Mismatch]] = {}


async def _evaluate(runtime, weights=None, conformance=None, start=START, end=END) -> evaluation.Evaluation:
    async with runtime.engine.connect() as conn:
        from catalog import store

        catalog = await store.current(conn)
        return await evaluation.evaluate(
            conn,
            catalog,
            start=start,
            end=end,
            now=runtime.clock(),
            weights=weights or evaluation.DEFAULT_WEIGHTS,
            conformance=NO_MISMATCH if conformance is None else conformance,
            realtime_minutes=runtime.settings.freshness_realtime_minutes,
            silence_approves=runtime.settings.silence_approves,
        )


def _ids(found: evaluation.Evaluation, department: str, key: str) -> list[str]:
    return [e.id for e in found.card(department).figure(key).evidence]


def _new(before: evaluation.Evaluation, after: evaluation.Evaluation) -> dict[tuple[str, str], set[str]]:
    """Per (department, figure), the records the second evaluation counted that the first did not; and every record
    the first counted is still counted (nothing lost)."""
    added = {}
    for card in after.cards:
        for figure in card.figures:
            old = set(_ids(before, card.department, figure.key))
            new = {e.id for e in figure.evidence}
            assert old <= new, (card.department, figure.key)
            assert len(new) == figure.value  # each record counted once
            if new - old:
                added[(card.department, figure.key)] = new - old
    return added


async def _access(conn, n: int, **fields) -> str:
    """An access record appended to the chain at a moment of the period; returns its id."""
    record = dataclasses.replace(access_record(n), at=IN_MARCH, **fields)
    await append(conn, "access", [dict(vars(record))])
    from sqlalchemy import func, select

    from audit.tables import access_records

    return str((await conn.execute(select(func.max(access_records.c.id)))).scalar())


async def test_every_figure_counts_exactly_the_records_made_and_the_drill_down_lists_them(own_api):
    runtime = own_api.app.state.runtime
    before = await _evaluate(runtime)
    catalog, settings = runtime.catalog, runtime.settings

    # Share applications of land to police.person, all due on 4 March (ten working days after 12 February).
    in_time, refused_one, deemed, unanswered = (
        await _submit(runtime),
        await _submit(runtime),
        await _submit(runtime),
        await _submit(runtime, items=["name", "phone"]),  # a not-shared item: silence cannot approve it
    )
    async with runtime.engine.begin() as conn:
        grant = await approve(conn, catalog, settings, POLICE, in_time, now=SUBMITTED + timedelta(days=1))
        await refuse(conn, catalog, settings, POLICE, refused_one, now=SUBMITTED, reason="无需该信息")
        await request_coordination(conn, catalog, LAND, refused_one, now=SUBMITTED, reason="确需核验")
        await decide_coordination(
            conn, catalog, COORDINATOR, refused_one, now=IN_MARCH, approve=True, reason="属履职必需"
        )
    # Data-error reports of land on police.person, due five working days after 2 March: one answered in time
    # (corrected: the data was wrong), one never answered.
    async with runtime.engine.begin() as conn:
        resource = catalog.resources["police.person"]
        answered, ignored = [
            await corrections.file(
                conn,
                WorkCalendar(),
                settings,
                runtime.pseudonym_secret,
                LAND,
                resource=resource,
                key=key,
                item="name",
                proposed="张三",
                reason="与证件不一致",
                purpose="land.property-registration",
                now=REPORTED,
            )
            for key in ("371311197811261792", "371302198001010011")
        ]
        await corrections.answer(
            conn, catalog, POLICE, answered, outcome="corrected", reason="已更正", now=REPORTED + timedelta(days=1)
        )
        # Accesses in March: land reads police.person (usage for both), police reads its own (neither), land is
        # refused for its purpose (Art 27 iv).
        read = await _access(conn, 3, department="land", resource="police.person", outcome="allowed")
        await _access(conn, 4, department="police", resource="police.person", outcome="allowed")
        refused_access = await _access(
            conn,
            0,
            department="land",
            resource="police.person",
            outcome="denied",
            error_code="PURPOSE_NOT_APPROVED",
            items_returned=[],
        )
    # Restrictions on hrss made today: one until lifted (and lifted again at once), one that ended in March.
    rule = documents.DenyRule("D-test01", "hrss", "*", "逾期未更新")
    ended = documents.DenyRule("D-test02", "hrss", "*", "逾期", valid_until=datetime(2026, 3, 20, tzinfo=CHINA))
    for change, reason in [
        (lambda doc: documents.with_deny(documents.with_deny(doc, rule), ended), "限制"),
        (lambda doc: documents.without(doc, rule.id), "解除"),
    ]:
        async with runtime.engine.begin() as conn:
            await documents.edit(conn, catalog, change, author="t", reason=reason)
    await runtime.refresh()
    land = Caller("k-land", "land", "land-app")
    async with runtime.engine.begin() as conn:
        report = await feedback.record(
            conn,
            runtime.catalog,
            land,
            grant=grant,
            period="2026-03",
            matters_handled=12,
            documents_spared=30,
            note="",
            operator=None,
            now=runtime.clock(),
            silence_approves=True,
        )

    after = await _evaluate(runtime)
    assert _new(before, after) == {
        ("police", "applications_due"): {in_time, refused_one, deemed, unanswered},
        ("police", "applications_in_time"): {in_time, refused_one},
        ("police", "applications_refused"): {refused_one},
        ("police", "art27_refusal_overruled"): {refused_one},
        ("police", "applications_deemed"): {deemed},
        ("police", "applications_late"): {unanswered},
        ("police", "corrections_due"): {answered, ignored},
        ("police", "corrections_in_time"): {answered},
        ("police", "corrections_overdue"): {ignored},
        ("police", "art27_data_corrected"): {answered},
        ("police", "usage_as_provider"): {read},
        ("land", "usage_as_consumer"): {read},
        ("land", "art27_purpose_refused"): {refused_access},
        ("land", "feedback_reports"): {report.id},
    }
    police = after.card("police")
    refusal = police.figure("applications_refused").evidence[-1]
    assert refusal.detail == "无需该信息"  # refused with its reason
    assert police.score == pytest.approx(sum(f.value * f.weight for f in police.figures))
    assert [c.rank for c in after.cards] == sorted(c.rank for c in after.cards)
    # The restrictions did not exist in February and March (they were made today): the period counts neither. A
    # period holding today counts the one in force today although it has been lifted since, not the one that ended.
    assert _ids(after, "hrss", "restrictions") == _ids(before, "hrss", "restrictions") == []
    today = runtime.clock().astimezone(CHINA).date()
    current = await _evaluate(runtime, start=today - timedelta(days=1), end=today)
    assert _ids(current, "hrss", "restrictions") == ["D-test01"]
    assert _ids(current, "civil", "restrictions") != []  # the demo world's own restriction of civil (Art 20)


async def test_conformance_and_overdue_figures_come_from_the_check_and_the_recorded_changes(own_api):
    runtime = own_api.app.state.runtime
    mismatches = {
        "police.person": [Mismatch("phone", "missing_column", "no column phone")],
        "market.enterprise": [Mismatch(None, "unreachable", "connection refused")],  # an outage, not a mismatch
    }
    found = await _evaluate(runtime, conformance=mismatches)
    assert _ids(found, "police", "catalog_nonconforming") == ["police.person"]
    assert _ids(found, "market", "catalog_nonconforming") == []
    published = {r.code for r in runtime.catalog.published() if r.provider == "police"}
    assert set(_ids(found, "police", "catalog_published")) == published
    # The demo world's civil.marriage is overdue (its source last changed long ago: catalog/freshness.py).
    from admin import operations

    overdue = {s.resource for s in await operations.freshness_states(runtime) if s.overdue and s.provider == "civil"}
    assert overdue and set(_ids(found, "civil", "resources_overdue")) == overdue


async def test_weights_change_the_ranking_and_bad_weights_are_refused(own_api, tmp_path):
    runtime = own_api.app.state.runtime
    await _submit(runtime)  # police's silence approves it
    zero = dict.fromkeys(evaluation.FIGURES, 0.0)
    rewarded = await _evaluate(runtime, weights=zero | {"applications_deemed": 100.0})
    punished = await _evaluate(runtime, weights=zero | {"applications_deemed": -100.0})
    assert rewarded.card("police").rank == 1 and rewarded.card("police").score == 100.0
    assert punished.card("police").rank == len(punished.cards) and punished.card("police").score == -100.0
    tied = [c for c in punished.cards if c.department != "police"]
    assert {c.rank for c in tied} == {1}  # equal scores share a rank

    weights = tmp_path / "weights.toml"
    weights.write_text("[weights]\napplications_deemed = -7\n", encoding="utf-8")
    assert evaluation.load_weights(weights)["applications_deemed"] == -7.0
    assert evaluation.load_weights("") == evaluation.DEFAULT_WEIGHTS
    for text, code in [
        ("[weights]\nsmiles = 1\n", "EVALUATION_WEIGHT_UNKNOWN"),
        ('[weights]\nrestrictions = "a lot"\n', "EVALUATION_WEIGHT_INVALID"),
        ("[weights]\nrestrictions = 1e9\n", "EVALUATION_WEIGHT_INVALID"),
        ("[weights]\nrestrictions = nan\n", "EVALUATION_WEIGHT_INVALID"),
        ("[weights]\nrestrictions = true\n", "EVALUATION_WEIGHT_INVALID"),
        ("restrictions = 1\n", "EVALUATION_WEIGHTS_UNREADABLE"),
        ("[weights\n", "EVALUATION_WEIGHTS_UNREADABLE"),
    ]:
        weights.write_text(text, encoding="utf-8")
        with pytest.raises(GovshareError) as refused:
            evaluation.load_weights(weights)
        assert refused.value.code == code, text
    with pytest.raises(GovshareError) as missing:
        evaluation.load_weights(tmp_path / "none.toml")
    assert missing.value.code == "EVALUATION_WEIGHTS_UNREADABLE"
    for start, end, code in [
        (date(2026, 3, 2), date(2026, 3, 1), "EVALUATION_PERIOD_INVALID"),
        (date(2020, 1, 1), date(2026, 1, 1), "EVALUATION_PERIOD_TOO_LONG"),
    ]:
        with pytest.raises(GovshareError) as refused:
            await _evaluate(runtime, start=start, end=end)
        assert refused.value.code == code


EVALUATION = """query($from: Date!, $to: Date!) { departmentEvaluation(from: $from, to: $to) {
  from to departments { department rank score figures { key label value weight points article27 records { kind id } } }
} }"""


async def test_department_evaluation_over_graphql_for_the_coordinator_and_auditors_only(own_api):
    runtime = own_api.app.state.runtime
    deemed = await _submit(runtime)
    variables = {"from": START.isoformat(), "to": END.isoformat()}
    answer = await own_api.query(EVALUATION, "bigdata", None, variables=variables)
    assert "errors" not in answer, answer
    cards = {c["department"]: c for c in answer["data"]["departmentEvaluation"]["departments"]}
    figures = {f["key"]: f for f in cards["police"]["figures"]}
    assert figures["applications_deemed"]["label"] == "逾期视为同意"
    assert deemed in [r["id"] for r in figures["applications_deemed"]["records"]]
    assert figures["applications_deemed"]["value"] == len(figures["applications_deemed"]["records"])
    assert figures["art27_refusal_overruled"]["article27"] == "五"
    assert [c["rank"] for c in answer["data"]["departmentEvaluation"]["departments"]] == sorted(
        c["rank"] for c in cards.values()
    )
    for department in ("market", "police", "land"):  # reviewers and applicants, not the coordinator
        refused = await own_api.query(EVALUATION, department, None, variables=variables)
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "EVALUATION_ROLE_REQUIRED"
        assert deemed not in str(refused)
    from govshare.keys import create_key

    async with runtime.engine.begin() as conn:  # an auditor's key (of another department): the role decides
        _, auditor = await create_key(
            conn, department="market", application="审计", departments=runtime.catalog.departments, roles=("auditor",)
        )
        _, reviewer = await create_key(
            conn, department="bigdata", application="审核", departments=runtime.catalog.departments, roles=("reviewer",)
        )
    await runtime.refresh()
    audited = await own_api.query(EVALUATION, "market", None, variables=variables, key=auditor)
    assert "errors" not in audited, audited
    departments = audited["data"]["departmentEvaluation"]["departments"]
    assert {c["department"] for c in departments} == set(cards)
    assert deemed in str(audited)
    not_coordinator = await own_api.query(EVALUATION, "bigdata", None, variables=variables, key=reviewer)
    assert not_coordinator["errors"][0]["extensions"]["code"] == "EVALUATION_ROLE_REQUIRED"
    bad = await own_api.query(EVALUATION, "bigdata", None, variables={"from": "2026-03-02", "to": "2026-03-01"})
    assert bad["errors"][0]["extensions"]["code"] == "EVALUATION_PERIOD_INVALID"


# --- the console (/console/evaluation) -------------------------------------------------------------------------


async def test_console_ranking_charts_drill_down_and_exports(staffed):
    import csv
    import io
    import re

    from openpyxl import load_workbook

    from oversight import charts

    api, console = staffed
    runtime = api.app.state.runtime
    deemed = await _submit(runtime)
    assert (await console.client.get("/console/evaluation")).status_code == 303  # signed out: to the sign-in page
    await console.sign_in()
    query = f"from={START.isoformat()}&to={END.isoformat()}"
    page = await console.client.get(f"/console/evaluation?{query}")
    assert page.status_code == 200 and "各部门共享工作评价" in page.text
    assert "script" not in page.text.lower().replace("script-src", "")
    found = await _evaluate(runtime)
    for card in found.cards:  # the ranking as computed, each figure a link to its records
        row = re.search(rf'<tr id="card-{card.department}">.*?</tr>', page.text, re.S).group(0)
        assert f'<td class="score">{card.score}</td>' in row
        link = f"/console/evaluation/{card.department}/applications_deemed?{query}&lang=zh-CN".replace("&", "&amp;")
        assert f'href="{link}">{card.figure("applications_deemed").value}</a>' in row
    charts_shown = re.findall(r'<img id="chart-(\w+)" src="([^"]+)"', page.text)
    assert [name for name, _ in charts_shown] == ["scores", "applications"]
    for _, src in charts_shown:
        svg = await console.client.get(src.replace("&amp;", "&"))
        assert svg.status_code == 200 and svg.headers["content-type"].startswith(charts.SVG_MEDIA_TYPE)
        assert svg.headers["content-security-policy"] == charts.SVG_HEADERS["Content-Security-Policy"]
        assert "<script" not in svg.text and "<svg" in svg.text
    police = found.card("police")
    assert police.name in (await console.client.get(charts_shown[0][1].replace("&amp;", "&"))).text

    drill = await console.client.get(f"/console/evaluation/police/applications_deemed?{query}")
    assert drill.status_code == 200
    listed = re.findall(r'<tr class="record"><td>application</td><td><code>([^<]+)</code>', drill.text)
    assert listed == _ids(found, "police", "applications_deemed") and deemed in listed
    for path, status in [
        (f"/console/evaluation/police/smiles?{query}", 404),
        (f"/console/evaluation/nobody/applications_deemed?{query}", 404),
        (f"/console/evaluation/chart/pie.svg?{query}", 404),
        (f"/console/evaluation/export.pdf?{query}", 404),
        ("/console/evaluation?from=2026-03-02&to=2026-03-01", 400),
        ("/console/evaluation?from=yesterday", 400),
    ]:
        assert (await console.client.get(path)).status_code == status, path

    exported = await console.client.get(f"/console/evaluation/export.csv?{query}")
    assert exported.status_code == 200 and exported.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["排名", "部门编码", "部门", "总分"] and table[0][4:] == [
        evaluation.label(k) for k in evaluation.FIGURES
    ]
    by_department = {row[1]: row for row in table[1:]}
    deemed_column = 4 + evaluation.FIGURES.index("applications_deemed")
    assert by_department["police"][deemed_column] == str(police.figure("applications_deemed").value)
    assert by_department["police"][3] == str(police.score)
    book = load_workbook(io.BytesIO((await console.client.get(f"/console/evaluation/export.xlsx?{query}")).content))
    ranking, weights = book.worksheets
    rows = list(ranking.iter_rows(values_only=True))
    assert rows[0][:4] == ("排名", "部门编码", "部门", "总分")
    assert {r[1]: r[deemed_column] for r in rows[1:]}["police"] == police.figure("applications_deemed").value
    assert {r[1]: r[2] for r in weights.iter_rows(values_only=True)}["applications_deemed"] == -2.0

    english = await console.client.get(f"/console/evaluation?{query}&lang=en")
    assert "Evaluation of departments" in english.text and "Deemed approved" in english.text


def test_exported_names_that_look_like_formulas_stay_text():
    import csv
    import io

    from openpyxl import load_workbook

    from oversight import exports

    hostile = '=HYPERLINK("http://evil.example","x")'
    figures = tuple(evaluation.Figure(k, w, ()) for k, w in evaluation.DEFAULT_WEIGHTS.items())
    found = evaluation.Evaluation(
        START,
        END,
        datetime(2026, 4, 1, tzinfo=UTC),
        evaluation.DEFAULT_WEIGHTS,
        (evaluation.Scorecard("@dept", hostile, figures, -3.5, 1),),
    )
    header, rows = evaluation.table(found, "zh-CN")
    (row,) = list(csv.reader(io.StringIO(exports.csv_bytes(header, rows).decode("utf-8-sig"))))[1:]
    assert row[1:4] == ["'@dept", "'" + hostile, "-3.5"]  # texts escaped, numbers left numbers
    sheet = load_workbook(io.BytesIO(exports.xlsx_bytes([("t", header, rows)]))).active
    cells = list(sheet[2])
    assert cells[2].value == "'" + hostile and cells[2].data_type == "s" and cells[3].value == -3.5


async def test_a_departments_catalog_staff_cannot_open_the_evaluation(staffed):
    from admin import accounts
    from tests.test_console import PASSWORD

    api, console = staffed
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        await accounts.create_account(conn, runtime.settings, "land.clerk", PASSWORD, "国土编报员", "land")
    await console.sign_in("land.clerk")
    for path in ("/console/evaluation", "/console/evaluation/export.csv", "/console/evaluation/chart/scores.svg"):
        refused = await console.client.get(path)
        assert refused.status_code == 403 and "STAFF_OFFICE_ONLY" in refused.text, path


def test_the_command_lists_the_ranking_and_writes_the_export(own_folder):
    import csv
    import io

    from tests.test_cli import govshare_in_process

    listed = govshare_in_process(own_folder, "report", "evaluation", "--from", "2026-02-01", "--to", "2026-03-31")
    assert listed.returncode == 0, listed.stderr
    ranks = [int(line.split()[0]) for line in listed.stdout.splitlines()]
    assert ranks and ranks == sorted(ranks) and ranks[0] == 1
    out = own_folder / "evaluation.csv"
    written = govshare_in_process(
        own_folder,
        "report",
        "evaluation",
        "--from",
        "2026-02-01",
        "--to",
        "2026-03-31",
        "--format",
        "csv",
        "--out",
        str(out),
    )
    assert written.returncode == 0, written.stderr
    assert f"已写出 {out}" in written.stdout
    table = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert out.read_bytes().startswith("\ufeff".encode()) and table[0][0] == "排名"
    assert [row[1] for row in table[1:]] == [line.split()[2] for line in listed.stdout.splitlines()]
    bad = govshare_in_process(own_folder, "report", "evaluation", "--from", "March")
    assert bad.returncode == 1 and "[EVALUATION_DAY_INVALID]" in bad.stderr + bad.stdout
