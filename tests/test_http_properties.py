"""Random grants, restrictions, clocks and queries over HTTP on the demo world: every item of every answer
is what the independent reference says (tests/test_policy_properties.py), value for value."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from catalog.model import ShareType
from connectors.masking import department_key, parse_mask, pseudonym
from govshare.errors import GovshareError
from govshare.platformdb import bump_policy_version
from policies import documents
from policies.store import create_grant, load_policy_set
from policies.tables import grants
from tests.conftest import _api, _world, absent, examples
from tests.test_policy_properties import reference

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RESOURCES = {
    "police.person": "personList",
    "hrss.social-insurance": "socialInsuranceList",
    "civil.marriage": "marriageList",
}
CONSUMERS = ["market", "land", "civil", "hrss", "bigdata"]
EXAMPLES = examples("GOVSHARE_HTTP_PROPERTY_EXAMPLES", suite=20, deep=60)


@st.composite
def scenarios(draw, catalog):
    made = []
    for _ in range(draw(st.integers(0, 4))):
        resource = catalog.resources[draw(st.sampled_from(sorted(RESOURCES)))]
        consumer = draw(st.sampled_from([c for c in CONSUMERS if c != resource.provider]))
        items = draw(st.lists(st.sampled_from([i.name for i in resource.items]), unique=True, min_size=1, max_size=4))
        purposes = [p.code for p in catalog.purposes.values() if p.department == consumer]
        start = draw(st.integers(-20, 20))
        made.append(
            dict(
                consumer=consumer,
                resource=resource.code,
                items=items,
                purposes=draw(st.lists(st.sampled_from(purposes), unique=True, min_size=1)),
                valid_from=NOW + timedelta(days=start),
                valid_until=NOW + timedelta(days=start + draw(st.integers(1, 40))),
                legal_basis="法"
                if any(resource.share_type_of(resource.item(i)) == ShareType.NOT_SHARED for i in items)
                else None,
            )
        )
    restricted = draw(
        st.lists(st.tuples(st.sampled_from(CONSUMERS), st.sampled_from(["*", *sorted(RESOURCES)])), max_size=1)
    )
    department = draw(st.sampled_from(CONSUMERS))
    purpose = draw(st.sampled_from([p.code for p in catalog.purposes.values() if p.department == department]))
    resource = catalog.resources[draw(st.sampled_from(sorted(RESOURCES)))]
    asked = draw(st.lists(st.sampled_from([i.name for i in resource.items]), unique=True, min_size=1, max_size=4))
    return made, restricted, department, purpose, resource.code, asked


def _over_http(tmp_path_factory, scenarios_of, one_of) -> None:
    """Runs ``one_of(world, api)`` on every scenario ``scenarios_of(catalog)`` draws, against one demo world and app
    kept across the examples (hypothesis drives a synchronous test; the app lives on its own event loop)."""

    async def setup():
        world = await _world(tmp_path_factory.mktemp("var"))
        agen = _api(world, clock=lambda: NOW)
        return world, agen, await agen.__anext__()

    loop = asyncio.new_event_loop()
    world, agen, api = loop.run_until_complete(setup())
    one = one_of(world, api)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(scenario=scenarios_of(api.app.state.runtime.catalog))
    def check(scenario):
        loop.run_until_complete(one(scenario))

    try:
        check()
    finally:

        async def close():
            with contextlib.suppress(StopAsyncIteration):
                await agen.__anext__()

        loop.run_until_complete(close())
        loop.close()


def test_every_answer_matches_the_reference(tmp_path_factory):
    _over_http(tmp_path_factory, scenarios, _answers_as_the_reference)


def _answers_as_the_reference(world, api):
    runtime = api.app.state.runtime
    catalog = runtime.catalog

    async def one(scenario):
        made, restricted, department, purpose, code, asked = scenario
        async with runtime.engine.begin() as conn:
            await conn.execute(delete(grants))
            for grant in made:
                await create_grant(conn, catalog, created_by="test", **grant)
            deny = tuple(documents.DenyRule(f"D-{n}", who, what, "test") for n, (who, what) in enumerate(restricted))
            await documents.save(conn, catalog, documents.PolicyDocument(deny=deny), author="test", reason="test")
            await bump_policy_version(conn)
            policies = await load_policy_set(conn)
        await runtime.refresh()
        field = RESOURCES[code]
        result = await api.query(f"{{ {field}(first: 5) {{ items {{ {' '.join(asked)} }} }} }}", department, purpose)
        expected = {item: reference(catalog, policies, department, purpose, code, item, NOW) for item in asked}
        codes = {e["extensions"].get("item"): e["extensions"]["code"] for e in result.get("errors", [])}
        if not any(expected.values()):
            assert result["data"][field] is None and set(codes) == set(asked), (scenario, result)
            return
        rows = result["data"][field]["items"]
        resource = catalog.resources[code]
        key_column = resource.item(resource.key).column
        source = world.rows(resource.provider, f"SELECT * FROM {resource.table} ORDER BY {key_column}")
        if not reference(catalog, policies, department, purpose, code, resource.key, NOW):
            # a key the caller may not read does not order its rows: its pseudonym for the department does
            secret = bytes.fromhex(department_key(runtime.pseudonym_secret, department))
            source.sort(key=lambda row: pseudonym(secret, str(row[key_column])))
        source = source[:5]
        assert len(rows) == len(source)
        for item, allowed in expected.items():
            column = resource.item(item).column
            if allowed:
                assert [r[item] for r in rows] == [s[column] for s in source]
                assert item not in codes
            else:
                assert all(r[item] is None for r in rows) and item in codes, (scenario, item, result)

    return one


# --- several grants with scopes and masks, over HTTP, value for value ------------------------------------------

LAND = "land.property-registration"
COUNTIES = ["371311", "371302", "371312"]
GRANTABLE = ["idNumber", "name", "address", "ethnicity", "householdId"]
TEXT_MASKS = {
    "name": ["keep:1,0", "nullify"],
    "address": ["keep:0,3", "nullify"],
    "ethnicity": ["nullify"],
    "householdId": ["keep:6,2"],
    "idNumber": ["hash"],
}


@st.composite
def overlapping(draw):
    grants_made = []
    for n in range(draw(st.integers(1, 4))):
        items = draw(st.lists(st.sampled_from(GRANTABLE), unique=True, min_size=1, max_size=3))
        if n == 0 and "idNumber" not in items and draw(st.integers(0, 4)):  # mostly a key to look up by
            items.append("idNumber")
        masks = {
            i: draw(st.sampled_from(TEXT_MASKS[i]))
            for i in items
            if draw(st.booleans()) and (i != "idNumber" or not draw(st.integers(0, 5)))
        }
        scope = draw(st.lists(st.sampled_from(COUNTIES), unique=True, max_size=2))
        grants_made.append(dict(items=items, masks=masks, row_scope={"countyCode": scope} if scope else {}))
    asked = draw(st.lists(st.sampled_from([*GRANTABLE, "gender", "countyCode"]), unique=True, min_size=1, max_size=4))
    return grants_made, asked


def expected_lookup(made: list[dict], asked: list[str], person: dict) -> tuple[dict | None, set[str]]:
    """DOMAIN.md's rule for a lookup by ID number, straight from the grants: (the answer, the error codes)."""
    unconditional = {"gender", "countyCode"}
    column = {
        "idNumber": "id_number",
        "name": "name",
        "address": "address",
        "ethnicity": "ethnicity",
        "householdId": "household_id",
        "gender": "gender",
        "countyCode": "county_code",
    }

    def covering(item):
        return [
            g
            for g in made
            if item in g["items"] and person["county_code"] in g["row_scope"].get("countyCode", [person["county_code"]])
        ]

    keyed = [g for g in made if "idNumber" in g["items"]]
    if not keyed:
        return None, {"NO_GRANT"}
    if any("idNumber" in g["masks"] for g in keyed):
        return None, {"FILTER_NOT_ALLOWED"}
    codes = {"NO_GRANT" for i in asked if i not in unconditional and not any(i in g["items"] for g in made)}
    if not any(i in unconditional or any(i in g["items"] for g in made) for i in asked):
        return None, codes  # nothing asked may be read: nothing is looked up
    touched = [i for i in {*asked, "idNumber"} if i not in unconditional and any(i in g["items"] for g in made)]
    scoped = not any(not g["row_scope"] for i in touched for g in made if i in g["items"])
    in_rows = any(covering(i) for i in touched) if scoped else True
    if not (in_rows and covering("idNumber")):  # outside the rows, or where the key itself is not shown
        return None, codes | ({"NOT_FOUND_IN_SCOPE"} if scoped else set())
    answer = {}
    for item in asked:
        grants = covering(item)
        raw = person[column[item]]
        if item in unconditional or any(item not in g["masks"] for g in grants):
            answer[item] = raw
        elif grants:
            answer[item] = (
                parse_mask(grants[0]["masks"][item]).apply(raw) if grants[0]["masks"][item] != "hash" else "<hash>"
            )
        else:
            answer[item] = None
            if any(item in g["items"] for g in made):
                codes.add("ITEM_OUT_OF_SCOPE")
    return answer, codes


