"""Random grants, restrictions, clocks and queries over HTTP on the demo world: every item of every answer
is what the independent reference says (tests/test_policy_properties.py), value for value."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from catalog.model import ShareType
from connectors.masking import department_key, pseudonym
from govshare.platformdb import bump_policy_version, grants
from policies import documents
from policies.store import create_grant, load_policy_set
from tests.conftest import _api, _world
from tests.test_policy_properties import reference

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RESOURCES = {"police.person": "personList", "hrss.social-insurance": "socialInsuranceList", "civil.marriage": "marriageList"}
CONSUMERS = ["market", "land", "civil", "hrss", "bigdata"]
EXAMPLES = int(os.environ.get("GOVSHARE_HTTP_PROPERTY_EXAMPLES", "60"))


@st.composite
def scenarios(draw, catalog):
    made = []
    for _ in range(draw(st.integers(0, 4))):
        resource = catalog.resources[draw(st.sampled_from(sorted(RESOURCES)))]
        consumer = draw(st.sampled_from([c for c in CONSUMERS if c != resource.provider]))
        items = draw(st.lists(st.sampled_from([i.name for i in resource.items]), unique=True, min_size=1, max_size=4))
        purposes = [p.code for p in catalog.purposes.values() if p.department == consumer]
        start = draw(st.integers(-20, 20))
        made.append(dict(consumer=consumer, resource=resource.code, items=items,
                         purposes=draw(st.lists(st.sampled_from(purposes), unique=True, min_size=1)),
                         valid_from=NOW + timedelta(days=start), valid_until=NOW + timedelta(days=start + draw(st.integers(1, 40))),
                         legal_basis="法" if any(resource.share_type_of(resource.item(i)) == ShareType.NOT_SHARED
                                                 for i in items) else None))
    restricted = draw(st.lists(st.tuples(st.sampled_from(CONSUMERS), st.sampled_from(["*", *sorted(RESOURCES)])), max_size=1))
    department = draw(st.sampled_from(CONSUMERS))
    purpose = draw(st.sampled_from([p.code for p in catalog.purposes.values() if p.department == department]))
    resource = catalog.resources[draw(st.sampled_from(sorted(RESOURCES)))]
    asked = draw(st.lists(st.sampled_from([i.name for i in resource.items]), unique=True, min_size=1, max_size=4))
    return made, restricted, department, purpose, resource.code, asked


def test_every_answer_matches_the_reference(tmp_path_factory):
    async def setup():
        world = await _world(tmp_path_factory.mktemp("var"))
        agen = _api(world, clock=lambda: NOW)
        return world, agen, await agen.__anext__()

    loop = asyncio.new_event_loop()
    world, agen, api = loop.run_until_complete(setup())
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
        await runtime.refresh(force=True)
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

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(scenario=scenarios(catalog))
    def check(scenario):
        loop.run_until_complete(one(scenario))

    try:
        check()
    finally:
        async def close():
            try:
                await agen.__anext__()
            except StopAsyncIteration:
                pass
        loop.run_until_complete(close())
        loop.close()
