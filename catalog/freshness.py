"""Freshness (Art 16, 20, 27): when each source last changed, when its next change is due, and which are overdue.

Each resource declares its update cycle (更新周期) and where its source's last change is read
(``freshness = { changed_column = "updated_at" }`` or ``{ marker = "table.column" }``). ``record_changes`` reads
every published resource's last change from its source (one ``max()`` each, connectors/freshness.py) and records it
in ``source_freshness``, on a schedule off the request path (server.py); ``load`` reads what was recorded; ``state``
computes, from that record and a time, the due-by and whether the resource is overdue. Answers carry the state of
the resources they touched without asking any source.

What is due when (``due_by``):
- ``daily`` … ``yearly``: by the end (24:00 China time) of the calendar day one cycle after the day of the last
  change (changed 2026-03-31 10:00, monthly: due by the end of 2026-04-30);
- ``realtime``: ``realtime_minutes`` after the last change (a feed that has not changed for that long has stopped);
- ``irregular`` (不定期): nothing is promised, nothing is due, never overdue;
- a resource that declares no change source, whose source could never be read, or whose change column is still
  empty has no known last change: ``unknown``, never overdue, and listed as such for the coordinator.
A source that cannot be read now keeps its last recorded change (and so becomes overdue in time).
"""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Boolean, Column, String, Table, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from catalog.model import Catalog, Resource
from connectors.freshness import ChangeRead, read_last_change
from govshare.clock import CHINA
from govshare.platformdb import UTCDateTime, metadata

# The last change of each resource's source, as last read (one row per resource, updated in place).
source_freshness = Table(
    "source_freshness",
    metadata,
    Column("resource", String(100), primary_key=True),
    Column("last_change", UTCDateTime),  # None: never read, or the column holds no value yet
    Column("checked_at", UTCDateTime, nullable=False),  # the last read, successful or not
    Column("indexed", Boolean, nullable=False),  # an index leads with the change column (max() is cheap)
    Column("error", String(40)),  # why the last read failed (ChangeRead.error); None: it succeeded
    Column("detail", Text),
)

MONTHS = {"monthly": 1, "quarterly": 3, "half-yearly": 6, "yearly": 12}
DAYS = {"daily": 1, "weekly": 7}


