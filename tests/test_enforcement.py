"""Decision paths over HTTP against the demo world where more than the decision is at stake: values compared with
the source, lookups, filters, messages, limits. The decision matrix itself is in tests/cases/*.toml
(tests/test_decision_cases.py runs it in-process, and a sample of it over HTTP on each engine)."""

from __future__ import annotations

import pytest

from tests.conftest import absent, errors_by_item

PERSON = """query($id: String!) { person(idNumber: $id) { idNumber name gender birthDate countyCode address phone ethnicity } }"""


async def test_grant_in_force_returns_the_granted_items(api, world):
    person_id = world.showcase["person_luozhuang"]
    source = world.row("police", "SELECT * FROM person WHERE id_number = ?", person_id)
    result = await api.query(PERSON, "market", "market.licence-review", variables={"id": person_id})
    person = result["data"]["person"]
    assert person["idNumber"] == person_id
    assert person["name"] == source["name"]
    assert person["birthDate"] == source["birth_date"]
    assert person["address"] == source["address"]
    assert person["countyCode"] == "371311"
    # Not in the grant: ethnicity (conditional, no grant) and phone (item not shared).
    assert person["ethnicity"] is None and person["phone"] is None
    assert errors_by_item(result) == {"ethnicity": "NO_GRANT", "phone": "NOT_SHARED"}
    assert absent(source["ethnicity"], result) or source["ethnicity"] in source["address"]
    if source["phone"]:
        assert absent(source["phone"], result)


async def test_wrong_purpose_denies_granted_items_but_keeps_unconditional_ones(api, world):
    query = """{ personList(filter: {countyCode: {eq: "371311"}}, first: 5) { items { name address gender countyCode } } }"""
    result = await api.query(query, "market", "market.food-safety")
    items = result["data"]["personList"]["items"]
    assert len(items) == 5
    assert all(
        i["name"] is None and i["address"] is None and i["gender"] in ("男", "女") and i["countyCode"] == "371311"
        for i in items
    )
    assert errors_by_item(result) == {"name": "PURPOSE_NOT_APPROVED", "address": "PURPOSE_NOT_APPROVED"}
    names = [r["name"] for r in world.rows("police", "SELECT name FROM person WHERE county_code = '371311'")]
    assert all(absent(n, result) for n in names)
    error = next(e for e in result["errors"] if e["extensions"]["item"] == "name")
    assert error["path"] == ["personList", "items", 0, "name"]  # one error for the item, at its first row
    assert error["extensions"]["grant"].startswith("G-")
    assert "market.food-safety" in error["extensions"]["reason"]


async def test_lookup_under_wrong_purpose_is_refused_with_the_cause(api, world):
    person_id = world.showcase["person_luozhuang"]
    source = world.row("police", "SELECT * FROM person WHERE id_number = ?", person_id)
    result = await api.query(
        "query($id: String!) { person(idNumber: $id) { name gender } }",
        "market",
        "market.food-safety",
        variables={"id": person_id},
    )
    assert result["data"]["person"] is None
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "PURPOSE_NOT_APPROVED"
    assert error["extensions"]["item"] == "idNumber" and error["extensions"]["lookup"] is True
    assert absent(source["name"], result)


async def test_expired_grant_denies_with_its_own_reason(api, world):
    result = await api.query(
        "{ personList(first: 10) { items { name address gender } } }", "civil", "civil.marriage-registration"
    )
    items = result["data"]["personList"]["items"]
    assert all(i["name"] is None and i["address"] is None and i["gender"] for i in items)
    assert errors_by_item(result) == {"name": "GRANT_EXPIRED", "address": "GRANT_EXPIRED"}
    assert (
        "2026-01-01" in result["errors"][0]["extensions"]["reason"]
        or "2025-12-31" in result["errors"][0]["extensions"]["reason"]
    )
    person_id = world.showcase["married_person"]
    lookup = await api.query(
        "query($id: String!) { person(idNumber: $id) { name } }",
        "civil",
        "civil.marriage-registration",
        variables={"id": person_id},
    )
    assert lookup["data"]["person"] is None and lookup["errors"][0]["extensions"]["code"] == "GRANT_EXPIRED"
    source = world.row("police", "SELECT * FROM person WHERE id_number = ?", person_id)
    assert absent(source["name"], lookup) and absent(source["name"], result)


async def test_lookup_by_an_item_the_caller_may_not_read_is_refused(api, world):
    # land has no grant on police.person, so it may not probe it by ID number either.
    result = await api.query(
        "query($id: String!) { person(idNumber: $id) { gender } }",
        "land",
        "land.property-registration",
        variables={"id": world.showcase["person_lanshan"]},
    )
    assert result["data"]["person"] is None
    assert [e["extensions"]["code"] for e in result["errors"]] == ["NO_GRANT"]


