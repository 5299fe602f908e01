"""Production learns nothing it can't read (issue 11 part 4): no suggestions, no names the caller did not send,
and each department validated against a view of what it may read, where an invisible field is an unknown one.

Probed over HTTP as a schema-recovery tool (clairvoyance) does: misspelt fields, arguments, input fields and
types, required arguments left out, variables of the wrong type, read for every name the answers give away.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from graphql import parse

from policies.store import create_grant
from tests.conftest import _api, _world
from tests.conftest import production as production_settings

IDENTIFIER = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
QUOTED = re.compile(r"'([^']*)'")
INTROSPECTION = """{ __schema { types { name fields { name args { name } } inputFields { name }
    enumValues { name } } } }"""

# Each a document and its variables; every one is refused, and each answer is read for names.
PROBES = [
    ("{ personLst { items { name } } }", {}),  # a misspelt root field
    ("{ personList(first: 1) { items { idNumbr nam gendr countyCod } } }", {}),  # misspelt items, as a word list
    ("{ personList(frist: 1) { items { name } } }", {}),  # a misspelt argument
    ('{ personList(filter: {idNumbr: {eq: "1"}}) { items { name } } }', {}),  # a misspelt input field
    ('{ personList(filter: {countyCode: {equal: "1"}}) { items { name } } }', {}),  # a misspelt operator
    ("query($f: PersonFilter) { personList(filter: $f) { items { name } } }", {"f": {"idNumbr": {"eq": "1"}}}),
    ("query($f: PersonFilter) { personList(filter: $f) { items { name } } }", {"f": {"countyCode": "371311"}}),
    ("query($f: PersonFiltr) { personList(filter: $f) { items { name } } }", {}),  # a misspelt type
    ("{ ...F } fragment F on Persn { name }", {}),
    ("{ person { name } }", {}),  # a required argument left out
    ('mutation { applyForShare(input: {resource: "police.person"}) { id } }', {}),  # required input fields
    ("{ personList(first: ONE) { items { name } } }", {}),  # an enum value where none is expected
    ("query($n: String) { personList(first: $n) { items { name } } }", {}),  # a variable of the wrong type
    ("query($n: Int) { personList(first: $n) { items { name } } }", {"n": "many"}),
    ("query($f: Int) { personList(filter: $f) { items { name } } }", {}),
    ("{ personList }", {}),  # a selection left out
    ("{ personList(first: 1) { items { name { first } } } }", {}),
    ("{ personList(first: 1) { pageInfo { hasNext } } }", {}),
    ("{ caller { departmnt } applications(id: 1) { statu } }", {}),
]


@pytest.fixture(scope="module")
async def demo(tmp_path_factory):
    return await _world(tmp_path_factory.mktemp("var-production"))


def production(world):
    return production_settings(world.settings)


async def full_schema_names(world) -> set[str]:
    """Every name of the whole schema, read through development mode's introspection."""
    async for api in _api(world):
        schema = (await api.post(INTROSPECTION, department="market")).json()["data"]["__schema"]
    names = set()
    for type_ in schema["types"]:
        names.add(type_["name"])
        for field in type_["fields"] or []:
            names.add(field["name"])
            names.update(a["name"] for a in field["args"])
        names.update(f["name"] for f in type_["inputFields"] or [])
        names.update(v["name"] for v in type_["enumValues"] or [])
    return names


def given_away(messages: list[str], sent: set[str], names: set[str]) -> set[str]:
    """The schema names in ``messages`` the request did not carry: quoted anywhere, or a type's name anywhere."""
    found = set()
    for text in messages:
        for quoted in QUOTED.findall(text):
            found |= {n for n in IDENTIFIER.findall(quoted) if n in names}
        found |= {n for n in IDENTIFIER.findall(text) if n in names and n[:1].isupper()}
    return found - sent


async def probe(api, department: str, query: str, variables: dict) -> tuple[int, dict, set[str]]:
    response = await api.post(query, department=department, variables=variables)
    sent = set(IDENTIFIER.findall(query + json.dumps(variables)))
    return response.status_code, response.json(), sent


