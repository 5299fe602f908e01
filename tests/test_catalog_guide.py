"""The catalog as the national guide describes it, and as departments exchange it: the guide's fields are
validated per field; a catalog exported to a 资源目录 workbook reads back as the same catalog; a malformed
workbook is refused with each fault at its sheet and cell; docs/catalog-fields.md documents every field."""

from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from catalog.guide import org_code_problem, parse_resource_code
from catalog.loader import ACCEPTED_FIELDS, load_catalog
from catalog.xlsx import CATALOG_SHEET, SHEETS, write_workbook
from govshare.errors import CatalogError, Problem
from tests.conftest import copy_var
from tests.test_catalog import DEMO, copy_catalog, edit
from tests.test_cli import govshare_in_process

REPO = Path(__file__).resolve().parent.parent
FIELDS_DOC = REPO / "docs" / "catalog-fields.md"


def refused(path: Path) -> list[Problem]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    return caught.value.problems


# ---------------------------------------------------------------------------------------------------------------
# The guide's fields in TOML, each fault named by file, resource and field

# (file edited, text, replacement) -> (resource, field, code, words in the detail)
BAD_GUIDE_FIELDS = {
    "resource code not in the guide's form": (
        ("land.toml", 'resource_code = "103002/000001"', 'resource_code = "103-002-000001"'),
        ("land.real-estate", "resource_code", "FIELD_INVALID", "6-digit sequence"),
    ),
    "resource code of another class": (
        ("land.toml", 'resource_code = "103002/000001"', 'resource_code = "303002/000001"'),
        ("land.real-estate", "resource_code", "FIELD_INVALID", "类 3 is not 1"),
    ),
    "resource code missing": (
        ("land.toml", 'resource_code = "103002/000001"\n', ""),
        ("land.real-estate", "resource_code", "FIELD_REQUIRED", "101001/000001"),
    ),
    "resource code used twice": (
        # land.toml is read before police.toml: police.person's code is the second
        ("land.toml", 'resource_code = "103002/000001"', 'resource_code = "101001/000001"'),
        ("police.person", "resource_code", "DUPLICATE", "land.real-estate", "police.toml"),
    ),
    "credit code whose check character fails": (
        ("police.toml", 'org_code = "11371300004191019X"', 'org_code = "113713000041910190"'),
        (None, "department.org_code", "FIELD_INVALID", "GB 32100"),
    ),
    "providing department without its code": (
        (
            "land.toml",
            'org_code = "113713000041910519"  # 统一社会信用代码 (synthetic; its GB 32100 check holds)\n',
            "",
        ),
        (None, "department.org_code", "FIELD_REQUIRED", "信息资源提供方代码"),
    ),
    "conditional data without its condition": (
        ("hrss.toml", 'share_condition = "经人社局审核同意后使用。"\n', ""),
        ("hrss.social-insurance", "share_condition", "FIELD_REQUIRED", "共享条件"),
    ),
    "published without a publish date": (
        ("land.toml", 'publish_date = "2026-01-05"\n', ""),
        ("land.real-estate", "publish_date", "FIELD_REQUIRED", "发布日期"),
    ),
    "publish date that is no date": (
        ("land.toml", 'publish_date = "2026-01-05"', 'publish_date = "2026-02-30"'),
        ("land.real-estate", "publish_date", "FIELD_INVALID", "'2026-02-30'"),
    ),
    "data type that does not describe the item": (
        (
            "land.toml",
            '  label = "坐落"\n  type = "string"\n',
            '  label = "坐落"\n  type = "string"\n  guide_type = "N"\n',
        ),
        ("land.real-estate", "items[5].guide_type", "FIELD_INVALID", "N (数值型) describes decimal or integer"),
    ),
    "data type the guide does not have": (
        (
            "land.toml",
            '  label = "坐落"\n  type = "string"\n',
            '  label = "坐落"\n  type = "string"\n  guide_type = "X"\n',
        ),
        ("land.real-estate", "items[5].guide_type", "FIELD_INVALID", "'X' is not one of"),
    ),
    "related resource code that names no resource": (
        ("police.toml", 'related_resources = ["101001/000002"]', 'related_resources = ["101001/000009"]'),
        ("police.person", "related_resources", "UNKNOWN_REFERENCE", "101001/000009"),
    ),
    "unknown format": (
        ("land.toml", 'format = "database"', 'format = "paper"'),
        ("land.real-estate", "format", "FIELD_INVALID", "'paper'"),
    ),
    "more category names than the code has levels": (
        ("land.toml", 'category = ["自然资源和空间地理基础信息资源", "不动产登记"]', 'category = ["甲", "乙", "丙"]'),
        ("land.real-estate", "category", "FIELD_INVALID", "3 names"),
    ),
    "source URL of an engine that is not supported": (
        ("land.toml", 'source = "sqlite:///{var}/sources/land.db"', 'source = "oracle://land"'),
        (None, "department.source", "FIELD_INVALID", "'oracle://land'"),
    ),
}


