"""The catalog kept by its departments over GraphQL (catalog/workflow.py): a department system submits and retires its
own entries with its key (role ``reviewer``), the coordinating authority's key (role ``coordinator``) approves or
returns; each step in one platform transaction, refusals as GraphQL errors with stable codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from catalog import store, workflow
from catalog.store import without_password
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
    return found if who.coordinator else [v for v in found if v.department in ("", who.department)]


def _sources_shown(document: dict[str, Any], who: workflow.Actor) -> dict[str, Any]:
    """A version as a department system may read it: its own department's entries (the coordinating authority:
    every department's), sources without their passwords. Another department's entries carry its database's
    address, tables and columns, and in production resources the caller's view hides (README "production")."""

    def shown(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "source": without_password(entry["source"])} if entry.get("source") else entry

    def mine(department: Any) -> bool:
        return who.coordinator or department == who.department

    return {
        "departments": [shown(d) for d in document.get("departments", ()) if mine(d.get("code"))],
        "purposes": [p for p in document.get("purposes", ()) if mine(p.get("department"))],
        "resources": [r for r in document.get("resources", ()) if mine(r.get("provider"))],
    }


async def diff(ctx: RequestContext, before: int, after: int) -> list[store.FieldChange]:
    who = actor(ctx)

    async def work(conn: Any) -> list[store.FieldChange]:
        return store.diff(
            _sources_shown(await store.document(conn, before), who),
            _sources_shown(await store.document(conn, after), who),
        )

    return list(await _run(ctx, work, changes=False))
