"""The application process over GraphQL, as department applications use it."""

from __future__ import annotations

APPLY = """mutation($input: ShareApplicationInput!) { applyForShare(input: $input) {
             id status deadline deadlineProvisional history { kind } } }"""
INPUT = {
    "resource": "police.person",
    "items": ["name", "address"],
    "purpose": "land.property-registration",
    "users": "不动产登记窗口",
    "validFrom": "2026-01-01",
    "validUntil": "2027-12-31",
    "acknowledged": True,
    "rowScope": [{"item": "countyCode", "values": ["371302"]}],
}
QUERY = '{ personList(filter: {countyCode: {eq: "371302"}}, first: 3) { items { name address } } }'


async def test_apply_review_and_read_over_graphql(own_api):
    applied = await own_api.query(APPLY, "land", None, variables={"input": INPUT})
    application = applied["data"]["applyForShare"]
    assert application["status"] == "pending" and application["history"] == [{"kind": "submitted"}]
    assert application["deadline"].endswith("+00:00") or application["deadline"].endswith("Z")

    inbox = await own_api.query("{ applicationInbox { id resource deadline } }", "police", None)
    assert [a["id"] for a in inbox["data"]["applicationInbox"]] == [application["id"]]
    assert (await own_api.query("{ applicationInbox { id } }", "market", None))["data"]["applicationInbox"] == []

    pending = await own_api.query(QUERY, "land", "land.property-registration")
    assert {e["extensions"]["code"] for e in pending["errors"]} == {"APPLICATION_PENDING"}

    approved = await own_api.query(
        'mutation($id: ID!) { approveApplication(id: $id, items: ["name"]) { status grantId history { kind } } }',
        "police",
        None,
        variables={"id": application["id"]},
    )
    assert approved["data"]["approveApplication"]["status"] == "approved"
    result = await own_api.query(QUERY, "land", "land.property-registration")
    assert all(i["name"] for i in result["data"]["personList"]["items"])
    assert [e["extensions"]["code"] for e in result["errors"]] == ["NO_GRANT"]  # address was narrowed away


async def test_invalid_application_gets_a_reason_per_field(own_api):
    bad = {**INPUT, "items": ["name", "shoeSize"], "purpose": "market.licence-review", "acknowledged": False}
    result = await own_api.query(APPLY, "land", None, variables={"input": bad}, headers={"Accept-Language": "en"})
    assert result["data"]["applyForShare"] is None
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "APPLICATION_INVALID"
    problems = {(p["field"], p["code"]) for p in error["extensions"]["problems"]}
    assert problems == {
        ("items", "ITEM_NOT_FOUND"),
        ("purpose", "PURPOSE_NOT_REGISTERED"),
        ("acknowledged", "ACKNOWLEDGEMENT_REQUIRED"),
    }
    assert all(p["reason"] for p in error["extensions"]["problems"])


async def test_unauthorized_actions_are_coded_errors(own_api):
    application = (await own_api.query(APPLY, "land", None, variables={"input": INPUT}))["data"]["applyForShare"]
    refused = await own_api.query(
        'mutation($id: ID!) { refuseApplication(id: $id, reason: "x") { status } }',
        "market",
        None,
        variables={"id": application["id"]},
    )
    assert refused["errors"][0]["extensions"]["code"] == "NOT_YOUR_RESOURCE"
    coordinate = await own_api.query(
        'mutation($id: ID!) { decideCoordination(id: $id, approve: true, reason: "x") { status } }',
        "police",
        None,
        variables={"id": application["id"]},
    )
    assert coordinate["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    seen = await own_api.query(
        "query($id: ID!) { applications(id: $id) { history { kind reason } } }",
        "land",
        None,
        variables={"id": application["id"]},
    )
    assert seen["data"]["applications"][0]["history"][1:] == [
        {"kind": "refused_action", "reason": "NOT_YOUR_RESOURCE"},
        {"kind": "refused_action", "reason": "FORBIDDEN"},
    ]
    # A department that is neither party sees nothing of it; the coordinator (auditor too) sees everything.
    assert (await own_api.query("{ applications { id } }", "hrss", None))["data"]["applications"] == []
    assert len((await own_api.query("{ applications { id } }", "bigdata", None))["data"]["applications"]) == 1


async def test_legal_basis_grant_by_the_coordinator_and_its_history(own_api, own_world):
    record = """mutation { recordLegalBasisGrant(consumer: "land", resource: "civil.subsidy", items: ["name"],
                  purposes: ["land.property-registration"], validFrom: "2026-01-01", validUntil: "2027-12-31",
                  legalBasis: "《不动产登记暂行条例》第二十七条") }"""
    refused = await own_api.query(record, "police", None)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    grant_id = (await own_api.query(record, "bigdata", None))["data"]["recordLegalBasisGrant"]
    result = await own_api.query("{ subsidyList(first: 2) { items { name } } }", "land", "land.property-registration")
    assert "errors" not in result and all(i["name"] for i in result["data"]["subsidyList"]["items"])

    revoked = await own_api.query(
        f'mutation {{ revokeGrant(id: "{grant_id}", reason: "依据已废止") }}', "bigdata", None
    )
    assert revoked["data"]["revokeGrant"] is True
    history = await own_api.query(f'{{ grantHistory(id: "{grant_id}") {{ kind reason }} }}', "civil", None)
    assert history["data"]["grantHistory"] == [
        {"kind": "legal_basis_granted", "reason": "《不动产登记暂行条例》第二十七条"},
        {"kind": "revoked", "reason": "依据已废止"},
    ]
    hidden = await own_api.query(f'{{ grantHistory(id: "{grant_id}") {{ kind }} }}', "market", None)
    assert hidden["errors"][0]["extensions"]["code"] == "GRANT_NOT_FOUND"
    after = await own_api.query("{ subsidyList(first: 2) { items { name } } }", "land", "land.property-registration")
    assert {e["extensions"]["code"] for e in after["errors"]} == {"GRANT_REVOKED"}