async def test_a_schema_recovery_probe_learns_no_name_in_production(demo):
    names = await full_schema_names(demo)
    async for api in _api(demo):  # development: the probe works, and recovers names
        recovered = set()
        for query, variables in PROBES:
            _, body, sent = await probe(api, "market", query, variables)
            recovered |= given_away([e["message"] for e in body["errors"]], sent, names)
        assert {"idNumber", "name", "gender", "countyCode", "first", "PersonFilter", "String"} <= recovered
    async for api in _api(demo, settings=production(demo)):
        for query, variables in PROBES:
            status, body, sent = await probe(api, "market", query, variables)
            messages = [e["message"] for e in body["errors"]]
            assert status == 200 and "data" not in body, query
            assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_INVALID"}, query
            assert not any("Did you mean" in m for m in messages), messages
            assert given_away(messages, sent, names) == set(), (query, messages)
        # The wrong type of a variable is still said, in the caller's own words.
        _, body, _ = await probe(api, "market", *PROBES[12])
        assert body["errors"][0]["message"] == "Variable '$n' of type 'String' used in position expecting type '…'."


def unknown(name: str) -> str:
    """A name of the same length that no schema holds."""
    return "q" + name[1:]


# (department, document with NAME where the name goes, the invisible name, variables): each name exists in the
# schema but the department can read it under none of its purposes (demo grants, at today's date).
INVISIBLE = [
    ("market", "{ NAME(first: 1) { items { name } } }", "subsidyList", {}),  # not shared, no legal basis for market
    ("market", '{ NAME(subsidyId: "1") { name } }', "subsidy", {}),
    ("market", "{ personList(first: 1) { items { NAME } } }", "householdId", {}),  # conditional, no grant
    ("market", "{ personList(first: 1) { items { NAME } } }", "phone", {}),  # not shared
    ("market", '{ personList(filter: {NAME: {eq: "1"}}) { items { name } } }', "householdId", {}),
    (
        "market",
        "query($f: PersonFilter) { personList(filter: $f) { items { name } } }",
        "householdId",
        {"f": {"NAME": {"eq": "1"}}},
    ),
    ("market", "query($f: NAME) { subsidyList(filter: $f) { items { name } } }", "SubsidyFilter", {}),
    ("market", "{ subsidyList(first: 1) { items { ...F } } } fragment F on NAME { name }", "Subsidy", {}),
    ("market", "{ NAME(first: 1) @skip(if: false) { items { name } } }", "subsidyList", {}),
    ("market", "{ ... on Query { x: NAME(first: 1) { items { name } } } }", "subsidyList", {}),
    (
        "market",
        'query($f: PersonFilter = {NAME: {eq: "1"}}) { personList(filter: $f) { items { name } } }',
        "householdId",
        {},
    ),
    ("civil", '{ NAME(idNumber: "1") { gender } }', "person", {}),  # civil's grant ended: its key is not readable
    ("civil", "{ personList(first: 1) { items { NAME } } }", "name", {}),
    ("land", "{ enterpriseList(first: 1) { items { NAME { name } } } }", "legalRepresentative", {}),  # link key denied
]


def fill(text: str, name: str) -> str:
    return text.replace("NAME", name)


