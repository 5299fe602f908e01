"""A scoped grant on the one conditional item of an unconditional resource (DOMAIN.md "How the rules combine",
"Several grants"; README "How grants combine"): the rows a query sees are the union of the scopes of the granted
items it touches (selects, looks up or links by), and items shared unconditionally add no rows and restrict none.

land (自然资源局) reads market.enterprise, shared unconditionally but for legalRepIdNumber (conditional). Granted
legalRepIdNumber in 罗庄区 only, a query selecting it sees 罗庄区's enterprises only, with the number in every row;
the other counties' enterprises are not returned with the number null, since no grant covers any row there (their
unconditional items are no grant and add no rows: the narrowing of Hasura's inherited roles that keeps an
unconditional item from flooding a scoped list with empty rows). A query selecting unconditional items only still
sees every row. The list (short and generic execution paths), the lookup and both sides of a link agree.
"""

from __future__ import annotations

from sqlalchemy import select
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from audit.tables import access_records
from schema.execution import FlatListExecutor
from schema.plans import PlanExecutor
from tests.conftest import absent, errors_by_item, grant_in_force

PURPOSE = "land.property-registration"
LUOZHUANG = "371311"  # 罗庄区
LIST = "{ enterpriseList(first: 200) { items { creditCode name legalRepName countyCode legalRepIdNumber } } }"
UNCONDITIONAL_ONLY = "{ enterpriseList(first: 200) { items { creditCode name legalRepName countyCode } } }"


def _source(world) -> list[dict]:
    return world.rows(
        "market", "SELECT credit_code, name, legal_rep_name, county_code, legal_rep_id_number FROM enterprise"
    )


async def _grant_the_number_in_luozhuang(api) -> str:
    return await grant_in_force(
        api, "land", ["legalRepIdNumber"], [PURPOSE], scope={"countyCode": [LUOZHUANG]}, resource="market.enterprise"
    )


async def _on_both_paths(api, query: str, monkeypatch) -> dict:
    """The answer of the short path for flat lists, after checking that it took it and that the compiled plans and
    graphql-core's generic path answer the same."""
    used = []
    original = FlatListExecutor._make_plan

    def spying(self, *args):
        plan = original(self, *args)
        used.append(plan is not None)
        return plan

    planned = await api.query(query, "land", PURPOSE)  # the compiled plans answer resource fields first
    with monkeypatch.context() as patch:
        patch.setattr(PlanExecutor, "plans", False)
        patch.setattr(FlatListExecutor, "_make_plan", spying)
        short = await api.query(query, "land", PURPOSE)
    assert any(used)
    with monkeypatch.context() as patch:
        patch.setattr(PlanExecutor, "plans", False)
        patch.setattr(
            FlatListExecutor, "complete_list_value", StrawberryGraphQLCoreExecutionContext.complete_list_value
        )
        generic = await api.query(query, "land", PURPOSE)
    assert planned == short == generic
    return short


async def _last_record(api) -> object:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await conn.execute(select(access_records).order_by(access_records.c.id.desc()).limit(1))).one()


async def test_a_scoped_grant_on_the_conditional_item_makes_its_scope_the_rows(own_api, own_world, monkeypatch):
    source = sorted(_source(own_world), key=lambda r: r["credit_code"])
    first_page = source[:200]
    # Without a grant: every row (unconditional items only are allowed), the number null with one NO_GRANT.
    before = await _on_both_paths(own_api, LIST, monkeypatch)
    rows = before["data"]["enterpriseList"]["items"]
    assert [r["creditCode"] for r in rows] == [s["credit_code"] for s in first_page]
    assert len({r["countyCode"] for r in rows}) > 1 and {LUOZHUANG} < {r["countyCode"] for r in rows}
    assert all(r["legalRepIdNumber"] is None for r in rows)
    assert errors_by_item(before) == {"legalRepIdNumber": "NO_GRANT"}

    grant = await _grant_the_number_in_luozhuang(own_api)
    after = await _on_both_paths(own_api, LIST, monkeypatch)
    in_scope = [s for s in source if s["county_code"] == LUOZHUANG][:200]
    assert len(in_scope) < len(first_page)
    expected = [
        {
            "creditCode": s["credit_code"],
            "name": s["name"],
            "legalRepName": s["legal_rep_name"],
            "countyCode": s["county_code"],
            "legalRepIdNumber": s["legal_rep_id_number"],
        }
        for s in in_scope
    ]
    assert after["data"]["enterpriseList"]["items"] == expected
    assert "errors" not in after  # the number is shown in every row the query sees: no ITEM_OUT_OF_SCOPE
    shown = {s["legal_rep_id_number"] for s in in_scope}  # a person may represent enterprises in several counties
    for s in first_page:  # no row of another county: neither its unconditional items nor its number
        if s["county_code"] != LUOZHUANG:
            assert absent(s["credit_code"], after), s
            assert s["legal_rep_id_number"] in shown or absent(s["legal_rep_id_number"], after), s
    record = await _last_record(own_api)
    assert (record.resource, record.operation, record.row_count) == ("market.enterprise", "list", len(in_scope))
    assert record.grants_used == [grant] and record.items_denied == {}

    # Unconditional items only: the grant adds no rows and restricts none.
    unconditional = await _on_both_paths(own_api, UNCONDITIONAL_ONLY, monkeypatch)
    assert unconditional["data"]["enterpriseList"]["items"] == [
        {k: v for k, v in r.items() if k != "legalRepIdNumber"} for r in rows
    ]
    assert "errors" not in unconditional


