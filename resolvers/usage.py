"""Who used a provider's data and why (Art 24): the access records about the caller's own resources, and the usage
report on them (``oversight.usage``'s figures, and beside them the consumers' feedback: ``oversight.feedback``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from audit.tables import access_records
from govshare.clock import CHINA
from govshare.errors import GovshareError
from oversight import feedback
from oversight import usage as usage_figures
from resolvers.context import RequestContext


async def records(ctx: RequestContext, *, resource: str | None, first: int, before_id: int | None) -> list:
    """Newest first. A provider sees the records of its own resources only; an auditor sees all."""
    query = select(access_records).order_by(access_records.c.id.desc()).limit(first)
    if "auditor" not in ctx.caller.roles:
        own = [r.code for r in ctx.catalog.resources.values() if r.provider == ctx.caller.department]
        query = query.where(access_records.c.resource.in_(own))
    if resource is not None:
        query = query.where(access_records.c.resource == resource)
    if before_id is not None:
        query = query.where(access_records.c.id < before_id)
    async with ctx.platform.connect() as conn:
        return (await conn.execute(query)).all()


OVERSEERS = ("coordinator", "auditor")  # roles that see every department's usage (govshare.keys.ROLES)


@dataclass(frozen=True)
class Report:
    """A usage report as asked: whose resources (None: every department's), the period, its tables: by name, rows
    of every key field (None where the table has no such key, or the record no value) and the figures."""

    provider: str | None
    period: usage_figures.Period
    tables: dict[str, list[dict[str, object]]]
    # per grant and month of the period: the consumer's feedback beside the grant's usage in the month
    feedback: list[feedback.GrantMonth]


KEY_FIELDS = ("resource", "period", "department", "purpose", "grant", "outcome", "error_code", "item", "reason")


def _rows(table: usage_figures.Table) -> list[dict[str, object]]:
    rows = []
    for key, figures in table.rows:
        keys = {column: value or None for column, value in zip(table.key_columns, key, strict=True)}
        rows.append({**dict.fromkeys(KEY_FIELDS), **keys, **dataclasses.asdict(figures)})
    return rows


async def report(
    ctx: RequestContext,
    *,
    provider: str | None,
    resource: str | None,
    first: date | None,
    last: date | None,
    granularity: str | None,
) -> Report:
    """The usage report on the caller's own resources; a coordinator or auditor names any department (or none:
    every department's). Another department named, or another's resource, is USAGE_NOT_YOURS."""
    catalog = ctx.catalog
    if any(role in ctx.caller.roles for role in OVERSEERS):
        if provider is not None and provider not in catalog.departments:
            raise GovshareError("USAGE_PROVIDER_UNKNOWN", department=provider[:40])
    elif provider not in (None, ctx.caller.department):
        raise GovshareError("USAGE_NOT_YOURS", http_status=403, resource=provider[:80])
    else:
        provider = ctx.caller.department
    resources = usage_figures.narrowed(usage_figures.visible_resources(catalog, provider), resource, catalog)
    when = usage_figures.period(first, last, granularity, today=ctx.now.astimezone(CHINA).date())
    async with ctx.platform.connect() as conn:
        tables = await usage_figures.tables(conn, list(usage_figures.TABLES), resources, when, settings=ctx.settings)
        # the feedback on the same resources, of the same provider: what consumerFeedback shows a provider (on its
        # resources) and the coordinator (all), never a third department's
        beside = await feedback.beside_usage(conn, resources, when, provider=provider, settings=ctx.settings)
    return Report(provider, when, {name: _rows(table) for name, table in tables.items()}, beside)
