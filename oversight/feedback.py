"""Consumers' feedback (Art 24): per grant and month, what the shared data achieved for the consumer department.

A consumer department reports, for a grant it holds (a grant, a staff allow rule naming it, an approved share
application, or one silence approved), for one month (``YYYY-MM``, China time): the matters it handled with the data
(办理事项数), the documents it no longer asked citizens or enterprises for (不再要求提交的材料数) and a free note.

- Only the department that holds the grant reports on it. A grant id (or application id) that is not the caller's,
  or names nothing, is one refusal, ``FEEDBACK_GRANT_NOT_FOUND``: a department learns nothing of another's grants.
- The month must be one the grant was in force in (from its start to its end or revocation) and not after the
  current month (``FEEDBACK_PERIOD_INVALID``).
- Reporting the same grant and month again **replaces** the figures (``revision`` counts the reports): a department
  corrects its own report rather than piling up a second one that would count twice. Every report, first or
  replacing, is also a process record (kind ``feedback``) holding the figures it gave, so a replaced figure is never
  lost from the trail.
- Who reads it: the consumer its own; the provider the feedback on its resources; the coordinator and auditors all.

``beside_usage`` is what the providers' usage reports show: each grant's feedback, month by month, beside that
grant's usage in the month; ``summary`` what the evaluation shows: per resource, consumer and grant, the sums over a
span of months.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from applications.process import record_step
from applications.tables import applications
from catalog.model import Catalog
from govshare.clock import CHINA
from govshare.config import Settings
from govshare.errors import GovshareError
from govshare.keys import Caller
from govshare.subjects import credit_code_valid, id_number_valid
from oversight import usage
from oversight.tables import consumer_feedback
from oversight.usage import Figures, Period
from policies.store import load_policy_set

PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
MAX_COUNT = 1_000_000_000
MAX_NOTE_CHARS = 2000
# What a report may read of every department's: the coordinating authority and the auditors.
OVERSEERS = ("coordinator", "auditor")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# Runs of letters and digits long enough to hold a 公民身份号码 or 统一社会信用代码 (18 characters).
_NUMBER_RUN = re.compile(r"[0-9A-Za-z]{18,}")


def _names_a_subject(note: str) -> bool:
    """Whether the note holds a valid ID number or credit code: the platform stores and shows none in clear."""
    for run in _NUMBER_RUN.findall(note):
        run = run.upper()
        for start in range(len(run) - 17):
            window = run[start : start + 18]
            if id_number_valid(window) or credit_code_valid(window):
                return True
    return False


@dataclass(frozen=True)
class Held:
    """A grant the consumer holds, as a report needs it."""

    grant_ref: str
    application_id: str | None
    consumer: str
    provider: str
    resource: str
    start: datetime
    end: datetime  # its end, or its revocation


@dataclass(frozen=True)
class Feedback:
    id: str
    grant_ref: str
    application_id: str | None
    consumer: str
    provider: str
    resource: str
    period: str
    matters_handled: int
    documents_spared: int
    note: str
    revision: int
    recorded_at: datetime
    recorded_by: str
    operator: str | None


def month_of(moment: datetime) -> str:
    """The month (``YYYY-MM``, China time) a moment falls in."""
    return moment.astimezone(CHINA).strftime("%Y-%m")


def parse_period(period: str) -> tuple[int, int]:
    """(year, month) of ``YYYY-MM``, or FEEDBACK_PERIOD_INVALID."""
    found = PERIOD.fullmatch(period) if isinstance(period, str) else None
    if found is None:
        raise GovshareError("FEEDBACK_PERIOD_INVALID", period=str(period)[:20], rule="YYYY-MM")
    return int(found.group(1)), int(found.group(2))


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=CHINA)


def _next_month(year: int, month: int) -> datetime:
    return _month_start(year + month // 12, month % 12 + 1)


async def held(
    conn: AsyncConnection, catalog: Catalog, caller: Caller, grant: str, now: datetime, *, silence_approves: bool
) -> Held:
    """The grant ``grant`` (a grant's, a rule's or an application's id) of the caller's department, or
    FEEDBACK_GRANT_NOT_FOUND (unknown, or another department's: the same refusal)."""
    # grants, staff rules, and (where silence approves) the applications silence has approved
    policies = await load_policy_set(conn, silence_approves=silence_approves)
    by_id = {g.id: g for g in policies.grants}
    application_id: str | None = None
    found = by_id.get(grant)
    if found is None:  # an approved application: the grant it became
        row = (await conn.execute(select(applications).where(applications.c.id == grant))).first()
        if row is not None and row.grant_id:
            found, application_id = by_id.get(row.grant_id), row.id
    if found is None or found.consumer != caller.department or found.resource not in catalog.resources:
        raise GovshareError("FEEDBACK_GRANT_NOT_FOUND", grant=grant[:40])
    if found.valid_from > now:  # not in force yet (a pending application before its deadline among them)
        raise GovshareError("FEEDBACK_GRANT_NOT_STARTED", grant=found.id, start=found.valid_from.isoformat())
    if application_id is None:
        # the application the grant was made from, or (silence approved it, not yet written down) the grant itself
        made_from = (applications.c.grant_id == found.id) | (applications.c.id == found.id)
        row = (await conn.execute(select(applications.c.id).where(made_from))).first()
        application_id = row.id if row is not None else None
    end = min(found.valid_until, found.revoked_at) if found.revoked_at else found.valid_until
    return Held(
        grant_ref=found.id,
        application_id=application_id,
        consumer=found.consumer,
        provider=catalog.resources[found.resource].provider,
        resource=found.resource,
        start=found.valid_from,
        end=end,
    )


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise GovshareError("FEEDBACK_COUNT_INVALID", field=name, value=str(value)[:20], limit=MAX_COUNT)
    return value


def _note(note: str) -> str:
    if len(note) > MAX_NOTE_CHARS:
        raise GovshareError("FEEDBACK_NOTE_TOO_LONG", limit=MAX_NOTE_CHARS, length=len(note))
    if _CONTROL.search(note):
        raise GovshareError("FEEDBACK_NOTE_INVALID")
    if _names_a_subject(note):  # shown to the provider, the coordinator and in their exports
        raise GovshareError("FEEDBACK_NOTE_HAS_SUBJECT")
    return note.strip()


async def record(
    conn: AsyncConnection,
    catalog: Catalog,
    caller: Caller,
    *,
    grant: str,
    period: str,
    matters_handled: int,
    documents_spared: int,
    note: str,
    operator: str | None,
    now: datetime,
    silence_approves: bool,
) -> Feedback:
    """Validate and record (or replace) the caller's feedback on ``grant`` for ``period``."""
    now = now.astimezone(UTC)
    year, month = parse_period(period)
    matters, documents = _count("mattersHandled", matters_handled), _count("documentsSpared", documents_spared)
    text = _note(note)
    target = await held(conn, catalog, caller, grant, now, silence_approves=silence_approves)
    start, end = _month_start(year, month), _next_month(year, month)
    if start > now or end <= target.start or start >= target.end:
        raise GovshareError(
            "FEEDBACK_PERIOD_INVALID",
            period=period,
            rule=f"{month_of(target.start)} … {month_of(min(target.end, now))}",
        )
    where = (consumer_feedback.c.grant_ref == target.grant_ref, consumer_feedback.c.period == period)
    before = (await conn.execute(select(consumer_feedback).where(*where))).first()
    values = dict(
        matters_handled=matters,
        documents_spared=documents,
        note=text,
        recorded_at=now,
        recorded_by=caller.key_id,
        operator=operator,
    )
    if before is None:
        feedback_id, revision = "F-" + secrets.token_hex(4), 1
        await conn.execute(
            consumer_feedback.insert().values(
                id=feedback_id,
                grant_ref=target.grant_ref,
                application_id=target.application_id,
                consumer=target.consumer,
                provider=target.provider,
                resource=target.resource,
                period=period,
                revision=revision,
                **values,
            )
        )
    else:
        feedback_id, revision = before.id, before.revision + 1
        await conn.execute(consumer_feedback.update().where(*where).values(revision=revision, **values))
    await record_step(
        conn,
        "feedback",
        at=now,
        department=caller.department,
        actor=caller.key_id,
        application_id=target.application_id,
        grant_id=target.grant_ref if target.grant_ref != target.application_id else None,
        feedback=feedback_id,
        resource=target.resource,
        period=period,
        matters_handled=matters,
        documents_spared=documents,
        revision=revision,
    )
    row = (await conn.execute(select(consumer_feedback).where(*where))).one()
    return Feedback(**row._mapping)


def visible_to(caller: Caller) -> tuple[str, ...] | None:
    """The departments whose feedback (as consumer or as provider) ``caller`` may read; None: every one."""
    return None if set(OVERSEERS) & set(caller.roles) else (caller.department,)


async def listing(
    conn: AsyncConnection,
    *,
    departments: Sequence[str] | None,
    grant: str | None = None,
    resource: str | None = None,
    first_period: str | None = None,
    last_period: str | None = None,
) -> list[Feedback]:
    """Feedback of the months ``first_period`` … ``last_period`` (inclusive, either open), newest month first; of
    ``departments`` as consumers or providers only (None: every department's)."""
    query = select(consumer_feedback).order_by(
        consumer_feedback.c.period.desc(), consumer_feedback.c.resource, consumer_feedback.c.consumer
    )
    if departments is not None:
        query = query.where(
            consumer_feedback.c.consumer.in_(departments) | consumer_feedback.c.provider.in_(departments)
        )
    for period in (first_period, last_period):
        if period is not None:
            parse_period(period)
    if grant is not None:
        query = query.where(consumer_feedback.c.grant_ref == grant)
    if resource is not None:
        query = query.where(consumer_feedback.c.resource == resource)
    if first_period is not None:
        query = query.where(consumer_feedback.c.period >= first_period)
    if last_period is not None:
        query = query.where(consumer_feedback.c.period <= last_period)
    return [Feedback(**row._mapping) for row in (await conn.execute(query)).all()]


@dataclass(frozen=True)
class Summary:
    """The feedback on one grant over a span of months: what the usage reports show beside the accesses."""

    resource: str
    provider: str
    consumer: str
    grant_ref: str
    months: int
    matters_handled: int
    documents_spared: int
    last_period: str


def periods_of(start: date, end: date) -> tuple[str, str]:
    """The first and last month (``YYYY-MM``) of the days ``start`` … ``end``."""
    return start.strftime("%Y-%m"), end.strftime("%Y-%m")


async def summary(
    conn: AsyncConnection,
    *,
    start: date,
    end: date,
    provider: str | None = None,
    consumer: str | None = None,
    resource: str | None = None,
) -> list[Summary]:
    """Per resource, consumer and grant, the feedback of the months the days ``start`` … ``end`` touch (of
    ``provider``'s resources, ``consumer``'s grants, ``resource``, when given). The caller decides who may see it
    (``visible_to``): a provider its own resources', the coordinator every one."""
    first, last = periods_of(start, end)
    c = consumer_feedback.c
    query = (
        select(
            c.resource,
            c.provider,
            c.consumer,
            c.grant_ref,
            func.count().label("months"),
            func.sum(c.matters_handled).label("matters_handled"),
            func.sum(c.documents_spared).label("documents_spared"),
            func.max(c.period).label("last_period"),
        )
        .where(c.period >= first, c.period <= last)
        .group_by(c.resource, c.provider, c.consumer, c.grant_ref)
        .order_by(c.resource, c.consumer, c.grant_ref)
    )
    if provider is not None:
        query = query.where(c.provider == provider)
    if consumer is not None:
        query = query.where(c.consumer == consumer)
    if resource is not None:
        query = query.where(c.resource == resource)
    return [
        Summary(
            resource=r.resource,
            provider=r.provider,
            consumer=r.consumer,
            grant_ref=r.grant_ref,
            months=int(r.months),
            matters_handled=int(r.matters_handled or 0),
            documents_spared=int(r.documents_spared or 0),
            last_period=r.last_period,
        )
        for r in (await conn.execute(query)).all()
    ]


@dataclass(frozen=True)
class GrantMonth:
    """One grant in one month of a usage report: the consumer's feedback for the month (None: none reported) beside
    the grant's usage in that month's days of the report's period."""

    grant: str
    resource: str
    consumer: str
    month: str  # YYYY-MM, China time
    usage: Figures
    feedback: Feedback | None


async def beside_usage(
    conn: AsyncConnection,
    resources: Sequence[str] | None,
    when: Period,
    *,
    provider: str | None,
    settings: Settings | None = None,
) -> list[GrantMonth]:
    """Per grant and month of the months ``when`` touches, the feedback reported on ``resources`` (None: every
    resource) and the accesses under the grant in the month's days of ``when`` (archived records included with
    ``settings``): a row for every grant and month with either, by resource, consumer, grant and month.

    Who sees it is the usage report's question (``usage.visible_resources``, ``usage.narrowed``): ``resources`` are
    those the caller may see and ``provider`` the department whose report it is (None: the coordinating authority's
    or an auditor's, every department's); feedback is kept to both, so a report never shows feedback on another
    provider's resources, whatever its resources say."""
    if resources is not None and not resources:
        return []
    used = await usage.figures(conn, resources, when, "grant_month", settings=settings)
    first, last = periods_of(when.first, when.last)
    c = consumer_feedback.c
    query = select(consumer_feedback).where(c.period >= first, c.period <= last)
    if resources is not None:
        query = query.where(c.resource.in_(list(resources)))
    if provider is not None:
        query = query.where(c.provider == provider)
    reported: dict[tuple[str, ...], Feedback] = {
        (row.grant_ref, row.resource, row.consumer, row.period): Feedback(**row._mapping)
        for row in (await conn.execute(query)).all()
    }
    # the usage's month is its first day, YYYY-MM-DD; the feedback's YYYY-MM
    figures: dict[tuple[str, ...], Figures] = {(*key[:3], key[3][:7]): f for key, f in used.items()}
    rows = []
    for key in sorted(set(reported) | set(figures), key=lambda k: (k[1], k[2], k[0], k[3])):
        grant, resource, consumer, month = key
        rows.append(GrantMonth(grant, resource, consumer, month, figures.get(key, Figures()), reported.get(key)))
    return rows
