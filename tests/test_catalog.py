"""The resource catalog: a bad file is refused as a whole with file, resource and field named; a good one
changes the schema without a restart; `catalog check` compares it with the sources; the schema it generates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from graphql import GraphQLNonNull

from catalog import store as catalog_store
from catalog.loader import load_catalog
from govshare.config import Settings
from govshare.errors import CatalogError
from schema.builder import build_schema
from tests.conftest import connect
from tests.test_cli import govshare_in_process

REPO = Path(__file__).resolve().parent.parent
DEMO_CATALOG = REPO / "catalog" / "demo"
SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "schema.graphql"
UPDATE_SNAPSHOTS = os.environ.get("GOVSHARE_UPDATE_SNAPSHOTS") == "1"
SUBPROCESS_TIMEOUT = 60
DEMO = load_catalog(DEMO_CATALOG)
PUBLISHED = len(DEMO.published())


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def copy_catalog(folder: Path) -> Path:
    target = folder / "catalog"
    shutil.copytree(DEMO_CATALOG, target)
    return target


def edit(catalog_dir: Path, file: str, old: str, new: str) -> None:
    path = catalog_dir / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} should occur once in {file}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def govshare_command() -> str:
    candidate = Path(sys.executable).with_name("govshare")
    found = str(candidate) if candidate.exists() else shutil.which("govshare")
    assert found, "the govshare command is not installed: pip install -e '.[test]'"
    return found


def govshare(folder: Path, *args: str, language: str | None = None) -> subprocess.CompletedProcess:
    """Runs `govshare ...` in ``folder`` with its var/ there and the demo catalog, as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
    env |= {"GOVSHARE_VAR_DIR": str(folder / "var"), "GOVSHARE_CATALOG_DIR": str(DEMO_CATALOG)}
    if language:
        env["GOVSHARE_LANGUAGE"] = language
    return subprocess.run(
        [govshare_command(), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )


def catalog_versions(folder: Path) -> list[int]:
    with connect(folder / "var" / "platform.db") as conn:
        return [row[0] for row in conn.execute("SELECT version FROM catalog_versions ORDER BY version")]


def catalog_in_force(folder: Path) -> dict:
    with connect(folder / "var" / "platform.db") as conn:
        (document,) = conn.execute("SELECT document FROM catalog_versions ORDER BY version DESC LIMIT 1").fetchone()
    return json.loads(document)


# ---------------------------------------------------------------------------------------------------------------
# Bad catalogs are refused as a whole, each fault named by file, resource and field

# (file edited, text, replacement) -> the problem expected: (file, resource, field, code, words in the detail)
BAD_CATALOGS = {
    "unknown share_type": (
        ("land.toml", 'share_type = "conditional"', 'share_type = "sometimes"'),
        ("land.toml", "land.real-estate", "share_type", "FIELD_INVALID", "'sometimes'"),
    ),
    "unknown field (typo)": (
        ("police.toml", 'usage = "仅限授权用途', 'usgae = "仅限授权用途'),
        ("police.toml", "police.person", "usgae", "FIELD_UNKNOWN", "usgae"),
    ),
    "item without label": (
        ("land.toml", '  label = "坐落"\n', ""),
        ("land.toml", "land.real-estate", "items[5].label", "FIELD_REQUIRED", ""),
    ),
    "related departments on a conditional resource": (
        ("land.toml", 'key = "certificateNo"', 'key = "certificateNo"\nrelated_departments = ["police"]'),
        ("land.toml", "land.real-estate", "related_departments", "FIELD_INVALID", "unconditional"),
    ),
    "related department that does not exist": (
        (
            "market.toml",
            'related_departments = ["police", "hrss", "land"]',
            'related_departments = ["police", "hrss", "lands"]',
        ),
        ("market.toml", "market.licence", "related_departments", "UNKNOWN_REFERENCE", "'lands'"),
    ),
    "not-shared resource without legal basis": (
        ("civil.toml", 'legal_basis = "《社会救助暂行办法》第六十六条：对获得的个人信息应当依法保密。"\n', ""),
        ("civil.toml", "civil.subsidy", "legal_basis", "FIELD_REQUIRED", "legal basis"),
    ),
    "api_name used in another file": (
        ("police.toml", 'api_name = "household"', 'api_name = "enterprise"'),
        ("police.toml", "police.household", "api_name", "DUPLICATE", "market.enterprise"),
    ),
    "key naming no item": (
        ("land.toml", 'key = "certificateNo"', 'key = "certificateNumber"'),
        ("land.toml", "land.real-estate", "key", "UNKNOWN_REFERENCE", "'certificateNumber'"),
    ),
    "TOML syntax error": (
        ("hrss.toml", 'name = "社会保险参保缴费信息"', 'name = "社会保险参保缴费信息'),
        ("hrss.toml", None, None, "TOML_SYNTAX", "line 19"),
    ),
    "invalid item name": (
        ("land.toml", 'name = "ownerName"', 'name = "owner-name"'),
        ("land.toml", "land.real-estate", "items[2].name", "FIELD_INVALID", "'owner-name'"),
    ),
    # Faults that used to crash the loader or, once loaded, the schema build (and with it every query).
    "[resources] written for [[resources]]": (
        ("land.toml", "[[resources]]\n", "[resources]\n"),
        ("land.toml", None, "resources", "FIELD_INVALID", "[[resources]]"),
    ),
    "[resources.links] written for [[resources.links]]": (
        (
            "land.toml",
            '  label = "登记日期"\n  type = "date"\n',
            '  label = "登记日期"\n  type = "date"\n\n  [resources.links]\n  name = "owner"\n  label = "权利人"\n'
            '  item = "ownerId"\n  target = "police.person"\n  target_item = "idNumber"\n',
        ),
        ("land.toml", "land.real-estate", "links", "FIELD_INVALID", "[[resources.links]]"),
    ),
    "item named by a Python keyword": (
        ("land.toml", 'name = "usage"\n', 'name = "from"\n'),
        ("land.toml", "land.real-estate", "items[7].name", "FIELD_INVALID", "'from'"),
    ),
    "api_name generating a built-in GraphQL type": (
        ("land.toml", 'api_name = "realEstate"', 'api_name = "pageInfo"'),
        ("land.toml", "land.real-estate", "api_name", "FIELD_INVALID", "PageInfo"),
    ),
    "api_name generating another resource's field": (
        ("police.toml", 'api_name = "household"', 'api_name = "enterpriseList"'),
        ("police.toml", "police.household", "api_name", "DUPLICATE", "market.enterprise"),
    ),
    # What a value carries (parts, reveals): the check that no mask is undone relies on it being right.
    "parts on a number": (
        (
            "land.toml",
            '  label = "面积（平方米）"\n  type = "decimal"\n',
            '  label = "面积（平方米）"\n  type = "decimal"\n  parts = { size = "1-3" }\n',
        ),
        ("land.toml", "land.real-estate", "items[6].parts", "PARTS_WRONG_TYPE", "decimal"),
    ),
    "part beyond the value's length": (
        (
            "police.toml",
            'gender = "17", check = "18" }\n  column = "id_number"',
            'gender = "17", check = "19" }\n  column = "id_number"',
        ),
        ("police.toml", "police.person", "items[0].parts.check", "PARTS_OUT_OF_RANGE", "check = 19 (length 18)"),
    ),
    "two parts on one character": (
        (
            "police.toml",
            'gender = "17", check = "18" }\n  column = "id_number"',
            'gender = "16", check = "18" }\n  column = "id_number"',
        ),
        ("police.toml", "police.person", "items[0].parts.gender", "PARTS_OVERLAP", "gender and sequence at 16"),
    ),
    "positions that are not a range": (
        ("police.toml", 'birth_year = "1-4"', 'birth_year = "4-1"'),
        ("police.toml", "police.person", "items[3].parts.birth_year", "FIELD_INVALID", "'4-1'"),
    ),
    "parts of a text without its length": (
        ("hrss.toml", "  length = 6\n  parts = { employer_county", "  parts = { employer_county"),
        ("hrss.toml", "hrss.social-insurance", "items[8].length", "FIELD_REQUIRED", "fixed length"),
    ),
    "one fact of two lengths in a resource": (
        ("civil.toml", 'parts = { county = "1-6", subsidy_type', 'parts = { county = "1-4", subsidy_type'),
        (
            "civil.toml",
            "civil.subsidy",
            "items[1].parts.county",
            "FACT_LENGTH_MISMATCH",
            "county: 6 in idNumber, 4 in subsidyId",
        ),
    ),
    "reveals that is not a list of facts": (
        ("police.toml", 'reveals = ["gender"]', 'reveals = "gender"'),
        ("police.toml", "police.person", "items[2].reveals", "FIELD_INVALID", "list of fact names"),
    ),
}


def test_copied_demo_catalog_loads_unchanged(tmp_path):
    """The starting point of every bad-catalog case is valid."""
    copied = load_catalog(copy_catalog(tmp_path))
    assert copied.to_document() == load_catalog(DEMO_CATALOG).to_document()
    assert {"bigdata", "civil", "hrss", "land", "market", "police"} <= set(copied.departments)
    assert {"police.person", "land.real-estate", "market.licence", "civil.subsidy"} <= {
        r.code for r in copied.published()
    }


@pytest.mark.parametrize("case", list(BAD_CATALOGS))
def test_bad_catalog_is_refused_naming_file_resource_and_field(tmp_path, case):
    (file, old, new), (bad_file, resource, field, code, detail) = BAD_CATALOGS[case]
    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, file, old, new)

    with pytest.raises(CatalogError) as refused:
        load_catalog(catalog_dir)

    error = refused.value
    assert error.code == "CATALOG_INVALID"
    where = [(p.file, p.resource, p.field, p.code) for p in error.problems]
    assert (str(catalog_dir / bad_file), resource, field, code) in where
    problem = next(p for p in error.problems if (p.resource, p.field, p.code) == (resource, field, code))
    assert detail in problem.detail
    # What the operator reads: the file path, then resource and field.
    rendered = problem.render("zh-CN")
    assert rendered.startswith(str(catalog_dir / bad_file))
    for part in (resource, field):
        if part:
            assert f" · {part}" in rendered
    assert error.params == {"count": len(error.problems)}


