"""Reads catalog files (TOML, one per providing department) and validates them as a whole.

Every fault is collected with the file, resource and field it concerns; one fault refuses the
whole catalog, so the catalog in force never changes half-way.
"""

from __future__ import annotations

import datetime
import keyword
import re
import tomllib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from catalog.guide import (
    CLASS_DIGITS,
    CLASSIFICATION_LABELS,
    DEFAULT_GUIDE_TYPES,
    GUIDE_TYPES,
    org_code_problem,
    parse_resource_code,
)
from catalog.model import (
    CLASSIFICATIONS,
    DATE_LENGTH,
    ITEM_TYPES,
    RESOURCE_FORMATS,
    SHARE_METHODS,
    UPDATE_CYCLES,
    Catalog,
    ChangeSource,
    DataItem,
    Department,
    Link,
    Part,
    Purpose,
    Resource,
    ShareType,
    Status,
)
from govshare.errors import CatalogError, Problem
from govshare.subjects import KINDS

_CODE = re.compile(r"^[a-z][a-z0-9_-]{1,39}$")
_DOTTED_CODE = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")
_GRAPHQL_NAME = re.compile(r"^[a-z][A-Za-z0-9]{0,62}$")
_SQL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FACT = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_POSITIONS = re.compile(r"^\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*$")
MAX_LENGTH = 1000
RESERVED_API_NAMES = {
    "caller",
    "applications",
    "applicationInbox",
    "grantHistory",
    "usageRecords",
    "formFields",
    "overdueResources",
    "catalogSubmissions",  # schema/catalog.py
    "catalogHistory",
    "catalogDiff",
}
# GraphQL type names the generated schema (schema/builder.py) defines or uses itself: a resource whose
# generated type names (``Person``, ``PersonFilter``, ``PersonPage``) took one of these would break the schema.
RESERVED_TYPE_NAMES = {
    "Query",
    "PageInfo",
    "CallerInfo",
    "PurposeInfo",
    "StringFilter",
    "IntFilter",
    "FloatFilter",
    "DateFilter",
    "BooleanFilter",
    "String",
    "Int",
    "Float",
    "Boolean",
    "ID",
    "Date",
    "DateTime",
    "Mutation",
    "Application",
    "ProcessStep",
    "ScopeInput",
    "ShareApplicationInput",  # schema/applications.py
    "AccessRecordInfo",  # schema/usage.py
    "FormSearch",  # schema/forms.py
    "FormField",
    "FormFieldSource",
    "FormPurposeDecision",
    "FormApplication",
    "FormBlockedItem",
    "ResourceFreshness",  # schema/freshness.py
    "CatalogSubmission",  # schema/catalog.py
    "CatalogFinding",
    "CatalogFieldChange",
    "CatalogVersionInfo",
}

_DEPARTMENT_FIELDS = {"code", "name", "source", "org_code"}
# A source URL whose password an exported workbook hid (catalog/xlsx.py): refused until it is written in again.
_HIDDEN_PASSWORD = re.compile(
    r"^[a-z0-9+]+://[^:/@]*:\*\*\*@|[?&](?:password|passwd|pwd)=\*\*\*(?:&|#|$)", re.IGNORECASE
)
# What a source URL may be (connectors/urls.py, connectors/graphql.py): an engine, with or without its driver, or
# another govshare over HTTP(S).
_SOURCE_URL = re.compile(r"^((sqlite|postgresql|mysql|mariadb)(\+[a-z0-9]+)?://|govshare\+https?://)")
_PURPOSE_FIELDS = {"code", "name"}
_RESOURCE_FIELDS = {
    "code",
    "api_name",
    "name",
    "abstract",
    "classification",
    "share_type",
    "share_condition",
    "share_method",
    "update_cycle",
    "publish_date",
    "usage",
    "legal_basis",
    "status",
    "table",
    "key",
    "related_departments",
    "items",
    "links",
    "cache_seconds",
    "resource_code",
    "category",
    "format",
    "related_resources",
    "keywords",
    "freshness",
}
_FRESHNESS_FIELDS = {"changed_column", "marker"}
_LINK_FIELDS = {"name", "label", "item", "target", "target_item", "many"}
_ITEM_FIELDS = {
    "name",
    "label",
    "type",
    "column",
    "share_type",
    "filterable",
    "length",
    "parts",
    "reveals",
    "guide_type",
    "subject",
}
# Every field a catalog file may hold, by table (docs/catalog-fields.md documents each; a test holds them equal).
ACCEPTED_FIELDS = {
    "department": _DEPARTMENT_FIELDS,
    "purposes": _PURPOSE_FIELDS,
    "resources": _RESOURCE_FIELDS,
    "resources.items": _ITEM_FIELDS,
    "resources.links": _LINK_FIELDS,
}


