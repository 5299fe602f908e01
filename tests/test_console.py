"""The policy console and the admin API as security staff use them: sign-in, lock-out, CSRF, rules and deny
rules with reasons, validation, explain, history, diff, rollback, and answers that change accordingly."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from admin import accounts
from govshare.errors import AuthError, GovshareError
from policies import documents
from tests.conftest import World, _api, errors_by_item

PASSWORD = "correct horse battery staple"
ORIGIN = "https://govshare.test"
ENTERPRISES = "{ enterpriseList(first: 3) { items { creditCode name } } }"
HRSS, HRSS_PURPOSE = "hrss", "hrss.employment-subsidy"


class Console:
    """A browser's view of the console: cookies, forms with their CSRF token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def sign_in(self, username: str = "wang.fang", password: str = PASSWORD) -> httpx.Response:
        page = await self.client.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        return await self.client.post(
            "/console/login",
            data={"username": username, "password": password, "csrf_token": token},
            headers={"Origin": ORIGIN},
        )

    async def form_token(self, path: str) -> tuple[str, str]:
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        based_on = re.search(r'name="based_on" value="(\d+)"', page.text)
        return csrf, based_on.group(1) if based_on else ""

    async def submit(self, form_path: str, action: str, fields: dict) -> httpx.Response:
        csrf, based_on = await self.form_token(form_path)
        return await self.client.post(
            action, data={"csrf_token": csrf, "based_on": based_on, **fields}, headers={"Origin": ORIGIN}
        )


@pytest.fixture
async def staffed(own_world: World):
    """The app on a world of the test's own, a staff account, and a signed-out browser."""
    async for api in _api(own_world):
        runtime = api.app.state.runtime
        async with runtime.engine.begin() as conn:
            await accounts.create_account(conn, runtime.settings, "wang.fang", PASSWORD, "王芳")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=ORIGIN) as client:
            yield api, Console(client)


async def versions(api) -> int:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await documents.current_document(conn))[0]


# --- accounts -------------------------------------------------------------------------------------------


async def test_sign_in_sets_a_host_only_secure_http_only_strict_cookie(staffed):
    api, console = staffed
    assert (await console.client.get("/console/rules")).headers["location"] == "/console/login"
    page = await console.client.get("/console/login")
    assert "策略管理台" in page.text and "登录" in page.text
    response = await console.sign_in()
    assert response.status_code == 303 and response.headers["location"] == "/console/rules"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-govshare-console=")
    for flag in ("HttpOnly", "Path=/", "SameSite=strict", "Secure"):
        assert flag in cookie
    assert "Domain" not in cookie
    rules = await console.client.get("/console/rules")
    assert rules.status_code == 200 and "当前用户：王芳" in rules.text
    assert (
        "script-src 'none'" in rules.headers["content-security-policy"] and rules.headers["x-frame-options"] == "DENY"
    )
    english = await console.client.get("/console/rules?lang=en")
    assert "Signed in as 王芳" in english.text and "Allow rules" in english.text


async def test_wrong_password_is_refused_and_five_in_a_row_lock_the_account(staffed):
    api, console = staffed
    for _ in range(4):
        wrong = await console.sign_in(password="not the password at all")
        assert (
            wrong.status_code == 401
            and "用户名或密码错误" in wrong.text
            and "set-cookie" not in {k for k, v in wrong.headers.items() if v.startswith("__Host-govshare-console")}
        )
    unknown = await console.sign_in(username="nobody")
    assert unknown.status_code == 401 and "用户名或密码错误" in unknown.text  # the same answer: names are not told
    fifth = await console.sign_in(password="still not it")
    assert fifth.status_code == 401
    locked = await console.sign_in()  # even the right password, while locked
    assert locked.status_code == 401 and "STAFF_LOCKED" in locked.text and "账户已锁定" in locked.text
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        await accounts.unlock(conn, "wang.fang")
    assert (await console.sign_in()).status_code == 303


