"""The share-application process over GraphQL: each operation in one platform transaction, refusals as
GraphQL errors with stable codes (and a reason per field for an invalid application)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import or_, select

from applications import process
from applications.tables import applications
from applications.workdays import CHINA, load_calendar
from corrections import process as corrections
from govshare.errors import GovshareError, graphql_error
from resolvers.context import RequestContext


def _day(day: date, *, end: bool = False) -> datetime:
    """A calendar day in China; an end date includes its whole day."""
    return datetime.combine(day + timedelta(days=1) if end else day, time(), CHINA)


async def run_process(ctx: RequestContext, work):
    """Run ``work`` (a process step: applications, grants, data-error reports) in a platform transaction, after
    writing down what time has already decided (deemed approvals, expiries, reports overdue to the coordinator)."""
    try:
        async with ctx.platform.begin() as conn:  # write down what time has already decided, and commit it
            await process.settle(conn, ctx.catalog, ctx.now, ctx.settings)
            await process.record_expiries(conn, ctx.now)
            await corrections.settle(conn, ctx.catalog, ctx.now)  # overdue data-error reports to the coordinator
        # A refusal inside ``work`` records itself in a transaction of its own, so this one must not hold
        # a write lock before it decides.
        async with ctx.platform.begin() as conn:
            result = await work(conn)
    except GovshareError as exc:
        raise graphql_error(exc, ctx.lang) from None
    ctx.changed = True
    return result


async def apply(
    ctx: RequestContext,
    *,
    resource: str,
    items: list[str],
    purpose: str,
    users: str,
    share_mode: str,
    row_scope: dict[str, list[str]],
    valid_from: date,
    valid_until: date,
    acknowledged: bool,
) -> str:
    async def work(conn):
        calendar = await load_calendar(conn)
        return await process.submit(
            conn,
            ctx.catalog,
            calendar,
            ctx.settings,
            ctx.caller,
            resource=resource,
            items=items,
            purpose=purpose,
            users=users,
            share_mode=share_mode,
            row_scope=row_scope,
            valid_from=_day(valid_from),
            valid_until=_day(valid_until, end=True),
            acknowledged=acknowledged,
            now=ctx.now,
        )

    return await run_process(ctx, work)


async def approve(
    ctx: RequestContext,
    application_id: str,
    *,
    items: list[str] | None,
    valid_until: date | None,
    row_scope: dict[str, list[str]] | None,
) -> str:
    return await run_process(
        ctx,
        lambda conn: process.approve(
            conn,
            ctx.catalog,
            ctx.settings,
            ctx.caller,
            application_id,
            now=ctx.now,
            items=items,
            row_scope=row_scope,
            valid_until=_day(valid_until, end=True) if valid_until else None,
        ),
    )


async def refuse(ctx: RequestContext, application_id: str, reason: str) -> None:
    await run_process(
        ctx,
        lambda conn: process.refuse(
            conn, ctx.catalog, ctx.settings, ctx.caller, application_id, now=ctx.now, reason=reason
        ),
    )


async def request_coordination(ctx: RequestContext, application_id: str, reason: str) -> None:
    await run_process(
        ctx,
        lambda conn: process.request_coordination(
            conn, ctx.catalog, ctx.caller, application_id, now=ctx.now, reason=reason
        ),
    )


async def decide_coordination(ctx: RequestContext, application_id: str, approve: bool, reason: str) -> None:
    await run_process(
        ctx,
        lambda conn: process.decide_coordination(
            conn, ctx.catalog, ctx.caller, application_id, now=ctx.now, approve=approve, reason=reason
        ),
    )


async def revoke(ctx: RequestContext, grant_id: str, reason: str) -> None:
    await run_process(
        ctx, lambda conn: process.revoke(conn, ctx.catalog, ctx.caller, grant_id, now=ctx.now, reason=reason)
    )


async def read(ctx: RequestContext, *, application_id: str | None = None, inbox: bool = False) -> list[tuple]:
    """(application row, its process records) the caller may see: its own department's applications, those for
    its resources, the coordination queue for a coordinator, everything for an auditor."""

    async def work(conn):
        query = select(applications).order_by(applications.c.submitted_at)
        own = [r.code for r in ctx.catalog.resources.values() if r.provider == ctx.caller.department]
        if inbox:
            states = ["pending"] + (["coordinating"] if "coordinator" in ctx.caller.roles else [])
            visible = (
                applications.c.resource.in_(own)
                if "coordinator" not in ctx.caller.roles
                else or_(applications.c.resource.in_(own), applications.c.status == "coordinating")
            )
            query = query.where(applications.c.status.in_(states), visible)
        elif "auditor" not in ctx.caller.roles and "coordinator" not in ctx.caller.roles:
            query = query.where(or_(applications.c.consumer == ctx.caller.department, applications.c.resource.in_(own)))
        if application_id is not None:
            query = query.where(applications.c.id == application_id)
        rows = (await conn.execute(query)).all()
        return [(row, await process.history(conn, row.id)) for row in rows]

    return await run_process(ctx, work)


async def record_legal_basis_grant(
    ctx: RequestContext,
    *,
    consumer: str,
    resource: str,
    items: list[str],
    purposes: list[str],
    valid_from: date,
    valid_until: date,
    legal_basis: str,
) -> str:
    return await run_process(
        ctx,
        lambda conn: process.record_legal_basis_grant(
            conn,
            ctx.catalog,
            ctx.caller,
            now=ctx.now,
            consumer=consumer,
            resource=resource,
            items=items,
            purposes=purposes,
            valid_from=_day(valid_from),
            valid_until=_day(valid_until, end=True),
            legal_basis=legal_basis,
        ),
    )


async def grant_history(ctx: RequestContext, grant_id: str) -> list:
    return await run_process(ctx, lambda conn: process.grant_history(conn, ctx.catalog, ctx.caller, grant_id))