def _generated_names(api_name: str) -> tuple[str, ...]:
    """The query fields and GraphQL types the schema builder makes for a resource with this api_name."""
    type_name = api_name[0].upper() + api_name[1:]
    return api_name, f"{api_name}List", type_name, f"{type_name}Filter", f"{type_name}Page"


def _tables(value: Any, checker: _Checker, resource: str | None, field: str, hint: str) -> list[dict[str, Any]]:
    """An array of TOML tables; anything else (``[resources]`` for ``[[resources]]``...) is a fault, not a crash."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        checker.fault(resource, field, "FIELD_INVALID", f"expected an array of tables ({hint})")
        return []
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _positions(value: Any) -> tuple[int, ...] | None:
    """``17``, ``"7-10"`` or ``"6-7,9-10"`` as the 1-based positions they name (None when malformed)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _POSITIONS.match(value.replace(" ", "")):
        return None
    found: list[int] = []
    for span in value.replace(" ", "").split(","):
        low, _, high = span.partition("-")
        first, last = int(low), int(high or low)
        if first < 1 or last < first:
            return None
        found += range(first, last + 1)
    return tuple(found)


def _disclosure(
    raw_item: dict[str, Any], item_type: str, label: str, prefix: str, checker: _Checker
) -> tuple[int, tuple[Part, ...], tuple[str, ...]]:
    """An item's ``length``, ``parts`` and ``reveals`` (what its value discloses), each fault coded per field."""
    length = raw_item.get("length", 0)
    if not isinstance(length, int) or isinstance(length, bool) or not 0 <= length <= MAX_LENGTH:
        checker.fault(
            label, f"{prefix}length", "FIELD_INVALID", f"expected a whole number of characters, 1 to {MAX_LENGTH}"
        )
        length = 0
    elif length and item_type not in ("string", "date"):
        checker.fault(label, f"{prefix}length", "FIELD_INVALID", "only a text item has a length")
        length = 0
    elif length and item_type == "date" and length != DATE_LENGTH:
        checker.fault(
            label, f"{prefix}length", "FIELD_INVALID", f"a date's text (YYYY-MM-DD) is {DATE_LENGTH} characters"
        )
        length = 0
    parts: list[Part] = []
    raw_parts = raw_item.get("parts")
    if raw_parts is not None:
        if not isinstance(raw_parts, dict) or not raw_parts:
            checker.fault(
                label,
                f"{prefix}parts",
                "FIELD_INVALID",
                'expected a table of fact = "positions", e.g. { birth_year = "7-10" }',
            )
            raw_parts = {}
        elif item_type not in ("string", "date"):
            checker.fault(label, f"{prefix}parts", "PARTS_WRONG_TYPE", item_type)
            raw_parts = {}
        size = length or (DATE_LENGTH if item_type == "date" else 0)
        if raw_parts and not size:
            checker.fault(
                label, f"{prefix}length", "FIELD_REQUIRED", "a text item with parts declares its fixed length"
            )
        taken: dict[int, str] = {}
        for fact, value in raw_parts.items():
            positions = _positions(value)
            if not _FACT.match(fact):
                checker.fault(label, f"{prefix}parts.{fact}", "FIELD_INVALID", "a fact is named with a-z 0-9 _")
            elif positions is None:
                checker.fault(
                    label,
                    f"{prefix}parts.{fact}",
                    "FIELD_INVALID",
                    f'{value!r}: expected positions like 17, "7-10" or "6-7,9-10"',
                )
            elif size and max(positions) > size:
                checker.fault(label, f"{prefix}parts.{fact}", "PARTS_OUT_OF_RANGE", f"{fact} = {value} (length {size})")
            elif clash := next((p for p in positions if p in taken), None):
                checker.fault(label, f"{prefix}parts.{fact}", "PARTS_OVERLAP", f"{fact} and {taken[clash]} at {clash}")
            else:
                taken.update(dict.fromkeys(positions, fact))
                parts.append(Part(fact, positions))
    reveals = raw_item.get("reveals", [])
    if not isinstance(reveals, list) or not all(isinstance(f, str) and _FACT.match(f) for f in reveals):
        checker.fault(label, f"{prefix}reveals", "FIELD_INVALID", "expected a list of fact names (a-z 0-9 _)")
        reveals = []
    elif reveals and raw_parts is not None:
        checker.fault(label, f"{prefix}reveals", "FIELD_INVALID", "an item declares either parts or reveals")
        reveals = []
    elif len(set(reveals)) != len(reveals):
        checker.fault(label, f"{prefix}reveals", "DUPLICATE", ", ".join(reveals))
        reveals = []
    return length, tuple(parts), tuple(reveals)


