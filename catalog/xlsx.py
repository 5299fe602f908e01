"""Catalogs as departments exchange them: a workbook whose 资源目录 sheet has one row per data item (信息项), the
resource's columns on its first row and merged down over its items' rows (the layout of the guide's 目录填报模板),
beside the sheets 部门, 履职事项 and 关联 that carry what the platform needs besides (source, purposes, links).

Reading turns a workbook into the same per-department documents a TOML file holds, so the loader validates them
exactly as it validates TOML (catalog/loader.py); each fault is located at its sheet and cell. Repeated values
in place of merged cells are read as well (a sheet sorted or filtered in a spreadsheet program keeps working),
and values are accepted as labels (有条件共享, 每日, 字符型C, 是) or as the TOML identifiers.
"""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from catalog.guide import (
    CLASSIFICATION_LABELS,
    FORMAT_LABELS,
    GUIDE_TYPES,
    SHARE_METHOD_LABELS,
    SHARE_TYPE_LABELS,
    STATUS_LABELS,
    UPDATE_CYCLE_LABELS,
    guide_type_label,
    guide_type_of,
)
from catalog.model import Catalog, DataItem, Resource
from catalog.store import without_password  # a source URL as a workbook shows it
from govshare.errors import Problem

MAX_BYTES = 10 * 1024 * 1024  # the workbook file
MAX_UNPACKED_BYTES = 100 * 1024 * 1024  # its parts once unzipped (a zip bomb is refused before it is parsed)
MAX_ROWS = 20000  # rows holding a value, per sheet
MAX_COLUMNS = 64  # read per row: a sheet's declared dimension (up to XFD) never makes rows that wide

CATALOG_SHEET, DEPARTMENTS_SHEET, PURPOSES_SHEET, LINKS_SHEET = "资源目录", "部门", "履职事项", "关联"


@dataclass(frozen=True)
class Column:
    """A column: its header, the field of the TOML document it fills, how its cells read and write, and whether
    a sheet must have it."""

    header: str
    key: str
    kind: str = "text"  # text, integer, boolean, date, list, parts, guide_type, or a choice's labels below
    required: bool = False
    labels: dict[str, str] = field(default_factory=dict)


# What a data item's ``subject`` says it identifies (govshare.subjects.KINDS).
SUBJECT_LABELS = {"person": "自然人", "enterprise": "法人", "person_or_enterprise": "自然人或法人"}

_CHOICES = {
    "classification": CLASSIFICATION_LABELS,
    "format": FORMAT_LABELS,
    "share_type": SHARE_TYPE_LABELS,
    "share_method": SHARE_METHOD_LABELS,
    "update_cycle": UPDATE_CYCLE_LABELS,
    "status": STATUS_LABELS,
}

