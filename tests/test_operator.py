"""Art 22 ("谁经手，谁管理，谁使用，谁负责"): with ``operator_required`` (on in production, off in development) every
/graphql request names its acting officer in X-Operator; a request without one is refused (400 OPERATOR_REQUIRED)
before anything is read or recorded, on every way in: POST, GET, links, Apollo Federation's ``_entities``."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from audit.tables import access_records
from govshare.config import load_settings
from tests.conftest import StatementLog, _api, _world, production

HRSS, HRSS_PURPOSE = "hrss", "hrss.insurance-enrolment"
MARKET, MARKET_PURPOSE = "market", "market.licence-review"
LIST = "{ personList(first: 2) { items { name } } }"
LINK = "{ enterpriseList(first: 2) { items { name legalRepresentative { name } } } }"


@pytest.fixture(scope="module")
async def world(tmp_path_factory):
    return await _world(tmp_path_factory.mktemp("var-operator"))


@pytest.fixture(scope="module")
async def production_api(world):
    async for api in _api(world, production(world.settings)):
        yield api


async def records(api) -> int:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(access_records))).scalar_one()


def refused(response) -> dict:
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "OPERATOR_REQUIRED" and error["extensions"]["header"] == "X-Operator"
    return error


def entities_query(id_number: str) -> dict:
    return {
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }",
        "variables": {"r": [{"__typename": "Person", "idNumber": id_number}]},
    }


async def test_in_production_every_way_in_without_an_operator_is_refused_before_anything_is_read(production_api):
    api = production_api
    key = {"Authorization": f"Bearer {api.world.keys[MARKET]}", "X-Purpose": MARKET_PURPOSE}
    person = api.world.rows("police", "SELECT id_number FROM person LIMIT 1")[0]["id_number"]
    sources = [StatementLog(api, api.world, d) for d in ("police", "market")]
    before = await records(api)
    try:
        answers = [
            await api.client.post("/graphql", json={"query": LIST}, headers=key),
            await api.client.post("/graphql", json={"query": LINK}, headers=key),
            await api.client.post("/graphql", json=entities_query(person), headers=key),
            await api.client.get("/graphql", params={"query": LIST}, headers={**key, "Accept": "application/json"}),
            await api.client.post("/graphql", json={"query": LIST}, headers={**key, "X-Operator": ""}),
        ]
    finally:
        for log in sources:
            log.close()
    errors = [refused(a) for a in answers]
    assert "经办人" in errors[0]["message"]
    assert all(log.seen == [] for log in sources)
    assert await records(api) == before
    english = await api.client.post("/graphql", json={"query": LIST}, headers={**key, "Accept-Language": "en"})
    assert "acting officer" in refused(english)["message"]


async def test_in_production_a_named_operator_is_answered_and_recorded_on_every_access(production_api):
    api = production_api
    before = await records(api)
    headers = {"X-Operator": "officer-9"}
    answered = await api.query(LINK, MARKET, MARKET_PURPOSE, headers=headers)
    assert answered["data"]["enterpriseList"]["items"]
    async with api.app.state.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(access_records).where(access_records.c.id > before))).all()
    assert {r.operation for r in rows} == {"list", "link"} and {r.operator for r in rows} == {"officer-9"}


async def test_in_development_no_operator_is_required_and_none_is_recorded(world):
    async for api in _api(world):
        assert api.operator is None  # the tests' client sends none in development
        answered = await api.query(LIST, HRSS, HRSS_PURPOSE)
        assert answered["data"]["personList"]["items"]
        async with api.app.state.runtime.engine.connect() as conn:
            last = (await conn.execute(select(access_records).order_by(access_records.c.id.desc()).limit(1))).one()
        assert last.operator is None


@pytest.mark.parametrize(
    ("production_mode", "setting", "required"),
    [
        (True, None, True),
        (False, None, False),
        (True, False, False),
        (False, True, True),
    ],
)
async def test_the_setting_overrides_the_mode_either_way(world, production_mode, setting, required):
    settings = production(world.settings) if production_mode else world.settings
    settings = dataclasses.replace(settings, operator_required=setting)
    assert settings.requires_operator is required
    async for api in _api(world, settings):
        response = await api.post(LIST, department=HRSS, purpose=HRSS_PURPOSE, headers={"X-Operator": ""})
        if required:
            refused(response)
        else:
            assert response.status_code == 200 and response.json()["data"]["personList"]["items"]


def test_the_setting_is_read_from_the_environment_and_unset_follows_production():
    assert load_settings(env={}).operator_required is None
    assert (
        load_settings(env={"GOVSHARE_OPERATOR_REQUIRED": "false", "GOVSHARE_PRODUCTION": "true"}).requires_operator
        is False
    )
    assert load_settings(env={"GOVSHARE_OPERATOR_REQUIRED": "true"}).requires_operator is True
    assert load_settings(env={"GOVSHARE_PRODUCTION": "true"}).requires_operator is True