def _subject(raw_item: dict[str, Any], item_type: str, label: str, prefix: str, checker: _Checker) -> str:
    """The data subject an item identifies ("" for none): one of govshare.subjects.KINDS, on a text item only."""
    if raw_item.get("subject") is None:
        return ""
    kind = checker.choice(raw_item, "subject", KINDS, label, prefix)
    if kind and item_type != "string":
        checker.fault(label, f"{prefix}subject", "SUBJECT_WRONG_TYPE", item_type)
        return ""
    return kind


def _fact_lengths(items: list[DataItem], label: str, checker: _Checker) -> None:
    """A fact carried at positions by several items of one resource has the same number of characters in each."""
    seen: dict[str, tuple[str, int]] = {}
    for position, item in enumerate(items):
        for part in item.parts:
            first = seen.setdefault(part.fact, (item.name, len(part.positions)))
            if first[1] != len(part.positions):
                checker.fault(
                    label,
                    f"items[{position}].parts.{part.fact}",
                    "FACT_LENGTH_MISMATCH",
                    f"{part.fact}: {len(part.positions)} in {item.name}, {first[1]} in {first[0]}",
                )


# Where a fault is, beyond file, resource and field: (sheet, cell) of a spreadsheet (catalog/xlsx.py)
# None: the place has a fault of its own already (the workbook's reader reported it), this one is left out.
Locator = Callable[[str | None, str | None], tuple[str, str] | None]


class _Checker:
    def __init__(self, file: str, locate: Locator | None = None) -> None:
        self.file = file
        self.locate = locate
        self.problems: list[Problem] = []

    def located(self, resource: str | None, field: str | None, code: str, detail: str = "") -> Problem:
        place = self.locate(resource, field) if self.locate else ("", "")
        sheet, cell = place or ("", "")
        return Problem(self.file, resource, field, code, detail, sheet, cell)

    def fault(self, resource: str | None, field: str | None, code: str, detail: str = "") -> None:
        if self.locate is not None and self.locate(resource, field) is None:
            return  # reported at its cell by the workbook's reader
        self.problems.append(self.located(resource, field, code, detail))

    def unknown_fields(self, table: dict[str, Any], allowed: set[str], resource: str | None, prefix: str) -> None:
        for key in table:
            if key not in allowed:
                self.fault(resource, f"{prefix}{key}", "FIELD_UNKNOWN", key)

    def text(
        self, table: dict[str, Any], key: str, resource: str | None, prefix: str = "", required: bool = True
    ) -> str:
        value = table.get(key)
        if value is None:
            if required:
                self.fault(resource, f"{prefix}{key}", "FIELD_REQUIRED")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.fault(resource, f"{prefix}{key}", "FIELD_INVALID", f"expected text, got {value!r}")
            return ""
        return value

    def choice(
        self,
        table: dict[str, Any],
        key: str,
        choices: Collection[str],
        resource: str | None,
        prefix: str = "",
        default: str | None = None,
    ) -> str:
        value = table.get(key, default)
        if value is None:
            self.fault(resource, f"{prefix}{key}", "FIELD_REQUIRED", "one of: " + ", ".join(choices))
            return ""
        if value not in choices:
            self.fault(resource, f"{prefix}{key}", "FIELD_INVALID", f"{value!r} is not one of: {', '.join(choices)}")
            return ""
        return str(value)

    def pattern(
        self,
        table: dict[str, Any],
        key: str,
        regex: re.Pattern[str],
        resource: str | None,
        prefix: str = "",
        default: str | None = None,
        hint: str = "",
    ) -> str:
        value = table.get(key, default)
        if value is None:
            self.fault(resource, f"{prefix}{key}", "FIELD_REQUIRED")
            return ""
        if not isinstance(value, str) or not regex.match(value):
            self.fault(resource, f"{prefix}{key}", "FIELD_INVALID", f"{value!r} {hint}".strip())
            return ""
        return value


