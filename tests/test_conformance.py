"""The catalog checked against real sources (Art 14): a resource whose source does not fit is not published."""

from __future__ import annotations

import dataclasses
import sqlite3

from catalog import store as catalog_store
from catalog.conformance import check_sources
from catalog.model import Catalog


async def test_demo_sources_conform_on_every_engine(api, world):
    findings = await check_sources(api.app.state.runtime.catalog, world.settings)
    assert len(findings) == 8 and all(problems == [] for problems in findings.values()), findings


async def test_each_source_database_is_read_once_for_every_resource_it_holds(api, world, monkeypatch):
    """A city's catalog names thousands of tables in tens of databases: the check opens one engine per database (not
    one per resource), and finds for each resource what checking it alone finds, a resource sharing another's table
    with a column its source lacks included."""
    from connectors import conformance

    catalog = api.app.state.runtime.catalog
    person = catalog.resources["police.person"]
    twin = dataclasses.replace(  # the persons' table again, with a column it does not have
        person,
        code="police.person-twin",
        api_name="personTwin",
        items=(*person.items, dataclasses.replace(person.items[-1], name="nickname", column="nickname")),
    )
    checked = dataclasses.replace(catalog, resources={**catalog.resources, twin.code: twin})
    alone = {}
    for resource in checked.published():
        url = world.settings.expand(checked.departments[resource.provider].source)
        columns = {item.column: item.type for item in resource.items}
        alone[resource.code] = await conformance.check_table(url, resource.table, columns)
    opened = []
    real = conformance.create_async_engine

    def counted(url, *args, **kwargs):
        opened.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(conformance, "create_async_engine", counted)
    findings = await check_sources(checked, world.settings)
    assert findings == alone
    assert [(p.kind, p.column) for p in findings[twin.code]] == [("missing_column", "nickname")]
    databases = {world.settings.expand(checked.departments[r.provider].source) for r in checked.published()}
    assert len(opened) == len(set(opened)) == len(databases) < len(checked.published())


async def _publish(api, catalog: Catalog) -> None:
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        await catalog_store.publish(conn, catalog, source="test", loaded_by="test")
    await runtime.refresh()


async def test_wrong_type_and_missing_column_keep_a_resource_unpublished(own_api, own_world):
    runtime = own_api.app.state.runtime
    catalog = runtime.catalog
    person = catalog.resources["police.person"]
    wrong = dataclasses.replace(
        person, items=tuple(dataclasses.replace(i, type="integer") if i.name == "name" else i for i in person.items)
    )
    findings = await check_sources(
        dataclasses.replace(catalog, resources={**catalog.resources, wrong.code: wrong}), own_world.settings
    )
    (problem,) = findings["police.person"]
    assert problem.kind == "wrong_type" and problem.column == "name"

    await _publish(own_api, dataclasses.replace(catalog, resources={**catalog.resources, wrong.code: wrong}))
    assert "police.person" not in runtime.catalog.resources and "market.enterprise" in runtime.catalog.resources
    result = (
        await own_api.post('{ person(idNumber: "x") { name } }', department="market", purpose="market.licence-review")
    ).json()
    assert "data" not in result and "person" in result["errors"][0]["message"]

    with sqlite3.connect(own_world.settings.var_dir / "sources" / "market.db") as conn:
        conn.execute("ALTER TABLE enterprise DROP COLUMN business_scope")
    await _publish(own_api, catalog)
    assert "police.person" in runtime.catalog.resources
    assert "market.enterprise" not in runtime.catalog.resources
    findings = await check_sources(catalog, own_world.settings)
    assert [(p.kind, p.column) for p in findings["market.enterprise"]] == [("missing_column", "business_scope")]


async def test_an_unreachable_source_stays_published_and_reports_itself(own_api, own_world):
    runtime = own_api.app.state.runtime
    catalog = runtime.catalog
    departments = {
        **catalog.departments,
        "land": dataclasses.replace(catalog.departments["land"], source="postgresql://nobody@127.0.0.1:1/none"),
    }
    await _publish(own_api, dataclasses.replace(catalog, departments=departments))
    assert "land.real-estate" in runtime.catalog.resources
    result = (
        await own_api.post(
            "{ realEstateList { items { ownerName } } }", department="land", purpose="land.property-registration"
        )
    ).json()
    assert result["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"


def test_catalog_load_refuses_a_catalog_its_sources_do_not_fit(own_folder):
    """The CLI load runs the server's conformance check: a typo in a column name is refused, not published."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import REPO

    govshare = str(Path(sys.executable).with_name("govshare"))
    env = {
        **os.environ,
        "GOVSHARE_VAR_DIR": str(own_folder / "var"),
        "GOVSHARE_CATALOG_DIR": str(REPO / "catalog" / "demo"),
    }
    broken = own_folder / "broken"
    shutil.copytree(REPO / "catalog" / "demo", broken)
    police = broken / "police.toml"
    police.write_text(
        police.read_text(encoding="utf-8").replace('column = "id_number"', 'column = "id_numbr"', 1), encoding="utf-8"
    )
    versions = lambda: (
        sqlite3.connect(own_folder / "var" / "platform.db")
        .execute("SELECT COUNT(*) FROM catalog_versions")
        .fetchone()[0]
    )
    before = versions()
    result = subprocess.run(
        [govshare, "catalog", "load", str(broken)], cwd=own_folder, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "police.person.id_numbr" in result.stderr and "no column person.id_numbr" in result.stderr
    assert versions() == before