async def test_lock_out_ends_after_its_time(staffed):
    from admin.auth import sign_in

    api, _ = staffed
    runtime = api.app.state.runtime
    settings = runtime.settings
    start = datetime.now(UTC)
    for _ in range(settings.staff_max_failures):
        with pytest.raises(AuthError) as failed:
            await sign_in(runtime.engine, settings, "wang.fang", "wrong password!", now=start)
        assert failed.value.code == "STAFF_SIGN_IN_FAILED"
    with pytest.raises(AuthError) as locked:
        await sign_in(runtime.engine, settings, "wang.fang", PASSWORD, now=start + timedelta(minutes=1))
    assert locked.value.code == "STAFF_LOCKED"
    later = start + timedelta(minutes=settings.staff_lockout_minutes, seconds=1)
    token, staff = await sign_in(runtime.engine, settings, "wang.fang", PASSWORD, now=later)
    assert staff.username == "wang.fang" and token


async def test_passwords_are_stored_as_argon2id_hashes(staffed):
    api, _ = staffed
    from admin.tables import staff_accounts

    async with api.app.state.runtime.engine.connect() as conn:
        row = (await conn.execute(staff_accounts.select())).first()
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        with pytest.raises(GovshareError) as weak:
            await accounts.create_account(conn, runtime.settings, "li.na", "short")
        assert weak.value.code == "STAFF_PASSWORD_WEAK"
        with pytest.raises(GovshareError) as bad_name:
            await accounts.create_account(conn, runtime.settings, "li na<script>", PASSWORD)
        assert bad_name.value.code == "STAFF_BAD_USERNAME"


