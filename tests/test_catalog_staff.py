"""A department's catalog staff in the console (role catalog_editor): uploads its department's catalog file (TOML or
.xlsx), sends a draft for review and retires its own published resources; the coordinating authority's office
alone approves. Another department's submissions and resources are not there for it, nor is any other console page
or the admin API (attacks). A workbook's faults are named at their cells, as ``catalog load`` names them, in the
console, on the command line and over GraphQL."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from admin import accounts
from catalog.loader import load_entries
from catalog.model import Catalog
from catalog.xlsx import CATALOG_SHEET, write_workbook
from govshare.errors import CatalogError
from tests.conftest import World, _api, _world, copy_var, make_settings
from tests.test_catalog_workflow import SUBMIT, code_of, run
from tests.test_cli import govshare, govshare_in_process
from tests.test_console import ORIGIN, PASSWORD, Console

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SUBMIT_WORKBOOK = """mutation($book: Base64!, $reason: String!) {
  submitCatalogEntries(workbook: $book, name: "land.xlsx", reason: $reason) { id department status changedResources } }"""


@pytest.fixture(scope="module")
async def built(tmp_path_factory) -> World:
    return await _world(tmp_path_factory.mktemp("catalog-staff-world"))


@pytest.fixture
async def api(built: World, tmp_path):
    copy_var(built.settings.var_dir, tmp_path / "var")
    async for served in _api(World(make_settings(tmp_path / "var"), built.keys, built.showcase)):
        runtime = served.app.state.runtime
        async with runtime.engine.begin() as conn:
            await accounts.create_account(conn, runtime.settings, "land.clerk", PASSWORD, "国土编报员", "land")
            await accounts.create_account(conn, runtime.settings, "wang.fang", PASSWORD, "王芳")
        yield served


def browser(api) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=ORIGIN)


def workbook(path: Path, catalog: Catalog, department: str, header: str = "", old: str = "", new: str = "") -> Path:
    """The department's entries exported as a workbook, with every cell of column ``header`` holding ``old`` (or its
    first data row, when ``old`` is empty) set to ``new``."""
    write_workbook(catalog, path, departments=[department])
    if header:
        book = load_workbook(path)
        sheet = book[CATALOG_SHEET]
        (column,) = [cell.column for cell in sheet[1] if cell.value == header]
        cells = [row[column - 1] for row in sheet.iter_rows(min_row=2)]
        changed = [cell for cell in cells if (cell.value == old if old else cell.row == 2)]
        assert changed, (header, old)
        for cell in changed:
            cell.value = new
        book.save(path)
    return path


async def upload(console: Console, path: Path, reason: str, draft: bool = False) -> httpx.Response:
    csrf, _ = await console.form_token("/console/catalog")
    fields = {"csrf_token": csrf, "reason": reason, **({"draft": "1"} if draft else {})}
    return await console.client.post(
        "/console/catalog/upload",
        data=fields,
        files={"file": (path.name, path.read_bytes(), XLSX)},
        headers={"Origin": ORIGIN},
    )


def submission_ids(page: str) -> list[str]:
    return re.findall(r'id="submission-([0-9a-f]+)"', page)


async def process_steps(api) -> list[tuple[str, str, str, str | None]]:
    async with api.app.state.runtime.engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT kind, department, actor, reason FROM process_records ORDER BY seq"))
        ).all()
    return [tuple(row) for row in rows if row[0].startswith("catalog_") or row[0] == "refused_action"]


async def test_a_departments_staff_uploads_a_workbook_sends_it_and_the_office_publishes_it(api, tmp_path):
    runtime = api.app.state.runtime
    edited = workbook(tmp_path / "land.xlsx", runtime.catalog, "land", "信息项名称", "坐落", "不动产坐落")
    async with browser(api) as clerk_client, browser(api) as office_client:
        clerk = Console(clerk_client)
        signed = await clerk.sign_in("land.clerk")
        assert signed.status_code == 303 and signed.headers["location"] == "/console/catalog"
        page = await clerk_client.get("/console/catalog")
        assert page.status_code == 200 and 'action="/console/catalog/upload"' in page.text
        assert 'enctype="multipart/form-data"' in page.text and "/approve" not in page.text

        csrf, _ = await clerk.form_token("/console/catalog")
        no_file = await clerk_client.post(
            "/console/catalog/upload", data={"csrf_token": csrf, "reason": "x"}, headers={"Origin": ORIGIN}
        )
        assert no_file.status_code == 400 and "请选择一个目录文件" in no_file.text
        assert (await upload(clerk, edited, "坐落更名", draft=True)).status_code == 303
        (draft_id,) = submission_ids((await clerk_client.get("/console/catalog")).text)
        async with runtime.engine.connect() as conn:
            row = (await conn.execute(text("SELECT status, source, department FROM catalog_submissions"))).one()
        assert tuple(row) == ("draft", "land.xlsx", "land")

        sent = await clerk.submit("/console/catalog", f"/console/catalog/{draft_id}/send", {})
        assert sent.status_code == 303, sent.text
        # the department's staff never reviews: refused (and recorded), nothing published
        refused = await clerk.submit("/console/catalog", f"/console/catalog/{draft_id}/approve", {"reason": "同意"})
        assert refused.status_code == 403 and "只有共享主管部门可以审核目录编报" in refused.text
        assert runtime.catalog.resources["land.real-estate"].item("address").label == "坐落"

        office = Console(office_client)
        await office.sign_in()
        review = await office_client.get("/console/catalog")
        assert f'action="/console/catalog/{draft_id}/approve"' in review.text and "catalog-upload" not in review.text
        approved = await office.submit("/console/catalog", f"/console/catalog/{draft_id}/approve", {"reason": "同意"})
        assert approved.status_code == 303, approved.text
    assert runtime.catalog.resources["land.real-estate"].item("address").label == "不动产坐落"
    assert await process_steps(api) == [
        ("catalog_drafted", "land", "land.clerk", "坐落更名"),
        ("catalog_submitted", "land", "land.clerk", "坐落更名"),
        ("refused_action", "land", "land.clerk", "FORBIDDEN"),
        ("catalog_published", "coordinator", "wang.fang", "同意"),
    ]


async def test_a_departments_staff_neither_sees_nor_retires_anothers_nor_uses_the_offices_pages(api):
    runtime = api.app.state.runtime
    civil_file = (Path(__file__).resolve().parent.parent / "catalog" / "demo" / "civil.toml").read_text("utf-8")
    civil = await run(api, SUBMIT, "civil", doc=civil_file.replace('label = "', 'label = "新', 1), reason="民政")
    civil_id = civil["data"]["submitCatalogEntries"]["id"]
    async with browser(api) as client:
        clerk = Console(client)
        await clerk.sign_in("land.clerk")
        page = await client.get("/console/catalog")
        assert civil_id not in page.text and submission_ids(page.text) == []
        assert "land.real-estate" in page.text and "civil.marriage" not in page.text  # its own resources to retire
        for step in ("send", "approve", "return"):
            answer = await clerk.submit("/console/catalog", f"/console/catalog/{civil_id}/{step}", {"reason": "越权"})
            assert answer.status_code == 404, (step, answer.text)
        other = await clerk.submit(
            "/console/catalog", "/console/catalog/retire", {"resource": "civil.marriage", "reason": "越权撤销"}
        )
        assert other.status_code == 403 and runtime.catalog.resources["civil.marriage"].status == "published"
        no_reason = await clerk.submit("/console/catalog", "/console/catalog/retire", {"resource": "land.real-estate"})
        assert no_reason.status_code == 400 and runtime.catalog.resources["land.real-estate"].status == "published"
        forged = await client.post(
            "/console/catalog/retire",
            data={"csrf_token": "forged", "resource": "land.real-estate", "reason": "伪造"},
            headers={"Origin": ORIGIN},
        )
        assert forged.status_code == 403 and runtime.catalog.resources["land.real-estate"].status == "published"
        own = await clerk.submit(
            "/console/catalog", "/console/catalog/retire", {"resource": "land.real-estate", "reason": "停止提供"}
        )
        assert own.status_code == 303 and runtime.catalog.resources["land.real-estate"].status == "retired"

        for path in ("/console/rules", "/console/grants", "/console/deny", "/console/explain", "/console/history"):
            refused = await client.get(path)
            assert refused.status_code == 403 and "STAFF_OFFICE_ONLY" in refused.text, path
        csrf, _ = await clerk.form_token("/console/catalog")
        rule = await client.post(
            "/console/rules",
            data={"csrf_token": csrf, "department": "land", "resource": "civil.marriage", "reason": "x"},
            headers={"Origin": ORIGIN},
        )
        assert rule.status_code == 403
    token, _ = await accounts.sign_in(runtime.engine, runtime.settings, "land.clerk", PASSWORD)
    async with browser(api) as script:
        admin = await script.post(
            "/admin/graphql",
            json={"query": "{ policyHistory { version } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert admin.status_code == 403 and admin.json()["errors"][0]["extensions"]["code"] == "STAFF_OFFICE_ONLY"
    steps = await process_steps(api)
    assert ("refused_action", "land", "land.clerk", "CATALOG_SUBMISSION_NOT_FOUND") in steps
    assert ("refused_action", "land", "land.clerk", "CATALOG_NOT_YOUR_RESOURCE") in steps
    assert ("catalog_retired", "land", "land.clerk", "停止提供") in steps


async def test_a_workbook_with_a_bad_cell_is_refused_naming_the_cell_as_catalog_load_does(api, tmp_path):
    runtime = api.app.state.runtime
    bad = workbook(tmp_path / "land-bad.xlsx", runtime.catalog, "land", "更新周期", "", "每十年")
    with pytest.raises(CatalogError) as loaded:
        load_entries(bad, runtime.catalog)
    # the same lines, naming the file as it was uploaded
    expected = [p.render("zh-CN").replace(str(bad), bad.name) for p in loaded.value.problems]
    assert any("资源目录!" in line and "'每十年'" in line for line in expected), expected
    async with browser(api) as client:
        clerk = Console(client)
        await clerk.sign_in("land.clerk")
        refused = await upload(clerk, bad, "更新周期")
    assert refused.status_code == 400
    shown = re.search(r'<ul class="problems" id="catalog-problems">(.*?)</ul>', refused.text, re.S).group(1)
    assert [html.unescape(line) for line in re.findall(r"<li>(.*?)</li>", shown)] == expected

    over_graphql = await run(api, SUBMIT_WORKBOOK, "land", book=base64.b64encode(bad.read_bytes()).decode(), reason="x")
    assert code_of(over_graphql) == "CATALOG_INVALID"
    problems = over_graphql["errors"][0]["extensions"]["problems"]
    assert [(p["sheet"], p["cell"], p["code"]) for p in problems] == [
        (p.sheet, p.cell, p.code) for p in loaded.value.problems
    ]
    good = workbook(tmp_path / "land.xlsx", runtime.catalog, "land", "信息项名称", "坐落", "不动产坐落")
    sent = await run(api, SUBMIT_WORKBOOK, "land", book=base64.b64encode(good.read_bytes()).decode(), reason="更名")
    assert sent["data"]["submitCatalogEntries"]["changedResources"] == ["land.real-estate"], sent
    async with runtime.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM catalog_submissions"))).scalar_one()
    assert count == 1  # the refused ones left nothing


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("catalog-staff-cli")
    built = govshare(folder, "demo")
    assert built.returncode == 0, built.stderr
    return folder


def test_cli_submits_a_workbook_and_names_a_bad_cell_as_load_does(demo_folder, tmp_path):
    copy_var(demo_folder / "var", tmp_path / "var")
    demo = load_entries(Path(__file__).resolve().parent.parent / "catalog" / "demo")[0]
    bad = workbook(tmp_path / "land-bad.xlsx", demo, "land", "更新周期", "", "每十年")
    loaded = govshare_in_process(tmp_path, "catalog", "load", str(bad))
    submitted = govshare_in_process(tmp_path, "catalog", "submit", str(bad), "--reason", "x", "--by", "wang")
    assert loaded.returncode == submitted.returncode == 1
    faults = [line for line in loaded.stderr.splitlines() if "资源目录!" in line]
    assert faults and faults == [line for line in submitted.stderr.splitlines() if "资源目录!" in line]

    good = workbook(tmp_path / "land.xlsx", demo, "land", "信息项名称", "坐落", "不动产坐落")
    sent = govshare_in_process(tmp_path, "catalog", "submit", str(good), "--reason", "更名", "--by", "wang")
    assert sent.returncode == 0 and "状态 under_review：变更资源 land.real-estate" in sent.stdout, sent.stderr


async def test_a_departments_staff_reads_only_its_own_departments_versions_and_diffs(api):
    """The console's catalog history and diff show a department's catalog staff what a department key sees over
    GraphQL: its own department's changes and entries, never another department's (who changed what and why, its
    database's address, tables and columns)."""
    runtime = api.app.state.runtime
    civil_file = (Path(__file__).resolve().parent.parent / "catalog" / "demo" / "civil.toml").read_text("utf-8")
    civil = await run(api, SUBMIT, "civil", doc=civil_file.replace('label = "', 'label = "更名', 1), reason="民政更名")
    civil_id = civil["data"]["submitCatalogEntries"]["id"]
    async with browser(api) as client:
        office = Console(client)
        await office.sign_in("wang.fang")
        approved = await office.submit("/console/catalog", f"/console/catalog/{civil_id}/approve", {"reason": "同意"})
        assert approved.status_code == 303, approved.text
        seen = await client.get("/console/catalog/history")
        assert f'id="catalog-version-{runtime.catalog.version}"' in seen.text  # the office sees every department's
        assert "<td>civil</td>" in seen.text
    latest = runtime.catalog.version
    async with browser(api) as client:
        clerk = Console(client)
        await clerk.sign_in("land.clerk")
        history = await client.get("/console/catalog/history")
        assert history.status_code == 200 and "<td>civil</td>" not in history.text
        assert f'id="catalog-version-{latest}"' not in history.text
        civil_history = await client.get("/console/catalog/history", params={"resource": "civil.marriage"})
        assert "catalog-version-" not in civil_history.text
        diff = await client.get("/console/catalog/diff", params={"from": 1, "to": latest})
        assert diff.status_code == 200
        assert "更名" not in diff.text and "civil." not in diff.text and "sources/civil" not in diff.text