async def test_not_shared_resource_is_never_readable_without_legal_basis(api, world):
    person_id = world.showcase["person_subsidy"]
    source = world.row("civil", "SELECT * FROM subsidy WHERE id_number = ?", person_id)
    query = """query($id: String!) { subsidyList(filter: {idNumber: {eq: $id}}) { items { name subsidyType } } }"""
    result = await api.query(query, "market", "market.licence-review", variables={"id": person_id})
    assert result["data"]["subsidyList"] is None
    assert result["errors"][0]["extensions"]["code"] == "FILTER_NOT_ALLOWED"
    result = await api.query(
        "{ subsidyList(first: 5) { items { name subsidyType } } }", "market", "market.licence-review"
    )
    assert result["data"]["subsidyList"] is None
    assert errors_by_item(result) == {"name": "NOT_SHARED", "subsidyType": "NOT_SHARED"}
    assert absent(source["name"], result)


async def test_legal_basis_grant_opens_a_not_shared_resource(api, world):
    person_id = world.showcase["person_subsidy"]
    source = world.row("civil", "SELECT * FROM subsidy WHERE id_number = ?", person_id)
    query = """query($id: String!) { subsidyList(filter: {idNumber: {eq: $id}}) {
                 items { idNumber name subsidyType monthlyAmount startDate } } }"""
    result = await api.query(query, "police", "police.case-investigation", variables={"id": person_id})
    item = result["data"]["subsidyList"]["items"][0]
    assert item["name"] == source["name"] and item["subsidyType"] == source["subsidy_type"]
    assert item["monthlyAmount"] == pytest.approx(float(source["monthly_amount"]))
    assert item["startDate"] is None  # not covered by the legal-basis grant
    assert errors_by_item(result) == {"startDate": "NOT_SHARED"}
    assert absent(source["start_date"], result)


async def test_restricted_department_is_denied_even_unconditional_data(api, world):
    code = world.showcase["enterprise"]
    source = world.row("market", "SELECT * FROM enterprise WHERE credit_code = ?", code)
    result = await api.query(
        "query($c: String!) { enterprise(creditCode: $c) { name status } }",
        "civil",
        "civil.marriage-registration",
        variables={"c": code},
    )
    assert result["data"]["enterprise"] is None
    assert result["errors"][0]["extensions"]["code"] == "DEPARTMENT_RESTRICTED"  # the lookup key is denied first
    result = await api.query(
        "{ enterpriseList(first: 2) { items { name status } } }", "civil", "civil.marriage-registration"
    )
    assert result["data"]["enterpriseList"] is None
    assert errors_by_item(result) == {"name": "DEPARTMENT_RESTRICTED", "status": "DEPARTMENT_RESTRICTED"}
    assert "第二十条" in result["errors"][0]["extensions"]["reason"]
    assert absent(source["name"], result)


async def test_masked_item_is_masked_and_raw_value_never_sent(api, world):
    person_id = world.showcase["person_luozhuang"]
    result = await api.query(
        "query($id: String!) { person(idNumber: $id) { name } }",
        "hrss",
        "hrss.insurance-enrolment",
        variables={"id": person_id},
    )
    # Looking up by a masked key would confirm a guessed number: refused, whatever is selected.
    assert result["data"]["person"] is None
    error = result["errors"][0]["extensions"]
    assert (error["code"], error["cause"], error["item"], error["lookup"]) == (
        "FILTER_NOT_ALLOWED",
        "MASKED",
        "idNumber",
        True,
    )
    name = world.row("police", "SELECT name FROM person WHERE id_number = ?", person_id)["name"]
    listed = await api.query(
        "{ personList(first: 100) { items { idNumber name } } }", "hrss", "hrss.insurance-enrolment"
    )
    assert {"idNumber": person_id[:6] + "*" * 8 + person_id[-4:], "name": name} in listed["data"]["personList"]["items"]
    assert "errors" not in listed
    response = await api.post(
        "{ personList(first: 20) { items { idNumber } } }", department="hrss", purpose="hrss.insurance-enrolment"
    )
    ids = [i["idNumber"] for i in response.json()["data"]["personList"]["items"]]
    assert ids and all(i[6:14] == "********" for i in ids)
    raw = [r["id_number"] for r in world.rows("police", "SELECT id_number FROM person WHERE county_code = '371311'")]
    assert all(absent(r, response) for r in raw)


