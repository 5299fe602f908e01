"""govshare as an Apollo Federation v2 subgraph: `_service { sdl }` and `_entities`, attacked as the worst bug site.

`_entities` is a second entry point to every resource: each test here tries to get around the decision a lookup
makes (purpose, items, masks, scope, the record), and checks the answer says no more than the lookup would.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from graphql import parse
from sqlalchemy import select

from audit.tables import access_records
from tests.conftest import StatementLog, _api, absent, grant_in_force, production

SQLITE = pytest.mark.parametrize("world", ["sqlite"], indirect=True)

ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) {
    __typename ... on Person { idNumber name phone address } } }"""
MARKET = ("market", "market.licence-review")  # reads persons: name, address… in clear; phone NOT_SHARED
HRSS = ("hrss", "hrss.insurance-enrolment")  # persons of 371311 only, ID numbers masked


def person(id_number: str, **extra) -> dict:
    return {"__typename": "Person", "idNumber": id_number, **extra}


async def records_of(api, response) -> list:
    async with api.app.state.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                select(access_records)
                .where(access_records.c.request_id == response.headers["X-Request-Id"])
                .order_by(access_records.c.seq)
            )
        ).all()


def codes_at(result: dict) -> dict[tuple, str]:
    return {tuple(e["path"]): e["extensions"]["code"] for e in result.get("errors", [])}


def ids(world, sql: str, *params) -> list[str]:
    return [r["id_number"] for r in world.rows("police", sql, *params)]


# -- the answer is the lookup's answer -----------------------------------------------------------------------------


async def test_entities_answer_what_the_lookup_answers_in_one_statement_per_source(api, world):
    wanted = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 30")
    log = StatementLog(api, world, "police")
    try:
        response = await api.post(
            ENTITIES, department=MARKET[0], purpose=MARKET[1], variables={"r": [person(i) for i in wanted]}
        )
    finally:
        log.close()
    result = response.json()
    entities = result["data"]["_entities"]
    assert len(log.seen) == 1  # 30 representations, one statement
    for id_number, entity in zip(wanted, entities, strict=True):
        source = world.row("police", "SELECT name, address FROM person WHERE id_number = ?", id_number)
        assert entity == {
            "__typename": "Person",
            "idNumber": id_number,
            "name": source["name"],
            "phone": None,
            "address": source["address"],
        }
    # phone is not shared: one error for the item, at a real response path (the type's first representation)
    assert codes_at(result) == {("_entities", 0, "phone"): "NOT_SHARED"}
    (record,) = await records_of(api, response)
    assert (record.operation, record.resource, record.department, record.purpose) == (
        "entity",
        "police.person",
        *MARKET,
    )
    assert record.row_count == 30 and record.outcome == "partial" and record.items_denied == {"phone": "NOT_SHARED"}


