"""Reads catalog files (TOML, one per providing department) and validates them as a whole.

Every fault is collected with the file, resource and field it concerns; one fault refuses the
whole catalog, so the catalog in force never changes half-way.
"""

from __future__ import annotations

import keyword
import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from catalog.model import (
    CLASSIFICATIONS,
    DATE_LENGTH,
    ITEM_TYPES,
    SHARE_METHODS,
    UPDATE_CYCLES,
    Catalog,
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
    "CatalogSubmission",  # schema/catalog.py
    "CatalogFinding",
    "CatalogFieldChange",
    "CatalogVersionInfo",
}

_DEPARTMENT_FIELDS = {"code", "name", "source"}
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
}
_LINK_FIELDS = {"name", "label", "item", "target", "target_item", "many"}
_ITEM_FIELDS = {"name", "label", "type", "column", "share_type", "filterable", "length", "parts", "reveals"}


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


class _Checker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def fault(self, resource: str | None, field: str | None, code: str, detail: str = "") -> None:
        self.problems.append(Problem(self.file, resource, field, code, detail))

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
    )
    if document.get("resources") and not department.source:
        checker.fault(
            None, "department.source", "FIELD_REQUIRED", "a department that provides resources names its source"
        )

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
    if publish_date and not (isinstance(publish_date, str) and _DATE.match(publish_date)):
        checker.fault(label, "publish_date", "FIELD_INVALID", "expected YYYY-MM-DD")
        publish_date = ""

    cache_seconds = raw.get("cache_seconds", 0)
    if not isinstance(cache_seconds, int) or isinstance(cache_seconds, bool) or cache_seconds < 0:
        checker.fault(label, "cache_seconds", "FIELD_INVALID", "expected a whole number of seconds, 0 or more")
        cache_seconds = 0
    links: list[Link] = []
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
        abstract=checker.text(raw, "abstract", label, required=False),
        classification=checker.choice(raw, "classification", CLASSIFICATIONS, label, default="department"),
        share_condition=checker.text(raw, "share_condition", label, required=False),
        share_method=checker.choice(raw, "share_method", SHARE_METHODS, label, default="online_query"),
        update_cycle=checker.choice(raw, "update_cycle", UPDATE_CYCLES, label),
        publish_date=str(publish_date),
        usage=checker.text(raw, "usage", label, required=False),
        legal_basis=legal_basis,
        status=Status(checker.choice(raw, "status", [s.value for s in Status], label, default="published") or "draft"),
        related_departments=tuple(related),
        links=tuple(links),
        cache_seconds=cache_seconds,
    )


def catalog_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.toml")) if path.is_dir() else [path]


def load_catalog(path: Path, base: Catalog | None = None) -> Catalog:
    """Read and validate every catalog file at ``path`` (a file or a folder of ``*.toml``).

    With ``base`` (the catalog in force), the files are the entries of the departments they name, and the result is
    ``base`` with those departments' entries replaced: every other department's department entry, purposes and
    resources are kept as they are (loading one department never touches another's), and a resource of a loaded
    department that its file no longer lists is kept too (an entry is retired, never dropped by omission).
    """
    return load_entries(path, base)[0]


def load_entries(
    path: Path, base: Catalog | None = None, text: str | None = None
) -> tuple[Catalog, set[str], set[str]]:
    """``load_catalog``, and the codes of the departments and of the resources the files hold. With ``text``, that is
    the one file's content and ``path`` only its name (a catalog file sent through the API)."""
    problems: list[Problem] = []
    files = [path] if text is not None else catalog_files(path)
    if text is None and (not files or not path.exists()):
        raise CatalogError([Problem(str(path), None, None, "CATALOG_EMPTY", "expected *.toml files")])

    departments: dict[str, Department] = {}
    purposes: dict[str, Purpose] = {}
    resources: dict[str, Resource] = {}
    api_names: dict[str, str] = {}
    generated: dict[str, str] = {}  # GraphQL field and type names -> the resource they are generated for
    related_refs: list[tuple[_Checker, Resource]] = []
    department_files: dict[str, _Checker] = {}
    for file in files:
        checker = _Checker(str(file))
        try:
            document = tomllib.loads(text if text is not None else file.read_text(encoding="utf-8"))
        except OSError as exc:
            checker.fault(None, None, "FILE_UNREADABLE", exc.strerror or str(exc))
            problems += checker.problems
            continue
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            checker.fault(None, None, "TOML_SYNTAX", str(exc))
            problems += checker.problems
            continue
        department, file_purposes, file_resources = _parse_file(file, document, checker)
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
            resources[resource.code] = resource
            related_refs.append((checker, resource))
        problems += checker.problems

    loaded, listed = set(departments), set(resources)
    if base is not None:
        _keep_other_departments(base, department_files, purposes, resources, api_names, generated, related_refs)
        for code, department in base.departments.items():
            departments.setdefault(code, department)
        known = {id(p) for p in problems}
        for checker in department_files.values():
            problems += [p for p in checker.problems if id(p) not in known]

    for checker, resource in related_refs:
        for code in resource.related_departments:
            if code not in departments:
                problems.append(
                    Problem(
                        checker.file,
                        resource.code,
                        "related_departments",
                        "UNKNOWN_REFERENCE",
                        f"no department {code!r}",
                    )
                )
    for checker, resource in related_refs:
        for position, link in enumerate(resource.links):
            target = resources.get(link.target)
            if target is None:
                problems.append(
                    Problem(
                        checker.file,
                        resource.code,
                        f"links[{position}].target",
                        "UNKNOWN_REFERENCE",
                        f"no resource {link.target!r}",
                    )
                )
            elif (target_item := target.item(link.target_item)) is None:
                problems.append(
                    Problem(
                        checker.file,
                        resource.code,
                        f"links[{position}].target_item",
                        "UNKNOWN_REFERENCE",
                        f"{link.target} has no data item {link.target_item!r}",
                    )
                )
            elif (item := resource.item(link.item)) and target_item.type != item.type:
                problems.append(
                    Problem(
                        checker.file,
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