# The 资源目录 sheet: the resource's columns (category.N are the names of 项, 目, 细目), then the item's.
RESOURCE_COLUMNS = (
    Column("类", "classification", "choice", True, CLASSIFICATION_LABELS),
    Column("项", "category.0"),
    Column("目", "category.1"),
    Column("细目", "category.2"),
    Column("信息资源名称", "name", required=True),
    Column("信息资源代码", "resource_code", required=True),
    Column("目录标识", "code", required=True),
    Column("信息资源提供方", "provider_name"),
    Column("信息资源提供方代码", "provider_org_code"),
    Column("提供部门", "provider", required=True),
    Column("信息资源摘要", "abstract", required=True),
    Column("信息资源格式", "format", "choice", False, FORMAT_LABELS),
    Column("共享类型", "share_type", "choice", True, SHARE_TYPE_LABELS),
    Column("共享条件", "share_condition"),
    Column("共享方式", "share_method", "choice", False, SHARE_METHOD_LABELS),
    Column("不予共享依据", "legal_basis"),
    Column("使用要求", "usage"),
    Column("更新周期", "update_cycle", "choice", True, UPDATE_CYCLE_LABELS),
    # Where the source's last change is read (catalog/freshness.py): one of the two, or neither.
    Column("更新时间字段", "freshness.changed_column"),
    Column("更新标记", "freshness.marker"),
    Column("发布日期", "publish_date", "date", True),
    Column("关联资源代码", "related_resources", "list"),
    Column("关键字", "keywords", "list"),
    Column("共享部门范围", "related_departments", "list"),
    Column("状态", "status", "choice", False, STATUS_LABELS),
    Column("接口名称", "api_name", required=True),
    Column("数据表", "table", required=True),
    Column("主键信息项", "key", required=True),
    Column("缓存秒数", "cache_seconds", "integer"),
)
ITEM_COLUMNS = (  # keys of item fields are item.<field>: the sheet has a resource's name and an item's
    Column("信息项名称", "item.label", required=True),
    Column("信息项标识", "item.name", required=True),
    Column("数据类型", "item.guide_type", "guide_type", True),
    Column("值类型", "item.type"),
    Column("数据长度", "item.length", "integer"),
    Column("字段名", "item.column"),
    Column("信息项共享类型", "item.share_type", "choice", False, SHARE_TYPE_LABELS),
    Column("可筛选", "item.filterable", "boolean"),
    Column("组成部分", "item.parts", "parts"),
    Column("揭示事实", "item.reveals", "list"),
    Column("数据主体", "item.subject", "choice", False, SUBJECT_LABELS),
)
DEPARTMENT_COLUMNS = (
    Column("部门代码", "code", required=True),
    Column("部门名称", "name", required=True),
    Column("统一社会信用代码", "org_code"),
    Column("数据源", "source"),
)
PURPOSE_COLUMNS = (
    Column("部门代码", "department", required=True),
    Column("事项代码", "code", required=True),
    Column("事项名称", "name", required=True),
)
LINK_COLUMNS = (
    Column("目录标识", "resource", required=True),
    Column("关联名称", "name", required=True),
    Column("说明", "label", required=True),
    Column("信息项", "item", required=True),
    Column("目标资源", "target", required=True),
    Column("目标信息项", "target_item", required=True),
    Column("多条", "many", "boolean"),
)
SHEETS = {
    CATALOG_SHEET: RESOURCE_COLUMNS + ITEM_COLUMNS,
    DEPARTMENTS_SHEET: DEPARTMENT_COLUMNS,
    PURPOSES_SHEET: PURPOSE_COLUMNS,
    LINKS_SHEET: LINK_COLUMNS,
}
REQUIRED_SHEETS = (CATALOG_SHEET, DEPARTMENTS_SHEET)
_LIST_SPLIT = re.compile(r"[;；,，、\n]")
_PARTS_SPLIT = re.compile(r"[;；\n]")
_TRUE, _FALSE = {"是", "true", "y", "yes", "1"}, {"否", "false", "n", "no", "0"}


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _cell_text(column: Column, value: Any) -> Any:
    """What a cell of ``column`` shows for the document value ``value`` (None: the cell stays empty)."""
    if value in (None, "", (), [], 0) and column.kind not in ("boolean",):
        return None
    if column.kind == "choice":
        return column.labels.get(str(value), str(value))
    if column.kind == "guide_type":
        return guide_type_label(str(value))
    if column.kind == "boolean":
        return "是" if value else "否"
    if column.kind == "list":
        return "；".join(value)
    return value


def _resource_values(resource: Resource, catalog: Catalog) -> dict[str, Any]:
    department = catalog.departments.get(resource.provider)
    values: dict[str, Any] = {
        "classification": resource.classification,
        "name": resource.name,
        "resource_code": resource.resource_code,
        "code": resource.code,
        "provider_name": department.name if department else "",
        "provider_org_code": department.org_code if department else "",
        "provider": resource.provider,
        "abstract": resource.abstract,
        "format": resource.format,
        "share_type": resource.share_type.value,
        "share_condition": resource.share_condition,
        "share_method": resource.share_method,
        "legal_basis": resource.legal_basis,
        "usage": resource.usage,
        "update_cycle": resource.update_cycle,
        "freshness.changed_column": resource.freshness.changed_column if resource.freshness else None,
        "freshness.marker": resource.freshness.marker if resource.freshness else None,
        "publish_date": resource.publish_date,
        "related_resources": resource.related_resources,
        "keywords": resource.keywords,
        "related_departments": resource.related_departments,
        "status": resource.status.value,
        "api_name": resource.api_name,
        "table": resource.table,
        "key": resource.key,
        "cache_seconds": resource.cache_seconds,
    }
    for position, name in enumerate(resource.category):
        values[f"category.{position}"] = name
    return values