@SQLITE
async def test_types_are_batched_each_in_one_access_and_order_is_kept(api, world):
    code = world.showcase["enterprise"]
    a, b = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 2")
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Person { name } ... on Enterprise { creditCode name } } }"""
    reps = [person(a), {"__typename": "Enterprise", "creditCode": code}, person(b), person(a)]
    response = await api.post(query, department=MARKET[0], purpose=MARKET[1], variables={"r": reps})
    entities = response.json()["data"]["_entities"]
    name = lambda i: world.row("police", "SELECT name FROM person WHERE id_number = ?", i)["name"]
    enterprise = world.row("market", "SELECT name FROM enterprise WHERE credit_code = ?", code)
    assert entities == [
        {"name": name(a)},
        {"creditCode": code, "name": enterprise["name"]},
        {"name": name(b)},
        {"name": name(a)},
    ]
    records = await records_of(api, response)
    assert sorted((r.resource, r.operation, r.row_count) for r in records) == [
        ("market.enterprise", "entity", 1),
        ("police.person", "entity", 2),
    ]


@SQLITE
async def test_fragments_and_aliases_select_the_same_decided_items(api, world):
    (a,) = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 1")
    query = """query($r: [_Any!]!) { e: _entities(representations: $r) { ...P ... on _Entity { ...Q } } }
               fragment P on Person { n: name tel: phone }
               fragment Q on Person { phone gender }"""
    response = await api.post(query, department=MARKET[0], purpose=MARKET[1], variables={"r": [person(a)]})
    result = response.json()
    source = world.row("police", "SELECT name, gender, phone FROM person WHERE id_number = ?", a)
    assert result["data"]["e"] == [{"n": source["name"], "tel": None, "phone": None, "gender": source["gender"]}]
    assert codes_at(result) == {("e", 0, "phone"): "NOT_SHARED"}
    assert absent(source["phone"], response)
    (record,) = await records_of(api, response)
    assert record.items_denied == {"phone": "NOT_SHARED"} and sorted(record.items_returned) == ["gender", "name"]


@SQLITE
async def test_links_under_entities_are_hops_of_their_own_batched_for_every_entity(api, world):
    wanted = [
        r["id_number"]
        for r in world.rows(
            "market",
            "SELECT DISTINCT legal_rep_id_number AS id_number FROM enterprise ORDER BY legal_rep_id_number LIMIT 20",
        )
    ]
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Person { name enterprises { creditCode } } } }"""
    logs = {d: StatementLog(api, world, d) for d in ("police", "market")}
    try:
        response = await api.post(
            query, department=MARKET[0], purpose=MARKET[1], variables={"r": [person(i) for i in wanted]}
        )
    finally:
        for log in logs.values():
            log.close()
    result = response.json()
    assert "errors" not in result, result
    assert {d: len(log.seen) for d, log in logs.items()} == {"police": 1, "market": 1}
    for id_number, entity in zip(wanted, result["data"]["_entities"], strict=True):
        codes = world.rows("market", "SELECT credit_code FROM enterprise WHERE legal_rep_id_number = ?", id_number)
        assert sorted(e["creditCode"] for e in entity["enterprises"]) == sorted(c["credit_code"] for c in codes)
    records = await records_of(api, response)
    assert [(r.resource, r.operation) for r in records] == [("police.person", "entity"), ("market.enterprise", "link")]


# -- attacks ---------------------------------------------------------------------------------------------------


@SQLITE
async def test_without_a_purpose_nothing_is_read_and_the_refusal_is_recorded(api, world):
    (a,) = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 1")
    log = StatementLog(api, world, "police")
    try:
        response = await api.post(ENTITIES, department="market", purpose=None, variables={"r": [person(a)] * 2})
    finally:
        log.close()
    result = response.json()
    assert result["data"]["_entities"] == [None, None] and log.seen == []
    assert codes_at(result) == {("_entities", 0): "PURPOSE_REQUIRED", ("_entities", 1): "PURPOSE_REQUIRED"}
    source = world.row("police", "SELECT name FROM person WHERE id_number = ?", a)
    assert absent(source["name"], response)
    (record,) = await records_of(api, response)
    assert (record.operation, record.outcome, record.error_code, record.row_count) == (
        "entity",
        "denied",
        "PURPOSE_REQUIRED",
        0,
    )


@SQLITE
async def test_a_purpose_not_registered_for_the_department_is_refused(api, world):
    (a,) = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 1")
    # police's own purpose, declared by market: not market's business matter
    response = await api.post(
        ENTITIES, department="market", purpose="police.case-investigation", variables={"r": [person(a)]}
    )
    result = response.json()
    assert result["data"]["_entities"] == [None]
    assert codes_at(result) == {("_entities", 0): "PURPOSE_NOT_REGISTERED"}
    (record,) = await records_of(api, response)
    assert record.error_code == "PURPOSE_NOT_REGISTERED" and record.operation == "entity"


@SQLITE
async def test_a_purpose_without_the_grant_refuses_the_key_as_the_lookup_does(api, world):
    (a,) = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 1")
    lookup = await api.query(
        "query($i: String!) { person(idNumber: $i) { name } }", "market", "market.food-safety", variables={"i": a}
    )
    response = await api.post(ENTITIES, department="market", purpose="market.food-safety", variables={"r": [person(a)]})
    result = response.json()
    assert result["data"]["_entities"] == [None]
    (error,) = result["errors"]
    (looked_up,) = lookup["errors"]
    assert error["extensions"] == looked_up["extensions"]  # PURPOSE_NOT_APPROVED on the key, lookup: true
    assert error["extensions"]["code"] == "PURPOSE_NOT_APPROVED" and error["path"] == ["_entities", 0]