def test_overlapping_grants_with_scopes_and_masks_answer_as_the_reference(tmp_path_factory):
    _over_http(tmp_path_factory, lambda catalog: overlapping(), _looks_up_as_the_reference)


def _looks_up_as_the_reference(world, api):
    runtime = api.app.state.runtime
    people = [
        world.row("police", "SELECT * FROM person WHERE county_code = ? LIMIT 1", c) for c in [*COUNTIES, "371321"]
    ]

    async def one(scenario):
        wanted, asked = scenario
        made = []
        async with runtime.engine.begin() as conn:
            await conn.execute(delete(grants).where(grants.c.consumer == "land"))
            await bump_policy_version(conn)
        for grant in wanted:
            try:
                async with runtime.engine.begin() as conn:
                    await create_grant(
                        conn,
                        runtime.catalog,
                        consumer="land",
                        resource="police.person",
                        purposes=[LAND],
                        valid_from=NOW - timedelta(days=1),
                        valid_until=NOW + timedelta(days=30),
                        created_by="test",
                        **grant,
                    )
                made.append(grant)
            except GovshareError as refused:  # a mask the other grants would undo is never in force
                assert refused.code == "GRANT_MASK_UNDONE", refused.code
        await runtime.refresh()
        query = f"query($id: String!) {{ person(idNumber: $id) {{ {' '.join(asked)} }} }}"
        for person in people:
            result = await api.query(query, "land", LAND, variables={"id": person["id_number"]})
            answer, codes = expected_lookup(made, asked, person)
            got = result["data"]["person"]
            if answer is not None and got is not None:
                got = {k: ("<hash>" if v is not None and answer.get(k) == "<hash>" else v) for k, v in got.items()}
            assert got == answer, (made, asked, person["county_code"], result)
            assert {e["extensions"]["code"] for e in result.get("errors", [])} == codes, (made, asked, result)
            assert absent(person["id_number"], result) or (answer and answer.get("idNumber") == person["id_number"])

    return one
