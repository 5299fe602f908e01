"""Reading a resource for one request: the one place data leaves a source.

For each resource field of an operation: check the declared purpose, decide every item the field
touches once (selected, filtered on, looked up by), refuse filters on items the caller may not
read, give the connector only the allowed columns with the row scope and masks, report each denied
item once, and record the access whatever the outcome.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

from graphql import GraphQLError
from opentelemetry.trace import Status, StatusCode

from audit.records import AccessRecord
from catalog.model import Resource
from connectors.base import Column, Condition, SourceQuery, SourceUnavailable
from govshare.errors import GovshareError
from govshare.i18n import message
from policies.model import AccessDecision, ItemDecision
from resolvers.context import RequestContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filter:
    item: str
    op: str  # eq | in | gte | lte
    value: object


@dataclass
class Page:
    rows: list[dict[str, object]]
    has_next_page: bool
    end_cursor: str | None


MAX_OFFSET = 2**31 - 1  # every engine's OFFSET takes this; a larger one is no cursor this server gave out


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(number)
    except (ValueError, UnicodeDecodeError):
        raise GovshareError("BAD_CURSOR") from None
    if kind != "o" or not 0 <= offset <= MAX_OFFSET:
        raise GovshareError("BAD_CURSOR")
    return offset


def _graphql_error(ctx: RequestContext, code: str, **params: object) -> GraphQLError:
    text = message(code, ctx.lang, **params)
    return GraphQLError(text, extensions={"code": code, "reason": text})


class _Access:
    """One resource access: collects what the record and the span will say."""

    def __init__(self, ctx: RequestContext, resource: Resource, operation: str) -> None:
        self.ctx, self.resource = ctx, resource
        self.record = AccessRecord(
            at=ctx.now,
            request_id=ctx.request_id,
            trace_id=ctx.trace_id,
            department=ctx.caller.department,
            application=ctx.caller.application,
            key_id=ctx.caller.key_id,
            operator=ctx.operator,
            purpose=ctx.purpose,
            resource=resource.code,
            operation=operation,
        )

    def refuse(self, code: str, **params: object) -> GraphQLError:
        self._nothing_returned()
        self.record.outcome, self.record.error_code = "denied", code
        return _graphql_error(self.ctx, code, **params)

    def _nothing_returned(self) -> None:
        # A refusal or failure after the fetch (too many rows, too costly) sends nothing: say so in the record.
        self.record.items_returned, self.record.items_masked, self.record.row_count = [], [], 0

    def refuse_filter(self, item: str, decision: ItemDecision, *, lookup: bool = False) -> GraphQLError:
        """Refuse a filter on ``item`` (FILTER_NOT_ALLOWED), or a lookup or link by it (the item's own
        denial code), saying why the item itself may not be read."""
        reason = message(decision.reason, self.ctx.lang, **decision.params)
        if lookup:
            error = self.refuse(decision.reason, **decision.params)
            error.extensions |= {"item": item, "lookup": True}
            return error
        error = self.refuse("FILTER_NOT_ALLOWED", item=item, reason=reason)
        error.extensions |= {"item": item, "cause": decision.reason}
        return error

    def fail(self, code: str, **params: object) -> GraphQLError:
        self._nothing_returned()
        self.record.outcome, self.record.error_code = "failed", code
        return _graphql_error(self.ctx, code, **params)


def _check_purpose(ctx: RequestContext, access: _Access) -> str:
    if not ctx.purpose:
        raise access.refuse("PURPOSE_REQUIRED")
    if ctx.catalog.purpose_for(ctx.caller.department, ctx.purpose) is None:
        raise access.refuse("PURPOSE_NOT_REGISTERED", purpose=ctx.purpose, department=ctx.caller.department)
    return ctx.purpose


def _check_filters(access: _Access, decision: AccessDecision, filters: list[Filter], *, scoped: bool = True,
                   lookup: bool = False) -> None:
    """Filtering must not become a way to learn a value the caller may not read, nor to step outside the scope.

    ``lookup`` for a lookup's key or a link's join (refused with the item's own denial code); ``scoped=False``
    for a link's join: rows outside the scope simply do not come back.
    """
    for f in filters:
        item_decision = decision.items[f.item]
        if not item_decision.allowed:
            raise access.refuse_filter(f.item, item_decision, lookup=lookup)
        if item_decision.mask and f.op not in ("eq", "in"):
            # Equality tells the caller only what it already knows; ranges would let it bisect the masked value.
            raise access.refuse_filter(f.item, ItemDecision(f.item, False, "MASKED", params={"item": f.item}))
        in_scope = decision.row_scope.get(f.item)
        if scoped and in_scope is not None and f.op in ("eq", "in"):
            asked = [f.value] if f.op == "eq" else list(f.value)  # type: ignore[arg-type]
            outside = [str(v) for v in asked if str(v) not in in_scope]
            if outside:
                raise access.refuse("OUT_OF_SCOPE", detail=f"{f.item} ∉ {{{', '.join(in_scope)}}}: {', '.join(outside)}")


def _report_denied(ctx: RequestContext, decision: AccessDecision, selected: list[str], path: list) -> None:
    for item in selected:
        d = decision.items[item]
        if d.allowed:
            continue
        text = message(d.reason, ctx.lang, **d.params)
        ctx.item_errors.append({
            "message": text,
            "path": [*path, item],
            "extensions": {"code": d.reason, "reason": text, "resource": decision.resource, "item": item,
                           **({"grant": d.ref} if d.ref and d.ref.startswith(("G-", "P-")) else {})},
        })


HIDDEN = "__key__"  # prefix of the values a row carries for following links; never part of an answer


def _source_query(resource: Resource, decision: AccessDecision, selected: list[str], where: list[Filter],
                  *, hidden: list[str], limit: int | None, offset: int = 0) -> SourceQuery:
    def column_of(item_name: str, label: str | None = None) -> Column:
        item = resource.item(item_name)
        return Column(item.column, item.type, label)

    conditions = [Condition(column_of(f.item).name, f.op, f.value) for f in where]
    conditions += [Condition(column_of(item).name, "in", values) for item, values in decision.row_scope.items()]
    # Rows come back keyed by item name (each column labelled with it), ready to answer without renaming.
    masks = tuple((item, kind) for item, kind in decision.masks.items() if item in selected)
    return SourceQuery(
        table=resource.table,
        columns=tuple(column_of(i, i) for i in selected) + tuple(column_of(i, HIDDEN + i) for i in hidden),
        where=tuple(conditions),
        order_by=(column_of(resource.key),),
        limit=limit,
        offset=offset,
        masks=masks,
    )


async def _run(ctx: RequestContext, access: _Access, decision: AccessDecision, selected: list[str],
               where: list[Filter], path: list, *, limit: int, offset: int = 0,
               hidden: list[str] = ()) -> list[dict[str, object]] | None:
    """Fetch the allowed selected items; None when nothing selected may be read.

    ``hidden`` items (allowed ones only) come back unmasked under HIDDEN-prefixed keys, to follow links with.
    """
    record, resource = access.record, access.resource
    _report_denied(ctx, decision, selected, path)
    allowed = [i for i in selected if decision.items[i].allowed]
    hidden = list(dict.fromkeys(i for i in hidden if decision.items[i].allowed))  # a link key may serve two links
    record.items_denied = {i: decision.items[i].reason for i in selected if not decision.items[i].allowed}
    record.grants_used = list(decision.grants_used)
    if not allowed and not hidden:
        record.outcome = "denied"
        return None
    query = _source_query(resource, decision, allowed, where, hidden=hidden, limit=limit, offset=offset)
    source = ctx.catalog.departments[resource.provider].source
    try:
        ttl = min(resource.cache_seconds, ctx.settings.cache_max_seconds)
        rows = await ctx.connectors.fetch(ctx.settings.expand(source), query, ttl=ttl)
    except SourceUnavailable:
        raise access.fail("SOURCE_UNAVAILABLE", resource=resource.code) from None
    # The answer's cost is its rows x items, summed over every resource access and link hop of the operation.
    ctx.cost += len(rows) * max(len(allowed), 1)
    if ctx.cost > ctx.settings.max_cost:
        raise access.refuse("COST_TOO_HIGH", limit=ctx.settings.max_cost)
    record.items_returned = allowed
    record.items_masked = [i for i in allowed if decision.items[i].mask]
    record.row_count = len(rows)
    record.outcome = "partial" if record.items_denied else "allowed"
    if not allowed:  # only link keys were read, to follow links; nothing of this resource is answered
        record.outcome = "denied" if record.items_denied else "allowed"
    return rows


async def _traced(ctx: RequestContext, access: _Access, work):
    """Run ``work`` inside the access's span, and keep the record whatever happens."""
    record = access.record
    with ctx.tracer.start_as_current_span("govshare.access") as span:
        try:
            return await work()
        except GraphQLError:
            raise
        except GovshareError as exc:
            raise access.refuse(exc.code, **exc.params) from None
        except Exception:
            log.exception("reading %s failed", access.resource.code)
            raise access.fail("INTERNAL_ERROR") from None
        finally:
            ctx.records.append(record)
            span.set_attributes({
                "govshare.request_id": record.request_id,
                "govshare.department": record.department,
                "govshare.application": record.application,
                "govshare.operator": record.operator or "",
                "govshare.purpose": record.purpose or "",
                "govshare.resource": record.resource,
                "govshare.operation": record.operation,
                "govshare.items_returned": record.items_returned,
                "govshare.items_masked": record.items_masked,
                "govshare.items_denied": [f"{k}:{v}" for k, v in record.items_denied.items()],
                "govshare.row_count": record.row_count,
                "govshare.grants_used": record.grants_used,
                "govshare.outcome": record.outcome,
            })
            if record.error_code:
                span.set_attribute("govshare.error_code", record.error_code)
                span.set_status(Status(StatusCode.ERROR, record.error_code))


async def lookup(ctx: RequestContext, resource: Resource, key_value: object, selected: list[str],
                 path: list, link_items: list[str] = ()) -> dict[str, object] | None:
    """One record by its key (e.g. a person by ID number)."""
    access = _Access(ctx, resource, "lookup")

    async def work():
        purpose = _check_purpose(ctx, access)
        decision = ctx.policy.decide(ctx.caller.department, purpose, resource, {*selected, *link_items, resource.key}, ctx.now)
        key_filter = Filter(resource.key, "eq", key_value)
        _check_filters(access, decision, [key_filter], lookup=True)
        rows = await _run(ctx, access, decision, selected, [key_filter], path, limit=1, hidden=link_items)
        if rows is None:
            return None
        if not rows and decision.row_scope:
            ctx.item_errors.append({
                "message": message("NOT_FOUND_IN_SCOPE", ctx.lang),
                "path": path,
                "extensions": {"code": "NOT_FOUND_IN_SCOPE", "reason": message("NOT_FOUND_IN_SCOPE", ctx.lang),
                               "resource": resource.code},
            })
        return rows[0] if rows else None

    return await _traced(ctx, access, work)


async def list_rows(ctx: RequestContext, resource: Resource, filters: list[Filter], first: int | None,
                    after: str | None, selected: list[str], path: list, link_items: list[str] = ()) -> Page | None:
    """A page of records matching ``filters``, in key order."""
    access = _Access(ctx, resource, "list")

    async def work():
        purpose = _check_purpose(ctx, access)
        size = ctx.settings.default_page_size if first is None else first
        if size < 1:
            raise access.refuse("PAGE_SIZE_INVALID", limit=ctx.settings.max_page_size, requested=size)
        if size > ctx.settings.max_page_size:
            raise access.refuse("PAGE_SIZE_TOO_LARGE", limit=ctx.settings.max_page_size, requested=size)
        offset = decode_cursor(after) if after else 0
        decision = ctx.policy.decide(ctx.caller.department, purpose, resource,
                                     {*selected, *link_items, *(f.item for f in filters)}, ctx.now)
        _check_filters(access, decision, filters)
        rows = await _run(ctx, access, decision, selected, filters, [*path, "items"], limit=size + 1, offset=offset,
                          hidden=link_items)
        if rows is None:
            return None
        has_next = len(rows) > size
        rows = rows[:size]
        access.record.row_count = len(rows)
        return Page(rows, has_next, encode_cursor(offset + len(rows)) if has_next else None)

    return await _traced(ctx, access, work)