@SQLITE
async def test_a_masked_key_cannot_be_confirmed_by_guessing(api, world):
    # hrss sees ID numbers masked: a representation carrying a guess is a comparison with the masked value
    real = ids(world, "SELECT id_number FROM person WHERE county_code = '371311' ORDER BY id_number LIMIT 1")[0]
    guesses = [real, real[:-1] + ("0" if real[-1] != "0" else "1")]
    log = StatementLog(api, world, "police")
    try:
        response = await api.post(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name countyCode } } }",
            department=HRSS[0],
            purpose=HRSS[1],
            variables={"r": [person(g) for g in guesses]},
        )
    finally:
        log.close()
    result = response.json()
    assert result["data"]["_entities"] == [None, None] and log.seen == []
    for error in result["errors"]:  # the real number and the wrong guess answered alike
        assert (error["extensions"]["code"], error["extensions"]["cause"], error["extensions"]["item"]) == (
            "FILTER_NOT_ALLOWED",
            "MASKED",
            "idNumber",
        )
    assert [e["path"] for e in result["errors"]] == [["_entities", 0], ["_entities", 1]]
    first, second = result["errors"]
    assert first["message"] == second["message"]
    (record,) = await records_of(api, response)
    assert (record.outcome, record.error_code, record.row_count) == ("denied", "FILTER_NOT_ALLOWED", 0)


@SQLITE
async def test_extra_fields_of_a_representation_are_never_answered(api, world):
    (a,) = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 1")
    forged = person(a, phone="13800000000-forged", name="伪造的姓名", address="forged address", __key__idNumber="x")
    response = await api.post(ENTITIES, department=MARKET[0], purpose=MARKET[1], variables={"r": [forged]})
    result = response.json()
    source = world.row("police", "SELECT name, address FROM person WHERE id_number = ?", a)
    (entity,) = result["data"]["_entities"]
    assert entity["name"] == source["name"] and entity["address"] == source["address"] and entity["phone"] is None
    for value in ("13800000000-forged", "伪造的姓名", "forged address"):
        assert absent(value, response)
    # a representation of a person that does not exist is null: nothing of it is made up from its fields
    response = await api.post(
        ENTITIES, department=MARKET[0], purpose=MARKET[1], variables={"r": [person("000000000000000000", name="x")]}
    )
    assert response.json()["data"]["_entities"] == [None]


@SQLITE
async def test_wrong_typenames_and_keys_are_refused_per_representation(api, world):
    (a,) = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 1")
    reps = [
        {"__typename": "Query", "idNumber": a},
        {"__typename": "AccessRecordInfo", "id": 1},
        {"__typename": "NoSuchType", "idNumber": a},
        {"idNumber": a},
        {"__typename": "Person"},
        {"__typename": "Person", "idNumber": 371311},
        {"__typename": "Person", "idNumber": "a\x00b"},
        person(a),
    ]
    response = await api.post(ENTITIES, department=MARKET[0], purpose=MARKET[1], variables={"r": reps})
    result = response.json()
    entities = result["data"]["_entities"]
    assert entities[:7] == [None] * 7 and entities[7]["idNumber"] == a
    codes = codes_at(result)
    assert [codes[("_entities", i)] for i in range(7)] == [
        *["ENTITY_TYPE_UNKNOWN"] * 4,
        "REPRESENTATION_INVALID",
        "REPRESENTATION_INVALID",
        "FILTER_VALUE_INVALID",
    ]
    assert absent("NoSuchType", response)  # the caller's text is not echoed
    (record,) = await records_of(api, response)  # the valid one only
    assert record.row_count == 1


@SQLITE
async def test_a_not_shared_resource_is_refused_as_its_lookup(api, world):
    subsidy = world.rows("civil", "SELECT subsidy_id FROM subsidy LIMIT 1")[0]["subsidy_id"]
    lookup = await api.query(
        "query($s: String!) { subsidy(subsidyId: $s) { monthlyAmount } }", *MARKET, variables={"s": subsidy}
    )
    response = await api.post(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Subsidy { monthlyAmount } } }",
        department=MARKET[0],
        purpose=MARKET[1],
        variables={"r": [{"__typename": "Subsidy", "subsidyId": subsidy}]},
    )
    result = response.json()
    assert result["data"]["_entities"] == [None]
    (error,) = result["errors"]
    (looked_up,) = lookup["errors"]
    assert error["extensions"] == looked_up["extensions"] and error["extensions"]["code"] == "NOT_SHARED"
    (record,) = await records_of(api, response)
    assert (record.resource, record.operation, record.outcome) == ("civil.subsidy", "entity", "denied")


