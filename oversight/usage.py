"""Usage reports for providers (Art 24): how each of a department's resources was used in a period — accesses,
rows and item values returned, refusals and masks — by consumer department, purpose, grant and day/week/month
(China time), with the refusals by code.

Figures are counted from the access records (``audit.tables.access_records``) by the platform database itself
(GROUP BY, on SQLite and PostgreSQL; the index on (resource, at) serves the period), never by reading every record
into Python. Every figure is a sum, so a report over live and archived records is the sum of both: ``figures`` is
the one place that counts, and ``Figures.of`` counts one record the same way (for records that are not in the
table, e.g. archives).

What the record says, and so what a figure can say:
- ``row_count`` the rows answered, ``items_returned`` the items answered: item values = rows x items;
- ``items_denied`` {item: reason code}: the items refused in an access that answered others (outcome partial) or in
  one refused whole (outcome denied, with ``error_code``);
- ``items_masked`` the items answered masked in at least one row: a per-row view can mask an item in some rows and
  show it in others, and the record does not say in how many. A report counts masked *items* (per access), never
  masked values.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Integer, String

from audit import archives
from audit.chain import audit_archives
from audit.tables import ACCESS, access_records
from catalog.model import Catalog
from govshare.clock import CHINA
from govshare.config import Settings
from govshare.errors import GovshareError

Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")
# What a report can be grouped by: a column of the record, a grant it used (one access under two grants counts
# for each), the China-time day/week/month it falls in, or a refusal's code; ``grant_month`` is a grant used with
# the resource, the consumer department and the China month (what the consumers' feedback is reported per, and
# shown beside: ``oversight.feedback.beside_usage``), accesses under no grant left out; ``columns`` is the three
# columns together (resource, department, purpose), from which ``tables`` sums the tables of each.
Dimension = Literal[
    "resource", "department", "purpose", "grant", "period", "refusal", "denied_item", "grant_month", "columns"
]
DIMENSIONS: tuple[Dimension, ...] = (
    "resource",
    "department",
    "purpose",
    "grant",
    "period",
    "refusal",
    "denied_item",
    "grant_month",
    "columns",
)
COLUMNS: tuple[Dimension, ...] = ("resource", "department", "purpose")  # the key columns of ``columns``, in order
MAX_DAYS = 366 * 3  # a period longer than this is refused (PERIOD_TOO_LONG): a day-by-day table of it is unreadable
NONE = ""  # the key of records without the value (no purpose declared, no grant used)


@dataclass(frozen=True)
class Period:
    """China days ``first`` to ``last``, both included; buckets of ``granularity``."""

    first: date
    last: date
    granularity: Granularity = "day"

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), CHINA).astimezone(UTC)

    @property
    def until(self) -> datetime:
        """The first moment after the period (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(), CHINA).astimezone(UTC)

    def buckets(self) -> list[str]:
        """Every bucket's label (its first day, YYYY-MM-DD) from the first day's to the last day's, in order."""
        labels: list[str] = []
        day = self.first
        while day <= self.last:
            label = bucket_of(day, self.granularity)
            if not labels or labels[-1] != label:
                labels.append(label)
            day += timedelta(days=1)
        return labels


def period(first: str | date | None, last: str | date | None, granularity: str | None, *, today: date) -> Period:
    """A period from what a person typed: dates YYYY-MM-DD (default: the 30 days up to ``today``), a granularity;
    a bad input is a coded error (USAGE_BAD_DATE, USAGE_BAD_GRANULARITY, USAGE_BAD_PERIOD, PERIOD_TOO_LONG)."""
    end = _date(last) if last else today
    start = _date(first) if first else end - timedelta(days=29)
    chosen = granularity or "day"
    if chosen not in GRANULARITIES:
        raise GovshareError("USAGE_BAD_GRANULARITY", value=chosen[:20], allowed=", ".join(GRANULARITIES))
    if start > end:
        raise GovshareError("USAGE_BAD_PERIOD", first=start.isoformat(), last=end.isoformat())
    if (end - start).days >= MAX_DAYS:
        raise GovshareError("PERIOD_TOO_LONG", days=MAX_DAYS)
    return Period(start, end, chosen)