@pytest.mark.parametrize("case", BAD_GUIDE_FIELDS, ids=list(BAD_GUIDE_FIELDS))
def test_guide_fields_are_validated_per_field(tmp_path, case):
    (file, old, new), (resource, field, code, detail, *where) = BAD_GUIDE_FIELDS[case]
    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, file, old, new)
    problems = refused(catalog_dir)
    found = [p for p in problems if (p.resource, p.field, p.code) == (resource, field, code)]
    assert found, [(p.resource, p.field, p.code, p.detail) for p in problems]
    assert detail in found[0].detail
    assert found[0].file == str(catalog_dir / (where[0] if where else file))
    assert len(problems) == 1, [p.render() for p in problems]


def test_the_demo_carries_the_guides_fields():
    person = DEMO.resources["police.person"]
    code = parse_resource_code(person.resource_code)
    assert code is not None and code.path == ("1", "01", "001") and code.sequence == "000001"
    assert person.category == ("人口基础信息资源", "常住人口")
    assert person.format == "database" and person.related_resources == ("101001/000002",)
    assert [i.data_type for i in person.items][:4] == ["C", "C", "C", "D"]
    assert DEMO.resources["police.household"].item("memberCount").data_type == "I"
    for resource in DEMO.resources.values():
        assert resource.resource_code and resource.abstract and resource.publish_date, resource.code
        assert org_code_problem(DEMO.departments[resource.provider].org_code) is None
    # The coordinator provides nothing: a consumer-only department needs no source.
    assert DEMO.departments["bigdata"].source == ""


def test_org_codes_are_checked_by_their_check_characters():
    assert org_code_problem("11371300004191019X") is None  # GB 32100
    assert org_code_problem("00419101-9") is None and org_code_problem("004191019") is None  # GB 11714
    assert "GB 11714" in (org_code_problem("004191018") or "")
    assert "GB 32100" in (org_code_problem("11371300004191019Y") or "")
    assert org_code_problem("police") is not None


# ---------------------------------------------------------------------------------------------------------------
# The workbook: export, import, round trip


@pytest.fixture
def workbook(tmp_path) -> Path:
    path = tmp_path / "catalog.xlsx"
    write_workbook(DEMO, path)
    return path


def column(sheet, header: str) -> str:
    for cell in sheet[1]:
        if cell.value == header:
            return cell.column_letter
    raise AssertionError(f"no column {header}")


def row_of(sheet, code: str) -> int:
    letter = column(sheet, "目录标识")
    return next(c.row for c in sheet[letter] if c.value == code)