async def test_rows_outside_the_scope_are_null_as_a_lookup_says(own_api, own_world):
    api, world = own_api, own_world
    await grant_in_force(
        api,
        "land",
        ["idNumber", "name", "countyCode"],
        ["land.property-registration"],
        scope={"countyCode": ["371311"]},
    )
    inside = ids(world, "SELECT id_number FROM person WHERE county_code = '371311' ORDER BY id_number LIMIT 1")[0]
    outside = ids(world, "SELECT id_number FROM person WHERE county_code = '371302' ORDER BY id_number LIMIT 1")[0]
    lookup = await api.query(
        "query($i: String!) { person(idNumber: $i) { name } }",
        "land",
        "land.property-registration",
        variables={"i": outside},
    )
    response = await api.post(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { idNumber name } } }",
        department="land",
        purpose="land.property-registration",
        variables={"r": [person(outside), person(inside)]},
    )
    result = response.json()
    entities = result["data"]["_entities"]
    assert entities[0] is None and entities[1]["idNumber"] == inside
    (looked_up,) = lookup["errors"]
    assert looked_up["extensions"]["code"] == "NOT_FOUND_IN_SCOPE"
    (error,) = result["errors"]
    assert error["path"] == ["_entities", 0] and error["extensions"] == looked_up["extensions"]
    name = world.row("police", "SELECT name FROM person WHERE id_number = ?", outside)["name"]
    assert absent(name, response)
    (record,) = await records_of(api, response)
    assert record.row_count == 1 and record.outcome == "allowed"
    # none of them in scope: the record says the entity fetch was refused by the scope, as a lookup's does
    response = await api.post(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }",
        department="land",
        purpose="land.property-registration",
        variables={"r": [person(outside)]},
    )
    assert response.json()["data"]["_entities"] == [None]
    (record,) = await records_of(api, response)
    assert (record.outcome, record.error_code, record.row_count) == ("denied", "NOT_FOUND_IN_SCOPE", 0)


@SQLITE
async def test_a_huge_representation_list_is_refused_before_anything_is_read(api, world):
    limit = world.settings.max_representations
    log = StatementLog(api, world, "police")
    try:
        response = await api.post(
            ENTITIES,
            department=MARKET[0],
            purpose=MARKET[1],
            variables={"r": [person(str(i)) for i in range(limit + 1)]},
        )
    finally:
        log.close()
    result = response.json()
    assert result["data"] is None and log.seen == []
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "REPRESENTATIONS_TOO_MANY" and error["path"] == ["_entities"]
    assert await records_of(api, response) == []


@SQLITE
async def test_representations_in_the_document_are_decided_alike(api, world):
    (a,) = ids(world, "SELECT id_number FROM person ORDER BY id_number LIMIT 1")
    query = '{ _entities(representations: [{__typename: "Person", idNumber: "%s", phone: "x"}]) { ... on Person { phone name } } }'
    response = await api.post(query % a, department=MARKET[0], purpose=MARKET[1])
    result = response.json()
    source = world.row("police", "SELECT name FROM person WHERE id_number = ?", a)
    assert result["data"]["_entities"] == [{"phone": None, "name": source["name"]}]
    assert codes_at(result) == {("_entities", 0, "phone"): "NOT_SHARED"}


# -- production: the department's view -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def production_api(tmp_path_factory):
    from tests.conftest import _world

    world = await _world(tmp_path_factory.mktemp("var-federation-production"))
    async for api in _api(world, production(world.settings)):
        yield api


async def test_production_service_sdl_is_the_department_view(production_api):
    api = production_api
    sdl = lambda result: result["data"]["_service"]["sdl"]
    land = await api.query("{ _service { sdl } }", "land", None)
    market = await api.query("{ _service { sdl } }", "market", None)
    full = api.app.state.runtime.schema.federation_sdl()
    for text in (sdl(land), sdl(market)):
        parse(text)
        assert '@link(url: "https://specs.apollo.dev/federation/v2.11"' in text
    # land reads the unconditional items of persons (gender...) but not their ID numbers: Person is no entity for it
    assert "type Person" in full and "type Subsidy" in full
    assert 'type Person @key(fields: "idNumber")' in full
    assert "type Person {" in sdl(land) and "idNumber" not in sdl(land).split("type Person {")[1].split("}")[0]
    assert "type Enterprise @key" in sdl(land)
    assert "legalRepIdNumber" not in sdl(land)  # a conditional item land has no grant for
    person_type = sdl(market).split("type Person")[1].split("}")[0]
    assert "idNumber" in person_type and "name" in person_type and "phone" not in person_type
    assert "Subsidy" not in sdl(market)
    union = next(line for line in sdl(market).splitlines() if line.startswith("union _Entity"))
    assert "Person" in union and "Subsidy" not in union


