"""The policy console in a real browser: Playwright (PyPI) drives Debian's Chromium, headless, against a real
`govshare serve` on a copy of the demo world.

Sign in (a wrong password first), look at rules, grants and deny rules, add a deny rule with a reason, see
explain and the GraphQL answer change, find the change in the history and its diff, roll back, see both
restored, look at the usage reports and their charts (the office's and a department's), sign out. Every page visited is kept as a screenshot in tests/artifacts/console/.

Chromium is found as `chromium` on PATH or at GOVSHARE_CHROMIUM; without it the test is skipped, or fails
under .ci/run (GOVSHARE_REQUIRE_SERVICES=1), which installs it. `playwright install` is not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from govshare.clock import CHINA
from tests.conftest import REQUIRE_SERVICES, errors_by_item
from tests.test_cli import TIMEOUT, _Server, demo_keys, environment, govshare_command

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "console"
SESSION_COOKIE = "__Host-govshare-console"
USERNAME, DISPLAY_NAME, PASSWORD = "wang.fang", "王芳", "correct horse battery staple"
CLERK = "land.clerk"  # the land department's catalog staff (catalog_editor)


def land_workbook(path: Path) -> None:
    from openpyxl import load_workbook

    from catalog.loader import load_catalog
    from catalog.xlsx import CATALOG_SHEET, write_workbook

    write_workbook(load_catalog(Path(__file__).resolve().parent.parent / "catalog" / "demo"), path, ["land"])
    book = load_workbook(path)
    for row in book[CATALOG_SHEET].iter_rows():
        for cell in row:
            if cell.value == "坐落":
                cell.value = "不动产坐落位置"
    book.save(path)


HRSS, PURPOSE, RESOURCE = "hrss", "hrss.employment-subsidy", "market.enterprise"
ENTERPRISES = "{ enterpriseList(first: 3) { items { creditCode name } } }"
BASIS = "未按时更新参保数据（第二十条）"
REASON = "社保数据连续两月未更新，市大数据局通知限制"
ROLLBACK_REASON = "已补报，恢复共享"
EXPECT_TIMEOUT = 10_000  # ms; generous for a loaded CI machine, never reached when things work


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium (or GOVSHARE_CHROMIUM); skipped when missing, a failure under .ci/run."""
    configured = os.environ.get("GOVSHARE_CHROMIUM")
    found = shutil.which(configured) if configured else shutil.which("chromium")
    if not found:
        reason = (
            f"GOVSHARE_CHROMIUM={configured!r} is not an executable"
            if configured
            else "Chromium is not installed (no `chromium` on PATH; set GOVSHARE_CHROMIUM); .ci/run installs it"
        )
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
async def browser(chromium):
    """One headless Chromium for the module's tests; each test opens its own context (no shared storage)."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


class Shots:
    """Full-page screenshots, numbered in the order the pages were visited."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        self.folder, self.taken = folder, 0

    async def __call__(self, page: Page, name: str) -> None:
        self.taken += 1
        await page.screenshot(path=self.folder / f"{self.taken:02d}-{name}.png", full_page=True)