def _parse_file(
    path: Path, document: dict[str, Any], checker: _Checker
) -> tuple[Department | None, list[Purpose], list[Resource]]:
    checker.unknown_fields(document, {"department", "purposes", "resources"}, None, "")
    dept_table = document.get("department")
    if not isinstance(dept_table, dict):
        checker.fault(None, "department", "FIELD_REQUIRED", "a [department] table with code, name, source")
        return None, [], []
    checker.unknown_fields(dept_table, _DEPARTMENT_FIELDS, None, "department.")
    department = Department(
        code=checker.pattern(dept_table, "code", _CODE, None, "department.", hint="must be 2-40 of a-z 0-9 _ -"),
        name=checker.text(dept_table, "name", None, "department."),
        source=checker.text(dept_table, "source", None, "department.", required=False),
        org_code=checker.text(dept_table, "org_code", None, "department.", required=False),
    )
    if document.get("resources") and not department.source:
        checker.fault(
            None, "department.source", "FIELD_REQUIRED", "a department that provides resources names its source"
        )
    elif department.source and not _SOURCE_URL.match(department.source):
        checker.fault(
            None,
            "department.source",
            "FIELD_INVALID",
            f"{department.source!r}: expected sqlite:///…, postgresql://…, mysql://…, mariadb://… or govshare+https://…",
        )
    if _HIDDEN_PASSWORD.search(department.source):
        checker.fault(
            None,
            "department.source",
            "FIELD_INVALID",
            "the source's password was left out on export (***): write it in",
        )
    if document.get("resources") and not department.org_code:
        checker.fault(
            None,
            "department.org_code",
            "FIELD_REQUIRED",
            "a providing department names its unified social credit code (信息资源提供方代码)",
        )
    elif department.org_code and (why := org_code_problem(department.org_code)):
        checker.fault(None, "department.org_code", "FIELD_INVALID", f"{department.org_code!r}: {why}")

    purposes = []
    for index, raw in enumerate(_tables(document.get("purposes"), checker, None, "purposes", "[[purposes]]")):
        prefix = f"purposes[{index}]."
        checker.unknown_fields(raw, _PURPOSE_FIELDS, None, prefix)
        purposes.append(
            Purpose(
                code=checker.pattern(
                    raw, "code", _DOTTED_CODE, None, prefix, hint="must be a dotted code like police.case-investigation"
                ),
                name=checker.text(raw, "name", None, prefix),
                department=department.code,
            )
        )

    resources = []
    for index, raw in enumerate(_tables(document.get("resources"), checker, None, "resources", "[[resources]]")):
        resources.append(_parse_resource(raw, index, department.code, checker))
    return department, purposes, resources