def _date(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise GovshareError("USAGE_BAD_DATE", value=value[:40]) from None


def bucket_of(day: date, granularity: Granularity) -> str:
    if granularity == "week":  # ISO weeks, Monday first
        day -= timedelta(days=day.weekday())
    elif granularity == "month":
        day = day.replace(day=1)
    return day.isoformat()


@dataclass(frozen=True)
class Figures:
    """What a group of access records adds up to. Every figure is a sum over records."""

    accesses: int = 0
    rows: int = 0  # rows answered
    values: int = 0  # item values answered: rows x items answered, per access
    allowed: int = 0  # accesses answered in full
    partial: int = 0  # answered, some items refused
    denied: int = 0  # refused whole (error_code)
    failed: int = 0  # failed (the source unavailable ...): nothing answered
    items_denied: int = 0  # items refused, counted per access
    masked: int = 0  # accesses that answered some item masked
    items_masked: int = 0  # items answered masked, counted per access

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)))

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Figures:
        """One access record (a row of ``access_records`` as a mapping) counted as ``figures`` counts it."""
        outcome = record["outcome"]
        masked = len(record["items_masked"])
        return cls(
            accesses=1,
            rows=record["row_count"],
            values=record["row_count"] * len(record["items_returned"]),
            allowed=int(outcome == "allowed"),
            partial=int(outcome == "partial"),
            denied=int(outcome == "denied"),
            failed=int(outcome == "failed"),
            items_denied=len(record["items_denied"]),
            masked=int(masked > 0),
            items_masked=masked,
        )


FIGURES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Figures))


class _array_length(FunctionElement[int]):
    """The length of a JSON array column."""

    type = Integer()
    inherit_cache = True


class _object_size(FunctionElement[int]):
    """The number of keys of a JSON object column."""

    type = Integer()
    inherit_cache = True


@compiles(_array_length)
def _array_length_any(
    element: Any, compiler: Any, **kw: Any
) -> str:  # SQLite and PostgreSQL (json) have the same function
    return f"json_array_length({compiler.process(element.clauses, **kw)})"


# The argument is SQL compiled from a column (bound values stay parameters), never text from a caller.
@compiles(_object_size, "sqlite")
def _object_size_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(SELECT count(*) FROM json_each({compiler.process(element.clauses, **kw)}))"  # noqa: S608


@compiles(_object_size, "postgresql")
def _object_size_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"(SELECT count(*) FROM json_object_keys({compiler.process(element.clauses, **kw)}))"  # noqa: S608


class _china_bucket(FunctionElement[str]):
    """The China-time day, ISO week (its Monday) or month (its first day) of a UTC moment, as YYYY-MM-DD; one
    subclass a granularity, so that each has its own compiled statement in SQLAlchemy's cache."""

    type = String()
    inherit_cache = True
    granularity: Granularity = "day"


_BUCKETS: dict[str, type[_china_bucket]] = {
    g: type(f"_china_{g}", (_china_bucket,), {"granularity": g, "inherit_cache": True}) for g in GRANULARITIES
}


@compiles(_china_bucket, "sqlite")
def _china_bucket_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    moment = compiler.process(element.clauses, **kw)  # stored as UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'
    shift = {"day": "", "week": ", 'weekday 0', '-6 days'", "month": ", 'start of month'"}[element.granularity]
    return f"date({moment}, '+8 hours'{shift})"


@compiles(_china_bucket, "postgresql")
def _china_bucket_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    moment = compiler.process(element.clauses, **kw)
    return (
        f"to_char(date_trunc('{element.granularity}', ({moment} AT TIME ZONE 'UTC') + interval '8 hours'), "
        "'YYYY-MM-DD')"
    )


