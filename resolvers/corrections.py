"""Data-error reports (校核纠错) over GraphQL.

A report is decided on the data path: the record's item is looked up under the request's purpose exactly as a
lookup would (``resolvers.data.lookup``, recorded as an access of operation ``report``), and the report is filed
only when that lookup would have answered the item. Every way of not answering it that depends on the record (no
such record, a record outside the caller's row scope, an item not shown in that row) is one refusal,
``REPORT_RECORD_NOT_FOUND``: a report cannot tell whether a record exists. A refusal that depends on the policy
only (the item's denial, a masked key or item) is the same for every key. In production, where a department's
view holds only the resources and items it can read, an unknown or unreadable resource or item is refused as
``REPORT_RECORD_NOT_FOUND`` too (the access record keeps the real code), so a report names nothing the view hides."""

from __future__ import annotations

from graphql import GraphQLError

from applications.workdays import load_calendar
from catalog.model import typed_value
from corrections import process
from govshare.errors import GovshareError, graphql_error
from resolvers import data
from resolvers.applications import run_process
from resolvers.context import RequestContext

# Where a report's lookup found no answer for the item in that record: refused alike, whatever the reason.
RECORD_DEPENDENT = ("NOT_FOUND_IN_SCOPE", "ITEM_OUT_OF_SCOPE")


def _refuse(ctx: RequestContext, record, code: str, **params) -> GraphQLError:
    if record is not None:  # the access record says the report was refused and nothing was answered
        record.outcome, record.error_code = "denied", code
        record.items_returned, record.items_masked, record.row_count = [], [], 0
    return graphql_error(GovshareError(code, **params), ctx.lang)


async def _check_readable(ctx: RequestContext, resource, key: str, item: str) -> None:
    """Refuse unless ``ctx``'s caller may read ``item`` of the record ``key`` of ``resource`` under its purpose."""
    key_item = resource.item(resource.key)
    try:
        typed = typed_value(key_item.type, key)
    except ValueError:
        typed = None
    if typed is None or (key_item.type == "string" and not key):
        raise _refuse(ctx, None, "REPORT_RECORD_NOT_FOUND")
    before, records = len(ctx.item_errors), len(ctx.records)
    try:
        row = await data.lookup(ctx, resource, typed, [item], ["reportDataError"], operation="report")
    except GraphQLError as refused:
        extensions = refused.extensions or {}
        if ctx.settings.production and extensions.get("lookup") and extensions.get("code") != "FILTER_NOT_ALLOWED":
            # The key itself is denied to the caller: outside its view, named as nothing (the record keeps the code).
            raise graphql_error(GovshareError("REPORT_RECORD_NOT_FOUND"), ctx.lang) from None
        raise
    found = ctx.item_errors[before:]
    del ctx.item_errors[before:]  # the report's own lookup answers nothing: its refusal says it all
    record = ctx.records[records] if len(ctx.records) > records else None
    for entry in found:
        if entry["extensions"]["code"] not in RECORD_DEPENDENT:  # the item is denied to the caller, for every record
            if record is not None:
                record.outcome, record.error_code = "denied", entry["extensions"]["code"]
            if ctx.settings.production:  # the item is not in the department's view: name nothing of it
                raise graphql_error(GovshareError("REPORT_RECORD_NOT_FOUND"), ctx.lang)
            raise GraphQLError(entry["message"], extensions=entry["extensions"])
    if record is not None and item in record.items_masked:
        # The caller sees the value masked: an answer to what it proposes would tell it the value.
        raise _refuse(ctx, record, "REPORT_ITEM_MASKED", item=item)
    if row is None or found:
        raise _refuse(ctx, record, "REPORT_RECORD_NOT_FOUND")


async def report(ctx: RequestContext, *, resource: str, key: str, item: str, proposed: str, reason: str) -> str:
    target = process.find_resource(ctx.catalog, resource)
    problem = (
        GovshareError("RESOURCE_NOT_FOUND", resource=resource)
        if target is None
        else GovshareError("ITEM_NOT_FOUND", resource=target.code, item=item)
        if target.item(item) is None
        else process.text_problem(key, proposed, reason)
    )
    if problem is not None and ctx.settings.production and problem.code in ("RESOURCE_NOT_FOUND", "ITEM_NOT_FOUND"):
        problem = GovshareError("REPORT_RECORD_NOT_FOUND")  # production names nothing outside the caller's view
    if problem is not None:
        raise graphql_error(problem, ctx.lang)
    records = len(ctx.records)
    await _check_readable(ctx, target, key, item)

    async def work(conn):
        calendar = await load_calendar(conn)
        return await process.file(
            conn,
            calendar,
            ctx.settings,
            ctx.pseudonym_secret,
            ctx.caller,
            resource=target,
            key=key,
            item=item,
            proposed=proposed,
            reason=reason,
            purpose=ctx.purpose or "",
            now=ctx.now,
        )

    try:
        return await run_process(ctx, work)
    except GraphQLError as refused:
        code = (refused.extensions or {}).get("code")
        if code in ("REPORT_ALREADY_OPEN", "REPORT_LIMIT_REACHED") and len(ctx.records) > records:
            _refuse(ctx, ctx.records[records], str(code))  # the access record: refused, nothing answered
        raise


async def answer(ctx: RequestContext, report_id: str, outcome: str, reason: str) -> None:
    await run_process(
        ctx,
        lambda conn: process.answer(
            conn, ctx.catalog, ctx.caller, report_id, outcome=outcome, reason=reason, now=ctx.now
        ),
    )


async def read(ctx: RequestContext, *, inbox: bool = False, report_id: str | None = None) -> list[tuple]:
    """(report row, its key and proposed values as the caller may see them, its process records)."""

    async def work(conn):
        rows = await process.read(conn, ctx.catalog, ctx.caller, inbox=inbox, report_id=report_id)
        steps = await process.history(conn, [r.id for r in rows])
        return [
            (row, process.shown_values(ctx.pseudonym_secret, ctx.catalog, ctx.caller, row), steps[row.id])
            for row in rows
        ]

    return await run_process(ctx, work)