def test_the_demo_catalog_round_trips_through_a_workbook(workbook):
    back = load_catalog(workbook)
    assert back == DEMO  # departments, purposes, resources with every item, link and guide field
    assert list(back.resources["police.person"].items) == list(DEMO.resources["police.person"].items)
    book = load_workbook(workbook)
    assert book.sheetnames == ["资源目录", "部门", "履职事项", "关联"]
    sheet = book[CATALOG_SHEET]
    first = row_of(sheet, "police.person")
    # One row per data item, the resource's cells merged down over them; labels as the guide writes them.
    assert f"A{first}:A{first + len(DEMO.resources['police.person'].items) - 1}" in {
        str(r) for r in sheet.merged_cells.ranges
    }
    assert sheet[f"{column(sheet, '共享类型')}{first}"].value == "有条件共享"
    assert sheet[f"{column(sheet, '更新周期')}{first}"].value == "每日"
    assert sheet[f"{column(sheet, '数据类型')}{first}"].value == "字符型C"
    assert sheet[f"{column(sheet, '信息资源提供方代码')}{first}"].value == "11371300004191019X"


def test_a_workbook_with_repeated_values_dates_and_identifiers_reads_the_same(workbook):
    """What another department's tool writes: no merged cells (each row repeats its resource), a real date cell,
    identifiers in place of labels, a data type by its name only."""
    book = load_workbook(workbook)
    sheet = book[CATALOG_SHEET]
    for merged in list(sheet.merged_cells.ranges):
        value = sheet.cell(merged.min_row, merged.min_col).value
        sheet.unmerge_cells(str(merged))
        for row in range(merged.min_row, merged.max_row + 1):
            sheet.cell(row, merged.min_col).value = value
    first = row_of(sheet, "land.real-estate")
    sheet[f"{column(sheet, '发布日期')}{first}"].value = datetime.date(2026, 1, 5)
    sheet[f"{column(sheet, '共享类型')}{first + 1}"].value = "conditional"
    sheet[f"{column(sheet, '数据类型')}{first}"].value = "字符型"
    sheet[f"{column(sheet, '值类型')}{first}"].value = None  # derived from 字符型: string
    book.save(workbook)
    assert load_catalog(workbook) == DEMO


def test_one_department_exports_alone(tmp_path):
    path = tmp_path / "hrss.xlsx"
    write_workbook(DEMO, path, ["land"])
    back = load_catalog(path)  # land links and relates to nothing: it loads on its own
    assert set(back.departments) == {"land"} and set(back.resources) == {"land.real-estate"}
    assert back.resources["land.real-estate"] == DEMO.resources["land.real-estate"]
    assert set(back.purposes) == {p.code for p in DEMO.purposes.values() if p.department == "land"}