def _sums() -> list[ColumnElement[Any]]:
    c = access_records.c
    masked = _array_length(c.items_masked)

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return [
        func.count().label("accesses"),
        func.coalesce(func.sum(c.row_count), 0).label("rows"),
        func.coalesce(func.sum(c.row_count * _array_length(c.items_returned)), 0).label("values"),
        count_if(c.outcome == "allowed").label("allowed"),
        count_if(c.outcome == "partial").label("partial"),
        count_if(c.outcome == "denied").label("denied"),
        count_if(c.outcome == "failed").label("failed"),
        func.coalesce(func.sum(_object_size(c.items_denied)), 0).label("items_denied"),
        count_if(masked > 0).label("masked"),
        func.coalesce(func.sum(masked), 0).label("items_masked"),
    ]


def _grouping(
    by: Dimension, granularity: Granularity, dialect: str
) -> tuple[list[ColumnElement[Any]], list[Any], list[ColumnElement[bool]]]:
    """(key columns, extra FROM items, extra conditions) of grouping by ``by``."""
    c = access_records.c
    if by in ("resource", "department", "purpose"):
        return [func.coalesce(c[by], NONE)], [], []
    if by == "columns":
        return [func.coalesce(c[column], NONE) for column in COLUMNS], [], []
    if by == "period":
        return [_BUCKETS[granularity](c.at)], [], []
    if by == "refusal":  # accesses refused or failed whole, by outcome and code
        return [c.outcome, func.coalesce(c.error_code, NONE)], [], [c.outcome.in_(("denied", "failed"))]
    if by in ("grant", "grant_month"):  # an access with no grant is counted under NONE; with two, under each
        used = (func.json_each if dialect == "sqlite" else func.json_array_elements_text)(c.grants_used)
        grant = used.table_valued("value").alias("used_grant")
        if by == "grant":
            return [func.coalesce(grant.c.value, NONE)], [grant], []
        # grant_month: joined, not outer-joined (``figures``), so an access under no grant has no row
        month = _BUCKETS["month"](c.at)
        return [grant.c.value, c.resource, func.coalesce(c.department, NONE), month], [grant], []
    # denied_item: each refused item by its reason code (the figures are those of the accesses that refused it)
    each = (func.json_each if dialect == "sqlite" else func.json_each_text)(c.items_denied)
    denied = each.table_valued("key", "value").alias("denied_item")
    return [denied.c.key, denied.c.value], [denied], []


async def figures(
    conn: AsyncConnection,
    resources: Sequence[str] | None,
    when: Period,
    by: Dimension,
    *,
    department: str | None = None,
    purpose: str | None = None,
    settings: Settings | None = None,
) -> dict[tuple[str, ...], Figures]:
    """The figures of the access records to ``resources`` (None: every resource) in ``when``, grouped ``by`` a
    dimension: key (a tuple of texts; NONE where the record has no value) → figures. ``department`` and ``purpose``
    narrow to one consumer department or purpose.

    The one function that counts. With ``settings``, the records of the period that ``govshare audit archive``
    took out of the table are read back from the archives (``audit_archive_dir``) and added, ``Figures.of`` each,
    keyed alike: a report covers every record of its period, wherever it now lies."""
    if resources is not None and not resources:
        return {}
    c = access_records.c
    dialect = conn.dialect.name
    keys, joined, conditions = _grouping(by, when.granularity, dialect)
    labelled = [k.label(f"key{i}") for i, k in enumerate(keys)]
    conditions = [*conditions, c.at >= when.since, c.at < when.until]
    if resources is not None:
        conditions.append(c.resource.in_(list(resources)))
    if department is not None:
        conditions.append(c.department == department)
    if purpose is not None:
        conditions.append(c.purpose == purpose)
    query = select(*labelled, *_sums()).select_from(access_records)
    for item in joined:
        # a table-valued function reads the record's own JSON (implicitly LATERAL on PostgreSQL); an access with
        # nothing in it is kept by the outer join (its key NULL, then NONE)
        query = query.outerjoin(item, true()) if by == "grant" else query.join(item, true())
    query = query.where(and_(*conditions)).group_by(*keys)
    found: dict[tuple[str, ...], Figures] = {}
    for row in (await conn.execute(query)).all():
        key = tuple(str(v) for v in row[: len(keys)])
        found[key] = Figures(*(int(v) for v in row[len(keys) :]))
    if settings is not None:  # the records of the period that archives took out of the table, counted alike
        for key, more in (await _archived(conn, settings, resources, when, by, department, purpose)).items():
            found[key] = found.get(key, Figures()) + more
    return found


