"""The admin GraphQL API as a script uses it: a staff session by Bearer token, the same operations as the console,
coded refusals with every problem named, and export/import that round-trip exactly."""

from __future__ import annotations

import httpx
import pytest

from admin import accounts
from policies import documents
from tests.conftest import World, _api, _world, errors_by_item

PASSWORD = "correct horse battery staple"
ENTERPRISES = "{ enterpriseList(first: 3) { items { creditCode name } } }"


class Admin:
    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client, self.token = client, token

    async def run(self, query: str, **variables) -> dict:
        response = await self.client.post(
            "/admin/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        return response.json()


async def _admin(api) -> Admin:
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        await accounts.create_account(conn, runtime.settings, "ops.bot", PASSWORD, "运维脚本")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="https://govshare.test")
    session = await client.post("/admin/session", json={"username": "ops.bot", "password": PASSWORD})
    assert session.status_code == 200, session.text
    body = session.json()
    assert set(body) == {"token", "csrfToken", "expiresAt", "username"} and "set-cookie" not in session.headers
    return Admin(client, body["token"])


@pytest.fixture
async def admin(own_world: World):
    async for api in _api(own_world):
        admin = await _admin(api)
        yield api, admin
        await admin.client.aclose()


PUT_DENY = """mutation($rule: DenyRuleInput!, $reason: String!, $basedOn: Int) {
  putDenyRule(rule: $rule, reason: $reason, basedOn: $basedOn) { version ruleId } }"""
EXPLAIN = """query($d: String!, $p: String!, $r: String!) { explain(department: $d, purpose: $p, resource: $r) {
  policyVersion refused items { item allowed reason decidedBy message } } }"""


async def test_deny_rule_by_api_changes_the_answer_and_explain_and_rollback_restores(admin):
    api, admin = admin
    free = await api.query(ENTERPRISES, "hrss", "hrss.employment-subsidy")
    start = (await admin.run("{ policy { version } }"))["data"]["policy"]["version"]

    made = await admin.run(
        PUT_DENY,
        rule={"department": "hrss", "resource": "market.enterprise", "reason": "第二十条：迟报"},
        reason="脚本批量限制",
        basedOn=start,
    )
    assert "errors" not in made, made
    rule_id, version = made["data"]["putDenyRule"]["ruleId"], made["data"]["putDenyRule"]["version"]
    assert version == start + 1 and rule_id.startswith("D-")

    explained = (await admin.run(EXPLAIN, d="hrss", p="hrss.employment-subsidy", r="market.enterprise"))["data"][
        "explain"
    ]
    assert explained["policyVersion"] >= 1
    name = next(i for i in explained["items"] if i["item"] == "name")
    assert name == {
        "item": "name",
        "allowed": False,
        "reason": "DEPARTMENT_RESTRICTED",
        "decidedBy": rule_id,
        "message": "本部门使用 market.enterprise 的权益已被限制：第二十条：迟报",
    }
    restricted = await api.query(ENTERPRISES, "hrss", "hrss.employment-subsidy")
    assert errors_by_item(restricted) == {"creditCode": "DEPARTMENT_RESTRICTED", "name": "DEPARTMENT_RESTRICTED"}

    history = (await admin.run("{ policyHistory { version author reason action } }"))["data"]["policyHistory"]
    assert history[0] == {"version": version, "author": "ops.bot", "reason": "脚本批量限制", "action": "change"}
    diff = (
        await admin.run(
            "query($a: Int!, $b: Int!) { policyDiff(fromVersion: $a, toVersion: $b) { changes { rule change } text } }",
            a=start,
            b=version,
        )
    )["data"]["policyDiff"]
    assert diff["changes"] == [{"rule": rule_id, "change": "added"}] and "+[[deny]]" in diff["text"]

    stale = await admin.run(PUT_DENY, rule={"department": "land", "reason": "x"}, reason="x", basedOn=start)
    assert stale["errors"][0]["extensions"]["code"] == "POLICY_CONFLICT"

    rolled = await admin.run(
        'mutation($v: Int!) { rollbackPolicy(version: $v, reason: "误操作，恢复") { version } }', v=start
    )
    assert rolled["data"]["rollbackPolicy"]["version"] == version + 1
    assert await api.query(ENTERPRISES, "hrss", "hrss.employment-subsidy") == free
    last = (await admin.run("{ policyHistory { action restoredVersion } }"))["data"]["policyHistory"][0]
    assert last == {"action": "rollback", "restoredVersion": start}


async def test_invalid_rule_names_every_problem_and_changes_nothing(admin):
    api, admin = admin
    before = (await admin.run("{ policy { version digest } }"))["data"]["policy"]
    result = await admin.run(
        """mutation($rule: RuleInput!) { putRule(rule: $rule, reason: "试点") { version } }""",
        rule={
            "department": "forestry",
            "resource": "hrss.social-insurance",
            "items": ["idNumber", "shoeSize"],
            "purposes": ["civil.marriage-registration"],
            "validFrom": "2026-01-01T00:00:00+08:00",
            "validUntil": "2025-01-01T00:00:00+08:00",
        },
    )
    error = result["errors"][0]
    assert error["extensions"]["code"] == "POLICY_INVALID"
    found = {(p["field"], p["code"]) for p in error["extensions"]["problems"]}
    assert {
        ("department", "DEPARTMENT_NOT_FOUND"),
        ("items", "ITEM_NOT_FOUND"),
        ("valid_until", "GRANT_BAD_PERIOD"),
    } <= found
    assert any("shoeSize" in p["message"] for p in error["extensions"]["problems"])
    assert (await admin.run("{ policy { version digest } }"))["data"]["policy"] == before

    no_reason = await admin.run("""mutation { removeRule(id: "D-000000", reason: " ") { version } }""")
    assert no_reason["errors"][0]["extensions"]["code"] == "REASON_REQUIRED"
    missing = await admin.run("""mutation { removeRule(id: "D-000000", reason: "清理") { version } }""")
    assert missing["errors"][0]["extensions"]["code"] == "POLICY_RULE_NOT_FOUND"


