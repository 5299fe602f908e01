"""A fourth reviewer's attacks on issue 13 (GraphQL over HTTP, trusted documents, Apollo Federation's `_entities`
and `_service`, trace context), each made as a department with a valid key for its own department would make it."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import create_engine, select, text

from audit.tables import access_records
from catalog import store as catalog_store
from catalog.model import DataItem, Resource, ShareType
from connectors.urls import sync_url
from tests.conftest import _api, _world
from tests.test_cli import govshare_in_process

PERMITS = "review4_permit"


@pytest.fixture(scope="module")
async def pg_world(tmp_path_factory):
    return await _world(tmp_path_factory.mktemp("review4-pg") / "var", "postgres")


async def _publish_integer_keyed_resource(api) -> str:
    """police publishes a resource of its own keyed by an integer (a permit number): its source table, its catalog
    entry, in force. Returns a purpose of police's."""
    world, runtime = api.world, api.app.state.runtime
    engine = create_engine(sync_url(world.settings.expand(world._sources["police"])))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {PERMITS}"))
            conn.execute(text(f"CREATE TABLE {PERMITS} (permit_no integer PRIMARY KEY, holder varchar(40))"))
            conn.execute(text(f"INSERT INTO {PERMITS} VALUES (1, 'holder one')"))
    finally:
        engine.dispose()
    permit = Resource(
        code="police.permit",
        api_name="permit",
        name="许可证",
        provider="police",
        share_type=ShareType.UNCONDITIONAL,
        table=PERMITS,
        key="permitNo",
        items=(
            DataItem("permitNo", "许可证号", "integer", "permit_no"),
            DataItem("holder", "持证人", "string", "holder"),
        ),
    )
    catalog = runtime.catalog
    changed = dataclasses.replace(catalog, resources={**catalog.resources, permit.code: permit})
    async with runtime.engine.begin() as conn:
        await catalog_store.publish(conn, changed, source="test", loaded_by="test")
    await runtime.refresh()
    assert "police.permit" in runtime.catalog.resources
    return next(p.code for p in runtime.catalog.purposes.values() if p.department == "police")


async def test_an_entity_key_no_lookup_could_carry_does_not_break_the_providers_source(pg_world):
    """`_Any` carries any JSON number: a representation's integer key of 2**40 reached PostgreSQL (an int32 column),
    which refused it as a driver error (not a DataError), counted against the source's circuit breaker. Three
    requests of one department opened the breaker, and every department's queries of that provider's source were
    SOURCE_UNAVAILABLE until it reset, again and again. A lookup's key is a GraphQL Int: it cannot send one."""
    async for api in _api(pg_world):
        purpose = await _publish_integer_keyed_resource(api)
        attack = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Permit { holder } } }"
        for _ in range(api.world.settings.breaker_failures + 1):
            result = await api.query(
                attack, "police", purpose, variables={"r": [{"__typename": "Permit", "permitNo": 2**40}]}
            )
            assert result["data"]["_entities"] == [None]
            assert [e["extensions"]["code"] for e in result["errors"]] == ["REPRESENTATION_INVALID"]
        # the source still answers everyone: a lookup, an entity and another resource of the same source
        looked_up = await api.query("{ permit(permitNo: 1) { holder } }", "police", purpose)
        assert looked_up["data"] == {"permit": {"holder": "holder one"}} and "errors" not in looked_up
        entity = await api.query(attack, "police", purpose, variables={"r": [{"__typename": "Permit", "permitNo": 1}]})
        assert entity["data"] == {"_entities": [{"holder": "holder one"}]} and "errors" not in entity
        persons = await api.query("{ personList(first: 1) { items { name } } }", "market", "market.licence-review")
        assert "errors" not in persons and persons["data"]["personList"]["items"]
    # every record written on the way (the entities' among them) keeps the chain whole
    verified = await asyncio.to_thread(govshare_in_process, pg_world.settings.var_dir.parent, "audit", "verify")
    assert verified.returncode == 0 and "access 记录链完整" in verified.stdout, verified.stdout + verified.stderr


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
async def test_a_field_selected_twice_under_one_response_key_is_decided_and_recorded_whole(api, world):
    """GraphQL merges fields of one response key: `person(idNumber: $i) { name } person(idNumber: $i) { gender
    enterprises { name } }` is one field selecting all three. Only the first occurrence's selection was decided:
    gender (which market reads) came back null without a word, and the link was refused as if market's idNumber were
    masked, with an access record saying so (FILTER_NOT_ALLOWED), a record of a refusal that never was. The same for
    `_entities` and lists."""
    (person,) = [
        r["id_number"] for r in world.rows("police", "SELECT id_number FROM person ORDER BY id_number LIMIT 1")
    ]
    source = world.row("police", "SELECT name, gender FROM person WHERE id_number = ?", person)
    entity = {"__typename": "Person", "idNumber": person}
    market = ("market", "market.licence-review")
    for query, path in (
        (
            "query($i: String!) { person(idNumber: $i) { name } person(idNumber: $i) { gender enterprises { name } } }",
            ("person",),
        ),
        (
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } }"
            " _entities(representations: $r) { ... on Person { gender enterprises { name } } } }",
            ("_entities", 0),
        ),
        (
            "query($i: String!) { personList(filter: {idNumber: {eq: $i}}) { items { name } }"
            " personList(filter: {idNumber: {eq: $i}}) { items { gender enterprises { name } } } }",
            ("personList", "items", 0),
        ),
    ):
        response = await api.post(
            query, department=market[0], purpose=market[1], variables={"i": person, "r": [entity]}
        )
        result = response.json()
        assert "errors" not in result, result["errors"]
        answered = result["data"]
        for key in path:
            answered = answered[key]
        assert answered["name"] == source["name"] and answered["gender"] == source["gender"]
        assert isinstance(answered["enterprises"], list)
        records = await records_of(api, response)
        assert all(r.outcome == "allowed" for r in records), [(r.operation, r.error_code) for r in records]
        (read,) = [r for r in records if r.resource == "police.person"]
        assert sorted(read.items_returned) == ["gender", "name"]


async def records_of(api, response) -> list:
    async with api.app.state.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                select(access_records)
                .where(access_records.c.request_id == response.headers["X-Request-Id"])
                .order_by(access_records.c.seq)
            )
        ).all()


def test_a_get_to_graphql_with_a_trailing_slash_leaves_its_query_out_of_the_access_line():
    """A client configured with `/graphql/` sends `GET /graphql/?query={ person(idNumber: "…") … }`: Starlette
    redirects it to /graphql (307, the query string kept), and uvicorn's access line of that first request held the
    whole query, ID number and all; only the exact path /graphql was hidden."""
    import logging

    from govshare.logs import QueryStringsHidden

    person = "371311197811261792"
    hidden = QueryStringsHidden(("/graphql",))
    for path in ("/graphql/", "/graphql//", "/graphql/x"):
        target = f"{path}?query=%7B%20person(idNumber%3A%20%22{person}%22)%20%7B%20name%20%7D%20%7D"
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("1.2.3.4:5", "GET", target, "1.1", 307),
            None,
        )
        assert hidden.filter(record)
        assert person not in record.getMessage() and f'"GET {path}?… HTTP/1.1" 307' in record.getMessage(), path