def add_staff(folder: Path, username: str = USERNAME, *more: str) -> None:
    """`govshare staff add` as an operator runs it (the password from the environment, never an argument)."""
    run = subprocess.run(
        [govshare_command(), "staff", "add", username, "--name", DISPLAY_NAME, *more],
        cwd=folder,
        env=environment(folder) | {"GOVSHARE_STAFF_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert run.returncode == 0, run.stderr


async def data_error_report(client: httpx.AsyncClient, key: str) -> tuple[str, str]:
    """The market regulator reports a person's name as wrong: (the person's ID number, the report's id)."""
    headers = {"Authorization": f"Bearer {key}", "X-Purpose": "market.licence-review"}
    listed = await client.post(
        "/graphql", json={"query": "{ personList(first: 1) { items { idNumber } } }"}, headers=headers
    )
    person = listed.json()["data"]["personList"]["items"][0]["idNumber"]
    filed = await client.post(
        "/graphql",
        json={
            "query": 'mutation($key: String!) { reportDataError(resource: "police.person", key: $key, item: "name", '
            'proposed: "张三", reason: "与证件不一致") { id } }',
            "variables": {"key": person},
        },
        headers=headers,
    )
    assert "errors" not in filed.json(), filed.text
    return person, filed.json()["data"]["reportDataError"]["id"]


FEEDBACK_NOTE = "核验户籍，免交户口簿复印件"


async def report_feedback(client: httpx.AsyncClient, police_key: str, market_key: str) -> str:
    """The market regulator reports this month's effect of the grant its person lookups used (police, the provider,
    reads which grant that was in its usage records); the grant's id."""
    used = await client.post(
        "/graphql",
        json={"query": '{ usageRecords(resource: "police.person", first: 20) { department grantsUsed } }'},
        headers={"Authorization": f"Bearer {police_key}"},
    )
    grant = next(g for r in used.json()["data"]["usageRecords"] if r["department"] == "market" for g in r["grantsUsed"])
    recorded = await client.post(
        "/graphql",
        json={
            "query": "mutation($grant: ID!, $period: String!, $note: String!) { recordFeedback(grant: $grant, "
            "period: $period, mattersHandled: 3, documentsSpared: 2, note: $note) { id } }",
            "variables": {
                "grant": grant,
                "period": datetime.datetime.now(CHINA).strftime("%Y-%m"),
                "note": FEEDBACK_NOTE,
            },
        },
        headers={"Authorization": f"Bearer {market_key}"},
    )
    assert "errors" not in recorded.json(), recorded.text
    return grant


async def enterprises(client: httpx.AsyncClient, key: str) -> dict:
    response = await client.post(
        "/graphql", json={"query": ENTERPRISES}, headers={"Authorization": f"Bearer {key}", "X-Purpose": PURPOSE}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def explain(page: Page, shots: Shots, name: str) -> None:
    """The explain form filled in as a person would: hrss, its employment-subsidy purpose, market.enterprise."""
    await page.click("header nav a[href='/console/explain']")
    await expect(page).to_have_url(re.compile(r"/console/explain$"))
    await page.select_option("#department", HRSS)
    await page.select_option("#purpose", PURPOSE)
    await page.select_option("#resource", RESOURCE)
    await page.click("#explain")
    await expect(page).to_have_url(
        re.compile(
            rf"/console/explain\?department={HRSS}&purpose={re.escape(PURPOSE)}"
            rf"&resource={re.escape(RESOURCE)}"
        )
    )
    await expect(page.locator("#explain-summary")).to_contain_text(f"{HRSS} 以用途 {PURPOSE} 查询 {RESOURCE}")
    await shots(page, name)


async def charts_drawn(page: Page) -> None:
    """Every chart of the page loaded as an image (an SVG the server drew) with something in it."""
    charts = page.locator("img.chart")
    assert await charts.count() == 8  # the seven usage tables' and the consumers' feedback's
    for chart in await charts.all():
        await expect(chart).to_have_js_property("complete", True)
        assert await chart.evaluate("img => img.naturalWidth") > 0


async def test_console_in_a_real_browser(browser, own_folder):  # browser first: no demo world built to be skipped
    keys = demo_keys(own_folder)
    await asyncio.to_thread(add_staff, own_folder)  # blocking work off the session's event loop
    await asyncio.to_thread(add_staff, own_folder, CLERK, "--name", "国土编报员", "--department", "land")
    workbook = own_folder / "land.xlsx"  # the land department's entries as it exchanges them, one label changed
    await asyncio.to_thread(land_workbook, workbook)
    server = _Server(own_folder)
    try:
        await asyncio.to_thread(server.wait_until_healthy)
        # localhost, not 127.0.0.1: Chromium treats http://localhost as a secure context, so the Secure
        # (__Host-) cookies the console sets over plain HTTP here are kept.
        origin = f"http://localhost:{server.port}"
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as graphql:
            context = await browser.new_context(
                base_url=origin, locale="zh-CN", viewport={"width": 1280, "height": 800}
            )
            try:
                context.set_default_timeout(EXPECT_TIMEOUT)
                expect.set_options(timeout=EXPECT_TIMEOUT)
                page = await context.new_page()
                problems: list[str] = []
                statuses: list[tuple[str, int]] = []
                # A failed response is logged to the console as well; it is judged by its status below.
                page.on(
                    "console",
                    lambda m: (
                        problems.append(f"console {m.type}: {m.text}")
                        if m.type == "error" and not m.text.startswith("Failed to load resource")
                        else None
                    ),
                )
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
                page.on(
                    "response",
                    lambda r: statuses.append((r.url.removeprefix(origin), r.status)) if r.status >= 400 else None,
                )
                shots = Shots(ARTIFACTS)
                try:
                    await story(
                        page,
                        context,
                        graphql,
                        keys[HRSS],
                        shots,
                        origin,
                        keys["land"],
                        market_key=keys["market"],
                        police_key=keys["police"],
                        workbook=workbook,
                    )
                except Exception:
                    with contextlib.suppress(Exception):  # the page as it was when the story broke, for the artifacts
                        await shots(page, "failed")
                    raise
                assert problems == [], problems  # CSP violations, a broken request
                # The refused sign-in is a 401 page; Chromium asks for /favicon.ico, which the service does not have.
                assert set(statuses) <= {("/console/login", 401), ("/favicon.ico", 404)}, statuses
                assert ("/console/login", 401) in statuses
            finally:
                await context.close()
    finally:
        await asyncio.to_thread(server.stop)


async def story(
    page: Page,
    context,
    graphql: httpx.AsyncClient,
    key: str,
    shots: Shots,
    origin: str,
    land_key: str,
    *,
    market_key: str,
    police_key: str,
    workbook: Path,
) -> None:
    # --- signing in: the console sends a signed-out visitor to the login page ---------------------------
    await page.goto("/console/rules")
    await expect(page).to_have_url(f"{origin}/console/login")
    await expect(page).to_have_title("登录 · govshare")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await shots(page, "login")

    await page.fill("#username", USERNAME)
    await page.fill("#password", "not the password at all")
    await page.click("#sign-in")
    await expect(page.locator("#problems")).to_contain_text("STAFF_SIGN_IN_FAILED")
    await expect(page.locator("#problems")).to_contain_text("用户名或密码错误")
    await expect(page.locator("#sign-out")).to_have_count(0)
    assert SESSION_COOKIE not in {c["name"] for c in await context.cookies()}
    await shots(page, "login-wrong-password")

    await page.fill("#username", USERNAME)
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await expect(page).to_have_url(f"{origin}/console/rules")
    await expect(page.locator("header .who")).to_contain_text(f"当前用户：{DISPLAY_NAME}")
    await expect(page.locator("h2")).to_have_text("允许规则")
    await expect(page.locator("header nav a.current")).to_have_text("规则")
    status = await page.locator("#version").inner_text()
    # The rules document's number (history, diff, rollback), told apart from the policy version /healthz names.
    start = int(re.search(r"规则文件第 (\d+) 版", status).group(1))
    policy_version = int(re.search(r"现行策略版本：第 (\d+) 版", status).group(1))
    await shots(page, "rules")

    # The session cookie as the browser keeps it, and out of the page's scripts' reach.
    (session,) = [c for c in await context.cookies() if c["name"] == SESSION_COOKIE]
    assert session["httpOnly"] is True and session["secure"] is True and session["sameSite"] == "Strict"
    assert session["path"] == "/" and session["domain"] == "localhost"  # host-only, as __Host- requires
    assert SESSION_COOKIE not in await page.evaluate("document.cookie")
    assert session["value"] not in await page.evaluate("document.cookie")

    # --- looking around ---------------------------------------------------------------------------------
    await page.click("header nav a[href='/console/grants']")
    await expect(page).to_have_url(f"{origin}/console/grants")
    await expect(page.locator("h2")).to_have_text("当前生效的授权")
    await expect(page.locator("#grants tr[id^='grant-']").first).to_be_visible()
    await shots(page, "grants")

    await page.click("header nav a[href='/console/deny']")
    await expect(page).to_have_url(f"{origin}/console/deny")
    await expect(page.locator("h2")).to_have_text("禁止规则")
    await expect(page.locator("#deny-rules")).not_to_contain_text(BASIS)
    await shots(page, "deny")

    # --- before the change: explain allows hrss the enterprise names, and the answer carries them ---------
    await explain(page, shots, "explain-before")
    name_row = page.locator("tr#item-name")
    await expect(name_row.locator("td.allowed")).to_have_text("允许")
    await expect(name_row).not_to_contain_text("DEPARTMENT_RESTRICTED")
    free = await enterprises(graphql, key)
    assert "errors" not in free, free
    assert len(free["data"]["enterpriseList"]["items"]) == 3
    assert all(i["creditCode"] and i["name"] for i in free["data"]["enterpriseList"]["items"])

    # --- the deny rule ------------------------------------------------------------------------------------
    await page.click("header nav a[href='/console/deny']")
    await page.click("#add-deny")
    await expect(page).to_have_url(f"{origin}/console/deny/new")
    await expect(page.locator("#resource")).to_have_value("*")  # every resource, unless narrowed
    await page.select_option("#department", HRSS)
    await page.select_option("#resource", RESOURCE)
    await page.fill("#basis", BASIS)
    await page.fill("#reason", REASON)
    await shots(page, "deny-new")
    await page.click("#save")
    await expect(page).to_have_url(f"{origin}/console/deny")
    added = page.locator("#deny-rules tr[id^='deny-']", has_text=BASIS)
    await expect(added).to_have_count(1)
    await expect(added).to_contain_text(HRSS)
    await expect(added).to_contain_text(RESOURCE)
    rule_id = (await added.get_attribute("id")).removeprefix("deny-")
    assert re.fullmatch(r"D-[0-9a-f]{6}", rule_id)
    await expect(page.locator("#version")).to_contain_text(f"规则文件第 {start + 1} 版")
    await expect(page.locator("#version")).to_contain_text(f"现行策略版本：第 {policy_version + 1} 版")
    await shots(page, "deny-added")

    await explain(page, shots, "explain-restricted")
    await expect(name_row.locator("td.denied")).to_have_text("拒绝")
    await expect(name_row).to_contain_text("DEPARTMENT_RESTRICTED")
    await expect(name_row).to_contain_text(rule_id)
    await expect(name_row).to_contain_text(BASIS)
    restricted = await enterprises(graphql, key)
    assert restricted["data"] == {"enterpriseList": None}
    assert errors_by_item(restricted) == {"creditCode": "DEPARTMENT_RESTRICTED", "name": "DEPARTMENT_RESTRICTED"}
    assert free["data"]["enterpriseList"]["items"][0]["name"] not in json.dumps(restricted, ensure_ascii=False)

    # --- history and diff ---------------------------------------------------------------------------------
    await page.click("header nav a[href='/console/history']")
    await expect(page).to_have_url(f"{origin}/console/history")
    new = page.locator(f"tr#version-{start + 1}")
    await expect(new).to_contain_text("现行")
    await expect(new).to_contain_text(USERNAME)
    await expect(new).to_contain_text(REASON)
    await shots(page, "history")

    await expect(page.locator("#from")).to_have_value(str(start))  # the previous version, by default
    await expect(page.locator("#to")).to_have_value(str(start + 1))
    await page.click("#compare")
    await expect(page).to_have_url(f"{origin}/console/history/diff?from={start}&to={start + 1}")
    changes = page.locator("#changes")
    await expect(changes.locator("tr.added").first).to_contain_text(rule_id)
    await expect(changes.locator("tr.added").first).to_contain_text("新增")
    await expect(changes).to_contain_text(BASIS)
    await expect(page.locator("#text-diff")).to_contain_text(BASIS)
    await shots(page, "diff")

    # --- roll back to the version before, with a reason ----------------------------------------------------
    await page.click("main a[href='/console/history']")  # 返回
    await expect(page).to_have_url(f"{origin}/console/history")
    previous = page.locator(f"tr#version-{start}")
    await previous.locator("input[name=reason]").fill(ROLLBACK_REASON)
    await shots(page, "history-rollback")
    await previous.locator("button[type=submit]").click()
    await expect(page).to_have_url(f"{origin}/console/history")
    rollback = page.locator(f"tr#version-{start + 2}")
    await expect(rollback).to_contain_text("现行")
    await expect(rollback).to_contain_text(f"回滚至第 {start} 版")
    await expect(rollback).to_contain_text(USERNAME)
    await expect(rollback).to_contain_text(ROLLBACK_REASON)
    await shots(page, "history-rolled-back")

    await explain(page, shots, "explain-restored")
    await expect(name_row.locator("td.allowed")).to_have_text("允许")
    await expect(name_row).not_to_contain_text("DEPARTMENT_RESTRICTED")
    assert await enterprises(graphql, key) == free

    await page.click("header nav a[href='/console/deny']")
    await expect(page.locator("#deny-rules")).not_to_contain_text(BASIS)
    await shots(page, "deny-after-rollback")

    # --- freshness: the demo's one overdue resource, and the form restricting its provider (Art 20) -------------
    await page.click("header nav a[href='/console/freshness']")
    await expect(page).to_have_url(f"{origin}/console/freshness")
    await expect(page.locator("tr#freshness-civil\\.marriage")).to_contain_text("逾期未更新")
    await expect(page.locator("tr.overdue")).to_have_count(1)
    await expect(page.locator("form#restrict-civil")).to_be_visible()
    await shots(page, "freshness")
    # --- the catalog: a department's submission reviewed and published, then the catalog's versions and diff ----
    land_file = (
        (Path(__file__).resolve().parent.parent / "catalog" / "demo" / "land.toml")
        .read_text(encoding="utf-8")
        .replace('"坐落"', '"不动产坐落"')
    )
    submitted = await graphql.post(
        "/graphql",
        json={
            "query": 'mutation($f: String!) { submitCatalogEntries(catalogFile: $f, reason: "坐落更名") { id } }',
            "variables": {"f": land_file},
        },
        headers={"Authorization": f"Bearer {land_key}"},
    )
    submission_id = submitted.json()["data"]["submitCatalogEntries"]["id"]
    await page.click("header nav a[href='/console/catalog']")
    await expect(page).to_have_url(f"{origin}/console/catalog")
    section = page.locator(f"#submission-{submission_id}")
    await expect(section).to_contain_text("审核中")
    await expect(section.locator("table.changes")).to_contain_text("items[address].label")
    await section.locator("input[name=reason]").fill("符合编目要求")
    await shots(page, "catalog-review")
    await section.locator("button[type=submit]").first.click()
    await expect(page).to_have_url(f"{origin}/console/catalog")
    await expect(page.locator(f"#submission-{submission_id} .status")).to_have_text("已发布")
    await page.click("#catalog-versions-link")
    await expect(page.locator("#catalog-versions tr").nth(1)).to_contain_text("审核发布")
    await page.click("#catalog-compare")
    await expect(page.locator("#catalog-changes")).to_contain_text("不动产坐落")
    await shots(page, "catalog-diff")
    # --- a data-error report filed over GraphQL appears in the console, without the record's key -----------
    person, report_id = await data_error_report(graphql, market_key)
    market_grant = await report_feedback(graphql, police_key, market_key)
    await page.click("header nav a[href='/console/corrections']")
    await expect(page).to_have_url(f"{origin}/console/corrections")
    await expect(page.locator("h2")).to_have_text("数据纠错报告")
    await expect(page.locator(f"#reports tr#report-{report_id}")).to_contain_text("待答复")
    await expect(page.locator("#reports")).not_to_contain_text(person)
    await shots(page, "corrections")
    # --- the usage reports (Art 24): every department's, charts drawn by the server as images -----------------
    await page.click("header nav a[href='/console/usage']")
    await expect(page).to_have_url(f"{origin}/console/usage")
    await expect(page.locator("h2")).to_have_text("资源使用情况报告（第二十四条）")
    await expect(page.locator("#table-resources")).to_contain_text("market.enterprise")  # hrss's queries above
    await expect(page.locator("#table-departments")).to_contain_text("hrss")
    # market's feedback on the grant it read police.person under, beside that grant's accesses of the month
    await expect(page.locator("#table-feedback")).to_contain_text(market_grant)
    await expect(page.locator("#table-feedback")).to_contain_text(FEEDBACK_NOTE)
    await charts_drawn(page)
    await shots(page, "usage")
    await page.select_option("#granularity", "week")
    await page.select_option("#resource", "market.enterprise")
    await page.click("#usage-filters button[type=submit]")
    await expect(page).to_have_url(
        re.compile(r"/console/usage\?provider=&resource=market\.enterprise&from=.*&granularity=week$")
    )
    await expect(page.locator("#table-resources tr")).to_have_count(2)  # the header and market.enterprise
    await charts_drawn(page)
    await shots(page, "usage-weekly")

    # --- the coordinator's evaluation: a period holding that report's deadline, the charts, its record ---------
    today = datetime.datetime.now(CHINA).date()
    await page.click("header nav a[href='/console/evaluation']")
    await expect(page).to_have_url(f"{origin}/console/evaluation")
    await expect(page.locator("h2")).to_have_text("各部门共享工作评价")
    await page.fill("#from", today.replace(day=1).isoformat())
    await page.fill("#to", (today + datetime.timedelta(days=20)).isoformat())
    await page.click("#evaluation-show")
    await expect(page.locator("#evaluation-period")).to_contain_text(today.replace(day=1).isoformat())
    for chart in ("scores", "applications"):  # drawn on the server, shown as images: no script runs
        image = page.locator(f"#chart-{chart}")
        await expect(image).to_be_visible()
        assert await image.evaluate("i => i.complete && i.naturalWidth > 0"), chart
    await expect(page.locator("#ranking tr#card-police")).to_be_visible()
    await shots(page, "evaluation")
    await page.click("#figure-police-corrections_due")
    await expect(page.locator("#records")).to_contain_text(report_id)
    await shots(page, "evaluation-records")

    # --- signing out ends the session: the console is closed again ------------------------------------------
    await page.click("#sign-out")
    await expect(page).to_have_url(f"{origin}/console/login")
    await expect(page.locator("#sign-out")).to_have_count(0)
    assert SESSION_COOKIE not in {c["name"] for c in await context.cookies()}
    await shots(page, "signed-out")
    await page.goto("/console/rules")
    await expect(page).to_have_url(f"{origin}/console/login")
    await expect(page.locator("#sign-in")).to_be_visible()
    await shots(page, "rules-after-sign-out")

    # --- a department's catalog staff: its catalog page only; uploads its workbook, under review --------------
    await page.fill("#username", CLERK)
    await page.fill("#password", PASSWORD)
    await page.click("#sign-in")
    await expect(page).to_have_url(f"{origin}/console/catalog")
    await expect(page.locator("h2")).to_have_text("临沂市自然资源和规划局 · 目录编报")
    await expect(page.locator("header nav a")).to_have_count(2)  # its catalog and its usage
    await expect(page.locator("#catalog-retire")).to_contain_text("land.real-estate")
    await page.set_input_files("#catalog-file", str(workbook))
    await page.fill("#upload-reason", "坐落更名")
    await shots(page, "catalog-staff")
    await page.click("#catalog-upload-button")
    await expect(page).to_have_url(f"{origin}/console/catalog")
    newest = page.locator("section.submission").first  # above the land submission the office published
    await expect(newest.locator(".status")).to_have_text("审核中")
    await expect(newest.locator("table.changes")).to_contain_text("不动产坐落位置")
    await expect(page.locator("form[action$='/approve']")).to_have_count(0)
    await shots(page, "catalog-staff-submitted")
    # --- ... and the usage of its own department's resources only ----------------------------------------
    await page.click("header nav a[href='/console/usage']")
    await expect(page.locator("#usage-scope")).to_contain_text("land")
    await expect(page.locator("#table-resources")).to_contain_text("land.real-estate")
    await expect(page.locator("main")).not_to_contain_text("market.enterprise")
    await charts_drawn(page)
    await shots(page, "usage-department")


# --- GraphiQL: the key and purpose typed into its own Headers tab -------------------------------------------------

GRAPHIQL_ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "graphiql"
LAND, LAND_PURPOSE = "land", "land.property-registration"
DENIED_QUERY = "{ enterpriseList(first: 2) { items { name legalRepIdNumber } } }"  # legalRepIdNumber: NO_GRANT


async def _type_into(page: Page, editor: str, text: str) -> None:
    """Types ``text`` into one of GraphiQL's CodeMirror editors, as a person would, replacing what it held."""
    code = page.locator(f"{editor} .graphiql-editor:not(.hidden) .CodeMirror")
    await code.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.type(text)
    assert await code.evaluate("e => e.CodeMirror.getValue()") == text  # GraphiQL closed no bracket twice


async def _run(page: Page) -> dict:
    response = page.locator("section.result-window .CodeMirror")
    async with page.expect_response(lambda r: r.url.endswith("/graphql") and r.request.method == "POST") as sent:
        await page.click(".graphiql-execute-button")
    await (await sent.value).finished()
    await expect(response).to_contain_text('"data"')
    return json.loads(await response.evaluate("e => e.CodeMirror.getValue()"))


async def _stored(page: Page) -> str:
    """Everything the page's origin keeps in the browser: both storages and the cookies."""
    kept = await page.evaluate(
        "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])"
    )
    return kept + json.dumps(await page.context.cookies())


async def test_graphiql_honours_its_own_headers_tab(browser, own_folder):
    keys = demo_keys(own_folder)
    server = _Server(own_folder)
    try:
        await asyncio.to_thread(server.wait_until_healthy)
        context = await browser.new_context(
            base_url=server.url, locale="zh-CN", viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(EXPECT_TIMEOUT)
        expect.set_options(timeout=EXPECT_TIMEOUT)
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        sent: list[dict] = []  # the headers of every request the page made to /graphql
        page.on(
            "request", lambda r: sent.append(r.headers) if r.url.endswith("/graphql") and r.method == "POST" else None
        )
        shots = Shots(GRAPHIQL_ARTIFACTS)
        try:
            await page.goto("/graphql")
            await expect(page.locator(".graphiql-container")).to_be_visible()
            # The page says where the headers may be typed, and which place wins.
            await expect(page.locator("#gs-precedence")).to_contain_text("Headers 标签页中以 JSON 填写 Authorization")
            await expect(page.locator("#gs-precedence")).to_contain_text("以 Headers 标签页为准")
            assert sent == []  # no key anywhere yet: the schema was not even asked for

            # --- the top bar empty; the key and purpose typed into GraphiQL's Headers tab, as JSON ---------------
            await page.click(".graphiql-editor-tools button[data-name=headers]")
            headers = json.dumps({"Authorization": f"Bearer {keys[LAND]}", "X-Purpose": LAND_PURPOSE})
            await _type_into(page, "section.graphiql-editor-tool", headers)
            await _type_into(page, "section.graphiql-query-editor", DENIED_QUERY)
            await expect(page.locator("#gs-key")).to_have_value("")
            answer = await _run(page)
            items = answer["data"]["enterpriseList"]["items"]
            assert len(items) == 2 and all(i["name"] and i["legalRepIdNumber"] is None for i in items)
            assert [(e["extensions"]["code"], e["extensions"]["item"]) for e in answer["errors"]] == [
                ("NO_GRANT", "legalRepIdNumber")
            ]
            query_sent = next(h for h in sent if h.get("x-purpose") == LAND_PURPOSE)
            assert query_sent["authorization"] == f"Bearer {keys[LAND]}"
            await expect(page.locator("#gs-used")).to_have_text(
                "上次请求：应用密钥 ← Headers 标签页；用途 ← Headers 标签页；经办人 ← 未填写"
            )
            # The schema is asked again with the tab's key: the documentation is there.
            await page.click("button[aria-label='Show Documentation Explorer']")
            await expect(page.locator(".graphiql-doc-explorer")).to_contain_text("query: Query")
            await shots(page, "headers-tab")
            assert keys[LAND] not in await _stored(page)

            # --- both places: the tab's purpose wins over the bar's, the bar's key is used where the tab has none --
            await page.fill("#gs-key", keys["market"])
            await page.fill("#gs-purpose", "market.food-safety")
            await page.fill("#gs-operator", "clerk-9")
            await page.click(".graphiql-editor-tools button[data-name=headers]")
            await _type_into(page, "section.graphiql-editor-tool", json.dumps({"X-Purpose": "market.licence-review"}))
            await _type_into(page, "section.graphiql-query-editor", "{ caller { department purposes { code } } }")
            sent.clear()
            answer = await _run(page)
            assert answer["data"]["caller"]["department"] == "market" and "errors" not in answer
            query_sent = next(h for h in sent if "x-operator" in h)
            assert (query_sent["authorization"], query_sent["x-purpose"], query_sent["x-operator"]) == (
                f"Bearer {keys['market']}",
                "market.licence-review",
                "clerk-9",
            )
            await expect(page.locator("#gs-used")).to_have_text(
                "上次请求：应用密钥 ← 上方栏；用途 ← Headers 标签页；经办人 ← 上方栏"
            )
            await shots(page, "both")
            stored = await _stored(page)
            assert keys[LAND] not in stored and keys["market"] not in stored

            # --- headers typed as "Name: value" lines, not JSON: GraphiQL sends nothing and says so in English only;
            # the page says it in the user's language, and how to write them; the line goes once they are JSON ------
            invalid = page.locator("#gs-headers-invalid")
            await expect(invalid).to_be_hidden()
            await page.click(".graphiql-editor-tools button[data-name=headers]")
            await _type_into(page, "section.graphiql-editor-tool", f"Authorization: Bearer {keys[LAND]}")
            await expect(invalid).to_be_visible()
            await expect(invalid).to_contain_text("Headers 标签页的内容不是 JSON 对象")
            await expect(invalid).to_contain_text('{"Authorization": "Bearer gs_…", "X-Purpose": "…"}')
            await shots(page, "headers-not-json")
            await page.select_option("#gs-lang", "en")
            await expect(invalid).to_contain_text("The Headers tab does not hold a JSON object")
            await page.select_option("#gs-lang", "zh-CN")
            await _type_into(page, "section.graphiql-editor-tool", json.dumps({"X-Purpose": "market.licence-review"}))
            await expect(invalid).to_be_hidden()
            await _type_into(page, "section.graphiql-editor-tool", "")
            await expect(invalid).to_be_hidden()  # an empty tab is no fault

            # --- English on request ----------------------------------------------------------------------------
            await page.select_option("#gs-lang", "en")
            await expect(page.locator("#gs-precedence")).to_contain_text("the Headers tab wins")
            assert problems == [], problems
        except Exception:
            with contextlib.suppress(Exception):
                await shots(page, "failed")
            raise
        finally:
            await context.close()
    finally:
        await asyncio.to_thread(server.stop)
