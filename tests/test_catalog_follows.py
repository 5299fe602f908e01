"""A catalog followed by the changes each version records (catalog/store.py ``catalog_changes``, read by
``current(conn, previous)``), and the schema and views following it (schema/builder.py ``previous=``), are exactly
what a process starting fresh reads and builds: the same entries in the same order, the same printed SDL, the same
department views; and only the changed entries are read again, through additions, changes, retirements, re-linked
resources, a department renamed, entries gone and moved, versions skipped and a change published by another
process."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from graphql import parse, print_schema
from sqlalchemy import select

import migrations
from catalog import store as catalog_store
from catalog.loader import load_catalog
from catalog.model import Catalog, Status
from catalog.search import FormIndex
from govshare.config import Settings
from govshare.platformdb import make_engine
from policies.engine import PolicyEngine
from schema.builder import build_schema
from schema.plans import plans_of
from tests.conftest import REPO
from tests.test_form_search import _entries
from tests.test_schema_follows import _AllowAll

DEMO = load_catalog(REPO / "catalog" / "demo")
SETTINGS = Settings(production=True)
# every resource of the demo (and the copy added below) at the root, with their links: the views of all of them
VIEW_DOCUMENT = "{ " + " ".join(f"{r.api_name}List {{ items {{ __typename }} }}" for r in DEMO.published()) + " }"


def _same_views(followed, whole, text: str) -> None:
    views, other = followed.views, whole.views
    assert set(views.names) == set(other.names)
    assert views._by_name == other._by_name
    assert sorted(t.name for t in views._shared_types) == sorted(t.name for t in other._shared_types)
    assert list(views._data_free_fields) == list(other._data_free_fields)
    document = parse(text)
    for department in ("market", "hrss", "police"):
        view = views.view_for(text, document, _AllowAll(), department, None)
        assert print_schema(view) == print_schema(other.view_for(text, document, _AllowAll(), department, None))
        sdl = views.sdl_for(followed.federation_sdl(), _AllowAll(), department, None)
        assert sdl == other.sdl_for(whole.federation_sdl(), _AllowAll(), department, None)


def _same_schema(followed, catalog: Catalog) -> None:
    """``followed`` (a schema built following another) is the schema of ``catalog`` built whole."""
    whole = build_schema(catalog, SETTINGS)
    assert followed.as_str() == whole.as_str()
    assert followed.federation_sdl() == whole.federation_sdl()
    roots = {}
    for resource in catalog.published():
        roots[resource.api_name] = ("lookup", resource)
        roots[f"{resource.api_name}List"] = ("list", resource)
    plans = plans_of(followed._schema)
    assert plans.catalog is catalog and plans.roots == roots
    assert all(plans.roots[name][1] is resource for name, (_, resource) in roots.items())
    _same_views(followed, whole, VIEW_DOCUMENT + ' { personCopy(idNumber: "x") { name realEstate { address } } }')


def _same_catalog(followed: Catalog, whole: Catalog) -> None:
    assert followed == whole
    assert followed.version == whole.version
    for part in ("departments", "purposes", "resources"):
        assert list(getattr(followed, part)) == list(getattr(whole, part)), part  # the same order
    for code, resource in whole.resources.items():
        assert dataclasses.asdict(followed.resources[code]) == dataclasses.asdict(resource)


async def _newest_read_whole(conn) -> Catalog:
    version = max(v.version for v in await catalog_store.versions(conn))
    return Catalog.from_document(await catalog_store.document(conn, version), version=version)


async def _publish(engine, change) -> int:
    """A change published by a publisher of its own: it reads the catalog in force itself (no object of the
    follower's), changes it and publishes it."""
    async with engine.begin() as conn:
        in_force = await catalog_store.current(conn)
        assert in_force is not None
        return await catalog_store.publish(conn, change(in_force), source="test", loaded_by="test", change="publish")


def _replaced(catalog: Catalog, *resources, without: tuple[str, ...] = ()) -> Catalog:
    kept = {code: r for code, r in catalog.resources.items() if code not in without}
    return dataclasses.replace(catalog, resources={**kept, **{r.code: r for r in resources}})


def _copy(catalog: Catalog) -> Catalog:
    """A resource added: a copy of the persons with a link of its own to their real estate."""
    person = catalog.resources["police.person"]
    estate = next(link for link in person.links if link.target == "land.real-estate")
    added = dataclasses.replace(
        person, code="police.person-copy", api_name="personCopy", links=(dataclasses.replace(estate),)
    )
    return _replaced(catalog, added)


def _relinked(catalog: Catalog) -> Catalog:
    """The enterprises' legal representative link led to the copy instead of the persons (or back)."""
    enterprise = catalog.resources["market.enterprise"]
    other = {"police.person": "police.person-copy", "police.person-copy": "police.person"}
    links = tuple(
        dataclasses.replace(link, target=other[link.target]) if link.target in other else link
        for link in enterprise.links
    )
    assert links != enterprise.links
    return _replaced(catalog, dataclasses.replace(enterprise, links=links))


def _retired(catalog: Catalog) -> Catalog:
    licence = catalog.resources["market.licence"]
    return _replaced(catalog, dataclasses.replace(licence, status=Status.RETIRED))


def _labelled(catalog: Catalog) -> Catalog:
    person = catalog.resources["police.person"]
    items = tuple(dataclasses.replace(i, label=f"{i.label}（新）") if n == 1 else i for n, i in enumerate(person.items))
    return _replaced(catalog, dataclasses.replace(person, items=items))


def _department_renamed(catalog: Catalog) -> Catalog:
    police = catalog.departments["police"]
    return dataclasses.replace(
        catalog, departments={**catalog.departments, "police": dataclasses.replace(police, name="临沂市公安局（新）")}
    )


def _gone(catalog: Catalog) -> Catalog:
    return _replaced(catalog, without=("police.person-copy",))


def _moved(catalog: Catalog) -> Catalog:
    """The same entries, the first resource moved to the end: recorded with no changes, read whole."""
    first, *others = catalog.resources
    return dataclasses.replace(catalog, resources={c: catalog.resources[c] for c in [*others, first]})


async def test_a_catalog_and_schema_followed_by_recorded_changes_are_those_read_and_built_whole(tmp_path, monkeypatch):
    from schema import builder

    looked: list = []  # the resources the builder looked at, each build (None: every one)
    changes_of = builder._changes

    def spied(catalog, kept, departments, candidates=None):
        looked.append(None if candidates is None else set(candidates))
        return changes_of(catalog, kept, departments, candidates)

    monkeypatch.setattr(builder, "_changes", spied)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}")
    try:
        await migrations.ensure_current(engine)
        async with engine.begin() as conn:
            await catalog_store.publish(conn, DEMO, source="test", loaded_by="test")
        async with engine.connect() as conn:
            catalog = await catalog_store.current(conn)
        assert catalog is not None
        schema = build_schema(catalog, SETTINGS)
        # (the changes published before the follower reads again, the entries it then reads again)
        steps = [
            ([_labelled], {"police.person"}),
            ([_copy], {"police.person-copy"}),
            ([_relinked], {"market.enterprise"}),
            ([_retired, _department_renamed], {"market.licence"}),  # a version skipped
            ([_gone], set()),  # the enterprises' link now leads to no published resource
            ([_copy, _relinked, _labelled], {"police.person-copy", "market.enterprise", "police.person"}),
        ]
        for changes, reread in steps:
            for change in changes:
                version = await _publish(engine, change)
            async with engine.connect() as conn:
                followed = await catalog_store.current(conn, catalog)
                whole = await _newest_read_whole(conn)
                recorded = (
                    await conn.execute(
                        select(catalog_store.catalog_change_sets.c.version).where(
                            catalog_store.catalog_change_sets.c.version > catalog.version
                        )
                    )
                ).scalars()
                assert sorted(recorded) == list(range(catalog.version + 1, version + 1))
            assert followed is not None and followed.version == version
            _same_catalog(followed, whole)
            # only the changed entries are read again; every other one is the object read before
            assert {c for c, r in followed.resources.items() if r is not catalog.resources.get(c)} == reread
            # the read says which resources changed, came or went, and the builder looks at those alone
            gone = catalog.resources.keys() - followed.resources.keys()
            assert followed.since is not None and followed.since.before is catalog.resources
            assert followed.since.codes == reread | gone
            schema = build_schema(followed, SETTINGS, previous=schema)
            assert looked[-1] == reread | gone
            _same_schema(schema, followed)
            catalog = followed
        # a version with an entry moved records no changes: it is read whole, and still followed exactly
        version = await _publish(engine, _moved)
        async with engine.connect() as conn:
            sets = (await conn.execute(select(catalog_store.catalog_change_sets.c.version))).scalars().all()
            assert version not in sets
            followed = await catalog_store.current(conn, catalog)
            whole = await _newest_read_whole(conn)
        assert followed is not None
        _same_catalog(followed, whole)
        schema = build_schema(followed, SETTINGS, previous=schema)
        _same_schema(schema, followed)
        # and the next change follows it by its changes again
        version = await _publish(engine, _labelled)
        async with engine.connect() as conn:
            again = await catalog_store.current(conn, followed)
            whole = await _newest_read_whole(conn)
        assert again is not None
        _same_catalog(again, whole)
        assert {c for c, r in again.resources.items() if r is not followed.resources.get(c)} == {"police.person"}
        _same_schema(build_schema(again, SETTINGS, previous=schema), again)
    finally:
        await engine.dispose()


