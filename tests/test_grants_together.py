"""Several grants for one consumer, decided together (Art 19, 21; DOMAIN.md "How the rules combine").

A department outside the demo's grants (land, 自然资源局) is given overlapping grants on police.person; every
row and every value of the answer is compared with the source, row by row: an item is shown in a row when
some grant covering the item covers the row, masked only when every such grant masks it; the rows are the
union of the scopes; the source is asked once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.masking import department_key, parse_mask, pseudonym
from tests.conftest import StatementLog, absent, errors_by_item, grant_in_force

PURPOSE = "land.property-registration"
A, B, C = "371311", "371302", "371312"  # 罗庄区, 兰山区, 河东区


async def _grant(api, items, *, scope=None, masks=None):
    return await grant_in_force(api, "land", items, [PURPOSE], scope=scope, masks=masks)


async def _overlapping(api):
    """A masked and an unmasked grant on `name` in county A; `idNumber` in A and B; `address` in county B only;
    `householdId` masked everywhere (a grant without a scope: every row is seen) but in clear in A."""
    return [
        await _grant(api, ["idNumber", "name"], scope={"countyCode": [A]}, masks={"name": "name"}),
        await _grant(api, ["name"], scope={"countyCode": [A]}),
        await _grant(api, ["idNumber", "address"], scope={"countyCode": [B]}),
        await _grant(api, ["householdId"], masks={"householdId": "keep:6,2"}),
        await _grant(api, ["householdId"], scope={"countyCode": [A]}),
    ]


async def test_overlapping_grants_are_decided_together_row_by_row(own_api, own_world):
    await _overlapping(own_api)
    police = StatementLog(own_api, own_world, "police")
    try:
        result = await own_api.query(
            "{ personList(first: 200) { items { idNumber name address householdId countyCode } } }", "land", PURPOSE
        )
    finally:
        police.close()
    assert len(police.seen) == 1, police.seen  # one statement: scopes and masks are in the SQL
    rows = result["data"]["personList"]["items"]
    # householdId's masked grant has no scope: it covers every row, so every row is seen. idNumber is not shown in
    # every row, so the rows come in the order of its pseudonym for land, not in the (partly hidden) key's order.
    key = bytes.fromhex(department_key(own_api.app.state.runtime.pseudonym_secret, "land"))
    source = sorted(own_world.rows("police", "SELECT * FROM person"), key=lambda r: pseudonym(key, r["id_number"]))[
        :200
    ]
    assert [r["countyCode"] for r in rows] == [s["county_code"] for s in source]
    assert {A, B, C} <= {r["countyCode"] for r in rows}
    household = parse_mask("keep:6,2")
    for row, raw in zip(rows, source, strict=True):
        county = raw["county_code"]
        # name in A: masked by one grant, in clear by another covering the same rows: in clear
        expected = {
            "idNumber": raw["id_number"] if county in (A, B) else None,
            "name": raw["name"] if county == A else None,
            "address": raw["address"] if county == B else None,
            "householdId": raw["household_id"] if county == A else household.apply(raw["household_id"]),
            "countyCode": county,
        }
        assert row == expected, (row, raw)
        if county != A:  # household numbers are unique (names are not: another row may lawfully show the same name)
            assert absent(raw["household_id"], result)
    # An item shown in some of the rows only is null in the others, with one error each, at a real field.
    errors = {e["extensions"]["item"]: e for e in result["errors"]}
    assert set(errors) == {"idNumber", "name", "address"}
    assert {e["extensions"]["code"] for e in errors.values()} == {"ITEM_OUT_OF_SCOPE"}
    assert len(result["errors"]) == 3


async def test_a_filter_on_any_granted_scope_is_answered_and_outside_all_is_refused(own_api, own_world):
    await _overlapping(own_api)
    in_b = await own_api.query(
        f'{{ personList(filter: {{countyCode: {{eq: "{B}"}}}}, first: 50) {{ items {{ address }} }} }}', "land", PURPOSE
    )
    source = own_world.rows("police", "SELECT address FROM person WHERE county_code = ? ORDER BY id_number LIMIT 50", B)
    assert [r["address"] for r in in_b["data"]["personList"]["items"]] == [s["address"] for s in source]
    outside = await own_api.query(
        f'{{ personList(filter: {{countyCode: {{in: ["{B}", "{C}"]}}}}) {{ items {{ name }} }} }}', "land", PURPOSE
    )
    assert outside["data"]["personList"] is None
    assert outside["errors"][0]["extensions"]["code"] == "OUT_OF_SCOPE"


async def test_a_filter_on_an_item_matches_only_rows_that_show_it(own_api, own_world):
    await _overlapping(own_api)
    await _grant(own_api, ["address"], scope={"countyCode": [C]})  # C's rows are seen, without their idNumber
    person_c = own_world.row("police", "SELECT * FROM person WHERE county_code = ? LIMIT 1", C)
    query = f'{{ personList(filter: {{idNumber: {{eq: "{person_c["id_number"]}"}}}}) {{ items {{ address }} }} }}'
    found = await own_api.query(query, "land", PURPOSE)
    # Matching idNumber in C's rows would tie this address to a number the caller may not read there.
    assert found["data"]["personList"]["items"] == []
    assert absent(person_c["address"], found)
    listed = await own_api.query(
        f'{{ personList(filter: {{countyCode: {{eq: "{C}"}}}}, first: 5) {{ items {{ idNumber address }} }} }}',
        "land",
        PURPOSE,
    )
    assert [r["idNumber"] for r in listed["data"]["personList"]["items"]] == [None] * 5


async def test_a_lookup_sees_the_union_and_nothing_outside_it(own_api, own_world):
    await _overlapping(own_api)
    query = "query($id: String!) { person(idNumber: $id) { name address } }"
    person_b = own_world.row("police", "SELECT * FROM person WHERE county_code = ? LIMIT 1", B)
    found = await own_api.query(query, "land", PURPOSE, variables={"id": person_b["id_number"]})
    assert found["data"]["person"] == {"name": None, "address": person_b["address"]}
    assert errors_by_item(found) == {"name": "ITEM_OUT_OF_SCOPE"}
    person_c = own_world.row("police", "SELECT * FROM person WHERE county_code = ? LIMIT 1", C)
    outside = await own_api.query(query, "land", PURPOSE, variables={"id": person_c["id_number"]})
    assert outside["data"]["person"] is None
    assert [e["extensions"]["code"] for e in outside["errors"]] == ["NOT_FOUND_IN_SCOPE"]
    assert absent(person_c["name"], outside) and absent(person_c["address"], outside)


async def test_a_masked_and_an_unmasked_grant_give_the_value_in_clear(own_api, own_world):
    await _grant(own_api, ["idNumber", "name"], masks={"name": "name"})
    await _grant(own_api, ["name"])
    result = await own_api.query("{ personList(first: 30) { items { idNumber name } } }", "land", PURPOSE)
    source = own_world.rows("police", "SELECT id_number, name FROM person ORDER BY id_number LIMIT 30")
    assert result["data"]["personList"]["items"] == [{"idNumber": s["id_number"], "name": s["name"]} for s in source]
    assert "errors" not in result


async def test_explain_lists_every_contributing_grant_and_scope(own_api):
    from policies.explain import describe_cover, explain

    ids = await _overlapping(own_api)
    runtime = own_api.app.state.runtime
    result = explain(runtime.policy, "land", PURPOSE, "police.person", datetime(2026, 12, 1, tzinfo=UTC))
    items = {i.item: i for i in result.items}
    assert [describe_cover(c) for c in items["name"].covers] == [
        f"{ids[0]}: countyCode ∈ {A} · name",
        f"{ids[1]}: countyCode ∈ {A}",
    ]
    assert [describe_cover(c) for c in items["householdId"].covers] == [
        f"{ids[3]}: * · keep:6,2",
        f"{ids[4]}: countyCode ∈ {A}",
    ]
    assert items["householdId"].mask is None  # not masked in every row
    assert result.row_scopes == ()  # householdId's grant has no scope: a query selecting every item sees every row