async def test_production_entities_of_a_type_outside_the_view_are_unknown(production_api):
    api = production_api
    world = api.world
    subsidy = world.rows("civil", "SELECT subsidy_id FROM subsidy LIMIT 1")[0]["subsidy_id"]
    (a,) = [r["id_number"] for r in world.rows("police", "SELECT id_number FROM person ORDER BY id_number LIMIT 1")]
    # selecting the type at all fails validation, as its lookup does
    for query in (
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Subsidy { monthlyAmount } } }",
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { phone } } }",
    ):
        result = await api.query(query, *MARKET, variables={"r": []})
        assert "data" not in result and result["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID"
        assert "Subsidy" not in json.dumps(result["errors"]) or "Subsidy" in query
    # land cannot read persons' ID numbers: no Person among its entities, as no person lookup
    for query in (
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { gender } } }",
        "query($i: String!) { person(idNumber: $i) { gender } }",
    ):
        result = await api.query(query, "land", "land.property-registration", variables={"r": [], "i": a})
        assert "data" not in result and result["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID"
    response = await api.post(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Enterprise { name } } }",
        department="land",
        purpose="land.property-registration",
        variables={"r": [person(a)]},
    )
    result = response.json()
    assert result["data"]["_entities"] == [None] and codes_at(result) == {("_entities", 0): "ENTITY_TYPE_UNKNOWN"}
    assert await records_of(api, response) == []
    # a representation of a type outside the view, under a selection the view has: unknown, nothing read
    response = await api.post(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }",
        department=MARKET[0],
        purpose=MARKET[1],
        variables={"r": [{"__typename": "Subsidy", "subsidyId": subsidy}, person(a)]},
    )
    result = response.json()
    assert result["data"]["_entities"][0] is None and result["data"]["_entities"][1]["name"]
    assert codes_at(result) == {("_entities", 0): "ENTITY_TYPE_UNKNOWN"}
    records = await records_of(api, response)
    assert [(r.resource, r.operation) for r in records] == [("police.person", "entity")]


async def test_production_entities_are_decided_and_recorded(production_api):
    api = production_api
    (a,) = [r["id_number"] for r in api.world.rows("police", "SELECT id_number FROM person ORDER BY id_number LIMIT 1")]
    response = await api.post(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }",
        department="market",
        purpose=None,
        variables={"r": [person(a)]},
    )
    result = response.json()
    assert result["data"]["_entities"] == [None] and codes_at(result) == {("_entities", 0): "PURPOSE_REQUIRED"}
    (record,) = await records_of(api, response)
    assert record.operation == "entity" and record.error_code == "PURPOSE_REQUIRED"


# -- the command -------------------------------------------------------------------------------------------------


@SQLITE
async def test_the_command_prints_the_servers_whole_subgraph_sdl(api, world, tmp_path):
    from tests.conftest import REPO
    from tests.test_cli import govshare_in_process

    (tmp_path / "var").symlink_to(world.settings.var_dir)
    assert world.settings.catalog_dir == REPO / "catalog" / "demo"
    # the command runs its own event loop: in a thread of its own
    federation = await asyncio.to_thread(govshare_in_process, tmp_path, "schema", "sdl", "--federation")
    assert federation.returncode == 0, federation.stderr
    assert federation.stdout.strip() == api.app.state.runtime.schema.federation_sdl().strip()
    plain = await asyncio.to_thread(
        govshare_in_process, tmp_path, "schema", "sdl", "-o", str(tmp_path / "plain.graphql")
    )
    assert plain.returncode == 0 and plain.stdout == ""
    text = (tmp_path / "plain.graphql").read_text()
    parse(text)
    assert "type Person {" in text and '@key(fields: "idNumber")' not in text and "schema @link" not in text
