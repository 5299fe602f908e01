"""The catalog kept by its departments over GraphQL (catalog/workflow.py): a department system submits and retires its
own entries with its key (role ``reviewer``), the coordinating authority's key (role ``coordinator``) approves or
returns; each step in one platform transaction, refusals as GraphQL errors with stable codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from catalog import store, workflow
from govshare.errors import GovshareError, graphql_error
from resolvers.context import RequestContext


def actor(ctx: RequestContext) -> workflow.Actor:
    return workflow.Actor(ctx.caller.department, ctx.caller.key_id, tuple(ctx.caller.roles))


async def _run(ctx: RequestContext, work: Callable[[Any], Awaitable[Any]], *, changes: bool = True) -> Any:
    if ctx.platform is None:
        raise graphql_error(GovshareError("INTERNAL_ERROR", http_status=500), ctx.lang)
    try:
        async with ctx.platform.begin() as conn:
            result = await work(conn)
    except GovshareError as exc:
        raise graphql_error(exc, ctx.lang) from None
    ctx.changed = ctx.changed or changes
    return result


async def submit(
    ctx: RequestContext, *, name: str, text: str, reason: str, draft: bool, workbook: bytes | None = None
) -> workflow.Submission:
    async def work(conn: Any) -> workflow.Submission:
        submission_id = await workflow.submit(
            conn,
            ctx.settings,
            actor(ctx),
            source=name,
            text=text,
            reason=reason,
            now=ctx.now,
            draft=draft,
            workbook=workbook,
        )
        return await workflow.read(conn, submission_id)

    return await _run(ctx, work, changes=False)  # nothing is in force before it is published


async def send(ctx: RequestContext, submission_id: str) -> workflow.Submission:
    async def work(conn: Any) -> workflow.Submission:
        await workflow.send(conn, ctx.settings, actor(ctx), submission_id, now=ctx.now)
        return await workflow.read(conn, submission_id)

    return await _run(ctx, work, changes=False)


async def approve(ctx: RequestContext, submission_id: str, reason: str) -> workflow.Submission:
    async def work(conn: Any) -> workflow.Submission:
        await workflow.approve(conn, ctx.settings, actor(ctx), submission_id, reason=reason, now=ctx.now)
        return await workflow.read(conn, submission_id)

    return await _run(ctx, work)


async def return_(ctx: RequestContext, submission_id: str, reason: str) -> workflow.Submission:
    async def work(conn: Any) -> workflow.Submission:
        await workflow.return_(conn, actor(ctx), submission_id, reason=reason, now=ctx.now)
        return await workflow.read(conn, submission_id)

    return await _run(ctx, work, changes=False)


async def retire(ctx: RequestContext, resource: str, reason: str) -> int:
    return int(await _run(ctx, lambda conn: workflow.retire(conn, actor(ctx), resource, reason=reason, now=ctx.now)))


async def submissions(ctx: RequestContext, status: str | None) -> list[workflow.Submission]:
    """The caller's department's submissions; the coordinating authority's key sees every department's."""
    who = actor(ctx)

    async def work(conn: Any) -> list[workflow.Submission]:
        found = await workflow.listing(conn, status=status)
        return [s for s in found if workflow.visible(who, s)]

    return list(await _run(ctx, work, changes=False))


async def history(ctx: RequestContext, resource: str | None) -> list[store.Version]:
    """The catalog's versions; a department key sees those of its own department's changes and the whole-catalog
    loads, and a resource's history only for its own department's resources (another's would say which resources
    exist, hidden ones too in production, and why and by whom each was changed)."""
    who = actor(ctx)
    if resource is not None and not who.coordinator:
        known = ctx.catalog.resources.get(resource)
        if known is None or known.provider != who.department:
            return []
    found = list(await _run(ctx, lambda conn: store.versions(conn, resource), changes=False))
    return store.versions_of(found, _department(who))


def _department(who: workflow.Actor) -> str | None:
    """Whose entries of the catalog's versions the caller may read (None: the coordinating authority, every one)."""
    return None if who.coordinator else who.department


async def diff(ctx: RequestContext, before: int, after: int) -> list[store.FieldChange]:
    who = actor(ctx)

    async def work(conn: Any) -> list[store.FieldChange]:
        return store.diff(
            store.department_view(await store.document(conn, before), _department(who)),
            store.department_view(await store.document(conn, after), _department(who)),
        )

    return list(await _run(ctx, work, changes=False))
