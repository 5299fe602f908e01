"""Bad input, each with the answer it gets (docs/security.md lists them with these tests)."""

from __future__ import annotations

import pytest


async def test_forged_department_header_changes_nothing(api, world):
    # The department comes from the key alone; a header claiming another one is ignored.
    result = await api.query(
        "{ caller { department } personList(first: 1) { items { name } } }",
        "land",
        "land.property-registration",
        headers={"X-Department": "police"},
    )
    assert result["data"]["caller"]["department"] == "land"
    assert [e["extensions"]["code"] for e in result["errors"]] == ["NO_GRANT"]


async def test_operator_header_identifies_but_grants_nothing(api):
    result = await api.query(
        "{ personList(first: 1) { items { name } } }",
        "land",
        "land.property-registration",
        headers={"X-Operator": "police-chief"},
    )
    assert [e["extensions"]["code"] for e in result["errors"]] == ["NO_GRANT"]


@pytest.mark.parametrize("value", ["' OR '1'='1", "371311'; DROP TABLE person; --", "%", "\\x00", "x" * 5000])
async def test_sql_metacharacters_and_oversize_values_are_just_values(api, value):
    result = await api.query(
        "query($v: String!) { enterpriseList(filter: {countyCode: {eq: $v}}) { items { name } } }",
        "land",
        "land.property-registration",
        variables={"v": value},
    )
    assert result["data"]["enterpriseList"]["items"] == [] and "errors" not in result
    again = await api.query("{ enterpriseList(first: 1) { items { name } } }", "land", "land.property-registration")
    assert again["data"]["enterpriseList"]["items"]  # nothing was dropped


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", "BAD_REQUEST"),
        (b'{"query": 42}', "BAD_REQUEST"),
        (b'{"query": "{ caller { department } }", "variables": []}', "BAD_REQUEST"),
        (b'[{"query": "{ caller { department } }"}]', "BATCH_NOT_SUPPORTED"),
    ],
)
async def test_malformed_bodies_get_400_with_a_code(api, world, body, code):
    response = await api.client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {world.keys['land']}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["code"] == code


async def test_huge_body_is_refused_before_anything_else(api, world):
    response = await api.client.post(
        "/graphql", content=b"{" + b" " * 70000 + b"}", headers={"Authorization": f"Bearer {world.keys['land']}"}
    )
    assert response.status_code == 413 and response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"


@pytest.mark.parametrize("query", ["{ caller { department ", "query { nope }", "{ personList { items { name } } } }"])
async def test_malformed_graphql_gets_a_coded_error(api, query):
    result = (await api.post(query, department="land", purpose="land.property-registration")).json()
    assert "data" not in result and result["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID"


async def test_a_link_key_serving_two_links_is_read_once(api):
    # enterprises joins on legalRepIdNumber, and legalRepresentative under it follows the same item.
    query = "{ personList(first: 50) { items { enterprises { legalRepresentative { name } } } } }"
    result = await api.query(query, "market", "market.licence-review")
    reps = [e["legalRepresentative"] for i in result["data"]["personList"]["items"] for e in i["enterprises"]]
    assert "errors" not in result and reps and all(r["name"] for r in reps)


async def test_deep_queries_are_refused(api):
    deep = (
        "{ personList { items { enterprises { legalRepresentative { enterprises { legalRepresentative { "
        "enterprises { legalRepresentative { enterprises { legalRepresentative { name } } } } } } } } } } }"
    )
    result = (await api.post(deep, department="market", purpose="market.licence-review")).json()
    assert "data" not in result and "depth" in result["errors"][0]["message"]


async def test_rows_times_items_across_links_are_capped(world):
    import dataclasses

    from tests.conftest import _api

    settings = dataclasses.replace(world.settings, max_cost=300)
    async for api in _api(world, settings=settings):
        small = await api.query(
            "{ enterpriseList(first: 50) { items { name status } } }", "market", "market.licence-review"
        )
        assert len(small["data"]["enterpriseList"]["items"]) == 50 and "errors" not in small  # 100
        big = await api.query(
            "{ enterpriseList(first: 100) { items { name status licences { licenceType validUntil } "
            "socialInsurance { name insuranceStatus } } } }",
            "market",
            "market.licence-review",
        )
        codes = {e["extensions"]["code"] for e in big["errors"]}
        assert codes == {"COST_TOO_HIGH"}
        assert big["data"]["enterpriseList"] is not None  # the page itself (200) fits; the hops beyond it do not


async def test_a_mask_must_fit_its_items_type(own_api):
    from datetime import UTC, datetime

    from govshare.errors import GovshareError
    from policies.store import create_grant

    runtime = own_api.app.state.runtime
    async with runtime.engine.begin() as conn:
        with pytest.raises(GovshareError) as refused:
            await create_grant(
                conn,
                runtime.catalog,
                consumer="land",
                resource="police.person",
                items=["birthDate"],
                purposes=["land.property-registration"],
                valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                valid_until=datetime(2027, 1, 1, tzinfo=UTC),
                masks={"birthDate": "full"},
                created_by="test",
            )
    assert refused.value.code == "GRANT_MASK_WRONG_TYPE"  # keep-characters masks are for text; dates take `year`


async def test_too_many_tokens_are_refused(api):
    wide = "{ caller { " + " ".join(["department"] * 2100) + " } }"
    result = (await api.post(wide, department="land")).json()
    assert "data" not in result and result["errors"][0]["extensions"]["code"] == "GRAPHQL_INVALID"
    assert "token" in result["errors"][0]["message"].lower()
