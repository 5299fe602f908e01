"""Cross-department links: one query per source per nesting level, each hop under its own policy and record."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from audit.tables import access_records
from tests.conftest import StatementLog, absent

CHAIN = """query($n: Int) { enterpriseList(first: $n) { items { name
              legalRepresentative { name address }
              socialInsurance { name insuranceStatus }
              licences { licenceType } } } }"""


async def _count(api, world, department_query_pairs, query, variables, department, purpose):
    logs = {d: StatementLog(api, world, d) for d in department_query_pairs}
    try:
        result = await api.query(query, department, purpose, variables=variables)
    finally:
        for log in logs.values():
            log.close()
    return result, {d: len(log.seen) for d, log in logs.items()}


async def test_one_query_per_source_per_level_for_1_and_for_200_parents(api, world):
    for parents in (1, 200):
        result, counts = await _count(
            api, world, ["market", "police", "hrss"], CHAIN, {"n": parents}, "market", "market.licence-review"
        )
        items = result["data"]["enterpriseList"]["items"]
        assert len(items) == parents
        # market: the page, then the licences hop; police: one hop; hrss: one hop.
        assert counts == {"market": 2, "police": 1, "hrss": 1}, (parents, counts)


async def test_two_hundred_parents_in_one_hop(api, world):
    query = """{ a: personList(first: 100) { items { enterprises { name } } }
                 b: personList(first: 100, after: "bzoxMDA=") { items { enterprises { name } } } }"""
    result, counts = await _count(api, world, ["police", "market"], query, {}, "market", "market.licence-review")
    assert len(result["data"]["a"]["items"]) + len(result["data"]["b"]["items"]) == 200
    assert counts == {"police": 2, "market": 2}  # one per alias path and level, not per parent


async def test_linked_values_are_the_linked_departments_own(api, world):
    code = world.showcase["enterprise"]
    source = world.row("market", "SELECT * FROM enterprise WHERE credit_code = ?", code)
    person = world.row("police", "SELECT * FROM person WHERE id_number = ?", source["legal_rep_id_number"])
    result = await api.query(
        """query($c: String!) { enterprise(creditCode: $c) { legalRepresentative { name birthDate } } }""",
        "market",
        "market.licence-review",
        variables={"c": code},
    )
    assert result["data"]["enterprise"]["legalRepresentative"] == {
        "name": person["name"],
        "birthDate": person["birth_date"],
    }


async def test_each_hop_is_authorized_under_its_own_policy_and_recorded(api, world):
    person_id = world.showcase["person_luozhuang"]
    query = """query($id: String!) { person(idNumber: $id) { name
                 enterprises { name socialInsurance { name monthlyBase } }
                 realEstates { address } } }"""
    response = await api.post(query, department="market", purpose="market.licence-review", variables={"id": person_id})
    result = response.json()
    person = result["data"]["person"]
    assert person["name"] and person["enterprises"]
    assert all(e["socialInsurance"] is not None for e in person["enterprises"])
    # monthlyBase is outside market's grant on social insurance; real estate has no grant for market at all.
    codes = {tuple(e["path"]): e["extensions"]["code"] for e in result["errors"]}
    assert codes == {
        ("person", "enterprises", 0, "socialInsurance", 0, "monthlyBase"): "NO_GRANT",  # the first row that has it
        ("person", "realEstates"): "NO_GRANT",
    }
    assert person["realEstates"] is None
    estates = world.rows("land", "SELECT address FROM real_estate WHERE owner_id = ?", person_id)
    assert all(absent(e["address"], response) for e in estates)
    async with api.app.state.runtime.engine.connect() as conn:
        records = (
            await conn.execute(
                select(access_records).where(access_records.c.request_id == response.headers["X-Request-Id"])
            )
        ).all()
    by_resource = {r.resource: r for r in records}
    assert set(by_resource) == {"police.person", "market.enterprise", "hrss.social-insurance", "land.real-estate"}
    assert by_resource["market.enterprise"].operation == "link"
    assert by_resource["hrss.social-insurance"].items_denied == {"monthlyBase": "NO_GRANT"}
    assert by_resource["land.real-estate"].outcome == "denied"


async def test_a_link_joined_on_a_masked_key_is_refused_once(api, world):
    # hrss sees ID numbers masked; its own social-insurance records hold them in full: joining the two would
    # put the full number beside the masked one.
    query = "{ personList(first: 100) { items { idNumber socialInsurance { idNumber insuranceStatus } } } }"
    response = await api.post(query, department="hrss", purpose="hrss.insurance-enrolment")
    result = response.json()
    items = result["data"]["personList"]["items"]
    assert len(items) > 50 and all(i["socialInsurance"] is None and "*" in i["idNumber"] for i in items)
    (error,) = result["errors"]
    assert error["path"] == ["personList", "items", 0, "socialInsurance"]
    assert (error["extensions"]["code"], error["extensions"]["cause"], error["extensions"]["item"]) == (
        "FILTER_NOT_ALLOWED",
        "MASKED",
        "idNumber",
    )
    raw = [r["id_number"] for r in world.rows("police", "SELECT id_number FROM person WHERE county_code = '371311'")]
    assert all(absent(r, response) for r in raw)
    async with api.app.state.runtime.engine.connect() as conn:
        records = (
            await conn.execute(
                select(access_records).where(access_records.c.request_id == response.headers["X-Request-Id"])
            )
        ).all()
    # The records say what was returned: the masked list, and a link refused with nothing read.
    listed = next(r for r in records if r.operation == "list")
    assert (
        listed.items_returned == ["idNumber"] and listed.items_masked == ["idNumber"] and listed.row_count == len(items)
    )
    (link,) = [r for r in records if r.operation == "link"]
    assert link.outcome == "denied" and link.error_code == "FILTER_NOT_ALLOWED" and link.row_count == 0


async def test_a_link_to_a_masked_key_on_the_other_side_is_refused_once(own_api, own_world):
    from datetime import UTC, datetime

    from policies.store import create_grant

    runtime = own_api.app.state.runtime
    async with runtime.engine.begin() as conn:  # land may read enterprises' credit codes, the insured's masked
        await create_grant(
            conn,
            runtime.catalog,
            consumer="land",
            resource="hrss.social-insurance",
            items=["employerCreditCode", "insuranceStatus"],
            purposes=["land.property-registration"],
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            valid_until=datetime(2031, 1, 1, tzinfo=UTC),
            masks={"employerCreditCode": "credit_code"},
            created_by="test",
        )
    await runtime.refresh()
    result = await own_api.query(
        "{ enterpriseList(first: 20) { items { creditCode socialInsurance { insuranceStatus } } } }",
        "land",
        "land.property-registration",
    )
    items = result["data"]["enterpriseList"]["items"]
    assert items and all(i["socialInsurance"] is None for i in items)
    (error,) = result["errors"]
    assert error["path"] == ["enterpriseList", "items", 0, "socialInsurance"]
    assert (error["extensions"]["cause"], error["extensions"]["item"]) == ("MASKED", "employerCreditCode")


async def test_a_link_whose_parent_key_is_denied_is_refused_once(api):
    result = await api.query(
        "{ personList(first: 30) { items { gender enterprises { name } } } }", "land", "land.property-registration"
    )
    assert all(i["enterprises"] is None for i in result["data"]["personList"]["items"])
    (error,) = result["errors"]
    assert error["path"] == ["personList", "items", 0, "enterprises"]
    assert error["extensions"]["code"] == "NO_GRANT" and error["extensions"]["item"] == "idNumber"


async def test_one_query_spans_three_engines(tmp_path):
    """Each department on its own engine: police on PostgreSQL, market on MariaDB, the rest on SQLite."""
    from demo.build import build_demo
    from tests.conftest import TEST_DATABASE_PREFIX, World, _api, make_settings, require_engine

    settings = make_settings(tmp_path / "var")
    require_engine(settings, "postgres")
    require_engine(settings, "mariadb")
    built = await build_demo(
        settings,
        persons=300,
        enterprises=60,
        engines={"police": "postgres", "market": "mariadb"},
        database_prefix=TEST_DATABASE_PREFIX + "mixed_",
    )
    world = World(settings, built.keys, built.showcase)
    assert world._sources["police"].startswith("postgresql://") and world._sources["market"].startswith("mysql://")
    async for api in _api(world):
        result = await api.query(
            "{ enterpriseList(first: 20) { items { name legalRepresentative { name } "
            "socialInsurance { insuranceStatus } } } }",
            "market",
            "market.licence-review",
        )
        items = result["data"]["enterpriseList"]["items"]
        assert len(items) == 20 and all(i["legalRepresentative"]["name"] for i in items)
        assert any(i["socialInsurance"] for i in items)


async def test_a_link_fan_out_over_the_limit_is_refused_once(world):
    import dataclasses

    from tests.conftest import _api

    settings = dataclasses.replace(world.settings, max_link_rows=5)
    async for api in _api(world, settings=settings):
        result = await api.query(
            "{ enterpriseList(first: 50) { items { name licences { licenceType } } } }",
            "market",
            "market.licence-review",
        )
        assert all(i["licences"] is None for i in result["data"]["enterpriseList"]["items"])
        (error,) = result["errors"]
        assert error["extensions"]["code"] == "LINK_TOO_LARGE" and error["path"] == [
            "enterpriseList",
            "items",
            0,
            "licences",
        ]
        from sqlalchemy import select

        from audit.tables import access_records

        async with api.app.state.runtime.engine.connect() as conn:
            (hop,) = (
                await conn.execute(
                    select(access_records).where(
                        access_records.c.resource == "market.licence", access_records.c.error_code == "LINK_TOO_LARGE"
                    )
                )
            ).all()
        assert hop.outcome == "denied" and hop.row_count == 0 and hop.items_returned == []  # nothing was sent


def test_resolvers_use_each_others_public_names_only():
    # links.py follows a link through data.py's public access API (link_hop, refuse_link_key), not its internals.
    import ast

    folder = Path(__file__).resolve().parent.parent / "resolvers"
    crossing = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith("__"):
                crossing += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.attr.startswith("_")
                and node.value.id in ("data", "links", "applications", "usage", "context")
                and not node.attr.startswith("__")
            ):
                crossing.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not crossing, crossing
