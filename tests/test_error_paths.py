"""Every error's `path` is a path of the answer (GraphQL over HTTP, issue 13): one error per denied item, pointed at
the item's field in the first row that has it, or at the nearest field there is (an empty page, a null lookup, a
list refused whole); through lookups, lists, links, nested links and aliases."""

from __future__ import annotations

import pytest

MARKET = ("market", "market.licence-review")
LAND = ("land", "land.property-registration")
HRSS = ("hrss", "hrss.insurance-enrolment")


def resolves(path: list, data) -> bool:
    """``path`` names a field of ``data`` (its value may be null): every key is there, every index in its list."""
    value = data
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not 0 <= step < len(value):
                return False
        elif not isinstance(value, dict) or step not in value:
            return False
        value = value[step]
    return True


def _queries(world) -> list[tuple[str, tuple[str, str], dict, list[list]]]:
    """(query, caller, variables, the paths its errors must have)."""
    person = world.showcase["person_luozhuang"]
    return [
        # a page: the denied item at its first row
        ("{ personList(first: 3) { items { name phone } } }", MARKET, {}, [["personList", "items", 0, "phone"]]),
        # an empty page: the list itself
        (
            '{ personList(first: 3, filter: {countyCode: {eq: "379999"}}) { items { name phone } } }',
            MARKET,
            {},
            [["personList", "items"]],
        ),
        # nothing selected may be read: the page is null, the error at it
        ("{ personList(first: 3) { items { phone } } }", MARKET, {}, [["personList"]]),
        # aliases: the response keys
        (
            "{ p: personList(first: 2) { rows: items { n: name tel: phone } } }",
            MARKET,
            {},
            [["p", "rows", 0, "tel"]],
        ),
        # a lookup, and one that found nothing
        ("query($id: String!) { person(idNumber: $id) { name phone } }", MARKET, {"id": person}, [["person", "phone"]]),
        (
            'query { person(idNumber: "371311190001010000") { name phone } }',
            MARKET,
            {},
            [["person"]],
        ),
        # a lookup outside the caller's scope: NOT_FOUND_IN_SCOPE at the lookup
        ('{ person(idNumber: "371302199001010000") { name } }', HRSS, {}, [["person"]]),
        # links and nested links: the first parent row that has the linked field
        (
            "query($id: String!) { person(idNumber: $id) { name enterprises { name socialInsurance { name monthlyBase } } realEstates { address } } }",
            MARKET,
            {"id": person},
            [["person", "enterprises", 0, "socialInsurance", 0, "monthlyBase"], ["person", "realEstates"]],
        ),
        # a link refused for every parent row (its key denied): once, at the first row's link field
        (
            "{ personList(first: 5) { items { gender enterprises { name } } } }",
            LAND,
            {},
            [["personList", "items", 0, "enterprises"]],
        ),
        # a hop whose linked records are missing for the first parents: the first parent whose link has the field
        (
            "{ enterpriseList(first: 20) { items { name socialInsurance { name monthlyBase } } } }",
            MARKET,
            {},
            None,
        ),
        # federation's _entities: a denied item at the first entity, and a link under the entities
        (
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name phone } } }",
            MARKET,
            {"r": [{"__typename": "Person", "idNumber": person}]},
            [["_entities", 0, "phone"]],
        ),
        (
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name enterprises { name "
            "socialInsurance { name monthlyBase } } realEstates { address } } } }",
            MARKET,
            {"r": [{"__typename": "Person", "idNumber": person}]},
            [["_entities", 0, "enterprises", 0, "socialInsurance", 0, "monthlyBase"], ["_entities", 0, "realEstates"]],
        ),
    ]


@pytest.mark.parametrize("index", range(12))
async def test_every_error_path_resolves_in_the_data(api, world, index):
    query, (department, purpose), variables, expected = _queries(world)[index]
    result = await api.query(query, department, purpose, variables=variables)
    assert result.get("errors"), result
    for error in result["errors"]:
        assert resolves(error["path"], result["data"]), (error["path"], error["extensions"]["code"])
    if expected is not None:
        assert sorted(e["path"] for e in result["errors"]) == sorted(expected), result["errors"]


async def test_a_denied_item_under_a_link_points_at_a_parent_whose_link_has_a_record(api):
    """Many persons have no social-insurance record (the link is null): the error of an item denied in the linked
    resource goes to the first person whose link has a record (market may not read the monthly base)."""
    result = await api.query(
        "{ personList(first: 100) { items { name socialInsurance { name monthlyBase } } } }", *MARKET
    )
    items = result["data"]["personList"]["items"]
    first = next(i for i, row in enumerate(items) if row["socialInsurance"])
    assert first > 0 and items[0]["socialInsurance"] is None  # the first row has nothing to point at
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "NO_GRANT" and error["extensions"]["item"] == "monthlyBase"
    assert error["path"] == ["personList", "items", first, "socialInsurance", "monthlyBase"]