def test_every_fault_of_every_file_is_reported_at_once(tmp_path):
    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, "land.toml", '  label = "坐落"\n', "")
    edit(catalog_dir, "police.toml", 'usage = "仅限授权用途', 'usgae = "仅限授权用途')
    with pytest.raises(CatalogError) as refused:
        load_catalog(catalog_dir)
    assert sorted((Path(p.file).name, p.resource, p.field) for p in refused.value.problems) == [
        ("land.toml", "land.real-estate", "items[5].label"),
        ("police.toml", "police.person", "usgae"),
    ]


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(CatalogError) as refused:
        load_catalog(tmp_path)
    ((file, code),) = [(p.file, p.code) for p in refused.value.problems]
    assert (file, code) == (str(tmp_path), "CATALOG_EMPTY")


# ---------------------------------------------------------------------------------------------------------------
# Through the command line


def test_cli_refuses_bad_catalog_and_keeps_the_catalog_in_force(demo_folder, tmp_path):
    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, "land.toml", '  label = "坐落"\n', "")
    versions, document = catalog_versions(demo_folder), catalog_in_force(demo_folder)

    run = govshare(demo_folder, "catalog", "load", str(catalog_dir))

    assert run.returncode == 1
    assert run.stdout == ""
    assert "目录有 1 处错误，已整体拒绝，现行目录保持不变。" in run.stderr
    assert f"{catalog_dir / 'land.toml'} · land.real-estate · items[5].label: 缺少必填字段。" in run.stderr
    assert catalog_versions(demo_folder) == versions
    assert catalog_in_force(demo_folder) == document