def _parse_resource(raw: dict[str, Any], index: int, provider: str, checker: _Checker) -> Resource:
    given = raw.get("code")
    label = given if isinstance(given, str) else f"resources[{index}]"
    checker.unknown_fields(raw, _RESOURCE_FIELDS, label, "")
    code = checker.pattern(raw, "code", _DOTTED_CODE, label, hint="must be a dotted code like police.person")
    share_type = checker.choice(raw, "share_type", [s.value for s in ShareType], label)
    items: list[DataItem] = []
    seen_items: set[str] = set()
    raw_items = raw.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        checker.fault(label, "items", "FIELD_REQUIRED", "at least one [[resources.items]]")
        raw_items = []
    raw_items = _tables(raw_items, checker, label, "items", "[[resources.items]]")
    for position, raw_item in enumerate(raw_items):
        prefix = f"items[{position}]."
        checker.unknown_fields(raw_item, _ITEM_FIELDS, label, prefix)
        name = checker.pattern(raw_item, "name", _GRAPHQL_NAME, label, prefix, hint="must be a lowerCamel GraphQL name")
        if name in seen_items:
            checker.fault(label, f"{prefix}name", "DUPLICATE", name)
        elif keyword.iskeyword(name):  # the schema builder makes each item a Python attribute
            checker.fault(label, f"{prefix}name", "FIELD_INVALID", f"{name!r} is reserved")
        seen_items.add(name)
        item_share = raw_item.get("share_type")
        if item_share is not None:
            item_share = checker.choice(raw_item, "share_type", [s.value for s in ShareType], label, prefix) or None
        filterable = raw_item.get("filterable", False)
        if not isinstance(filterable, bool):
            checker.fault(label, f"{prefix}filterable", "FIELD_INVALID", "expected true or false")
            filterable = False
        item_type = checker.choice(raw_item, "type", ITEM_TYPES, label, prefix)
        length, parts, reveals = _disclosure(raw_item, item_type, label, prefix, checker)
        guide_type = _guide_type(raw_item, item_type, label, prefix, checker)
        subject = _subject(raw_item, item_type, label, prefix, checker)
        items.append(
            DataItem(
                name=name,
                label=checker.text(raw_item, "label", label, prefix),
                type=item_type,
                column=checker.pattern(
                    raw_item,
                    "column",
                    _SQL_NAME,
                    label,
                    prefix,
                    default=_snake(name or "x"),
                    hint="is not a column name",
                ),
                share_type=ShareType(item_share) if item_share else None,
                filterable=filterable,
                length=length,
                parts=parts,
                reveals=reveals,
                guide_type=guide_type,
                subject=subject,
            )
        )
    _fact_lengths(items, label, checker)

    key = checker.text(raw, "key", label)
    if key and key not in seen_items:
        checker.fault(label, "key", "UNKNOWN_REFERENCE", f"no data item named {key!r}")
    related = raw.get("related_departments", [])
    if not isinstance(related, list) or not all(isinstance(r, str) for r in related):
        checker.fault(label, "related_departments", "FIELD_INVALID", "expected a list of department codes")
        related = []
    if related and share_type != ShareType.UNCONDITIONAL:
        checker.fault(
            label,
            "related_departments",
            "FIELD_INVALID",
            "only an unconditional resource is shared among listed related departments (Art 5)",
        )
    legal_basis = checker.text(raw, "legal_basis", label, required=False)
    if share_type == ShareType.NOT_SHARED and not legal_basis:
        checker.fault(label, "legal_basis", "FIELD_REQUIRED", "a not-shared resource must cite its legal basis")
    publish_date = raw.get("publish_date", "")
    if publish_date and not (isinstance(publish_date, str) and _DATE.match(publish_date) and _is_date(publish_date)):
        checker.fault(label, "publish_date", "FIELD_INVALID", f"{publish_date!r}: expected a date, YYYY-MM-DD")
        publish_date = ""
    status = Status(checker.choice(raw, "status", [s.value for s in Status], label, default="published") or "draft")
    if status == Status.PUBLISHED and not publish_date and "publish_date" not in raw:
        checker.fault(label, "publish_date", "FIELD_REQUIRED", "a published resource has its publish date (发布日期)")
    classification = checker.choice(raw, "classification", CLASSIFICATIONS, label, default="department")
    resource_code = _resource_code(raw, classification, label, checker)
    category = _texts(raw, "category", label, checker, most=3)
    if (parsed := parse_resource_code(resource_code)) and len(category) > len(parsed.path) - 1:
        checker.fault(
            label,
            "category",
            "FIELD_INVALID",
            f"{len(category)} names for the {len(parsed.path) - 1} levels below 类 that {resource_code} has",
        )
    abstract = checker.text(raw, "abstract", label, required=False)
    if not abstract.strip():
        checker.fault(label, "abstract", "FIELD_REQUIRED", "what the resource holds (信息资源摘要)")
    share_condition = checker.text(raw, "share_condition", label, required=False)
    conditional = share_type == ShareType.CONDITIONAL or any(i.share_type == ShareType.CONDITIONAL for i in items)
    if conditional and not share_condition.strip():
        checker.fault(
            label,
            "share_condition",
            "FIELD_REQUIRED",
            "a resource with conditional data states the condition (共享条件)",
        )

    cache_seconds = raw.get("cache_seconds", 0)
    if not isinstance(cache_seconds, int) or isinstance(cache_seconds, bool) or cache_seconds < 0:
        checker.fault(label, "cache_seconds", "FIELD_INVALID", "expected a whole number of seconds, 0 or more")
        cache_seconds = 0
    links: list[Link] = []
    freshness = _change_source(raw.get("freshness"), label, checker)
    for position, raw_link in enumerate(_tables(raw.get("links"), checker, label, "links", "[[resources.links]]")):
        prefix = f"links[{position}]."
        checker.unknown_fields(raw_link, _LINK_FIELDS, label, prefix)
        name = checker.pattern(raw_link, "name", _GRAPHQL_NAME, label, prefix, hint="must be a lowerCamel GraphQL name")
        if name in seen_items or name in {link.name for link in links}:
            checker.fault(label, f"{prefix}name", "DUPLICATE", name)
        item = checker.text(raw_link, "item", label, prefix)
        if item and item not in seen_items:
            checker.fault(label, f"{prefix}item", "UNKNOWN_REFERENCE", f"no data item named {item!r}")
        many = raw_link.get("many", True)
        if not isinstance(many, bool):
            checker.fault(label, f"{prefix}many", "FIELD_INVALID", "expected true or false")
            many = True
        links.append(
            Link(
                name=name,
                label=checker.text(raw_link, "label", label, prefix),
                item=item,
                target=checker.text(raw_link, "target", label, prefix),
                target_item=checker.text(raw_link, "target_item", label, prefix),
                many=many,
            )
        )

    return Resource(
        code=code,
        api_name=checker.pattern(raw, "api_name", _GRAPHQL_NAME, label, hint="must be a lowerCamel GraphQL name"),
        name=checker.text(raw, "name", label),
        provider=provider,
        share_type=ShareType(share_type) if share_type else ShareType.NOT_SHARED,
        table=checker.pattern(raw, "table", _SQL_NAME, label, hint="is not a table name"),
        key=key,
        items=tuple(items),
        abstract=abstract,
        classification=classification,
        share_condition=share_condition,
        share_method=checker.choice(raw, "share_method", SHARE_METHODS, label, default="online_query"),
        update_cycle=checker.choice(raw, "update_cycle", UPDATE_CYCLES, label),
        publish_date=str(publish_date),
        usage=checker.text(raw, "usage", label, required=False),
        legal_basis=legal_basis,
        status=status,
        related_departments=tuple(related),
        links=tuple(links),
        cache_seconds=cache_seconds,
        resource_code=resource_code,
        category=category,
        format=checker.choice(raw, "format", RESOURCE_FORMATS, label, default="database"),
        related_resources=_texts(raw, "related_resources", label, checker),
        keywords=_texts(raw, "keywords", label, checker),
        freshness=freshness,
    )