PUBLISHER = """
import asyncio, dataclasses, sys
sys.path.insert(0, sys.argv[1])
from catalog import store
from govshare.platformdb import make_engine
from policies.engine import PolicyEngine

async def main():
    engine = make_engine(sys.argv[2])
    async with engine.begin() as conn:
        catalog = await store.current(conn)
        person = catalog.resources["police.person"]
        enterprise = catalog.resources["market.enterprise"]
        added = dataclasses.replace(person, code="police.person-copy", api_name="personCopy")
        links = tuple(
            dataclasses.replace(link, target=added.code) if link.target == person.code else link
            for link in enterprise.links
        )
        resources = {**catalog.resources, added.code: added, enterprise.code: dataclasses.replace(enterprise, links=links)}
        print(await store.publish(conn, dataclasses.replace(catalog, resources=resources), source="other", loaded_by="other"))
    await engine.dispose()

asyncio.run(main())
"""


async def test_the_runtime_follows_a_change_published_by_another_process(own_api):
    runtime = own_api.app.state.runtime
    before = runtime.snapshot.catalog
    in_force = runtime.snapshot
    done = subprocess.run(
        [sys.executable, "-c", PUBLISHER, str(REPO), runtime.settings.platform_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    version = int(done.stdout.strip().splitlines()[-1])
    await runtime.refresh()
    after = runtime.snapshot.catalog
    assert after.version == version
    async with runtime.engine.connect() as conn:
        whole = await _newest_read_whole(conn)
    _same_catalog(
        after, dataclasses.replace(whole, resources={c: r for c, r in whole.resources.items() if c in after.resources})
    )
    assert {"police.person-copy", "market.enterprise"} <= after.resources.keys()
    assert all(after.resources[c] is r for c, r in before.resources.items() if c != "market.enterprise")
    schema = runtime.snapshot.schema
    assert schema.as_str() == build_schema(after, runtime.settings).as_str()
    # the policy engine and the form index followed too: those built whole, every unchanged resource's part kept
    unchanged = [c for c, r in before.resources.items() if after.resources.get(c) is r and r.status == Status.PUBLISHED]
    policy, whole_policy = runtime.snapshot.policy, PolicyEngine(after, runtime.snapshot.policy.policies)
    assert policy._index._rules == whole_policy._index._rules and policy.rule_count == whole_policy.rule_count
    assert policy._boundaries == whole_policy._boundaries and policy._index._groups == whole_policy._index._groups
    assert all(policy._index._rules[c] is in_force.policy._index._rules[c] for c in unchanged)
    forms = runtime.snapshot.forms
    assert _entries(forms) == _entries(FormIndex(after))
    assert all(forms._rows[c] == in_force.forms._rows[c] for c in unchanged)
    caller = ("market", "market.licence-review")
    query = "{ enterpriseList(first: 2) { items { name legalRepresentative { __typename } } } }"
    answer = await own_api.query(query, *caller)
    # the link now leads to the copy, on which 市场监管局 holds no grant: refused as the copy's, nothing of it sent
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["NO_GRANT"]
    assert "police.person-copy" in answer["errors"][0]["message"]
    assert [row["legalRepresentative"] for row in answer["data"]["enterpriseList"]["items"]] == [None, None]