def _item_values(item: DataItem) -> dict[str, Any]:
    return {
        "item.label": item.label,
        "item.name": item.name,
        "item.guide_type": item.data_type,
        "item.type": item.type,
        "item.length": item.length,
        "item.column": item.column,
        "item.share_type": item.share_type.value if item.share_type else "",
        "item.filterable": item.filterable,
        "item.parts": "；".join(f"{p.fact}={_positions_text(p.positions)}" for p in item.parts),
        "item.reveals": item.reveals,
        "item.subject": item.subject,
    }


def _positions_text(positions: tuple[int, ...]) -> str:
    """(7, 8, 9, 10) → ``7-10``; (6, 7, 9, 10) → ``6-7,9-10``."""
    spans: list[list[int]] = []
    for position in positions:
        if spans and position == spans[-1][1] + 1:
            spans[-1][1] = position
        else:
            spans.append([position, position])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _write(sheet: Worksheet, row: int, column: int, value: Any) -> None:
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # text, never a formula (a value starting with "=" stays that text)


def _header(sheet: Worksheet, columns: tuple[Column, ...]) -> None:
    fill = PatternFill("solid", fgColor="DDEBF7")
    for index, column in enumerate(columns, start=1):
        _write(sheet, 1, index, column.header)
        cell = sheet.cell(row=1, column=index)
        cell.font = Font(bold=True)
        cell.fill = fill
        sheet.column_dimensions[get_column_letter(index)].width = max(10, min(40, 2 * len(column.header) + 4))
    sheet.freeze_panes = "A2"


def _validations(sheet: Worksheet, columns: tuple[Column, ...], last_row: int) -> None:
    """Drop-down lists of the labels in choice and yes/no columns (a hint for authors; reading checks anyway)."""
    for index, column in enumerate(columns, start=1):
        labels = list(column.labels.values()) if column.kind == "choice" else []
        if column.kind == "boolean":
            labels = ["是", "否"]
        if column.kind == "guide_type":
            labels = [guide_type_label(letter) for letter in GUIDE_TYPES]
        if labels and last_row >= 2:
            rule = DataValidation(type="list", formula1='"' + ",".join(labels) + '"', allow_blank=True)
            rule.add(f"{get_column_letter(index)}2:{get_column_letter(index)}{last_row}")
            sheet.add_data_validation(rule)