def _is_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _texts(raw: dict[str, Any], key: str, label: str, checker: _Checker, most: int = 50) -> tuple[str, ...]:
    """A list of distinct non-empty texts (at most ``most``)."""
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        checker.fault(label, key, "FIELD_INVALID", "expected a list of texts")
        return ()
    if len(value) > most:
        checker.fault(label, key, "FIELD_INVALID", f"at most {most} entries")
        return ()
    if len(set(value)) != len(value):
        checker.fault(label, key, "DUPLICATE", ", ".join(value))
        return ()
    return tuple(value)


def _resource_code(raw: dict[str, Any], classification: str, label: str, checker: _Checker) -> str:
    """信息资源代码 in the guide's form, its 类 the resource's classification."""
    value = raw.get("resource_code")
    if value is None:
        checker.fault(label, "resource_code", "FIELD_REQUIRED", "the guide's resource code, e.g. 101001/000001")
        return ""
    parsed = parse_resource_code(value) if isinstance(value, str) else None
    if parsed is None:
        checker.fault(
            label,
            "resource_code",
            "FIELD_INVALID",
            f"{value!r}: expected 类 (1 digit), 项 (2), 目 (3), 细目 (optional), '/', then a 6-digit sequence, "
            "e.g. 101001/000001",
        )
        return ""
    if classification and parsed.cls != CLASS_DIGITS[classification]:
        checker.fault(
            label,
            "resource_code",
            "FIELD_INVALID",
            f"{value}: 类 {parsed.cls} is not {CLASS_DIGITS[classification]}, "
            f"the class of {classification} ({CLASSIFICATION_LABELS[classification]})",
        )
    return str(value)


def _guide_type(raw_item: dict[str, Any], item_type: str, label: str, prefix: str, checker: _Checker) -> str:
    """The guide's data type letter of an item (its default from the item's type when not given)."""
    value = raw_item.get("guide_type")
    if value is None:
        return DEFAULT_GUIDE_TYPES.get(item_type, "")
    if value not in GUIDE_TYPES:
        checker.fault(
            label, f"{prefix}guide_type", "FIELD_INVALID", f"{value!r} is not one of: {', '.join(GUIDE_TYPES)}"
        )
        return ""
    name, fits = GUIDE_TYPES[value]
    if item_type and item_type not in fits:
        detail = f"{value} ({name}) describes " + (" or ".join(fits) if fits else "nothing online query serves")
        checker.fault(label, f"{prefix}guide_type", "FIELD_INVALID", f"{detail}, not {item_type}")
        return ""
    return str(value)


def _change_source(value: Any, label: str, checker: _Checker) -> ChangeSource | None:
    """``freshness = { changed_column = "updated_at" }`` or ``{ marker = "table.column" }``: where the source's last
    change is read (catalog/freshness.py); faults per field."""
    if value is None:
        return None
    hint = 'expected { changed_column = "updated_at" } or { marker = "table.column" }'
    if not isinstance(value, dict):
        checker.fault(label, "freshness", "FIELD_INVALID", hint)
        return None
    checker.unknown_fields(value, _FRESHNESS_FIELDS, label, "freshness.")
    given = [name for name in ("changed_column", "marker") if name in value]
    if len(given) != 1:
        checker.fault(label, "freshness", "FIELD_INVALID", hint + " (exactly one)")
        return None
    name = given[0]
    text = value[name]
    if name == "changed_column":
        if not isinstance(text, str) or not _SQL_NAME.match(text):
            checker.fault(label, "freshness.changed_column", "FIELD_INVALID", f"{text!r} is not a column name")
            return None
        return ChangeSource(changed_column=text)
    table, _, column = text.partition(".") if isinstance(text, str) else ("", "", "")
    if not (_SQL_NAME.match(table) and _SQL_NAME.match(column)):
        checker.fault(label, "freshness.marker", "FIELD_INVALID", f"{text!r} is not table.column")
        return None
    return ChangeSource(marker=text)