def test_text_that_looks_like_a_formula_is_written_as_text(tmp_path):
    """A catalog value starting with "=" must not become a formula in the departments' spreadsheet program."""
    catalog_dir = copy_catalog(tmp_path)
    edit(catalog_dir, "land.toml", 'abstract = "不动产权证书', 'abstract = "=HYPERLINK(\\"http://x\\")不动产权证书')
    catalog = load_catalog(catalog_dir)
    path = tmp_path / "c.xlsx"
    write_workbook(catalog, path)
    sheet = load_workbook(path)[CATALOG_SHEET]
    cell = sheet[f"{column(sheet, '信息资源摘要')}{row_of(sheet, 'land.real-estate')}"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    assert load_catalog(path) == catalog


# ---------------------------------------------------------------------------------------------------------------
# Malformed workbooks: each fault at its sheet and cell


def cells(problems: list[Problem]) -> set[tuple[str, str, str]]:
    return {(p.sheet, p.cell, p.code) for p in problems}


def test_a_missing_column_is_named(workbook):
    book = load_workbook(workbook)
    sheet = book[CATALOG_SHEET]
    letter = column(sheet, "共享类型")
    sheet.delete_cols(sheet[f"{letter}1"].column)
    book.save(workbook)
    problems = refused(workbook)
    assert [(p.sheet, p.cell, p.code, p.detail) for p in problems] == [
        (CATALOG_SHEET, "1", "XLSX_COLUMN_MISSING", "共享类型")
    ]
    assert problems[0].render("zh-CN").endswith("资源目录!1: 表头缺少必需的列：共享类型")
    assert problems[0].render("en").endswith("资源目录!1: the header lacks a required column: 共享类型")


def test_faults_in_cells_are_located_each_at_its_cell(workbook):
    book = load_workbook(workbook)
    sheet = book[CATALOG_SHEET]
    land, market, police = (row_of(sheet, c) for c in ("land.real-estate", "market.enterprise", "police.person"))
    share, date, name = column(sheet, "共享类型"), column(sheet, "发布日期"), column(sheet, "信息项标识")
    provider, table = column(sheet, "提供部门"), column(sheet, "数据表")
    sheet[f"{share}{land}"] = "有时共享"  # bad share type
    sheet[f"{date}{market}"] = "2026-13-45"  # bad date
    sheet[f"{name}{police + 2}"] = sheet[f"{name}{police}"].value  # the same data item twice in police.person
    sheet[f"{provider}{row_of(sheet, 'hrss.social-insurance')}"] = "hrs"  # a department the 部门 sheet lacks
    sheet[f"{table}{land}"] = '=CONCAT("real","_estate")'  # a formula, not a value
    book.save(workbook)
    problems = refused(workbook)
    assert cells(problems) >= {
        (CATALOG_SHEET, f"{share}{land}", "FIELD_INVALID"),
        (CATALOG_SHEET, f"{date}{market}", "FIELD_INVALID"),
        (CATALOG_SHEET, f"{name}{police + 2}", "DUPLICATE"),
        (CATALOG_SHEET, f"{provider}{row_of(sheet, 'hrss.social-insurance')}", "UNKNOWN_REFERENCE"),
        (CATALOG_SHEET, f"{table}{land}", "XLSX_FORMULA"),
    }, [p.render() for p in problems]
    by_cell = {p.cell: p for p in problems}
    assert by_cell[f"{share}{land}"].field == "share_type" and "'有时共享'" in by_cell[f"{share}{land}"].detail
    assert by_cell[f"{date}{market}"].field == "publish_date"
    assert by_cell[f"{name}{police + 2}"].field == "items[2].name"
    # The formula's cell is reported once, as a formula: not again as a missing table.
    assert [p.code for p in problems if p.cell == f"{table}{land}"] == ["XLSX_FORMULA"]
    assert not [p for p in problems if p.resource == "land.real-estate" and p.field == "table"]
    assert f"{CATALOG_SHEET}!{share}{land}" in by_cell[f"{share}{land}"].render("zh-CN")


def test_a_resource_whose_rows_disagree_is_refused_at_the_cell(workbook):
    book = load_workbook(workbook)
    sheet = book[CATALOG_SHEET]
    first = row_of(sheet, "police.household")
    cycle = column(sheet, "更新周期")
    sheet.unmerge_cells(f"{cycle}{first}:{cycle}{first + 5}")
    sheet[f"{cycle}{first + 3}"] = "每月"
    book.save(workbook)
    problems = refused(workbook)
    assert [(p.sheet, p.cell, p.code, p.resource) for p in problems] == [
        (CATALOG_SHEET, f"{cycle}{first + 3}", "XLSX_ROW_MISMATCH", "police.household")
    ]


def test_faults_on_the_department_purpose_and_link_sheets(workbook):
    book = load_workbook(workbook)
    book["部门"]["C2"] = "113713000041910430"  # civil's credit code with a wrong check character
    book["履职事项"]["A2"] = "nobody"
    book["关联"]["F2"] = "idNo"
    book.save(workbook)
    problems = refused(workbook)
    assert cells(problems) == {
        ("部门", "C2", "FIELD_INVALID"),
        ("履职事项", "A2", "UNKNOWN_REFERENCE"),
        ("关联", "F2", "UNKNOWN_REFERENCE"),
    }, [p.render() for p in problems]
    assert next(p for p in problems if p.sheet == "部门").field == "department.org_code"


def test_a_file_that_is_no_workbook_or_lacks_a_sheet(tmp_path, workbook):
    bogus = tmp_path / "bogus.xlsx"
    bogus.write_text("not a zip", encoding="utf-8")
    assert [p.code for p in refused(bogus)] == ["XLSX_INVALID"]
    book = load_workbook(workbook)
    del book["部门"]
    book.save(workbook)
    assert [(p.code, p.detail) for p in refused(workbook)] == [("XLSX_SHEET_MISSING", "部门")]


# ---------------------------------------------------------------------------------------------------------------
# The command: export the catalog in force, read it back


def test_cli_exports_the_catalog_in_force_and_loads_it_back(demo_folder, tmp_path):
    copy_var(demo_folder / "var", tmp_path / "var")  # a var/ built by `govshare demo`

    def run(*args: str):
        return govshare_in_process(tmp_path, *args, language="en")

    exported = run("catalog", "export", "-o", str(tmp_path / "all.xlsx"))
    assert exported.returncode == 0, exported.stderr
    assert "Exported 6 department(s), 8 resource(s)" in exported.stdout
    assert load_catalog(tmp_path / "all.xlsx") == DEMO
    one = run("catalog", "export", "--format", "xlsx", "-o", str(tmp_path / "l.xlsx"), "--department", "land")
    assert one.returncode == 0 and set(load_catalog(tmp_path / "l.xlsx").departments) == {"land"}
    unknown = run("catalog", "export", "-o", str(tmp_path / "x.xlsx"), "--department", "nope")
    assert unknown.returncode != 0 and "DEPARTMENT_NOT_FOUND" in unknown.stderr
    assert not (tmp_path / "x.xlsx").exists()
    files = run("catalog", "export", "-o", str(tmp_path / "f.xlsx"), "--from", str(REPO / "catalog" / "demo"))
    assert files.returncode == 0 and load_catalog(tmp_path / "f.xlsx") == DEMO, files.stderr
    checked = run("catalog", "check", str(tmp_path / "all.xlsx"))
    assert checked.returncode == 0, checked.stderr
    loaded = run("catalog", "load", str(tmp_path / "all.xlsx"))
    assert loaded.returncode == 0 and "8 published resources" in loaded.stdout, loaded.stderr
    # A faulty workbook is refused by load with each fault at its cell, and nothing changes.
    book = load_workbook(tmp_path / "all.xlsx")
    book[CATALOG_SHEET][f"{column(book[CATALOG_SHEET], '更新周期')}2"] = "每十年"
    book.save(tmp_path / "bad.xlsx")
    bad = run("catalog", "load", str(tmp_path / "bad.xlsx"))
    assert bad.returncode != 0 and "资源目录!R2" in bad.stderr and "'每十年'" in bad.stderr, bad.stderr


# ---------------------------------------------------------------------------------------------------------------
# The field reference cannot drift from the loader


def documented_fields() -> dict[str, set[str]]:
    """The fields of each table the reference documents: in each section ``## … `[table]` …``, the backticked
    first cell of each row of its tables."""
    found: dict[str, set[str]] = {}
    table = None
    for line in FIELDS_DOC.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"^## .*`\[\[?([a-z.]+)\]\]?`", line):
            table = heading.group(1)
            found.setdefault(table, set())
        elif line.startswith("## "):
            table = None
        elif table and (row := re.match(r"^\| `([a-z_]+)` \|", line)):
            found[table].add(row.group(1))
    return found


