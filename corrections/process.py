"""The data-error process (校核纠错): report → the provider answers ``corrected`` or ``rejected`` within
``data_error_answer_workdays`` working days → an unanswered report goes to the coordinator once overdue.

Every step is a process record (hash-chained, beside the applications'): ``data_error_reported``,
``data_error_corrected``, ``data_error_rejected``, ``data_error_escalated`` and each refused action
(``data_error_refused_action`` with its code). The records name the report, its resource and item; never the
record's key value nor the proposed value, which only the report holds, sealed (``corrections/sealing.py``).

Who sees what of a report: the reporting department and the provider (the parties, who may both read that record)
see it whole; the coordinator (``coordinator`` role) sees the reports overdue to it and every report's course, without
the key value or the proposed value (it settles that an answer is given, not what the value is: it would otherwise
learn a record of a department it may not read); any other department sees nothing, not even that a report exists.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select

from applications.process import record_step
from applications.workdays import WorkCalendar
from audit.tables import process_records
from catalog.model import Catalog, Resource
from corrections.sealing import open_sealed, seal
from corrections.tables import data_error_reports
from govshare.config import Settings
from govshare.errors import GovshareError, NotFoundError
from govshare.keys import Caller
from govshare.platformdb import bump_policy_version

OPEN = ("open", "escalated")  # not answered yet: answers carrying the record's item say it is disputed
OUTCOMES = ("corrected", "rejected")
KINDS = (
    "data_error_reported",
    "data_error_corrected",
    "data_error_rejected",
    "data_error_escalated",
    "data_error_refused_action",
)
REPORT_ID = re.compile(r"E-[0-9a-f]{8}")  # what ``file`` gives out; anything else names no report (and is not recorded)
MAX_PROPOSED_CHARS = 500
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class OpenReport:
    """An unanswered report, as answers need it: which record (its key value as text) and since when."""

    report_id: str
    key: str
    since: datetime


# resource code → item → its open reports: read with the policies into each snapshot (no query per request).
Disputes = Mapping[str, Mapping[str, tuple[OpenReport, ...]]]


def find_resource(catalog: Catalog, name: str) -> Resource | None:
    """A published resource by its code (``police.person``) or its API name (``person``)."""
    for resource in catalog.published():
        if name in (resource.code, resource.api_name):
            return resource
    return None


def _storable(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def text_problem(key: str, proposed: str, reason: str) -> GovshareError | None:
    """What is wrong with a report's own texts, before any record is read: a reason is required; texts a
    database cannot hold, or too long; a reason or proposed value repeating the key value (the reason is shown
    to the coordinator, who does not see the key)."""
    if not reason.strip():
        return GovshareError("REASON_REQUIRED")
    for field, text, limit in (("proposed", proposed, MAX_PROPOSED_CHARS), ("reason", reason, MAX_REASON_CHARS)):
        if len(text) > limit or not _storable(text):
            return GovshareError("REPORT_TEXT_INVALID", extensions={"field": field}, field=field, limit=limit)
    if not _storable(key) or len(key) > 200:
        return GovshareError("REPORT_RECORD_NOT_FOUND")
    if key.strip() and key.strip() in reason:
        return GovshareError("REPORT_REASON_HAS_KEY", extensions={"field": "reason"})
    return None


async def file(
    conn,
    calendar: WorkCalendar,
    settings: Settings,
    secret: bytes,
    caller: Caller,
    *,
    resource: Resource,
    key: str,
    item: str,
    proposed: str,
    reason: str,
    purpose: str,
    now: datetime,
) -> str:
    """Store a report the data path has let through (the caller read that record's item under ``purpose``)."""
    now = now.astimezone(UTC)
    await _not_flooded(conn, settings, secret, caller, resource=resource, key=key, item=item)
    report_id = "E-" + secrets.token_hex(4)
    deadline = calendar.deadline(now, settings.data_error_answer_workdays)
    await conn.execute(
        data_error_reports.insert().values(
            id=report_id,
            resource=resource.code,
            item=item,
            key_sealed=seal(secret, report_id, key),
            proposed_sealed=seal(secret, report_id, proposed),
            reason=reason,
            reporter=caller.department,
            reported_by=caller.key_id,
            purpose=purpose,
            reported_at=now,
            deadline_at=deadline.at.astimezone(UTC),
            deadline_provisional=int(deadline.provisional),
            status="open",
        )
    )
    await record_step(
        conn,
        "data_error_reported",
        at=now,
        department=caller.department,
        actor=caller.key_id,
        report=report_id,
        resource=resource.code,
        item=item,
        provider=resource.provider,
        deadline=deadline.at.isoformat(),
        provisional=deadline.provisional,
    )
    await bump_policy_version(conn)  # every process's next snapshot carries the dispute
    return report_id


async def _not_flooded(
    conn, settings: Settings, secret: bytes, caller: Caller, *, resource: Resource, key: str, item: str
) -> None:
    """Every open report is a dispute in every consumer's answers, a report in the provider's inbox and a rebuild of
    every process's snapshot: a department has one open report per record and item (``REPORT_ALREADY_OPEN``), and at
    most ``data_error_open_limit`` open at a time (``REPORT_LIMIT_REACHED``)."""
    rows = (
        await conn.execute(
            select(
                data_error_reports.c.id,
                data_error_reports.c.resource,
                data_error_reports.c.item,
                data_error_reports.c.key_sealed,
            ).where(data_error_reports.c.reporter == caller.department, data_error_reports.c.status.in_(OPEN))
        )
    ).all()
    for row in rows:
        if (row.resource, row.item) == (resource.code, item) and open_sealed(secret, row.id, row.key_sealed) == key:
            raise GovshareError("REPORT_ALREADY_OPEN", report=row.id)
    if len(rows) >= settings.data_error_open_limit:
        raise GovshareError("REPORT_LIMIT_REACHED", limit=settings.data_error_open_limit)


def provider_of(catalog: Catalog, row) -> str | None:
    resource = catalog.resources.get(row.resource)
    return resource.provider if resource is not None else None


def is_party(catalog: Catalog, caller: Caller, row) -> bool:
    """The reporting department and the provider: the ones that may read the record, shown the report whole."""
    return caller.department in (row.reporter, provider_of(catalog, row))


def may_see(catalog: Catalog, caller: Caller, row) -> bool:
    """The parties, and the coordinator (without the key value and the proposed value)."""
    return is_party(catalog, caller, row) or "coordinator" in caller.roles


async def _refused(conn, caller: Caller, now: datetime, code: str, report_id: str, **params) -> GovshareError:
    """Record a refused action in its own transaction (the caller's is rolled back by the refusal)."""
    async with conn.engine.begin() as own:
        await record_step(
            own,
            "data_error_refused_action",
            at=now,
            department=caller.department,
            actor=caller.key_id,
            reason=code,
            report=report_id,
        )
    return GovshareError(code, report=report_id, **params)


async def answer(
    conn, catalog: Catalog, caller: Caller, report_id: str, *, outcome: str, reason: str, now: datetime
) -> None:
    """The provider's reviewer answers ``corrected`` or ``rejected``, with a reason; also after the deadline (the
    late answer is marked so)."""
    now = now.astimezone(UTC)
    if not REPORT_ID.fullmatch(report_id):
        raise NotFoundError("DATA_ERROR_NOT_FOUND", report="")
    row = (await conn.execute(select(data_error_reports).where(data_error_reports.c.id == report_id))).first()
    if row is None or not may_see(catalog, caller, row):  # another department learns nothing, not even that it exists
        await _refused(conn, caller, now, "DATA_ERROR_NOT_FOUND", report_id)
        raise NotFoundError("DATA_ERROR_NOT_FOUND", report=report_id)
    if caller.department != provider_of(catalog, row):
        raise await _refused(conn, caller, now, "DATA_ERROR_NOT_YOUR_RESOURCE", report_id)
    if "reviewer" not in caller.roles:
        raise await _refused(conn, caller, now, "FORBIDDEN", report_id, role="reviewer")
    if outcome not in OUTCOMES:
        raise GovshareError("DATA_ERROR_OUTCOME_INVALID", outcome=outcome, outcomes=", ".join(OUTCOMES))
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    if len(reason) > MAX_REASON_CHARS or not _storable(reason):
        raise GovshareError(
            "REPORT_TEXT_INVALID", extensions={"field": "reason"}, field="reason", limit=MAX_REASON_CHARS
        )
    if row.status not in OPEN:
        raise GovshareError("DATA_ERROR_ANSWERED", report=report_id, status=row.status)
    await conn.execute(
        data_error_reports.update()
        .where(data_error_reports.c.id == report_id, data_error_reports.c.status.in_(OPEN))
        .values(status=outcome, answered_at=now, answered_by=caller.key_id, answer_reason=reason)
    )
    await record_step(
        conn,
        f"data_error_{outcome}",
        at=now,
        department=caller.department,
        actor=caller.key_id,
        reason=reason,
        report=report_id,
        resource=row.resource,
        item=row.item,
        late=now > row.deadline_at,
    )
    await bump_policy_version(conn)  # no longer disputed in answers


async def settle(conn, catalog: Catalog, now: datetime) -> list[str]:
    """Send the reports unanswered at their deadline to the coordinator: run wherever the applications' ``settle``
    runs (before every process operation), so the coordinator's inbox is right whenever anyone looks."""
    now = now.astimezone(UTC)
    rows = (
        await conn.execute(
            select(data_error_reports).where(
                data_error_reports.c.status == "open", data_error_reports.c.deadline_at <= now
            )
        )
    ).all()
    for row in rows:
        await conn.execute(
            data_error_reports.update()
            .where(data_error_reports.c.id == row.id, data_error_reports.c.status == "open")
            .values(status="escalated", escalated_at=row.deadline_at)
        )
        await record_step(
            conn,
            "data_error_escalated",
            at=row.deadline_at,
            department=provider_of(catalog, row) or row.reporter,
            actor="deadline",
            report=row.id,
            resource=row.resource,
            item=row.item,
            to="coordinator",
            recorded_at=now.isoformat(),
        )
    return [r.id for r in rows]


async def recompute_deadlines(conn, calendar: WorkCalendar, settings: Settings) -> int:
    """Deadlines counted without a schedule, counted again now that one may be loaded."""
    rows = (
        await conn.execute(
            select(data_error_reports).where(
                data_error_reports.c.status == "open", data_error_reports.c.deadline_provisional == 1
            )
        )
    ).all()
    for row in rows:
        deadline = calendar.deadline(row.reported_at, settings.data_error_answer_workdays)
        await conn.execute(
            data_error_reports.update()
            .where(data_error_reports.c.id == row.id)
            .values(deadline_at=deadline.at.astimezone(UTC), deadline_provisional=int(deadline.provisional))
        )
    return len(rows)


async def read(conn, catalog: Catalog, caller: Caller, *, inbox: bool = False, report_id: str | None = None) -> list:
    """The reports ``caller`` may see: with ``inbox``, the unanswered ones for its department's resources (its
    reviewers answer them) and, for a coordinator, those overdue to it; otherwise its department's own reports (the
    outcome of what it reported) and those about its resources; a coordinator sees every report's course."""
    own = [r.code for r in catalog.resources.values() if r.provider == caller.department]
    coordinator = "coordinator" in caller.roles
    query = select(data_error_reports).order_by(data_error_reports.c.reported_at, data_error_reports.c.id)
    if inbox:
        mine = data_error_reports.c.resource.in_(own) if "reviewer" in caller.roles else None
        overdue = (data_error_reports.c.status == "escalated") if coordinator else None
        shown = [c for c in (mine, overdue) if c is not None]
        if not shown:
            return []
        query = query.where(data_error_reports.c.status.in_(OPEN), or_(*shown))
    elif not coordinator:
        query = query.where(
            or_(data_error_reports.c.reporter == caller.department, data_error_reports.c.resource.in_(own))
        )
    if report_id is not None:
        query = query.where(data_error_reports.c.id == report_id)
    return list((await conn.execute(query)).all())


def shown_values(secret: bytes, catalog: Catalog, caller: Caller, row) -> tuple[str | None, str | None]:
    """(key value, proposed value) as ``caller`` may see them: in clear for the parties, nothing for anyone else."""
    if not is_party(catalog, caller, row):
        return None, None
    return open_sealed(secret, row.id, row.key_sealed), open_sealed(secret, row.id, row.proposed_sealed)


async def history(conn, report_ids: list[str]) -> dict[str, list]:
    """The process records of each report, oldest first."""
    wanted = set(report_ids)
    found: dict[str, list] = {r: [] for r in report_ids}
    if not wanted:
        return found
    rows = (
        await conn.execute(
            select(process_records).where(process_records.c.kind.in_(KINDS)).order_by(process_records.c.id)
        )
    ).all()
    for row in rows:
        report = (row.detail or {}).get("report")
        if report in wanted:
            found[report].append(row)
    return found


async def open_disputes(conn, secret: bytes) -> Disputes:
    """The unanswered reports by resource and item, with their key values opened: what a snapshot carries, so that
    answers say a value is disputed without a query of their own."""
    rows = (
        await conn.execute(
            select(
                data_error_reports.c.id,
                data_error_reports.c.resource,
                data_error_reports.c.item,
                data_error_reports.c.key_sealed,
                data_error_reports.c.reported_at,
            ).where(data_error_reports.c.status.in_(OPEN))
        )
    ).all()
    found: dict[str, dict[str, list[OpenReport]]] = {}
    for row in rows:
        report = OpenReport(row.id, open_sealed(secret, row.id, row.key_sealed), row.reported_at)
        found.setdefault(row.resource, {}).setdefault(row.item, []).append(report)
    return {resource: {item: tuple(r) for item, r in items.items()} for resource, items in found.items()}
