"""What the catalog says: departments, their registered purposes, and resources with their data items."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, NamedTuple

from catalog.guide import DEFAULT_GUIDE_TYPES, UPDATE_CYCLE_LABELS


class ShareType(StrEnum):
    UNCONDITIONAL = "unconditional"  # 无条件共享
    CONDITIONAL = "conditional"  # 有条件共享
    NOT_SHARED = "not_shared"  # 不予共享


class Status(StrEnum):
    DRAFT = "draft"
    UNDER_REVIEW = "under_review"
    PUBLISHED = "published"
    RETIRED = "retired"


ITEM_TYPES = ("string", "integer", "decimal", "date", "boolean")
CLASSIFICATIONS = ("base", "theme", "department")  # 基础库 / 主题库 / 部门库 (Art 29)
SHARE_METHODS = ("online_query", "exchange", "interface")  # 联机查询 / 数据交换 / 接口服务 (Art 18)
# 更新周期: how often a resource's source promises to change (catalog/freshness.py: what is due when).
UPDATE_CYCLES = ("realtime", "daily", "weekly", "monthly", "quarterly", "half-yearly", "yearly", "irregular")
CYCLE_LABELS = UPDATE_CYCLE_LABELS  # their zh labels (catalog/guide.py)
# 信息资源格式 (catalog/guide.py has their labels): what the resource is held as at its provider.
RESOURCE_FORMATS = ("database", "document", "spreadsheet", "image", "stream", "self_describing", "other")


def typed_value(item_type: str, text: str) -> object:
    """A row-scope value, kept as text in grants, as a value of the item's type (ValueError when it is none), so
    that a source compares like with like (PostgreSQL refuses integer = text)."""
    if item_type == "integer":
        return int(text)
    if item_type == "decimal":
        return float(text)
    if item_type == "date":
        return datetime.date.fromisoformat(text)
    if item_type == "boolean":
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    return text


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    source: str  # connector binding: the department's exchange database URL
    # 信息资源提供方代码: its unified social credit code (GB 32100) or organisation code (GB 11714)
    org_code: str = ""


@dataclass(frozen=True)
class Purpose:
    """A business matter (履职事项) registered for a department; every query declares one."""

    code: str
    name: str
    department: str


DATE_LENGTH = 10  # a date's text is ISO 8601, YYYY-MM-DD: the positions ``parts`` and masks count in


@dataclass(frozen=True)
class Part:
    """One fact a composite value carries at fixed character positions (1-based), e.g. the birth year in
    characters 7-10 of an 18-digit ID number (GB 11643)."""

    fact: str
    positions: tuple[int, ...]


@dataclass(frozen=True)
class DataItem:
    """A data item (信息项). ``share_type`` is set only where it differs from its resource's.

    What the value discloses, so that no mask is undone by another item of the same resource
    (policies/disclosure.py): ``parts`` for a composite value of fixed ``length`` (which facts sit at
    which characters), or ``reveals`` for a value that is itself the named facts. Facts are names local
    to a resource: two items of one resource naming the same fact carry the same information.
    """

    name: str
    label: str
    type: str
    column: str
    share_type: ShareType | None = None
    filterable: bool = False
    length: int = 0  # the value's text length when fixed (0: varies); a date's is DATE_LENGTH
    parts: tuple[Part, ...] = ()
    reveals: tuple[str, ...] = ()
    # The national guide's data type letter (C 字符型, N 数值型, D 日期型, ...: catalog/guide.py); "" for the default
    guide_type: str = ""
    # The data subject the value identifies (govshare.subjects.KINDS: a person's ID number, an enterprise's credit
    # code, e.g. the record's key or a legal representative's ID number); "" for none. Every access answering a row
    # indexes it (README "Who looked at my data").
    subject: str = ""

    @property
    def data_type(self) -> str:
        """The guide's data type letter: the declared one, else the one our type maps to."""
        return self.guide_type or DEFAULT_GUIDE_TYPES[self.type]

    @property
    def text_length(self) -> int:
        """The length of the value's text where known (declared, or a date's), else 0."""
        return self.length or (DATE_LENGTH if self.type == "date" else 0)

    @property
    def facts(self) -> tuple[str, ...]:
        return tuple(p.fact for p in self.parts) or self.reveals


@dataclass(frozen=True)
class Link:
    """A field leading from a record to the records of another resource holding the same real-world key
    (ID number, unified social credit code): ``item`` here equals ``target_item`` there."""

    name: str
    label: str
    item: str
    target: str
    target_item: str
    many: bool = True


@dataclass(frozen=True)
class ChangeSource:
    """How the platform learns when a resource's source last changed (Art 16): the greatest value of a change-time
    column of the resource's own table (``changed_column``), or of a marker column the provider keeps up to date
    elsewhere in its source (``marker`` = "table.column"). Exactly one of the two is set."""

    changed_column: str = ""
    marker: str = ""

    @property
    def table_and_column(self) -> tuple[str, str] | None:
        """(table, column) of the marker; None for a change-time column of the resource's table."""
        if not self.marker:
            return None
        table, _, column = self.marker.partition(".")
        return table, column