def test_every_field_the_loader_accepts_is_documented():
    documented = documented_fields()
    for table, accepted in ACCEPTED_FIELDS.items():
        assert documented.get(table) == accepted, (table, accepted ^ documented.get(table, set()))


def test_every_workbook_column_is_documented():
    text = FIELDS_DOC.read_text(encoding="utf-8")
    for title, columns in SHEETS.items():
        assert f"`{title}`" in text
        for col in columns:
            assert f"| {col.header} |" in text, (title, col.header)


def test_the_references_examples_load(tmp_path):
    """Each ```toml block of the reference that holds a [department] is a catalog file that loads."""
    blocks = re.findall(r"```toml\n(.*?)```", FIELDS_DOC.read_text(encoding="utf-8"), re.S)
    files = [b for b in blocks if "[department]" in b]
    assert len(files) >= 2
    catalog_dir = tmp_path / "examples"
    catalog_dir.mkdir()
    for number, block in enumerate(files):
        (catalog_dir / f"example{number}.toml").write_text(block, encoding="utf-8")
    loaded = load_catalog(catalog_dir)
    assert {r.share_type.value for r in loaded.resources.values()} == {"unconditional", "conditional", "not_shared"}
    assert any(not d.source for d in loaded.departments.values())  # a consumer-only department
    shutil.rmtree(catalog_dir)