def write_workbook(catalog: Catalog, path: Path, departments: Iterable[str] | None = None) -> None:
    """Write ``catalog`` (or only the named departments: their purposes, resources and links) to ``path``."""
    chosen = list(departments) if departments is not None else list(catalog.departments)
    book = Workbook()
    sheet = book.create_sheet(CATALOG_SHEET)
    book.remove(book.worksheets[0])
    columns = SHEETS[CATALOG_SHEET]
    _header(sheet, columns)
    row = 2
    resources = [r for r in catalog.resources.values() if r.provider in chosen]
    for resource in resources:
        values = _resource_values(resource, catalog)
        first = row
        for item in resource.items:
            cells = _item_values(item) | (values if row == first else {})
            for index, column in enumerate(columns, start=1):
                key = column.key if index > len(RESOURCE_COLUMNS) or row == first else ""
                if key and (text := _cell_text(column, cells.get(key))) is not None:
                    _write(sheet, row, index, text)
            row += 1
        if row - 1 > first:  # the resource's cells merged down over its items' rows
            for index in range(1, len(RESOURCE_COLUMNS) + 1):
                sheet.merge_cells(start_row=first, start_column=index, end_row=row - 1, end_column=index)
                sheet.cell(row=first, column=index).alignment = Alignment(vertical="top", wrap_text=True)
    _validations(sheet, columns, row - 1)

    def table(title: str, columns: tuple[Column, ...], rows: list[dict[str, Any]]) -> None:
        target = book.create_sheet(title)
        _header(target, columns)
        for number, values in enumerate(rows, start=2):
            for index, column in enumerate(columns, start=1):
                if (text := _cell_text(column, values.get(column.key))) is not None:
                    _write(target, number, index, text)
        _validations(target, columns, len(rows) + 1)

    table(
        DEPARTMENTS_SHEET,
        DEPARTMENT_COLUMNS,
        [
            {"code": d.code, "name": d.name, "org_code": d.org_code, "source": without_password(d.source)}
            for code in chosen
            if (d := catalog.departments.get(code))
        ],
    )
    table(
        PURPOSES_SHEET,
        PURPOSE_COLUMNS,
        [
            {"department": p.department, "code": p.code, "name": p.name}
            for p in catalog.purposes.values()
            if p.department in chosen
        ],
    )
    table(
        LINKS_SHEET,
        LINK_COLUMNS,
        [
            {
                "resource": r.code,
                "name": link.name,
                "label": link.label,
                "item": link.item,
                "target": link.target,
                "target_item": link.target_item,
                "many": link.many,
            }
            for r in resources
            for link in r.links
        ],
    )
    book.save(path)


# ---------------------------------------------------------------------------------------------------------------
# Reading

Locate = Callable[[str | None, str | None], tuple[str, str] | None]
Cells = dict[str, tuple[Any, str]]  # key -> (value as the document holds it, cell such as "D7")
_LAST_STEP = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")
FAULTED = object()  # a cell with a fault of its own (a formula): its place is known, its value is not taken


def _plain(values: Cells, *leave_out: str) -> dict[str, Any]:
    return {k: v for k, (v, _) in values.items() if v is not FAULTED and k not in leave_out}


class _Reader:
    """Reads one workbook into department documents, remembering where each value came from."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        # (department or resource, field path) -> (sheet, cell); a department's own fields under ("@code", path)
        self.cells: dict[tuple[str, str], tuple[str, str]] = {}
        self.reported: set[tuple[str, str]] = set()  # cells with a fault of their own (the loader's is left out)

    def fault(self, sheet: str, cell: str, code: str, detail: str = "", resource: str | None = None) -> None:
        self.problems.append(Problem(self.file, resource, None, code, detail, sheet, cell))
        self.reported.add((sheet, cell))

    def locator(self, department: str) -> Locate:
        """Where a fault the loader found in ``department``'s document is: the field's own cell, else the nearest
        enclosing one (the cell of ``parts`` for one part, an item's row, the resource's first row). None when that
        cell has a fault of its own already."""

        def locate(resource: str | None, path: str | None) -> tuple[str, str] | None:
            owner = resource if resource is not None else f"@{department}"
            candidate = path or ""
            while True:
                found = self.cells.get((owner, candidate))
                if found is not None:
                    return None if found in self.reported else found
                if not candidate:
                    return (CATALOG_SHEET, "") if resource is not None else (DEPARTMENTS_SHEET, "")
                shorter = _LAST_STEP.sub("", candidate)
                candidate = shorter if shorter != candidate else ""

        return locate


def _convert(column: Column, value: Any) -> Any:
    """A cell's value as the TOML document holds it (None: empty). A value that does not convert is passed on as
    it is, for the loader to refuse with the field's own message."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = value.strip()
    if column.kind == "date":
        if isinstance(value, datetime.datetime):
            return value.date().isoformat()
        if isinstance(value, datetime.date):
            return value.isoformat()
        return str(value)
    if column.kind == "integer":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value
    if column.kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        value = value.isoformat()
    text = str(value)
    if column.kind == "choice":
        return next((key for key, label in column.labels.items() if label == text), text)
    if column.kind == "guide_type":
        return guide_type_of(text)
    if column.kind == "list":
        return [part.strip() for part in _LIST_SPLIT.split(text) if part.strip()]
    if column.kind == "parts":
        parts: dict[str, str] = {}
        for entry in (e.strip() for e in _PARTS_SPLIT.split(text) if e.strip()):
            fact, equals, positions = entry.partition("=")
            if not equals or fact.strip() in parts:
                return text  # the loader says what parts look like
            parts[fact.strip()] = positions.strip()
        return parts
    return text