async def test_masked_item_cannot_be_bisected_with_a_range_filter(api):
    result = await api.query(
        '{ personList(filter: {birthDate: {gte: "1980-01-01"}}) { items { name } } }',
        "hrss",
        "hrss.insurance-enrolment",
    )
    # The ID-number mask hides the birth date, so hrss is not granted birthDate (it would undo the mask,
    # GRANT_MASK_UNDONE): a range on it, which would halve the hidden digits each time, is refused.
    assert result["data"]["personList"] is None
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "FILTER_NOT_ALLOWED" and error["extensions"]["item"] == "birthDate"


async def test_row_scope_is_applied_in_the_source_query(api, world):
    result = await api.query(
        "{ personList(first: 50) { items { countyCode name } } }", "hrss", "hrss.insurance-enrolment"
    )
    items = result["data"]["personList"]["items"]
    assert len(items) == 50 and {i["countyCode"] for i in items} == {"371311"}


async def test_out_of_scope_filter_is_refused(api):
    result = await api.query(
        '{ personList(filter: {countyCode: {eq: "371302"}}) { items { name } } }', "hrss", "hrss.insurance-enrolment"
    )
    assert result["data"]["personList"] is None
    assert result["errors"][0]["extensions"]["code"] == "OUT_OF_SCOPE"


async def test_filter_on_an_item_the_caller_may_not_read_is_refused(api):
    result = await api.query(
        '{ personList(filter: {householdId: {eq: "x"}}) { items { name } } }', "market", "market.licence-review"
    )
    assert result["data"]["personList"] is None
    error = result["errors"][0]["extensions"]
    assert error["code"] == "FILTER_NOT_ALLOWED" and "householdId" in error["reason"]