async def test_an_invisible_field_is_answered_as_an_unknown_one(demo):
    async for api in _api(demo, settings=production(demo)):
        for department, query, name, variables in INVISIBLE:
            answers = []
            for used in (name, unknown(name)):
                response = await api.post(
                    fill(query, used), department=department, variables=json.loads(fill(json.dumps(variables), used))
                )
                answers.append((response.status_code, response.text.replace(used, "NAME")))
            assert answers[0] == answers[1], (department, name, answers)
            status, text = answers[0]
            assert status == 200 and json.loads(text)["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID"
    async for api in _api(demo):  # development: the same names pass validation, and the data path refuses them
        for department, query, name, variables in INVISIBLE:
            response = await api.post(
                fill(query, name), department=department, variables=json.loads(fill(json.dumps(variables), name))
            )
            codes = {e["extensions"]["code"] for e in response.json().get("errors", [])}
            assert "GRAPHQL_INVALID" not in codes, (department, name, response.text)


async def test_what_a_department_can_read_stays_in_its_view_and_the_data_path_still_decides(demo):
    async for api in _api(demo, settings=production(demo)):
        # police reads the not-shared subsidies by a legal basis; civil provides them.
        police = await api.query(
            "{ subsidyList(first: 2) { items { name monthlyAmount } } }", "police", "police.case-investigation"
        )
        assert len(police["data"]["subsidyList"]["items"]) == 2 and "errors" not in police
        own = await api.query(
            "{ subsidyList(first: 1) { items { name startDate } } }", "civil", "civil.subsistence-allowance"
        )
        assert own["data"]["subsidyList"]["items"][0]["startDate"] and "errors" not in own
        # Visible under one purpose of hrss, asked under the other: validation passes, the data path refuses.
        other = await api.query("{ personList(first: 2) { items { name gender } } }", "hrss", "hrss.employment-subsidy")
        assert other["data"]["personList"]["items"][0]["name"] is None
        refused = {e["extensions"]["item"]: e["extensions"]["code"] for e in other["errors"]}
        assert refused == {"name": "PURPOSE_NOT_APPROVED"}
        # The row scope still holds: hrss sees 罗庄区 only.
        scoped = await api.query(
            '{ personList(filter: {countyCode: {eq: "371302"}}) { items { name } } }',
            "hrss",
            "hrss.insurance-enrolment",
        )
        assert scoped["errors"][0]["extensions"]["code"] == "OUT_OF_SCOPE"
        # A masked item is visible (it is read, masked); links whose keys are readable on both sides are there.
        masked = await api.query("{ personList(first: 1) { items { idNumber } } }", "hrss", "hrss.insurance-enrolment")
        assert "*" in masked["data"]["personList"]["items"][0]["idNumber"]
        linked = await api.query(
            "{ enterpriseList(first: 1) { items { legalRepresentative { name } } } }", "market", "market.licence-review"
        )
        assert "errors" not in linked and linked["data"]["enterpriseList"]["items"]
        # Non-data fields stay visible to everyone.
        for department in ("market", "civil", "land", "bigdata"):
            plain = await api.query(
                "{ caller { department purposes { code } } applicationInbox { id } "
                "usageRecords(first: 1) { resource } }",
                department,
                None,
            )
            assert plain["data"]["caller"]["department"] == department and "errors" not in plain


async def test_the_view_follows_the_clock_and_the_policies(own_world):
    now = [datetime(2025, 6, 1, tzinfo=UTC)]  # civil's grant on person ran through 2025
    query = "{ personList(first: 1) { items { name } } }"
    async for api in _api(own_world, settings=production(own_world), clock=lambda: now[0]):
        inside = await api.query(query, "civil", "civil.marriage-registration")
        assert inside["data"]["personList"]["items"][0]["name"] and "errors" not in inside
        now[0] = datetime(2026, 6, 1, tzinfo=UTC)
        after = await api.query(query, "civil", "civil.marriage-registration")
        assert "data" not in after and after["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID"
        assert after["errors"][0]["message"] == "Cannot query field 'name' on type '…'."

        land = await api.query('{ person(idNumber: "1") { name } }', "land", "land.property-registration")
        assert land["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID"
        runtime = api.app.state.runtime
        async with runtime.engine.begin() as conn:
            await create_grant(
                conn,
                runtime.catalog,
                consumer="land",
                resource="police.person",
                items=["idNumber", "name"],
                purposes=["land.property-registration"],
                valid_from=now[0] - timedelta(days=1),
                valid_until=now[0] + timedelta(days=30),
                created_by="test",
            )
        await runtime.refresh()
        person = own_world.showcase["person_luozhuang"]
        granted = await api.query(
            f'{{ person(idNumber: "{person}") {{ name }} }}', "land", "land.property-registration"
        )
        assert granted["data"]["person"]["name"] and "errors" not in granted


async def test_introspection_stays_refused_in_production(demo):
    async for api in _api(demo, settings=production(demo)):
        for query in (
            "{ __schema { types { name } } }",
            '{ __type(name: "Person") { fields { name } } }',
            "{ a: __schema { queryType { name } } }",
            "{ ...F } fragment F on Query { __schema { description } }",
        ):
            body = (await api.post(query, department="police")).json()
            assert "data" not in body and body["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID", query
            assert "introspection" in body["errors"][0]["message"]
        visible = (await api.post('{ __type(name: "Person") { name } }', department="police")).text
        invisible = (await api.post('{ __type(name: "Subsidz") { name } }', department="police")).text
        assert visible.replace("Person", "X") == invisible.replace("Subsidz", "X")
        typename = await api.query(
            "{ personList(first: 1) { __typename items { __typename name } } }", "police", "police.household-admin"
        )
        assert typename["data"]["personList"]["__typename"] == "PersonPage", typename
        assert typename["data"]["personList"]["items"][0]["__typename"] == "Person"


async def test_the_validation_cache_is_kept_per_view(demo):
    async for api in _api(demo, settings=production(demo)):
        query = "{ personList(first: 1) { items { name countyCode } } }"
        schema_views = api.app.state.runtime.schema.views
        await api.query(query, "market", "market.licence-review")
        hits = schema_views.validations.hits
        again = await api.query(query, "market", "market.licence-review")
        # both validations answered from the cache: the document's limits, then the department's view
        assert again["data"]["personList"]["items"] and schema_views.validations.hits == hits + 2
        policy, now, query = api.app.state.runtime.policy, datetime.now(UTC), (query, parse(query))
        market = schema_views.view_for(*query, policy, "market", now)
        assert schema_views.view_for(*query, policy, "market", now) is market
        assert schema_views.view_for(*query, policy, "civil", now) is not market
        assert "name" in market.type_map["Person"].fields and "householdId" not in market.type_map["Person"].fields
        # bigdata has no grant on person: its unconditional items only, and no lookup by the ID number.
        bigdata = schema_views.view_for(*query, policy, "bigdata", now)
        assert set(bigdata.type_map["Person"].fields) == {"gender", "countyCode"}
        assert "personList" in bigdata.query_type.fields and "person" not in bigdata.query_type.fields


async def test_a_document_reaching_many_resources_is_refused_before_any_view(demo):
    """A view is made for what a document reaches: max_root_fields root fields in the whole document (all its
    operations, fragments spread at the root counted), whatever the names, so the refusal tells nothing."""
    six = " ".join(["personList(first: 1) { items { name } }"] * 6)  # the same field six times: one answer
    operations = f"query A {{ {six} }} query B {{ {six} }}"  # 12 root fields, 6 an operation
    spread = f"{{ ...A ...B }} fragment A on Query {{ {six} }} fragment B on Query {{ {six} }}"  # 2, then 12
    async for api in _api(demo, settings=production(demo)):
        for document in (operations, spread):
            answers = []
            for text in (document, document.replace("personList", "qersonList")):
                answers.append((await api.post(text, department="market", purpose="market.licence-review")).json())
            assert answers[0] == answers[1]
            (error,) = answers[0]["errors"]
            assert error["extensions"]["code"] == "TOO_MANY_ROOT_FIELDS" and "data" not in answers[0], error
            assert error["message"] == "12 root fields in the document; at most 10"
        fine = (
            f"{{ ...A caller {{ department }} personList(first: 1) {{ items {{ name }} }} }} "
            f"fragment A on Query {{ {six} }}"
        )  # 8 root fields
        body = (await api.post(fine, department="market", purpose="market.licence-review")).json()
        assert body["data"]["personList"]["items"] and "errors" not in body, body