@dataclass(frozen=True)
class Resource:
    code: str
    api_name: str
    name: str
    provider: str
    share_type: ShareType
    table: str
    key: str
    items: tuple[DataItem, ...]
    abstract: str = ""
    classification: str = "department"
    share_condition: str = ""
    share_method: str = "online_query"
    update_cycle: str = "daily"
    publish_date: str = ""
    usage: str = ""
    legal_basis: str = ""
    status: Status = Status.PUBLISHED
    related_departments: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    # How long the provider lets the platform keep answers from its source (0: always ask the source).
    cache_seconds: int = 0
    # The national guide's fields (docs/catalog-fields.md): 信息资源代码 (``101001/000001``: 类, 项, 目, 细目, then
    # the sequence), the names of the classification's 项/目/细目 below its 类, 信息资源格式, 关联资源代码 and the
    # keywords of GB/T 21063.3 (关键字说明).
    resource_code: str = ""
    category: tuple[str, ...] = ()
    format: str = "database"
    related_resources: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    # Where the source's last change is read (None: not declared; its freshness is then unknown).
    freshness: ChangeSource | None = None

    @cached_property
    def subject_items(self) -> tuple[str, ...]:
        """The items that identify a data subject, in the catalog's order."""
        return tuple(i.name for i in self.items if i.subject)

    def item(self, name: str) -> DataItem | None:
        return self._items_by_name.get(name)

    @cached_property
    def _items_by_name(self) -> dict[str, DataItem]:
        return {i.name: i for i in self.items}

    def share_type_of(self, item: DataItem) -> ShareType:
        return item.share_type or self.share_type

    @property
    def type_name(self) -> str:
        return self.api_name[0].upper() + self.api_name[1:]


class Loaded(NamedTuple):
    """What a catalog was read as from one version (before conformance left any resource out): the version and every
    entry read from it, so that the next version's unchanged entries are these very objects."""

    version: int
    resources: dict[str, Resource]
    departments: dict[str, Department]
    purposes: dict[str, Purpose]


class Since(NamedTuple):
    """What a catalog read by the changes since another version knows of them (``Catalog.following``): the resources
    of the version it follows (``before``: that very dict), its own (``after``), and the codes of the resources that
    changed, came or went between them; every other code is the same object in both."""

    before: dict[str, Resource]
    after: dict[str, Resource]
    codes: frozenset[str]


def changed_resources(before: dict[str, Resource], catalog: Catalog) -> Iterable[str]:
    """The codes of the resources that may differ between ``before`` (the resources of a catalog followed) and
    ``catalog``'s, changed, new or gone: what ``catalog.since`` says when it was read following exactly ``before``,
    else found by identity over every resource."""
    since = catalog.since
    after = catalog.resources
    if since is not None and since.before is before and since.after is after:
        return since.codes
    changed = [code for code, resource in after.items() if before.get(code) is not resource]
    kept = len(after) - len(changed) + sum(1 for code in changed if code in before)
    if kept != len(before):  # some resource of ``before`` is gone
        changed += [code for code in before if code not in after]
    return changed


# A change of one entry from one version to the next: (kind, code, the entry as the document holds it; None: gone).
Change = tuple[str, str, dict[str, Any] | None]
CHANGE_KINDS = ("department", "purpose", "resource")


def _resource(raw: dict[str, Any]) -> Resource:
    items = tuple(
        DataItem(
            **{
                **i,
                "share_type": ShareType(i["share_type"]) if i["share_type"] else None,
                "parts": tuple(Part(p["fact"], tuple(p["positions"])) for p in i.get("parts", ())),
                "reveals": tuple(i.get("reveals", ())),
            }
        )
        for i in raw["items"]
    )
    return Resource(
        **{
            **raw,
            "items": items,
            "share_type": ShareType(raw["share_type"]),
            "status": Status(raw["status"]),
            "related_departments": tuple(raw["related_departments"]),
            "links": tuple(Link(**link) for link in raw.get("links", ())),
            "category": tuple(raw.get("category", ())),
            "related_resources": tuple(raw.get("related_resources", ())),
            "keywords": tuple(raw.get("keywords", ())),
            "freshness": ChangeSource(**raw["freshness"]) if raw.get("freshness") else None,
        }
    )


_READERS = {
    "department": lambda entry: Department(**entry),
    "purpose": lambda entry: Purpose(**entry),
    "resource": _resource,
}