def catalog_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.toml")) if path.is_dir() else [path]


def _documents(
    file: Path, text: str | None = None, data: bytes | None = None
) -> tuple[list[tuple[_Checker, dict[str, Any]]], list[Problem]]:
    """The department documents a file holds, each with the checker that names its faults, and the faults found
    in reading it: a TOML file is one department's; a workbook (.xlsx, catalog/xlsx.py) holds one per department,
    each fault located at its cell. With ``text``, that is the TOML file's content and ``file`` only its name (a
    catalog file sent through the API); with ``data``, that is the workbook's content (an upload)."""
    if data is not None or (text is None and file.suffix.lower() == ".xlsx"):
        from catalog import xlsx  # openpyxl is imported only for a workbook

        read, faults = xlsx.read_documents(file, data)
        return [(_Checker(str(file), locate), document) for document, locate in read], faults
    checker = _Checker(str(file))
    try:
        return [(checker, tomllib.loads(text if text is not None else file.read_text(encoding="utf-8")))], []
    except OSError as exc:
        checker.fault(None, None, "FILE_UNREADABLE", exc.strerror or str(exc))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        checker.fault(None, None, "TOML_SYNTAX", str(exc))
    return [], checker.problems


def load_catalog(path: Path, base: Catalog | None = None) -> Catalog:
    """Read and validate every catalog file at ``path`` (a TOML file, a workbook ``.xlsx`` or a folder of
    ``*.toml``).

    With ``base`` (the catalog in force), the files are the entries of the departments they name, and the result is
    ``base`` with those departments' entries replaced: every other department's department entry, purposes and
    resources are kept as they are (loading one department never touches another's), and a resource of a loaded
    department that its file no longer lists is kept too (an entry is retired, never dropped by omission).
    """
    return load_entries(path, base)[0]