async def test_purpose_must_be_declared_and_registered(api, world):
    query = "{ enterpriseList(first: 1) { items { name } } }"
    missing = await api.query(query, "hrss", None)
    assert missing["data"]["enterpriseList"] is None
    assert missing["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
    foreign = await api.query(query, "hrss", "market.licence-review")
    assert foreign["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_REGISTERED"
    unknown = await api.query(query, "hrss", "no.such-purpose")
    assert unknown["errors"][0]["extensions"]["code"] == "PURPOSE_NOT_REGISTERED"
    # Introspection and the caller's own description need no purpose.
    me = await api.query("{ caller { department purposes { code } } }", "hrss", None)
    assert me["data"]["caller"]["department"] == "hrss"
    assert {p["code"] for p in me["data"]["caller"]["purposes"]} == {
        "hrss.insurance-enrolment",
        "hrss.employment-subsidy",
    }


@pytest.mark.parametrize(
    "authorization, code",
    [
        (None, "UNAUTHENTICATED"),
        ("Basic abc", "UNAUTHENTICATED"),
        ("Bearer gs_00000000_not-a-real-key", "KEY_INVALID"),
    ],
)
async def test_auth_failures_get_401_json_and_no_data(api, authorization, code):
    headers = {"X-Purpose": "market.licence-review"}
    if authorization:
        headers["Authorization"] = authorization
    response = await api.client.post(
        "/graphql", json={"query": "{ enterpriseList { items { name } } }"}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == code


async def test_english_on_request(api):
    result = await api.query(
        "{ personList(first: 1) { items { name } } }",
        "land",
        "land.property-registration",
        headers={"Accept-Language": "en"},
    )
    assert "has no grant" in result["errors"][0]["message"]
    chinese = await api.query("{ personList(first: 1) { items { name } } }", "land", "land.property-registration")
    assert "没有有效的共享授权" in chinese["errors"][0]["message"]


async def test_page_size_is_capped_and_cursor_pages_are_stable(api, world):
    query = "query($after: String) { enterpriseList(first: 30, after: $after) { items { creditCode } pageInfo { hasNextPage endCursor } } }"
    first = await api.query(query, "land", "land.property-registration")
    page = first["data"]["enterpriseList"]
    assert page["pageInfo"]["hasNextPage"] is True and len(page["items"]) == 30
    second = (
        await api.query(query, "land", "land.property-registration", variables={"after": page["pageInfo"]["endCursor"]})
    )["data"]["enterpriseList"]
    codes = [i["creditCode"] for i in page["items"] + second["items"]]
    assert len(set(codes)) == 60 and codes == sorted(codes)
    too_big = await api.query(
        "{ enterpriseList(first: 1000) { items { name } } }", "land", "land.property-registration"
    )
    assert too_big["data"]["enterpriseList"] is None
    assert too_big["errors"][0]["extensions"]["code"] == "PAGE_SIZE_TOO_LARGE"
    for size in (0, -1):
        invalid = await api.query(
            f"{{ enterpriseList(first: {size}) {{ items {{ name }} }} }}", "land", "land.property-registration"
        )
        assert invalid["errors"][0]["extensions"]["code"] == "PAGE_SIZE_INVALID"
    bad = await api.query('{ enterpriseList(after: "!!") { items { name } } }', "land", "land.property-registration")
    assert bad["errors"][0]["extensions"]["code"] == "BAD_CURSOR"


async def test_fragments_and_skip_are_honoured(api, world):
    person_id = world.showcase["person_luozhuang"]
    query = """query($id: String!, $skip: Boolean!) { person(idNumber: $id) { ...P ... on Person { phone @skip(if: $skip) } } }
               fragment P on Person { name ethnicity }"""
    result = await api.query(query, "market", "market.licence-review", variables={"id": person_id, "skip": True})
    assert errors_by_item(result) == {"ethnicity": "NO_GRANT"}
    assert result["data"]["person"]["name"]
    result = await api.query(query, "market", "market.licence-review", variables={"id": person_id, "skip": False})
    assert errors_by_item(result) == {"ethnicity": "NO_GRANT", "phone": "NOT_SHARED"}


async def test_aliases_are_each_decided_and_reported_at_their_own_path(api, world):
    a, b = world.showcase["person_luozhuang"], world.showcase["person_lanshan"]
    query = f'{{ a: person(idNumber: "{a}") {{ name phone }} b: person(idNumber: "{b}") {{ name phone }} }}'
    result = await api.query(query, "market", "market.licence-review")
    assert result["data"]["a"]["name"] and result["data"]["b"]["name"]
    assert sorted(e["path"] for e in result["errors"]) == [["a", "phone"], ["b", "phone"]]


async def test_query_limits(api):
    aliases = " ".join(f"a{i}: caller {{ department }}" for i in range(40))
    result = (await api.post(f"{{ {aliases} }}", department="market")).json()
    assert "data" not in result and "aliases" in result["errors"][0]["message"].lower()


async def test_production_mode_hides_the_schema_and_suggestions(own_world):
    from tests.conftest import _api, production

    settings = production(own_world.settings)
    async for api in _api(own_world, settings=settings):
        introspection = (await api.post("{ __schema { types { name } } }", department="land")).json()
        assert "data" not in introspection and introspection["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID"
        typo = (await api.post("{ enterpriseLst { items { name } } }", department="land")).json()
        assert "Did you mean" not in typo["errors"][0]["message"]
        works = await api.query("{ enterpriseList(first: 1) { items { name } } }", "land", "land.property-registration")
        assert works["data"]["enterpriseList"]["items"]
    async for api in _api(own_world):
        typo = (await api.post("{ enterpriseLst { items { name } } }", department="land")).json()
        assert "Did you mean" in typo["errors"][0]["message"]  # development mode helps


async def test_too_many_root_fields_and_batches_are_refused_with_codes(api):
    wide = "{ " + " ".join(f"c{i}: caller {{ department }}" for i in range(11)) + " }"
    result = (await api.post(wide, department="land")).json()
    assert "data" not in result and result["errors"][0]["extensions"]["code"] == "TOO_MANY_ROOT_FIELDS"
    batch = await api.client.post(
        "/graphql",
        json=[{"query": "{ caller { department } }"}] * 2,
        headers={"Authorization": f"Bearer {api.world.keys['land']}"},
    )
    assert batch.status_code == 400 and batch.json()["errors"][0]["extensions"]["code"] == "BATCH_NOT_SUPPORTED"


async def test_the_readmes_demo_decisions_come_out_of_the_demo_world(api, world):
    """README's "Three example queries" promise these of the demo's own grants (the case files bring their own)."""
    land = await api.query(
        '{ enterpriseList(filter: {countyCode: {eq: "371311"}}, first: 3) { items { name legalRepIdNumber } } }',
        "land",
        "land.property-registration",
    )
    items = land["data"]["enterpriseList"]["items"]
    assert items and all(i["name"] and i["legalRepIdNumber"] is None for i in items)
    assert errors_by_item(land) == {"legalRepIdNumber": "NO_GRANT"}
    reps = [r["legal_rep_id_number"] for r in world.rows("market", "SELECT legal_rep_id_number FROM enterprise")]
    assert all(absent(rep, land) for rep in reps)
    civil = await api.query("{ licenceList(first: 2) { items { licenceNo } } }", "civil", "civil.marriage-registration")
    assert civil["data"]["licenceList"] is None
    assert {e["extensions"]["code"] for e in civil["errors"]} == {"NOT_RELATED_DEPARTMENT"}