async def test_validate_policy_reports_malformed_documents(admin):
    api, admin = admin
    query = "query($d: String!) { validatePolicy(document: $d) }"
    assert (await admin.run(query, d="[[deny]]\ndepartment = 'hrss'\nreason = '迟报'\n"))["data"][
        "validatePolicy"
    ] == []
    broken = (await admin.run(query, d="[[deny]\n"))["data"]["validatePolicy"]
    assert broken[0]["code"] == "POLICY_SYNTAX"
    problems = (
        await admin.run(
            query, d="[[rule]]\nid = 'P-1'\ndepartment = 'civil'\ncolour = 'red'\nvalid_from = 2026-01-01T00:00:00\n"
        )
    )["data"]["validatePolicy"]
    codes = {(p["field"], p["code"]) for p in problems}
    assert ("colour", "POLICY_UNKNOWN_FIELD") in codes and ("valid_from", "POLICY_TIME_NO_OFFSET") in codes
    assert ("resource", "POLICY_FIELD_REQUIRED") in codes and ("items", "POLICY_FIELD_REQUIRED") in codes


async def test_export_import_round_trips_exactly_between_platforms(admin, tmp_path):
    api, admin = admin
    made = await admin.run(
        """mutation($rule: RuleInput!) { putRule(rule: $rule, reason: "试点") { ruleId } }""",
        rule={
            "department": "civil",
            "resource": "hrss.social-insurance",
            "items": ["idNumber"],
            "purposes": ["civil.marriage-registration"],
            "validFrom": "2026-01-01T00:00:00+08:00",
            "validUntil": "2027-01-01T00:00:00+08:00",
            "rowScope": {"idNumber": ["110101199001011234"]},
            "note": "婚姻登记核验",
        },
    )
    assert "errors" not in made, made
    await admin.run(
        PUT_DENY,
        rule={"department": "land", "resource": "*", "reason": "第二十条", "validUntil": "2027-06-30T16:00:00Z"},
        reason="限制",
    )
    exported = (await admin.run("{ policy { export } }"))["data"]["policy"]["export"]

    other_world = await _world(tmp_path / "other")
    async for other_api in _api(other_world):
        other = await _admin(other_api)
        imported = await other.run(
            'mutation($d: String!) { importPolicy(document: $d, reason: "从测试环境迁移") { version } }', d=exported
        )
        assert "errors" not in imported, imported
        again = (await other.run("{ policy { export action: action } }"))["data"]["policy"]
        assert again["export"] == exported and again["action"] == "import"
        unchanged = await other.run(
            'mutation($d: String!) { importPolicy(document: $d, reason: "重复导入") { version } }', d=exported
        )
        assert unchanged["data"]["importPolicy"]["version"] is None
        await other.client.aclose()


async def test_rules_and_grants_in_force_filter(admin):
    api, admin = admin
    grants = (await admin.run('{ grantsInForce(department: "market") { id department resource source } }'))["data"][
        "grantsInForce"
    ]
    assert (
        grants
        and all(g["department"] == "market" for g in grants)
        and {g["resource"] for g in grants} == {"police.person", "hrss.social-insurance"}
    )
    everything = (await admin.run("{ grantsInForce { id } }"))["data"]["grantsInForce"]
    assert len(everything) > len(grants)
    deny = (await admin.run('{ denyRules(department: "civil") { id resource reason } }'))["data"]["denyRules"]
    assert [d["resource"] for d in deny] == ["market.enterprise"]  # the demo's restricted department
    assert (await admin.run('{ denyRules(department: "land") { id } }'))["data"]["denyRules"] == []


async def test_signing_out_a_script_session(admin):
    api, admin = admin
    out = await admin.client.delete("/admin/session", headers={"Authorization": f"Bearer {admin.token}"})
    assert out.status_code == 204
    after = await admin.client.post(
        "/admin/graphql", json={"query": "{ rules { id } }"}, headers={"Authorization": f"Bearer {admin.token}"}
    )
    assert after.status_code == 401
    wrong = await admin.client.post("/admin/session", json={"username": "ops.bot", "password": "nope nope nope"})
    assert wrong.status_code == 401 and wrong.json()["errors"][0]["extensions"]["code"] == "STAFF_SIGN_IN_FAILED"
    bad = await admin.client.post("/admin/session", content=b"not json")
    assert bad.status_code == 400


async def test_policy_versions_are_append_only_and_hash_chained(admin):
    from sqlalchemy import text

    from audit.chain import verify

    api, admin = admin
    await admin.run(PUT_DENY, rule={"department": "land", "reason": "第二十条"}, reason="限制")
    runtime = api.app.state.runtime
    async with runtime.engine.connect() as conn:
        count, problem = await verify(conn, "policy")
        assert problem is None and count >= 2
    with pytest.raises(Exception, match="append-only"):
        async with runtime.engine.begin() as conn:
            await conn.execute(text("UPDATE policy_versions SET reason = 'rewritten'"))
    async with runtime.engine.connect() as conn:
        assert all(v.reason != "rewritten" for v in await documents.history(conn))
