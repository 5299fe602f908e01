"""An upstream platform (Art 9): a second govshare, started by the test, answers through the GraphQL connector
under the platform's own credentials; the local policy and record still apply to the local caller."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from catalog import store as catalog_store
from catalog.model import DataItem, Department, Resource, ShareType
from tests.conftest import REPO, _api, copy_var

GOVSHARE = str(Path(sys.executable).with_name("govshare"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def province(demo_folder, tmp_path_factory):
    """A second govshare with its own demo world (a copy of the one `govshare demo` built), serving on a free port."""
    home = tmp_path_factory.mktemp("province")
    env = {**os.environ, "GOVSHARE_VAR_DIR": str(home / "var"), "GOVSHARE_CATALOG_DIR": str(REPO / "catalog" / "demo")}
    copy_var(demo_folder / "var", home / "var")
    port = _free_port()
    process = subprocess.Popen(
        [GOVSHARE, "serve", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the upstream govshare did not start")
            time.sleep(0.2)
        keys = json.loads((home / "var" / "demo-keys.json").read_text())
        yield {"url": f"govshare+http://127.0.0.1:{port}/graphql", "home": home, "key": keys["bigdata"]}
    finally:
        process.terminate()
        process.wait(timeout=10)


def _upstream_catalog(catalog, url: str):
    items = (
        DataItem("creditCode", "统一社会信用代码", "string", "creditCode", filterable=True),
        DataItem("name", "企业名称", "string", "name"),
        DataItem("establishedDate", "成立日期", "date", "establishedDate"),
        DataItem("legalRepIdNumber", "法定代表人公民身份号码", "string", "legalRepIdNumber"),
    )
    resource = Resource(
        code="province.enterprise",
        api_name="provinceEnterprise",
        name="全省企业登记信息",
        provider="province",
        share_type=ShareType.UNCONDITIONAL,
        table="enterprise",
        key="creditCode",
        items=items,
        update_cycle="daily",
    )
    departments = {**catalog.departments, "province": Department("province", "山东省大数据局（上级平台）", url)}
    return dataclasses.replace(
        catalog, departments=departments, resources={**catalog.resources, resource.code: resource}
    )


async def test_upstream_answers_with_the_platform_credentials(own_world, province):
    (own_world.settings.var_dir / "upstreams.toml").write_text(
        f'["{province["url"]}"]\nkey = "{province["key"]}"\npurpose = "bigdata.sharing-supervision"\noperator = "linyi-platform"\n'
    )
    async for api in _api(own_world):
        runtime = api.app.state.runtime
        async with runtime.engine.begin() as conn:
            await catalog_store.publish(
                conn, _upstream_catalog(runtime.catalog, province["url"]), source="test", loaded_by="test"
            )
        await runtime.refresh()

        caller_key = own_world.keys["market"]
        response = await api.post(
            "{ provinceEnterpriseList(first: 150) { items { creditCode name establishedDate } } }",
            department="market",
            purpose="market.licence-review",
            headers={"X-Operator": "clerk-7"},
        )
        items = response.json()["data"]["provinceEnterpriseList"]["items"]
        with sqlite3.connect(province["home"] / "var" / "sources" / "market.db") as conn:
            source = conn.execute(
                "SELECT credit_code, name, established_date FROM enterprise ORDER BY credit_code LIMIT 150"
            ).fetchall()
        assert [(i["creditCode"], i["name"], i["establishedDate"]) for i in items] == source  # two remote pages

        # The province saw the platform, never the caller.
        with sqlite3.connect(province["home"] / "var" / "platform.db") as conn:
            remote = conn.execute("SELECT department, key_id, operator, purpose FROM access_records").fetchall()
        key_id = province["key"].split("_")[1]
        assert remote and set(remote) == {("bigdata", key_id, "linyi-platform", "bigdata.sharing-supervision")}
        assert caller_key.split("_")[1] not in json.dumps(remote)

        # An item the province refuses the platform makes the upstream answer unavailable, not partial.
        refused = (
            await api.post(
                "{ provinceEnterpriseList(first: 2) { items { name legalRepIdNumber } } }",
                department="market",
                purpose="market.licence-review",
            )
        ).json()
        assert refused["data"]["provinceEnterpriseList"] is None
        assert refused["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"


async def test_upstream_without_credentials_is_unavailable(own_world, province):
    async for api in _api(own_world):
        runtime = api.app.state.runtime
        async with runtime.engine.begin() as conn:
            await catalog_store.publish(
                conn, _upstream_catalog(runtime.catalog, province["url"]), source="test", loaded_by="test"
            )
        await runtime.refresh()
        result = (
            await api.post(
                "{ provinceEnterpriseList(first: 2) { items { name } } }",
                department="market",
                purpose="market.licence-review",
            )
        ).json()
        assert result["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