def load_entries(
    path: Path, base: Catalog | None = None, text: str | None = None, data: bytes | None = None
) -> tuple[Catalog, set[str], set[str]]:
    """``load_catalog``, and the codes of the departments and of the resources the files hold. With ``text``, that is
    the one file's content and ``path`` only its name (a catalog file sent through the API); with ``data``, the
    content of one workbook (.xlsx) and ``path`` its name, each fault located at its cell as for a workbook file."""
    problems: list[Problem] = []
    sent = text is not None or data is not None
    files = [path] if sent else catalog_files(path)
    if not sent and (not files or not path.exists()):
        raise CatalogError([Problem(str(path), None, None, "CATALOG_EMPTY", "expected *.toml files")])

    departments: dict[str, Department] = {}
    purposes: dict[str, Purpose] = {}
    resources: dict[str, Resource] = {}
    api_names: dict[str, str] = {}
    generated: dict[str, str] = {}  # GraphQL field and type names -> the resource they are generated for
    related_refs: list[tuple[_Checker, Resource]] = []
    resource_codes: dict[str, str] = {}  # the guide's resource codes -> the resource holding each
    department_files: dict[str, _Checker] = {}
    documents: list[tuple[_Checker, dict[str, Any]]] = []
    for file in files:
        read, faults = _documents(file, text, data)
        documents += read
        problems += faults
    for checker, document in documents:
        department, file_purposes, file_resources = _parse_file(Path(checker.file), document, checker)
        if department is not None and department.code:
            if department.code in departments:
                checker.fault(None, "department.code", "DUPLICATE", department.code)
            departments[department.code] = department
            department_files[department.code] = checker
        for purpose in file_purposes:
            if purpose.code in purposes:
                checker.fault(None, "purposes.code", "DUPLICATE", purpose.code)
            purposes[purpose.code] = purpose
        for resource in file_resources:
            if resource.code in resources:
                checker.fault(resource.code, "code", "DUPLICATE", resource.code)
            if resource.api_name in RESERVED_API_NAMES:
                checker.fault(resource.code, "api_name", "FIELD_INVALID", f"{resource.api_name!r} is reserved")
            elif resource.api_name in api_names:
                checker.fault(
                    resource.code, "api_name", "DUPLICATE", f"{resource.api_name} (also {api_names[resource.api_name]})"
                )
            elif resource.api_name:
                names = _generated_names(resource.api_name)
                if clash := next((n for n in names if n in RESERVED_TYPE_NAMES), None):
                    checker.fault(
                        resource.code,
                        "api_name",
                        "FIELD_INVALID",
                        f"{resource.api_name!r} would define {clash}, which is reserved",
                    )
                elif clash := next((n for n in names if n in generated), None):
                    checker.fault(
                        resource.code,
                        "api_name",
                        "DUPLICATE",
                        f"{resource.api_name} would define {clash} (also {generated[clash]})",
                    )
                generated.update(dict.fromkeys(names, resource.code))
            api_names[resource.api_name] = resource.code
            if resource.resource_code in resource_codes:
                checker.fault(
                    resource.code,
                    "resource_code",
                    "DUPLICATE",
                    f"{resource.resource_code} (also {resource_codes[resource.resource_code]})",
                )
            elif resource.resource_code:
                resource_codes[resource.resource_code] = resource.code
            resources[resource.code] = resource
            related_refs.append((checker, resource))
        problems += checker.problems

    loaded, listed = set(departments), set(resources)
    if base is not None:
        _keep_other_departments(base, department_files, purposes, resources, api_names, generated, related_refs)
        # The kept resources' guide codes: a loaded resource may neither take one nor relate to one that is not there.
        checkers = {resource.code: checker for checker, resource in related_refs}
        for code, kept in base.resources.items():
            if code in listed or not kept.resource_code:
                continue
            holder = resource_codes.setdefault(kept.resource_code, code)
            if holder != code:
                checkers[holder].fault(holder, "resource_code", "DUPLICATE", f"{kept.resource_code} (also {code})")
        for code, department in base.departments.items():
            departments.setdefault(code, department)
        known = {id(p) for p in problems}
        for checker in department_files.values():
            problems += [p for p in checker.problems if id(p) not in known]

    for checker, resource in related_refs:
        for code in resource.related_departments:
            if code not in departments:
                problems.append(
                    checker.located(
                        resource.code, "related_departments", "UNKNOWN_REFERENCE", f"no department {code!r}"
                    )
                )
        for code in resource.related_resources:
            if code == resource.resource_code or code not in resource_codes:
                detail = "a resource is not related to itself" if code == resource.resource_code else "no resource"
                problems.append(
                    checker.located(resource.code, "related_resources", "UNKNOWN_REFERENCE", f"{code}: {detail}")
                )
    for checker, resource in related_refs:
        for position, link in enumerate(resource.links):
            target = resources.get(link.target)
            if target is None:
                problems.append(
                    checker.located(
                        resource.code, f"links[{position}].target", "UNKNOWN_REFERENCE", f"no resource {link.target!r}"
                    )
                )
            elif (target_item := target.item(link.target_item)) is None:
                problems.append(
                    checker.located(
                        resource.code,
                        f"links[{position}].target_item",
                        "UNKNOWN_REFERENCE",
                        f"{link.target} has no data item {link.target_item!r}",
                    )
                )
            elif (item := resource.item(link.item)) and target_item.type != item.type:
                problems.append(
                    checker.located(
                        resource.code,
                        f"links[{position}].target_item",
                        "FIELD_INVALID",
                        "the two items of a link must have the same type",
                    )
                )
    if problems:
        raise CatalogError(problems)
    return Catalog(departments=departments, purposes=purposes, resources=resources), loaded, listed


def _keep_other_departments(
    base: Catalog,
    department_files: dict[str, _Checker],
    purposes: dict[str, Purpose],
    resources: dict[str, Resource],
    api_names: dict[str, str],
    generated: dict[str, str],
    related_refs: list[tuple[_Checker, Resource]],
) -> None:
    """Adds to the loaded entries what ``base`` holds beyond them; a loaded entry that is another department's (a
    resource or purpose code it provides or registered) is a fault of the file naming it."""
    checkers = {resource.code: checker for checker, resource in related_refs}
    for code, purpose in base.purposes.items():
        if code not in purposes:
            purposes[code] = purpose
        elif purposes[code].department != purpose.department and (
            checker := department_files.get(purposes[code].department)
        ):
            checker.fault(None, "purposes.code", "CATALOG_NOT_OWN_ENTRY", f"{code} ({purpose.department})")
    for code, resource in base.resources.items():
        if code in resources:
            if resources[code].provider != resource.provider:
                checkers[code].fault(code, "code", "CATALOG_NOT_OWN_ENTRY", f"{code} ({resource.provider})")
            continue
        # Another department's, or one its own file no longer lists: kept as it is (retire it to withdraw it).
        clash = next((n for n in _generated_names(resource.api_name) if n in generated), None)
        if clash is not None:
            owner = generated[clash]
            checkers[owner].fault(owner, "api_name", "DUPLICATE", f"{resources[owner].api_name} (also {code})")
        api_names.setdefault(resource.api_name, code)
        resources[code] = resource