def _apply(
    parts: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    changes: Iterable[Change],
    read: Callable[[str, dict[str, Any]], Any],
) -> None:
    """``changes`` applied to ``parts`` (departments, purposes, resources), in order, each entry made by ``read``
    (kind, entry): an entry changed keeps its place, a new one goes last, one gone leaves."""
    for kind, code, entry in changes:
        entries = parts[CHANGE_KINDS.index(kind)]
        if entry is None:
            entries.pop(code, None)
        else:
            entries[code] = read(kind, entry)


@dataclass(frozen=True)
class Catalog:
    departments: dict[str, Department] = field(default_factory=dict)
    purposes: dict[str, Purpose] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    version: int = 0
    # Read from a version (from_document, following): that version and every entry read from it, before any resource
    # was left out (conformance), so that the next version's unchanged entries are these very objects.
    loaded: Loaded | None = field(default=None, compare=False, repr=False)
    # Read by the changes since the version before (following): which resources they changed (``changed_resources``).
    since: Since | None = field(default=None, compare=False, repr=False)

    def published(self) -> list[Resource]:
        return [r for r in self.resources.values() if r.status == Status.PUBLISHED]

    def purpose_for(self, department: str, code: str) -> Purpose | None:
        purpose = self.purposes.get(code)
        return purpose if purpose is not None and purpose.department == department else None

    def to_document(self) -> dict[str, Any]:
        return {
            "departments": [asdict(d) for d in self.departments.values()],
            "purposes": [asdict(p) for p in self.purposes.values()],
            "resources": [asdict(r) for r in self.resources.values()],
        }

    @classmethod
    def from_document(
        cls,
        document: dict[str, Any],
        version: int = 0,
        *,
        before: tuple[dict[str, Any], dict[str, Resource]] | None = None,
    ) -> Catalog:
        """The catalog of a version's document. With ``before`` (the document of an earlier version and the resources
        read from it, ``loaded``), a resource whose entry is equal to that document's is the resource read from it:
        an equal entry reads as an equal resource, and the schema keeps the types of a resource that is the same
        object (schema/builder.py) without comparing it field by field."""
        earlier = {r["code"]: r for r in before[0]["resources"]} if before is not None else {}
        resources = {}
        for raw in document["resources"]:
            kept = before[1].get(raw["code"]) if before is not None else None
            if kept is not None and earlier.get(raw["code"]) == raw:
                resources[raw["code"]] = kept
                continue
            resources[raw["code"]] = _resource(raw)
        departments = {d["code"]: Department(**d) for d in document["departments"]}
        purposes = {p["code"]: Purpose(**p) for p in document["purposes"]}
        return cls(
            departments=departments,
            purposes=purposes,
            resources=resources,
            version=version,
            loaded=Loaded(version, resources, departments, purposes),  # a catalog's dicts are never changed in place
        )

    @classmethod
    def following(cls, loaded: Loaded, version: int, changes: Iterable[Change]) -> Catalog:
        """The catalog of version ``version``, whose entries are those of ``loaded``'s version with ``changes`` (each
        version's between them, in order; catalog/store.py records them) applied: an entry not changed is the object
        read before, a changed one is read from its entry as ``from_document`` reads it, so the catalog is the one
        a read of that version's whole document gives, in the same order, and the work is that of the changes."""
        changes = list(changes)
        parts = (dict(loaded.departments), dict(loaded.purposes), dict(loaded.resources))
        _apply(parts, changes, lambda kind, entry: _READERS[kind](entry))
        departments, purposes, resources = parts
        codes = frozenset(code for kind, code, _ in changes if kind == "resource")
        return cls(
            departments=departments,
            purposes=purposes,
            resources=resources,
            version=version,
            loaded=Loaded(version, resources, departments, purposes),  # a catalog's dicts are never changed in place
            since=Since(loaded.resources, resources, codes),
        )


def changes(before: Loaded, catalog: Catalog) -> list[Change] | None:
    """The entries of ``catalog`` that differ from those ``before`` was read as (gone ones first, then the changed or
    new ones in ``catalog``'s order), as they are recorded for a version following ``before``'s; None when applying
    them to ``before`` would not give ``catalog``'s order of entries (an entry moved: such a version is read whole)."""
    found: list[Change] = []
    pairs: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
        ("department", before.departments, catalog.departments),
        ("purpose", before.purposes, catalog.purposes),
        ("resource", before.resources, catalog.resources),
    )
    for kind, old, new in pairs:
        found += [(kind, code, None) for code in old if code not in new]
        for code, value in new.items():
            earlier = old.get(code)
            if earlier is not value and earlier != value:
                found.append((kind, code, asdict(value)))
    orders: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = (
        dict.fromkeys(before.departments),
        dict.fromkeys(before.purposes),
        dict.fromkeys(before.resources),
    )
    _apply(orders, found, lambda kind, entry: None)  # the order a reader applying them gets
    for order, (_, _, entries) in zip(orders, pairs, strict=True):
        if list(order) != list(entries):
            return None
    return found