def test_cli_refusal_in_english(demo_folder, tmp_path):
    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, "market.toml", '"police", "hrss", "land"]', '"police", "hrss", "lands"]')
    versions = catalog_versions(demo_folder)

    run = govshare_in_process(demo_folder, "catalog", "load", str(catalog_dir), language="en")

    assert run.returncode == 1
    assert "The catalog has 1 problem(s) and was refused as a whole; the catalog in force is unchanged." in run.stderr
    assert (
        f"{catalog_dir / 'market.toml'} · market.licence · related_departments: "
        "refers to something that does not exist: no department 'lands'"
    ) in run.stderr
    assert catalog_versions(demo_folder) == versions


def test_cli_loads_a_good_catalog_as_a_new_version(own_folder, tmp_path):
    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, "land.toml", 'label = "坐落"', 'label = "不动产坐落"')
    (before,) = catalog_versions(own_folder)

    run = govshare(own_folder, "catalog", "load", str(catalog_dir), "--by", "zhang.san")

    assert run.returncode == 0, run.stderr
    assert (
        run.stdout.strip()
        == f"目录第 {before + 1} 版已生效：{len(DEMO.departments)} 个部门，{PUBLISHED} 个已发布资源。"
    )
    assert catalog_versions(own_folder) == [before, before + 1]
    (real_estate,) = [r for r in catalog_in_force(own_folder)["resources"] if r["code"] == "land.real-estate"]
    assert {i["name"]: i["label"] for i in real_estate["items"]}["address"] == "不动产坐落"
    with connect(own_folder / "var" / "platform.db") as conn:
        assert conn.execute(
            "SELECT loaded_by, source FROM catalog_versions WHERE version = ?", (before + 1,)
        ).fetchone() == ("zhang.san", str(catalog_dir))