def _rows(reader: _Reader, sheet: Any, title: str, columns: tuple[Column, ...]) -> list[tuple[int, Cells]] | None:
    """The rows of a sheet below its header that hold a value: (row number, cells). None when the sheet cannot
    be read (a required column missing, too many rows: reported)."""
    rows = sheet.iter_rows(max_col=MAX_COLUMNS)
    header = next(rows, ())
    by_header = {c.header: c for c in columns} | {c.key: c for c in columns}
    positions: dict[int, Column] = {}
    for index, cell in enumerate(header):
        text = str(cell.value).strip() if cell.value is not None else ""
        if not text:
            continue
        where = f"{get_column_letter(index + 1)}1"
        column = by_header.get(text)
        if column is None:
            reader.fault(title, where, "FIELD_UNKNOWN", text)
        elif column in positions.values():
            reader.fault(title, where, "DUPLICATE", text)
        else:
            positions[index] = column
    missing = [c.header for c in columns if c.required and c not in positions.values()]
    for header_text in missing:
        reader.fault(title, "1", "XLSX_COLUMN_MISSING", header_text)
    if missing:
        return None
    found: list[tuple[int, Cells]] = []
    for number, row in enumerate(rows, start=2):
        if len(found) >= MAX_ROWS or number > 5 * MAX_ROWS:
            reader.fault(title, str(number), "XLSX_TOO_LARGE", f"more than {MAX_ROWS} rows")
            return None
        values: Cells = {}
        for index, cell in enumerate(row):
            column = positions.get(index)
            if column is None or cell.value is None:
                continue
            where = f"{get_column_letter(index + 1)}{number}"
            if cell.data_type == "f":
                reader.fault(title, where, "XLSX_FORMULA", str(cell.value)[:80])
                values[column.key] = (FAULTED, where)
                continue
            value = _convert(column, cell.value)
            if value is not None:
                values[column.key] = (value, where)
        if values:
            found.append((number, values))
    return found