@dataclass(frozen=True)
class Recorded:
    """One row of ``source_freshness``."""

    resource: str
    last_change: datetime | None
    checked_at: datetime
    indexed: bool
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Freshness:
    """A resource's freshness at one time (``status``: current | overdue | irregular | unknown)."""

    resource: str
    provider: str
    update_cycle: str
    last_change: datetime | None
    due_by: datetime | None
    overdue: bool
    status: str  # current | overdue | irregular | unknown
    checked_at: datetime | None = None
    error: str | None = None
    indexed: bool = False

    def entry(self) -> dict[str, object]:
        """The answer's ``extensions.freshness`` entry (times ISO 8601 in UTC, ``Z``)."""
        return {
            "resource": self.resource,
            "updateCycle": self.update_cycle,
            "lastChange": _iso(self.last_change),
            "dueBy": _iso(self.due_by),
            "overdue": self.overdue,
            "state": self.status,
        }

    def facts(self) -> dict[str, str]:
        """What a restriction for lagging attaches about this resource (policies/documents.py DenyRule.overdue)."""
        return {
            "resource": self.resource,
            "update_cycle": self.update_cycle,
            "last_change": _iso(self.last_change) or "",
            "due_by": _iso(self.due_by) or "",
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_by(cycle: str, last_change: datetime, *, realtime_minutes: int) -> datetime | None:
    """When the next change is due after ``last_change`` under ``cycle`` (None: ``irregular``, nothing is due)."""
    if cycle == "irregular":
        return None
    if cycle == "realtime":
        return last_change + timedelta(minutes=realtime_minutes)
    day = last_change.astimezone(CHINA).date()
    if cycle in DAYS:
        due_day = day + timedelta(days=DAYS[cycle])
    elif cycle in MONTHS:
        due_day = _add_months(day, MONTHS[cycle])
    else:
        raise ValueError(f"unknown update cycle {cycle!r}")
    return datetime.combine(due_day + timedelta(days=1), time(), CHINA).astimezone(UTC)


def state(resource: Resource, recorded: Recorded | None, now: datetime, *, realtime_minutes: int) -> Freshness:
    """``resource``'s freshness at ``now`` from what was recorded of its source (no source is asked)."""
    last = recorded.last_change if recorded is not None else None
    due = due_by(resource.update_cycle, last, realtime_minutes=realtime_minutes) if last is not None else None
    if resource.update_cycle == "irregular":
        kind = "irregular"
    elif last is None:
        kind = "unknown"
    else:
        kind = "overdue" if due is not None and now > due else "current"
    return Freshness(
        resource=resource.code,
        provider=resource.provider,
        update_cycle=resource.update_cycle,
        last_change=last,
        due_by=due,
        overdue=kind == "overdue",
        status=kind,
        checked_at=recorded.checked_at if recorded is not None else None,
        error=recorded.error if recorded is not None else None,
        indexed=recorded.indexed if recorded is not None else False,
    )


def states(
    catalog: Catalog,
    recorded: Mapping[str, Recorded],
    now: datetime,
    *,
    realtime_minutes: int,
    provider: str = "",
) -> list[Freshness]:
    """Every published resource's freshness (of ``provider``'s resources only, when given), by code."""
    return [
        state(r, recorded.get(r.code), now, realtime_minutes=realtime_minutes)
        for r in sorted(catalog.published(), key=lambda r: r.code)
        if not provider or r.provider == provider
    ]


async def load(conn: AsyncConnection) -> dict[str, Recorded]:
    """What was recorded of every source, by resource code."""
    rows = (await conn.execute(select(source_freshness))).all()
    return {row.resource: Recorded(**row._mapping) for row in rows}


def _where(resource: Resource) -> tuple[str, str] | None:
    """(table, column) holding ``resource``'s change time; None when it declares none."""
    if resource.freshness is None:
        return None
    return resource.freshness.table_and_column or (resource.table, resource.freshness.changed_column)


async def read(resource: Resource, source_url: str, *, timeout: float) -> ChangeRead:
    where = _where(resource)
    if where is None:
        return ChangeRead(error="not_declared", detail="the catalog declares no change source")
    return await read_last_change(source_url, *where, timeout=timeout)


async def record_changes(
    engine: AsyncEngine, catalog: Catalog, *, expand: Callable[[str], str], timeout: float, now: datetime
) -> dict[str, Recorded]:
    """Read the last change of every published resource that declares a change source (concurrently), record it,
    and return everything recorded. ``expand`` turns a catalog source URL into the one to open (Settings.expand)."""
    declared = [r for r in catalog.published() if r.freshness is not None]
    reads = await asyncio.gather(
        *(read(r, expand(catalog.departments[r.provider].source), timeout=timeout) for r in declared)
    )
    async with engine.begin() as conn:
        before = await load(conn)
        for resource, found in zip(declared, reads, strict=True):
            previous = before.get(resource.code)
            # A failed read keeps what was known: a source that cannot be asked is not fresher for it.
            last = found.last_change if not found.error else (previous.last_change if previous else None)
            values = {
                "last_change": last,
                "checked_at": now,
                "indexed": found.indexed,
                "error": found.error or None,
                "detail": found.detail or None,
            }
            await _put(conn, resource.code, values, exists=previous is not None)
    async with engine.connect() as conn:
        return await load(conn)


async def _put(conn: AsyncConnection, code: str, values: Mapping[str, object], *, exists: bool) -> None:
    table = source_freshness
    if exists:
        await conn.execute(table.update().where(table.c.resource == code).values(**values))
        return
    try:
        async with conn.begin_nested():
            await conn.execute(table.insert().values(resource=code, **values))
    except IntegrityError:  # another process recorded it first: this read is as good as its
        await conn.execute(table.update().where(table.c.resource == code).values(**values))