async def test_a_lookup_beside_the_scoped_item_finds_only_records_in_its_scope(own_api, own_world):
    source = sorted(_source(own_world), key=lambda r: r["credit_code"])
    inside = next(s for s in source if s["county_code"] == LUOZHUANG)
    outside = next(s for s in source if s["county_code"] != LUOZHUANG)
    await _grant_the_number_in_luozhuang(own_api)

    def lookup(s: dict, selection: str) -> str:
        return f'{{ enterprise(creditCode: "{s["credit_code"]}") {{ {selection} }} }}'

    found = await own_api.query(lookup(inside, "name legalRepIdNumber"), "land", PURPOSE)
    assert found["data"]["enterprise"] == {"name": inside["name"], "legalRepIdNumber": inside["legal_rep_id_number"]}
    assert "errors" not in found
    refused = await own_api.query(lookup(outside, "name legalRepIdNumber"), "land", PURPOSE)
    assert refused["data"]["enterprise"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["NOT_FOUND_IN_SCOPE"]
    assert refused["errors"][0]["path"] == ["enterprise"]
    assert absent(outside["name"], refused) and absent(outside["legal_rep_id_number"], refused)
    # Its unconditional items alone: found wherever it is.
    anywhere = await own_api.query(lookup(outside, "name countyCode"), "land", PURPOSE)
    assert anywhere["data"]["enterprise"] == {"name": outside["name"], "countyCode": outside["county_code"]}
    assert "errors" not in anywhere


async def test_a_link_by_the_scoped_item_sees_only_its_scope_on_either_side(own_api, own_world):
    source = sorted(_source(own_world), key=lambda r: r["credit_code"])
    inside = next(s for s in source if s["county_code"] == LUOZHUANG)
    outside = next(s for s in source if s["county_code"] != LUOZHUANG)
    await _grant_the_number_in_luozhuang(own_api)
    await grant_in_force(own_api, "land", ["idNumber", "name"], [PURPOSE])  # police.person, every row

    # person -> enterprises, joined on legalRepIdNumber: the enterprises in its scope only.
    def person(s: dict) -> str:
        return (
            f'{{ person(idNumber: "{s["legal_rep_id_number"]}") {{ enterprises {{ creditCode name countyCode }} }} }}'
        )

    linked = await own_api.query(person(inside), "land", PURPOSE)
    assert {"creditCode": inside["credit_code"], "name": inside["name"], "countyCode": LUOZHUANG} in linked["data"][
        "person"
    ]["enterprises"]
    assert all(e["countyCode"] == LUOZHUANG for e in linked["data"]["person"]["enterprises"])
    assert "errors" not in linked
    not_linked = await own_api.query(person(outside), "land", PURPOSE)
    assert all(e["countyCode"] == LUOZHUANG for e in not_linked["data"]["person"]["enterprises"])
    assert absent(outside["credit_code"], not_linked)

    # enterprise -> legalRepresentative, joined on legalRepIdNumber (touched, not selected): 罗庄区's rows only.
    listed = await own_api.query(
        "{ enterpriseList(first: 200) { items { creditCode countyCode legalRepresentative { name } } } }",
        "land",
        PURPOSE,
    )
    rows = listed["data"]["enterpriseList"]["items"]
    assert [r["creditCode"] for r in rows] == [s["credit_code"] for s in source if s["county_code"] == LUOZHUANG]
    assert all(r["legalRepresentative"] is not None for r in rows)
    assert "errors" not in listed