def test_catalog_check_passes_on_the_demo_world(demo_folder):
    run = govshare(demo_folder, "catalog", "check")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"目录有效，{PUBLISHED} 个已发布资源的数据源均与目录一致。"


def test_catalog_check_names_resource_and_column_missing_from_the_source(own_folder):
    with connect(own_folder / "var" / "sources" / "police.db") as conn:
        conn.execute("ALTER TABLE person RENAME COLUMN address TO residence")
        conn.execute("ALTER TABLE household RENAME TO households")
        conn.commit()

    run = govshare_in_process(own_folder, "catalog", "check")

    assert run.returncode == 1
    assert "police.person.address: 数据源与目录不符：no column person.address" in run.stderr
    assert "police.household: 数据源与目录不符：no table household" in run.stderr
    assert "2 处与数据源不符。" in run.stderr
    assert "land.real-estate" not in run.stderr  # the other sources still match


def test_catalog_check_of_a_bad_file_names_the_fault(demo_folder, tmp_path):
    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, "land.toml", 'key = "certificateNo"', 'key = "certificateNumber"')
    run = govshare_in_process(demo_folder, "catalog", "check", str(catalog_dir))
    assert run.returncode == 1
    assert (
        f"{catalog_dir / 'land.toml'} · land.real-estate · key: 引用了不存在的对象：no data item named 'certificateNumber'"
        in run.stderr
    )


# ---------------------------------------------------------------------------------------------------------------
# A new catalog version changes the schema of a running server


TYPE_FIELDS = "query($name: String!) { __type(name: $name) { description fields { name description } } }"


async def _fields(api, type_name: str) -> dict[str, str] | None:
    result = await api.query(TYPE_FIELDS, "land", None, variables={"name": type_name})
    found = result["data"]["__type"]
    return None if found is None else {f["name"]: f["description"] for f in found["fields"]}


