"""The schema follows the catalog (schema.builder ``previous=``): a version built from the one before is the schema
built whole, with the types of every resource that did not change (nor what its links lead to) kept as they were;
and requests go on being answered while the next one is built."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest
from graphql import GraphQLSchema, parse

from catalog import store as catalog_store
from catalog.loader import load_catalog
from catalog.model import Catalog, DataItem
from govshare.config import Settings
from schema.builder import build_schema
from schema.redaction import schema_names
from tests.conftest import REPO

DEMO = load_catalog(REPO / "catalog" / "demo")


def _replaced(catalog: Catalog, *resources, without: tuple[str, ...] = ()) -> Catalog:
    changed = {r.code: r for r in resources}
    kept = {code: r for code, r in catalog.resources.items() if code not in without}
    return dataclasses.replace(catalog, resources={**kept, **changed}, version=catalog.version + 1)


def _steps() -> list[Catalog]:
    """Catalog versions one after another: a label, a resource gone (and the links to it), one added with filters
    of kinds no other resource filters on, that one gone again, a department renamed (in every description)."""
    person = DEMO.resources["police.person"]
    first = _replaced(DEMO, dataclasses.replace(person, name="常住人口基本信息（更新）"))
    second = _replaced(first, without=("market.licence",))
    items = (
        *person.items,
        DataItem(name="score", label="评分", type="decimal", column="score", filterable=True),
        DataItem(name="active", label="有效", type="boolean", column="active", filterable=True),
    )
    added = dataclasses.replace(person, code="police.person-extra", api_name="personExtra", items=items, links=())
    third = _replaced(second, added)
    fourth = _replaced(third, without=("police.person-extra",))
    police = fourth.departments["police"]
    departments = {**fourth.departments, "police": dataclasses.replace(police, name="临沂市公安局（新）")}
    fifth = dataclasses.replace(fourth, departments=departments, version=fourth.version + 1)
    return [first, second, third, fourth, fifth]


@pytest.mark.parametrize("production", [False, True])
def test_a_schema_following_another_is_the_schema_built_whole(production):
    settings = Settings(production=production)
    schema = build_schema(DEMO, settings)
    for catalog in _steps():
        schema = build_schema(catalog, settings, previous=schema)
        whole = build_schema(catalog, settings)
        assert schema.as_str() == whole.as_str()
        assert schema.federation_sdl() == whole.federation_sdl()
        # the type map patched from the version before is the one graphql-core's constructor collects
        built = schema._schema
        collected = GraphQLSchema(
            built.query_type, built.mutation_type, types=list(built.type_map.values()), directives=built.directives
        )
        assert {n: id(t) for n, t in built.type_map.items()} == {n: id(t) for n, t in collected.type_map.items()}
        assert {n: id(t) for n, t in built.type_map.items()} == {
            n: id(t)
            for n, t in GraphQLSchema(
                built.query_type, built.mutation_type, types=[built.type_map["_Any"]], directives=built.directives
            ).type_map.items()
        }
        if production:
            assert set(schema.views.names) == schema_names(built) == set(whole.views.names)
            text = '{ personList(first: 1) { items { name enterprises { name } } } person(idNumber: "x") { name } }'
            document = parse(text)
            view = schema.views.view_for(text, document, _AllowAll(), "market", None)
            other = whole.views.view_for(text, document, _AllowAll(), "market", None)
            assert sorted(view.type_map) == sorted(other.type_map)


class _AllowAll:
    """A policy engine allowing every item (the views' shapes are what is compared, not decisions)."""

    def decide(self, department, purpose, resource, items, now):
        return _Decision({name: _Allowed() for name in items})


@dataclasses.dataclass
class _Allowed:
    allowed: bool = True


@dataclasses.dataclass
class _Decision:
    items: dict


def test_a_change_to_one_resource_rebuilds_it_and_what_links_to_it_only():
    settings = Settings()
    before = build_schema(DEMO, settings)
    real_estate = DEMO.resources["land.real-estate"]
    label = {i.name: i for i in real_estate.items}["address"]
    changed = dataclasses.replace(
        real_estate,
        items=tuple(dataclasses.replace(i, label="不动产坐落") if i is label else i for i in real_estate.items),
    )
    # the catalog as the runtime loads it: every resource a new object, equal where unchanged
    after = build_schema(
        Catalog.from_document(_replaced(DEMO, changed).to_document(), version=2), settings, previous=before
    )
    linking = {r.code for r in DEMO.published() if any(link.target == real_estate.code for link in r.links)}
    assert linking  # the demo links persons (and more) to their real estate
    for resource in DEMO.published():
        old, new = (s._schema.type_map[resource.type_name] for s in (before, after))
        if resource.code == real_estate.code or resource.code in linking:
            assert new is not old, resource.code
        else:
            assert new is old, resource.code
            assert (
                after._schema.query_type.fields[f"{resource.api_name}List"]
                is before._schema.query_type.fields[f"{resource.api_name}List"]
            )
    assert after._schema.type_map["RealEstate"].fields["address"].description == "不动产坐落"
    assert before._schema.type_map["RealEstate"].fields["address"].description == "坐落"  # the old one still serves


def test_two_types_of_one_name_are_refused_as_a_whole_build_refuses_them():
    settings = Settings()
    schema = build_schema(DEMO, settings)
    person = DEMO.resources["police.person"]
    clash = _replaced(DEMO, dataclasses.replace(person, code="police.person-page", api_name="personPage", links=()))
    with pytest.raises(TypeError, match="multiple types named 'PersonPage'"):
        build_schema(clash, settings)
    with pytest.raises(TypeError, match="multiple types named 'PersonPage'"):
        build_schema(clash, settings, previous=schema)


async def test_requests_are_answered_while_the_next_schema_is_built(own_api, tmp_path, monkeypatch):
    """The next schema is built off the event loop: while it is being built the one in force answers; once swapped
    in, the change answers and the types of the resources that did not change are the ones served before."""
    runtime = own_api.app.state.runtime
    query = "{ personList(first: 2) { items { idNumber name } } }"
    caller = ("market", "market.licence-review")
    answered_before = await own_api.query(query, *caller)
    person_type = runtime.schema._schema.type_map["Person"]

    building, release = threading.Event(), threading.Event()
    original = runtime._schema

    def slow(catalog, previous=None):
        building.set()
        if not release.wait(timeout=60):  # never released: the loop was blocked (the test then fails below)
            raise TimeoutError("the schema build was never released")
        return original(catalog, previous)

    monkeypatch.setattr(runtime, "_schema", slow)
    # 婚姻登记信息: no resource links to it, so every other resource's types are kept
    marriage = runtime.catalog.resources["civil.marriage"]
    catalog = _replaced(runtime.catalog, dataclasses.replace(marriage, name="婚姻登记信息（新）"))
    async with runtime.engine.begin() as conn:
        await catalog_store.publish(conn, catalog, source="test", loaded_by="test")
    refreshing = asyncio.ensure_future(runtime.refresh())
    assert await asyncio.to_thread(building.wait, 60)  # the build has begun (in its thread)
    try:
        during = await own_api.query(query, *caller)  # answered by the schema in force while the next is built
    finally:
        release.set()
    await refreshing
    assert during == answered_before
    assert await own_api.query(query, *caller) == answered_before
    described = await own_api.query('{ __type(name: "Marriage") { description } }', *caller)
    assert described["data"]["__type"]["description"].startswith("婚姻登记信息（新）")
    assert runtime.schema._schema.type_map["Person"] is person_type