async def test_application_keys_cannot_administer(staffed):
    api, console = staffed
    key = api.world.keys[HRSS]
    page = await console.client.get("/console/rules", headers={"Authorization": f"Bearer {key}"})
    assert page.status_code == 303 and page.headers["location"] == "/console/login"
    response = await console.client.post(
        "/admin/graphql", json={"query": "{ rules { id } }"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert (
        response.status_code == 401
        and response.json()["errors"][0]["extensions"]["code"] == "APPLICATION_KEY_NOT_STAFF"
    )
    as_password = await console.sign_in(username=HRSS, password=key)
    assert as_password.status_code == 401
    nobody = await console.client.post("/admin/graphql", json={"query": "{ rules { id } }"})
    assert nobody.status_code == 401 and nobody.json()["errors"][0]["extensions"]["code"] == "STAFF_UNAUTHENTICATED"


async def test_sign_out_ends_the_session_for_good(staffed):
    api, console = staffed
    await console.sign_in()
    cookie = console.client.cookies.get("__Host-govshare-console")
    csrf, _ = await console.form_token("/console/deny/new")
    out = await console.client.post("/console/logout", data={"csrf_token": csrf}, headers={"Origin": ORIGIN})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert '__Host-govshare-console=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    # The old cookie, kept by someone, opens nothing.
    console.client.cookies.set("__Host-govshare-console", cookie, domain="govshare.test", path="/")
    replay = await console.client.get("/console/rules")
    assert replay.status_code == 303 and replay.headers["location"] == "/console/login"


async def test_disabled_account_loses_its_sessions(staffed):
    api, console = staffed
    await console.sign_in()
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        await accounts.disable(conn, "wang.fang")
    assert (await console.client.get("/console/rules")).status_code == 303
    assert (await console.sign_in()).status_code == 401


# --- CSRF -----------------------------------------------------------------------------------------------


async def test_a_change_without_the_csrf_token_or_from_another_site_is_refused(staffed):
    api, console = staffed
    await console.sign_in()
    before = await versions(api)
    fields = {"department": HRSS, "resource": "*", "basis": "跨站伪造", "reason": "跨站伪造"}
    missing = await console.client.post("/console/deny", data=fields, headers={"Origin": ORIGIN})
    assert missing.status_code == 403 and "CSRF_FAILED" in missing.text
    csrf, based_on = await console.form_token("/console/deny/new")
    other_site = await console.client.post(
        "/console/deny",
        data={**fields, "csrf_token": csrf, "based_on": based_on},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    api_without_header = await console.client.post("/admin/graphql", json={"query": "{ rules { id } }"})
    assert api_without_header.status_code == 403  # the cookie alone does not authorize the API
    assert await versions(api) == before


# --- the whole story: deny rule, explain, answer, history, diff, rollback -------------------------------


async def test_deny_rule_changes_explain_and_answer_and_rollback_restores_them(staffed):
    api, console = staffed
    await console.sign_in()
    free = await api.query(ENTERPRISES, HRSS, HRSS_PURPOSE)
    assert "errors" not in free
    start = await versions(api)

    explain_url = f"/console/explain?department={HRSS}&purpose={HRSS_PURPOSE}&resource=market.enterprise"
    before = await console.client.get(explain_url)
    assert 'id="item-name"' in before.text and "DEPARTMENT_RESTRICTED" not in before.text

    saved = await console.submit(
        "/console/deny/new",
        "/console/deny",
        {
            "department": HRSS,
            "resource": "market.enterprise",
            "basis": "未按时更新参保数据（第二十条）",
            "reason": "社保数据连续两月未更新，市大数据局通知限制",
        },
    )
    assert saved.status_code == 303, saved.text
    listing = await console.client.get("/console/deny")
    (rule_id,) = re.findall(r'id="deny-(D-[0-9a-f]{6})"><td><code>[^<]+</code></td><td>hrss</td>', listing.text)

    after = await console.client.get(explain_url)
    row = re.search(r'<tr id="item-name">.*?</tr>', after.text, re.S).group(0)
    assert "DEPARTMENT_RESTRICTED" in row and rule_id in row and "拒绝" in row
    restricted = await api.query(ENTERPRISES, HRSS, HRSS_PURPOSE)
    assert restricted["data"] == {"enterpriseList": None}
    assert errors_by_item(restricted) == {"creditCode": "DEPARTMENT_RESTRICTED", "name": "DEPARTMENT_RESTRICTED"}

    history = await console.client.get("/console/history")
    new = start + 1
    entry = re.search(rf'<tr id="version-{new}">.*?</tr>', history.text, re.S).group(0)
    assert "wang.fang" in entry and "社保数据连续两月未更新" in entry
    diff = await console.client.get(f"/console/history/diff?from={start}&to={new}")
    assert rule_id in diff.text and "新增" in diff.text and "未按时更新参保数据" in diff.text

    csrf, _ = await console.form_token("/console/history")
    rolled = await console.client.post(
        f"/console/history/{start}/rollback",
        data={"csrf_token": csrf, "based_on": str(new), "reason": "已补报，恢复"},
        headers={"Origin": ORIGIN},
    )
    assert rolled.status_code == 303, rolled.text
    assert await versions(api) == new + 1
    assert await api.query(ENTERPRISES, HRSS, HRSS_PURPOSE) == free
    restored = await console.client.get(explain_url)
    assert "DEPARTMENT_RESTRICTED" not in restored.text
    history = await console.client.get("/console/history")
    assert "回滚至第 %d 版" % start in history.text and "已补报，恢复" in history.text


async def test_every_change_needs_a_reason(staffed):
    api, console = staffed
    await console.sign_in()
    before = await versions(api)
    response = await console.submit(
        "/console/deny/new", "/console/deny", {"department": HRSS, "resource": "*", "basis": "迟报", "reason": "  "}
    )
    assert response.status_code == 400 and "须填写理由" in response.text
    assert await versions(api) == before


async def test_invalid_rules_are_refused_naming_what_and_why_and_nothing_changes(staffed):
    api, console = staffed
    await console.sign_in()
    before = await versions(api)
    free = await api.query(ENTERPRISES, HRSS, HRSS_PURPOSE)
    response = await console.submit(
        "/console/rules/new",
        "/console/rules",
        {
            "department": "civil",
            "resource": "hrss.social-insurance",
            "items": "idNumber, shoeSize",
            "purposes": "civil.no-such-matter",
            "valid_from": "2026-01-01T00:00",
            "valid_until": "2027-01-01T00:00",
            "reason": "测试",
        },
    )
    assert response.status_code == 400
    assert "ITEM_NOT_FOUND" in response.text and "shoeSize" in response.text
    assert "PURPOSE_NOT_FOUND" in response.text and "civil.no-such-matter" in response.text
    assert "未保存，现行规则不变" in response.text
    unknown_department = await console.submit(
        "/console/deny/new",
        "/console/deny",
        {"department": "forestry", "resource": "*", "basis": "x", "reason": "测试"},
    )
    assert unknown_department.status_code == 400
    backwards = await console.submit(
        "/console/rules/new",
        "/console/rules",
        {
            "department": "civil",
            "resource": "hrss.social-insurance",
            "items": "idNumber",
            "purposes": "civil.marriage-registration",
            "valid_from": "2027-01-01T00:00",
            "valid_until": "2026-01-01T00:00",
            "reason": "测试",
        },
    )
    assert backwards.status_code == 400 and "GRANT_BAD_PERIOD" in backwards.text
    assert await versions(api) == before
    assert await api.query(ENTERPRISES, HRSS, HRSS_PURPOSE) == free


async def test_a_change_made_on_a_stale_version_is_refused(staffed):
    api, console = staffed
    await console.sign_in()
    csrf, based_on = await console.form_token("/console/deny/new")
    first = await console.submit(
        "/console/deny/new", "/console/deny", {"department": HRSS, "resource": "*", "basis": "甲", "reason": "甲"}
    )
    assert first.status_code == 303
    stale = await console.client.post(
        "/console/deny",
        data={
            "csrf_token": csrf,
            "based_on": based_on,
            "department": "land",
            "resource": "*",
            "basis": "乙",
            "reason": "乙",
        },
        headers={"Origin": ORIGIN},
    )
    assert stale.status_code == 409 and "已被他人修改" in stale.text


async def test_allow_rule_added_changed_and_removed(staffed):
    """A conditional item (hrss.social-insurance) opened to civil by a staff rule, narrowed, then removed."""
    api, console = staffed
    await console.sign_in()
    query = "{ socialInsuranceList(first: 2) { items { idNumber } } }"
    purpose = "civil.marriage-registration"
    catalog = api.app.state.runtime.catalog
    if "hrss.social-insurance" not in catalog.resources:
        pytest.skip("the demo catalog changed")
    denied = await api.query(query, "civil", purpose)
    assert denied["data"]["socialInsuranceList"] is None
    now = datetime.now(UTC).astimezone()
    saved = await console.submit(
        "/console/rules/new",
        "/console/rules",
        {
            "department": "civil",
            "resource": "hrss.social-insurance",
            "items": "idNumber",
            "purposes": purpose,
            "valid_from": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "valid_until": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "婚姻登记核验参保状态（试点）",
        },
    )
    assert saved.status_code == 303, saved.text
    allowed = await api.query(query, "civil", purpose)
    assert "errors" not in allowed and len(allowed["data"]["socialInsuranceList"]["items"]) == 2
    listing = await console.client.get(f"/console/rules?department=civil&purpose={purpose}")
    (rule_id,) = re.findall(r'id="rule-(P-[0-9a-f]{6})"', listing.text)
    assert (await console.client.get("/console/rules?department=land")).text.count('id="rule-') == 0
    removed = await console.submit(
        f"/console/rules/{rule_id}/remove", f"/console/rules/{rule_id}/remove", {"reason": "试点结束"}
    )
    assert removed.status_code == 303
    again = await api.query(query, "civil", purpose)
    assert again["data"]["socialInsuranceList"] is None


# --- explain is the service's own decision ---------------------------------------------------------------

CASES = [
    ("hrss", "hrss.employment-subsidy", "market.enterprise"),
    ("civil", "civil.marriage-registration", "market.enterprise"),
    ("civil", "civil.marriage-registration", "police.person"),
    ("market", "market.licence-review", "police.person"),
    ("land", "land.property-registration", "civil.marriage"),
    ("police", "police.case-investigation", "hrss.social-insurance"),
    ("hrss", "hrss.insurance-enrolment", "police.household"),
]


@pytest.mark.parametrize(("department", "purpose", "resource"), CASES)
async def test_explain_agrees_with_the_graphql_answer_item_for_item(api, department, purpose, resource):
    from admin import operations

    runtime = api.app.state.runtime
    target = runtime.catalog.resources[resource]
    explained = await operations.explain_access(runtime, department, purpose, resource, None, "zh-CN")
    assert explained.refused is None
    names = [i.name for i in target.items]
    result = await api.query(
        f"{{ {target.api_name}List(first: 1) {{ items {{ {' '.join(names)} }} }} }}", department, purpose
    )
    errors = {e["extensions"].get("item"): e for e in result.get("errors", [])}
    by_item = {i.item: i for i in explained.items}
    assert set(by_item) == set(names)
    for name in names:
        decision = by_item[name]
        if decision.allowed:
            assert name not in errors, (name, errors[name])
        else:
            error = errors[name]
            assert error["extensions"]["code"] == decision.reason and error["message"] == decision.message
    assert any(d.allowed for d in by_item.values()) or result["data"][f"{target.api_name}List"] is None


# --- freshness (Art 16, 20) ----------------------------------------------------------------------------------

HOUSEHOLDS = "{ householdList(first: 1) { items { householdId memberCount } } }"
CIVIL_ALLOWANCE = ("civil", "civil.subsistence-allowance")


async def test_freshness_page_restricts_a_lagging_department_and_the_deny_page_lifts_it(staffed):
    api, console = staffed
    await console.sign_in()
    allowed = await api.query(HOUSEHOLDS, *CIVIL_ALLOWANCE)
    assert "errors" not in allowed

    page = await console.client.get("/console/freshness")
    assert page.status_code == 200 and "更新状态" in page.text
    row = re.search(r'<tr id="freshness-civil.marriage" class="overdue">.*?</tr>', page.text, re.S).group(0)
    assert "逾期未更新" in row and "daily" in row
    assert re.findall(
        r'<form class="edit" method="post" action="/console/freshness/restrict" id="restrict-(\w+)"', page.text
    ) == ["civil"]
    assert 'id="freshness-market.enterprise" class="current"' in page.text
    only_market = await console.client.get("/console/freshness?department=market")
    assert "civil.marriage" not in only_market.text and "market.licence" in only_market.text
    no_reason = await console.submit("/console/freshness", "/console/freshness/restrict", {"department": "civil"})
    assert no_reason.status_code == 400 and "REASON_REQUIRED" not in no_reason.text  # told in words
    assert "理由" in no_reason.text
    not_lagging = await console.submit(
        "/console/freshness", "/console/freshness/restrict", {"department": "market", "reason": "第二十条"}
    )
    assert not_lagging.status_code == 400 and "没有逾期未更新的资源" in not_lagging.text
    start = await versions(api)
    made = await console.submit(
        "/console/freshness", "/console/freshness/restrict", {"department": "civil", "reason": "婚姻登记逾期未更新"}
    )
    assert made.status_code == 303 and made.headers["location"] == "/console/deny"
    assert await versions(api) == start + 1
    restricted = await api.query(HOUSEHOLDS, *CIVIL_ALLOWANCE)
    assert restricted["errors"][0]["extensions"]["code"] == "DEPARTMENT_RESTRICTED"

    listing = await console.client.get("/console/deny")
    (rule_id,) = re.findall(
        r'id="deny-(D-[0-9a-f]{6})"><td><code>[^<]+</code></td><td>civil</td><td>全部资源', listing.text
    )
    assert "逾期：civil.marriage（daily）" in listing.text
    lifted = await console.submit(
        f"/console/deny/{rule_id}/remove", f"/console/deny/{rule_id}/remove", {"reason": "已补报"}
    )
    assert lifted.status_code == 303, lifted.text
    assert await api.query(HOUSEHOLDS, *CIVIL_ALLOWANCE) == allowed
    english = await console.client.get("/console/freshness?lang=en")
    assert "Resource freshness" in english.text and "Restrict civil (Art 20)" in english.text