async def test_reloaded_catalog_changes_the_schema_without_a_restart(own_api, tmp_path):
    runtime = own_api.app.state.runtime
    subsidies = "{ subsidyList(first: 1) { items { subsidyId } } }"
    assert (await _fields(own_api, "RealEstate"))["address"] == "坐落"
    before = await own_api.query(subsidies, "civil", "civil.subsistence-allowance")
    assert len(before["data"]["subsidyList"]["items"]) == 1

    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, "land.toml", 'label = "坐落"', 'label = "不动产坐落"')
    civil = (catalog_dir / "civil.toml").read_text(encoding="utf-8")
    (catalog_dir / "civil.toml").write_text(
        civil[: civil.index('[[resources]]\ncode = "civil.subsidy"')], encoding="utf-8"
    )
    async with runtime.engine.begin() as conn:
        version = await catalog_store.publish(
            conn, load_catalog(catalog_dir), source=str(catalog_dir), loaded_by="test"
        )
    await runtime.refresh()  # what the background check does within refresh_seconds

    assert (await _fields(own_api, "RealEstate"))["address"] == "不动产坐落"
    assert await _fields(own_api, "Subsidy") is None
    after = await own_api.query(subsidies, "civil", "civil.subsistence-allowance")
    assert "data" not in after
    (error,) = after["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_INVALID"
    assert "Cannot query field 'subsidyList' on type 'Query'" in error["message"]
    health = (await own_api.client.get("/healthz")).json()
    assert health["catalog_version"] == version and health["published_resources"] == PUBLISHED - 1


# ---------------------------------------------------------------------------------------------------------------
# The generated schema


@pytest.fixture(scope="module")
def demo_schema():
    return build_schema(load_catalog(DEMO_CATALOG), Settings())


def test_schema_matches_the_snapshot(demo_schema):
    printed = demo_schema.as_str() + "\n"
    if UPDATE_SNAPSHOTS:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(printed, encoding="utf-8")
    assert SNAPSHOT.exists(), f"no snapshot yet: run GOVSHARE_UPDATE_SNAPSHOTS=1 pytest {Path(__file__).name}"
    assert printed == SNAPSHOT.read_text(encoding="utf-8"), (
        "the schema generated from catalog/demo differs from tests/snapshots/schema.graphql; if the change is "
        f"intended, regenerate it with GOVSHARE_UPDATE_SNAPSHOTS=1 pytest tests/{Path(__file__).name} and review the diff"
    )


def test_labels_are_descriptions_and_every_data_item_is_nullable(demo_schema):
    catalog = load_catalog(DEMO_CATALOG)
    graphql_schema = demo_schema._schema
    for resource in catalog.published():
        object_type = graphql_schema.get_type(resource.type_name)
        assert object_type is not None, resource.code
        assert object_type.description.startswith(f"{resource.name}（{resource.code}）")
        assert {i.name for i in resource.items} <= set(object_type.fields)
        for item in resource.items:
            field = object_type.fields[item.name]
            assert not isinstance(field.type, GraphQLNonNull), f"{resource.type_name}.{item.name} must be nullable"
            assert field.description.startswith(item.label), (resource.code, item.name, field.description)
    person = graphql_schema.get_type("Person").fields
    assert person["name"].description == "姓名"
    assert person["phone"].description == "联系电话（不予共享）"
    assert person["gender"].description == "性别（无条件共享）"
    assert graphql_schema.get_type("Licence").description.splitlines()[3] == (
        "仅在相关部门间共享：临沂市公安局、临沂市人力资源和社会保障局、临沂市自然资源和规划局"
    )
    # the update cycle it promises (更新周期), in Chinese, on every resource type
    assert graphql_schema.get_type("Licence").description.splitlines()[4] == "更新周期：每日"
    assert "更新周期：每月" in graphql_schema.get_type("SocialInsurance").description.splitlines()


def test_lookup_and_list_fields_for_every_published_resource(demo_schema):
    catalog = load_catalog(DEMO_CATALOG)
    query = demo_schema._schema.query_type.fields
    expected = (
        {"caller", "applications", "applicationInbox", "grantHistory", "usageRecords", "overdueResources"}
        | {"subjectAccesses"}
        | {"usageReport"}  # the providers' usage report (schema/usage.py)
        | {"formFields"}  # the form search (schema/forms.py)
        | {"catalogSubmissions", "catalogHistory", "catalogDiff"}  # the catalog workflow (schema/catalog.py)
        | {"dataErrorReports", "dataErrorInbox"}  # data corrections (schema/corrections.py)
        | {"consumerFeedback", "departmentEvaluation"}  # oversight (schema/oversight.py)
        | {"_service", "_entities"}  # Apollo Federation v2 (schema/federation.py)
        | {r.api_name for r in catalog.published()}
        | {f"{r.api_name}List" for r in catalog.published()}
    )
    assert set(query) == expected
    assert query["person"].description == "按公民身份号码查询常住人口基本信息"
    assert list(query["person"].args) == ["idNumber"]
    assert set(demo_schema._schema.get_type("PersonFilter").fields) == {
        i.name for i in catalog.resources["police.person"].items if i.filterable
    }