async def _archived(
    conn: AsyncConnection,
    settings: Settings,
    resources: Sequence[str] | None,
    when: Period,
    by: Dimension,
    department: str | None,
    purpose: str | None,
) -> dict[tuple[str, ...], Figures]:
    """``figures`` of the archived access records in ``when`` (read from the signed archives, each checked whole
    before any of its records counts; an archive that does not verify is an error, never a smaller figure)."""
    recorded = (
        select(func.count())
        .select_from(audit_archives)
        .where(audit_archives.c.chain == ACCESS.name, audit_archives.c.last_at >= when.since)
    )
    if not (await conn.execute(recorded)).scalar_one():
        return {}
    wanted = None if resources is None else set(resources)

    def read() -> list[dict[str, Any]]:
        return [
            r.fields
            for r in archives.iter_access_records(settings, when.since, when.until)
            if (wanted is None or r.fields["resource"] in wanted)
            and (department is None or r.fields["department"] == department)
            and (purpose is None or r.fields["purpose"] == purpose)
        ]

    return fold(await asyncio.to_thread(read), by, when.granularity)


def visible_resources(catalog: Catalog, provider: str | None) -> list[str] | None:
    """The resources whose usage ``provider`` may see: its own (in the catalog in force, whatever their status);
    None (every resource, also those no longer in the catalog) for the coordinating authority and auditors."""
    if provider is None:
        return None
    return sorted(code for code, r in catalog.resources.items() if r.provider == provider)


def narrowed(visible: list[str] | None, resource: str | None, catalog: Catalog) -> list[str] | None:
    """``visible`` narrowed to ``resource``; a resource outside ``visible`` is refused (USAGE_NOT_YOURS), as one
    unknown to the catalog is (USAGE_RESOURCE_UNKNOWN) where every resource is visible, so that asking never tells
    another department's figures nor which resources have records."""
    if not resource:
        return visible
    if visible is None:
        if resource not in catalog.resources:
            raise GovshareError("USAGE_RESOURCE_UNKNOWN", resource=resource[:80])
        return [resource]
    if resource not in visible:
        raise GovshareError("USAGE_NOT_YOURS", http_status=403, resource=resource[:80])
    return [resource]


@dataclass(frozen=True)
class Table:
    """One table of a report: ``dimension``'s keys (one column each of ``key_columns``) and their figures, in the
    order shown; the chart beside it draws the same rows."""

    name: str
    key_columns: tuple[str, ...]
    rows: tuple[tuple[tuple[str, ...], Figures], ...]

    def total(self) -> Figures:
        return sum((f for _, f in self.rows), Figures())


# The report's tables: name → (dimension, key columns). ``purposes`` is ordered most used first (top purposes).
TABLES: dict[str, tuple[Dimension, tuple[str, ...]]] = {
    "resources": ("resource", ("resource",)),
    "trend": ("period", ("period",)),
    "departments": ("department", ("department",)),
    "purposes": ("purpose", ("purpose",)),
    "grants": ("grant", ("grant",)),
    "refusals": ("refusal", ("outcome", "error_code")),
    "denied_items": ("denied_item", ("item", "reason")),
}


async def table(
    conn: AsyncConnection,
    name: str,
    resources: Sequence[str] | None,
    when: Period,
    *,
    department: str | None = None,
    purpose: str | None = None,
    settings: Settings | None = None,
) -> Table:
    """Table ``name`` (a key of TABLES; else USAGE_TABLE_UNKNOWN) of the report on ``resources`` in ``when``
    (archived records included with ``settings``: ``figures``)."""
    if name not in TABLES:
        raise GovshareError("USAGE_TABLE_UNKNOWN", table=name[:40], tables=", ".join(TABLES))
    found = await figures(
        conn, resources, when, TABLES[name][0], department=department, purpose=purpose, settings=settings
    )
    return _table(name, found, resources, when)