def _open(path: Path, reader: _Reader, data: bytes | None = None) -> Any | None:
    try:
        size = path.stat().st_size if data is None else len(data)
        if size > MAX_BYTES:
            reader.fault("", "", "XLSX_TOO_LARGE", f"{size} bytes (at most {MAX_BYTES})")
            return None
        with zipfile.ZipFile(path if data is None else io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            reader.fault("", "", "XLSX_TOO_LARGE", f"{unpacked} bytes unpacked (at most {MAX_UNPACKED_BYTES})")
            return None
        return load_workbook(path if data is None else io.BytesIO(data), read_only=True, data_only=False)
    except OSError as exc:
        reader.fault("", "", "FILE_UNREADABLE", exc.strerror or str(exc))
    except Exception as exc:  # whatever openpyxl or zipfile raise for a file that is no workbook
        reader.fault("", "", "XLSX_INVALID", type(exc).__name__)
    return None


def read_documents(path: Path, data: bytes | None = None) -> tuple[list[tuple[dict[str, Any], Locate]], list[Problem]]:
    """The department documents of a workbook (as TOML files hold them), each with the locator of its faults,
    and the faults found in reading it (a missing sheet or column, a formula, a resource's rows that disagree, a
    provider or purpose naming a department the 部门 sheet does not list). With ``data``, that is the workbook's
    content and ``path`` only its name (a workbook uploaded in the console or sent through the API)."""
    reader = _Reader(str(path))
    book = _open(path, reader, data)
    if book is None:
        return [], reader.problems
    try:
        for title in REQUIRED_SHEETS:
            if title not in book.sheetnames:
                reader.fault(title, "", "XLSX_SHEET_MISSING", title)
        if reader.problems:
            return [], reader.problems
        tables = {
            title: _rows(reader, book[title], title, columns) if title in book.sheetnames else []
            for title, columns in SHEETS.items()
        }
    finally:
        book.close()
    if any(rows is None for rows in tables.values()):
        return [], reader.problems
    documents = _departments(reader, tables[DEPARTMENTS_SHEET] or [])
    _purposes(reader, tables[PURPOSES_SHEET] or [], documents)
    resources = _resources(reader, tables[CATALOG_SHEET] or [], documents)
    _links(reader, tables[LINKS_SHEET] or [], resources)
    return [(document, reader.locator(code)) for code, document in documents.items()], reader.problems


def _departments(reader: _Reader, rows: list[tuple[int, Cells]]) -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for number, values in rows:
        code, cell = values.get("code", ("", f"A{number}"))
        if code is FAULTED:
            continue
        if not code or str(code) in documents:
            reader.fault(DEPARTMENTS_SHEET, cell, "DUPLICATE" if code else "FIELD_REQUIRED", str(code) or "部门代码")
            continue
        documents[str(code)] = {"department": _plain(values)}
        reader.cells[(f"@{code}", "department")] = (DEPARTMENTS_SHEET, f"A{number}")
        for key, (_, where) in values.items():
            reader.cells[(f"@{code}", f"department.{key}")] = (DEPARTMENTS_SHEET, where)
    return documents


def _purposes(reader: _Reader, rows: list[tuple[int, Cells]], documents: dict[str, dict[str, Any]]) -> None:
    for number, values in rows:
        department, cell = values.get("department", ("", f"A{number}"))
        document = documents.get(str(department)) if department is not FAULTED else None
        if document is None and department is not FAULTED:
            reader.fault(
                PURPOSES_SHEET, cell, "UNKNOWN_REFERENCE", f"no department {department!r} in {DEPARTMENTS_SHEET}"
            )
            continue
        if document is None:
            continue
        purposes = document.setdefault("purposes", [])
        prefix = f"purposes[{len(purposes)}]"
        purposes.append(_plain(values, "department"))
        reader.cells[(f"@{department}", prefix)] = (PURPOSES_SHEET, f"A{number}")
        for key, (_, where) in values.items():
            reader.cells[(f"@{department}", f"{prefix}.{key}")] = (PURPOSES_SHEET, where)


_RESOURCE_KEYS = {c.key for c in RESOURCE_COLUMNS}
_NOT_IN_DOCUMENT = {"code", "provider", "provider_name", "provider_org_code"}


def _letter(key: str) -> str:
    return get_column_letter(1 + next(i for i, c in enumerate(SHEETS[CATALOG_SHEET]) if c.key == key))


def _resources(
    reader: _Reader, rows: list[tuple[int, Cells]], documents: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The resources of the 资源目录 sheet, each with its items, each put into its provider's document. A row
    whose 目录标识 is empty (a merged cell's lower rows) continues the resource above it."""
    resources: dict[str, dict[str, Any]] = {}
    first: dict[str, Cells] = {}  # each resource's values as its rows first gave them
    current: str | None = None
    skipping = False  # the rows below a resource row already refused belong to it: not faults of their own
    for number, values in rows:
        code_cell = values.get("code")
        if code_cell is not None and code_cell[0] is FAULTED:
            current, skipping = None, True
            continue
        if code_cell is not None and str(code_cell[0]) != current:
            code = str(code_cell[0])
            if code in resources:
                reader.fault(CATALOG_SHEET, code_cell[1], "DUPLICATE", f"{code}: a resource's rows go together", code)
                current, skipping = None, True
                continue
            current, resources[code], first[code], skipping = code, {"code": code}, {}, False
            reader.cells[(code, "")] = reader.cells[(code, "code")] = (CATALOG_SHEET, code_cell[1])
        if current is None:
            if not skipping:  # rows above the first resource
                reader.fault(CATALOG_SHEET, f"{_letter('code')}{number}", "FIELD_REQUIRED", "目录标识")
            continue
        resource, seen = resources[current], first[current]
        for key, (value, cell) in values.items():
            if key not in _RESOURCE_KEYS or key == "code":
                continue
            if value is FAULTED:
                reader.cells[(current, key.partition(".")[0])] = (CATALOG_SHEET, cell)
                continue
            if key in seen:  # a repeated value must repeat it
                if seen[key][0] != value:
                    detail = f"{value!r}, but {seen[key][1]} says {seen[key][0]!r}"
                    reader.fault(CATALOG_SHEET, cell, "XLSX_ROW_MISMATCH", detail, current)
                continue
            seen[key] = (value, cell)
            if key.startswith("category."):
                resource.setdefault("category", []).append(value)
                reader.cells.setdefault((current, "category"), (CATALOG_SHEET, cell))
            elif key.startswith("freshness."):
                resource.setdefault("freshness", {})[key.partition(".")[2]] = value
                reader.cells[(current, key)] = (CATALOG_SHEET, cell)
                reader.cells.setdefault((current, "freshness"), (CATALOG_SHEET, cell))
            elif key not in _NOT_IN_DOCUMENT:
                resource[key] = value
                reader.cells[(current, key)] = (CATALOG_SHEET, cell)
        item_cells = {k.removeprefix("item."): v for k, v in values.items() if k.startswith("item.")}
        if not item_cells:
            continue
        items = resource.setdefault("items", [])
        prefix = f"items[{len(items)}]"
        item = _plain(item_cells)
        if "type" not in item and item.get("guide_type") in GUIDE_TYPES:  # 值类型 left empty: the data type's
            fits = GUIDE_TYPES[item["guide_type"]][1]
            if fits:
                item["type"] = fits[0]
        items.append(item)
        reader.cells[(current, prefix)] = (CATALOG_SHEET, f"{_letter('item.name')}{number}")
        for key, (_, cell) in item_cells.items():
            reader.cells[(current, f"{prefix}.{key}")] = (CATALOG_SHEET, cell)
        if "type" not in item_cells and "guide_type" in item_cells:
            reader.cells[(current, f"{prefix}.type")] = (CATALOG_SHEET, item_cells["guide_type"][1])
    for code, resource in resources.items():
        seen = first[code]
        provider, cell = seen.get("provider", ("", reader.cells[(code, "")][1]))
        document = documents.get(str(provider))
        if document is None:
            detail = f"no department {provider!r} in {DEPARTMENTS_SHEET}"
            reader.fault(CATALOG_SHEET, cell, "UNKNOWN_REFERENCE", detail, code)
            continue
        department = document["department"]
        for key, own in (("provider_name", "name"), ("provider_org_code", "org_code")):
            if key in seen and str(seen[key][0]) != str(department.get(own, "")):
                detail = f"{seen[key][0]!r}, but {DEPARTMENTS_SHEET} says {department.get(own, '')!r} for {provider}"
                reader.fault(CATALOG_SHEET, seen[key][1], "XLSX_ROW_MISMATCH", detail, code)
        document.setdefault("resources", []).append(resource)
    return resources


def _links(reader: _Reader, rows: list[tuple[int, Cells]], resources: dict[str, dict[str, Any]]) -> None:
    for number, values in rows:
        code, cell = values.get("resource", ("", f"A{number}"))
        resource = resources.get(str(code)) if code is not FAULTED else None
        if resource is None and code is not FAULTED:
            reader.fault(LINKS_SHEET, cell, "UNKNOWN_REFERENCE", f"no resource {code!r} in {CATALOG_SHEET}")
            continue
        if resource is None:
            continue
        links = resource.setdefault("links", [])
        prefix = f"links[{len(links)}]"
        links.append(_plain(values, "resource"))
        reader.cells[(str(code), prefix)] = (LINKS_SHEET, f"A{number}")
        for key, (_, where) in values.items():
            reader.cells[(str(code), f"{prefix}.{key}")] = (LINKS_SHEET, where)
