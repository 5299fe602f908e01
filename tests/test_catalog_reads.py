"""A catalog version read following the one before (``Catalog.from_document``'s ``before``, ``store.current``'s
``previous``): the resources whose entries did not change are the objects read before, and the catalog is the one a
fresh read gives, field for field; the schema following it is the schema built whole."""

from __future__ import annotations

import dataclasses
import itertools

from catalog import store as catalog_store
from catalog.loader import load_catalog
from catalog.model import Catalog, ChangeSource, Link
from govshare.config import Settings
from schema.builder import build_schema
from tests.conftest import REPO

DEMO = load_catalog(REPO / "catalog" / "demo")


def _documents() -> list[dict]:
    """Documents of versions one after another, each changing what a resource holds at another depth: one item's
    label, a link's target key, a resource gone, one added, a top-level field, the source of its freshness, a
    department renamed."""
    person = DEMO.resources["police.person"]
    steps: list[Catalog] = []

    def step(catalog: Catalog, *resources, without: tuple[str, ...] = (), **fields) -> Catalog:
        kept = {code: r for code, r in catalog.resources.items() if code not in without}
        new = dataclasses.replace(catalog, resources={**kept, **{r.code: r for r in resources}}, **fields)
        steps.append(new)
        return new

    items = tuple(dataclasses.replace(i, label=f"{i.label}（新）") if n == 1 else i for n, i in enumerate(person.items))
    catalog = step(DEMO, dataclasses.replace(person, items=items))
    linked = next(r for r in catalog.published() if r.links)
    link = linked.links[0]
    links = (Link(**{**dataclasses.asdict(link), "name": f"{link.name}Again"}), *linked.links)
    catalog = step(catalog, dataclasses.replace(linked, links=links))
    gone = next(r for r in sorted(catalog.published(), key=lambda r: r.code) if not r.links and r.code != person.code)
    catalog = step(catalog, without=(gone.code,))
    catalog = step(catalog, gone)
    catalog = step(catalog, dataclasses.replace(catalog.resources[person.code], cache_seconds=30))
    source = ChangeSource(changed_column="updated_at")
    catalog = step(catalog, dataclasses.replace(catalog.resources[person.code], freshness=source))
    police = catalog.departments["police"]
    step(catalog, departments={**catalog.departments, "police": dataclasses.replace(police, name="公安局（新）")})
    return [DEMO.to_document(), *(c.to_document() for c in steps)]


def test_a_catalog_read_following_another_is_the_catalog_read_whole():
    documents = _documents()
    settings = Settings(production=True)
    catalog = Catalog.from_document(documents[0], version=1)
    schema = build_schema(catalog, settings)
    reread: list[int] = []
    for version, (earlier, document) in enumerate(itertools.pairwise(documents), start=2):
        assert catalog.loaded is not None
        followed = Catalog.from_document(document, version=version, before=(earlier, catalog.loaded[1]))
        whole = Catalog.from_document(document, version=version)
        assert followed == whole
        entries = {r["code"]: r for r in earlier["resources"]}
        for raw in document["resources"]:
            code = raw["code"]
            assert dataclasses.asdict(followed.resources[code]) == dataclasses.asdict(whole.resources[code])
            # an unchanged entry is the resource read before; a changed or new one is read again
            assert (followed.resources[code] is catalog.resources.get(code)) == (entries.get(code) == raw)
        reread.append(sum(followed.resources[c] is not catalog.resources.get(c) for c in followed.resources))
        schema = build_schema(followed, settings, previous=schema)
        assert schema.as_str() == build_schema(whole, settings).as_str()
        catalog = followed
    # the changed resource is read again at each step; none when one is gone, or a department renamed
    assert reread == [1, 1, 0, 1, 1, 1, 0]


def test_a_catalog_left_narrower_still_reads_its_resources_from_the_document_before():
    """A catalog with resources left out (conformance) keeps what it was read as: a resource left out and back in an
    equal entry is the one read before, and a catalog not read from a document follows nothing."""
    documents = _documents()
    catalog = Catalog.from_document(documents[0], version=1)
    narrower = dataclasses.replace(
        catalog, resources={c: r for c, r in catalog.resources.items() if c != "police.person"}
    )
    assert narrower.loaded is not None
    followed = Catalog.from_document(documents[0], version=2, before=(documents[0], narrower.loaded[1]))
    assert followed == Catalog.from_document(documents[0], version=2)
    assert followed.resources["police.person"] is catalog.resources["police.person"]
    assert DEMO.loaded is None


async def test_the_runtime_reads_a_published_change_as_that_change(own_api):
    runtime = own_api.app.state.runtime
    async with runtime.engine.begin() as conn:
        base = await catalog_store.current(conn)
        assert base is not None
        person = base.resources["police.person"]
        items = tuple(dataclasses.replace(i, label=f"{i.label}（改）") for i in person.items)
        changed = dataclasses.replace(
            base, resources={**base.resources, person.code: dataclasses.replace(person, items=items)}
        )
        version = await catalog_store.publish(conn, changed, source="test", loaded_by="test")
    before = runtime.snapshot.catalog
    assert before.loaded is not None
    await runtime.refresh()
    after = runtime.snapshot.catalog
    assert after.version == version
    async with runtime.engine.connect() as conn:
        fresh = await catalog_store.current(conn)
    assert fresh is not None
    assert after.resources == {c: r for c, r in fresh.resources.items() if c in after.resources}
    assert after.resources["police.person"].items == items
    assert all(after.resources[c] is r for c, r in before.resources.items() if c != "police.person")
    assert runtime.snapshot.schema.as_str() == build_schema(after, runtime.settings).as_str()