async def tables(
    conn: AsyncConnection,
    names: Sequence[str],
    resources: Sequence[str] | None,
    when: Period,
    *,
    settings: Settings | None = None,
) -> dict[str, Table]:
    """The tables ``names`` (keys of TABLES) of the report on ``resources`` in ``when``, as ``table`` makes each: the
    same rows, with fewer statements. The tables keyed by one column of the record (resources, departments,
    purposes) are summed from one GROUP BY over the three columns together (``columns``; every figure is a sum),
    rather than each reading the period's records again; the others are one statement each."""
    for name in names:
        if name not in TABLES:
            raise GovshareError("USAGE_TABLE_UNKNOWN", table=name[:40], tables=", ".join(TABLES))
    together = [name for name in names if TABLES[name][0] in COLUMNS]
    found: dict[str, dict[tuple[str, ...], Figures]] = {}
    if len(together) > 1:
        combined = await figures(conn, resources, when, "columns", settings=settings)
        for name in together:
            at = COLUMNS.index(TABLES[name][0])
            summed: dict[tuple[str, ...], Figures] = {}
            for key, more in combined.items():
                summed[(key[at],)] = summed.get((key[at],), Figures()) + more
            found[name] = summed
    for name in names:
        if name not in found:
            found[name] = await figures(conn, resources, when, TABLES[name][0], settings=settings)
    return {name: _table(name, found[name], resources, when) for name in names}


def _table(name: str, found: dict[tuple[str, ...], Figures], resources: Sequence[str] | None, when: Period) -> Table:
    """Table ``name`` of the figures ``found`` by its dimension: its rows in the order shown."""
    by, columns = TABLES[name]
    rows: list[tuple[tuple[str, ...], Figures]]
    if by == "period":  # every bucket of the period, in time order, those without records as zeros
        rows = [((b,), found.get((b,), Figures())) for b in when.buckets()]
    elif by == "resource":
        everything: set[tuple[str, ...]] = set(found) | {(r,) for r in resources or ()}
        rows = [(k, found.get(k, Figures())) for k in sorted(everything)]
    else:  # most accesses first, then by key: top purposes, the busiest consumers, the commonest refusals
        rows = sorted(found.items(), key=lambda kv: (-kv[1].accesses, kv[0]))
    return Table(name, columns, tuple(rows))


def fold(
    records: Iterable[Mapping[str, Any]], by: Dimension, granularity: Granularity
) -> dict[tuple[str, ...], Figures]:
    """``figures``' grouping done on records in hand (archived ones): the same keys, the same sums."""
    found: dict[tuple[str, ...], Figures] = {}
    for record in records:
        for key in _keys(record, by, granularity):
            found[key] = found.get(key, Figures()) + Figures.of(record)
    return found


def _keys(record: Mapping[str, Any], by: Dimension, granularity: Granularity) -> list[tuple[str, ...]]:
    if by in ("resource", "department", "purpose"):
        return [(record[by] or NONE,)]
    if by == "columns":
        return [tuple(record[column] or NONE for column in COLUMNS)]
    if by == "period":
        return [(bucket_of(record["at"].astimezone(CHINA).date(), granularity),)]
    if by == "refusal":
        return [(record["outcome"], record["error_code"] or NONE)] if record["outcome"] in ("denied", "failed") else []
    if by == "grant":
        return [(g,) for g in record["grants_used"]] or [(NONE,)]
    if by == "grant_month":
        month = bucket_of(record["at"].astimezone(CHINA).date(), "month")
        return [(g, record["resource"], record["department"] or NONE, month) for g in record["grants_used"]]
    return [(item, reason) for item, reason in record["items_denied"].items()]