def test_a_source_password_does_not_travel_in_a_workbook(tmp_path):
    """The 部门 sheet goes to other departments: a password in a source URL is written as ***, and a workbook
    with *** is refused until the password is written in again (never loaded as the password ***)."""
    catalog_dir = copy_catalog(tmp_path)
    edit(
        catalog_dir,
        "hrss.toml",
        'source = "sqlite:///{var}/sources/hrss.db"',
        'source = "postgresql://hr:s3cret@db:5432/hr"',
    )
    path = tmp_path / "c.xlsx"
    write_workbook(load_catalog(catalog_dir), path)
    sheet = load_workbook(path)["部门"]
    sources = [row[3] for row in sheet.iter_rows(min_row=2, values_only=True) if row[0] == "hrss"]
    assert sources == ["postgresql://hr:***@db:5432/hr"]
    assert not any("s3cret" in str(v) for row in sheet.iter_rows(values_only=True) for v in row)
    problems = refused(path)
    assert [(p.sheet, p.field, p.code) for p in problems] == [("部门", "department.source", "FIELD_INVALID")]


def test_a_source_password_in_the_query_string_does_not_travel_either(tmp_path):
    """The drivers also read a password from the URL's query (``?password=``): it is hidden alike, and refused
    back alike."""
    catalog_dir = copy_catalog(tmp_path)
    edit(
        catalog_dir,
        "hrss.toml",
        'source = "sqlite:///{var}/sources/hrss.db"',
        'source = "postgresql://db:5432/hr?user=hr&Password=s3cret&sslmode=require"',
    )
    path = tmp_path / "c.xlsx"
    write_workbook(load_catalog(catalog_dir), path)
    sheet = load_workbook(path)["部门"]
    sources = [row[3] for row in sheet.iter_rows(min_row=2, values_only=True) if row[0] == "hrss"]
    assert sources == ["postgresql://db:5432/hr?user=hr&Password=***&sslmode=require"]
    assert not any("s3cret" in str(v) for row in sheet.iter_rows(values_only=True) for v in row)
    problems = refused(path)
    assert [(p.sheet, p.field, p.code) for p in problems] == [("部门", "department.source", "FIELD_INVALID")]


def test_a_resource_whose_rows_are_apart_is_refused_once(workbook):
    """Rows of one resource must go together: police.household's rows moved below another resource's are
    refused at the row where it starts again, once, not once per item row."""
    book = load_workbook(workbook)
    sheet = book[CATALOG_SHEET]
    code = column(sheet, "目录标识")
    row = sheet.max_row + 1
    first = row_of(sheet, "land.real-estate")
    for number in range(first, first + 2):  # land's first two rows again, at the end
        for cell in sheet[number]:
            sheet.cell(row + number - first, cell.column).value = cell.value
    book.save(workbook)
    problems = refused(workbook)
    assert [(p.sheet, p.cell, p.code) for p in problems] == [(CATALOG_SHEET, f"{code}{row}", "DUPLICATE")]
