"""Reading a resource for one request: the one place data leaves a source.

For each resource field of an operation: check the declared purpose, decide every item the field
touches once (selected, filtered on, looked up by), refuse filters on items the caller may not
read, give the connector only the allowed columns with the row scope and masks, report each denied
item once, and record the access whatever the outcome.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from graphql import GraphQLError
from opentelemetry.trace import Status, StatusCode

from audit.records import AccessRecord
from catalog.model import Resource, typed_value
from connectors.base import Column, Condition, SourceQuery, SourceUnavailable, View
from connectors.masking import department_key, parse_mask
from govshare.errors import GovshareError, error_entry, graphql_error
from govshare.i18n import message
from govshare.logs import logger
from policies.model import AccessDecision, ItemDecision, Scope
from resolvers.context import RequestContext

log = logger(__name__)  # govshare.<module>: one logging configuration covers it


@dataclass(frozen=True)
class Filter:
    item: str
    op: str  # eq | in | gte | lte
    value: object


def filters_of(argument: Mapping[str, Mapping[str, object] | None] | None) -> list[Filter]:
    """The conditions of a list's ``filter`` argument as graphql-core coerced it (item -> operator -> value), in the
    order of the filter type's fields, the unset and null ones left out (the builder's resolvers and the compiled plans
    alike)."""
    filters: list[Filter] = []
    for item, condition in (argument or {}).items():
        for op, value in (condition or {}).items():
            if value is not None:
                filters.append(Filter(item, op, value))
    return filters


@dataclass
class Page:
    rows: list[dict[str, object]]
    has_next_page: bool
    end_cursor: str | None


# Items selected under their own names: an error's path names the item (an alias is its response key instead).
NO_ALIASES: Mapping[str, str] = MappingProxyType({})
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


def refusal(ctx: RequestContext, code: str, **params: object) -> GraphQLError:
    """A refusal of ``code`` as a GraphQL error (govshare.errors: the message in the request's language, the code
    and the reason in its extensions)."""
    return graphql_error(GovshareError(code, **params), ctx.lang)


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
            policy_version=ctx.policy.policies.version,
        )

    def refuse(self, code: str, **params: object) -> GraphQLError:
        self._nothing_returned()
        self.record.outcome, self.record.error_code = "denied", code
        return refusal(self.ctx, code, **params)

    def _nothing_returned(self) -> None:
        # A refusal or failure after the fetch (too many rows, too costly) sends nothing: say so in the record.
        self.record.items_returned, self.record.items_masked, self.record.row_count = [], [], 0
        self.record.subjects = []  # nor any data subject's

    def refuse_filter(self, item: str, decision: ItemDecision, *, lookup: bool = False) -> GraphQLError:
        """Refuse a filter on ``item`` (FILTER_NOT_ALLOWED), or a lookup or link by it (the item's own
        denial code), saying why the item itself may not be read."""
        reason = message(decision.reason, self.ctx.lang, **decision.params)
        if lookup and decision.reason != "MASKED":
            error = self.refuse(decision.reason, **decision.params)
            error.extensions |= {"item": item, "lookup": True}
            return error
        # A masked item may be read but never compared with: FILTER_NOT_ALLOWED for a lookup or link by it too.
        error = self.refuse("FILTER_NOT_ALLOWED", item=item, reason=reason)
        error.extensions |= {"item": item, "cause": decision.reason, **({"lookup": True} if lookup else {})}
        return error

    def fail(self, code: str, **params: object) -> GraphQLError:
        self._nothing_returned()
        self.record.outcome, self.record.error_code = "failed", code
        return refusal(self.ctx, code, **params)


def _check_purpose(ctx: RequestContext, access: _Access) -> str:
    if not ctx.purpose:
        raise access.refuse("PURPOSE_REQUIRED")
    if ctx.catalog.purpose_for(ctx.caller.department, ctx.purpose) is None:
        raise access.refuse("PURPOSE_NOT_REGISTERED", purpose=ctx.purpose, department=ctx.caller.department)
    return ctx.purpose


def storable(text: str) -> bool:
    """Text a database can hold: no NUL, no lone surrogate (JSON lets a caller send both)."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _check_filters(
    access: _Access, decision: AccessDecision, filters: list[Filter], *, scoped: bool = True, lookup: bool = False
) -> None:
    """Filtering must not become a way to learn a value the caller may not read, nor to step outside the scope.

    ``lookup`` for a lookup's key or a link's join (refused with the item's own denial code); ``scoped=False``
    for a link's join: rows outside the scope simply do not come back.
    """
    for f in filters:
        values = f.value if isinstance(f.value, (list, tuple)) else [f.value]
        if len(values) > access.ctx.settings.max_in_values:
            raise access.refuse("FILTER_TOO_MANY_VALUES", item=f.item, limit=access.ctx.settings.max_in_values)
        if any(isinstance(v, str) and not storable(v) for v in values):
            # No source stores such text; sent on, it would fail there as the source's fault (and count against it).
            raise access.refuse("FILTER_VALUE_INVALID", item=f.item)
        item_decision = decision.items[f.item]
        if not item_decision.allowed:
            raise access.refuse_filter(f.item, item_decision, lookup=lookup)
        if item_decision.masked_somewhere:
            # Any comparison with a masked value is an oracle: `in` with thousands of guesses finds it.
            raise access.refuse_filter(
                f.item, ItemDecision(f.item, False, "MASKED", params={"item": f.item}), lookup=lookup
            )
        in_scope = decision.values_in_scope(f.item)
        if scoped and in_scope is not None and f.op in ("eq", "in"):
            allowed = set(_typed(access.resource.item(f.item).type, tuple(in_scope)))  # 500 and "500" alike
            asked = [f.value] if f.op == "eq" else list(f.value)  # type: ignore[arg-type]
            outside = [str(v) for v in asked if v not in allowed]
            if outside:
                raise access.refuse(
                    "OUT_OF_SCOPE", detail=f"{f.item} ∉ {{{', '.join(sorted(in_scope))}}}: {', '.join(outside)}"
                )


def _report_denied(
    ctx: RequestContext, decision: AccessDecision, selected: list[str], path: list, keys: Mapping[str, str]
) -> None:
    """One error per denied selected item, at the path of its field (``keys``: its response key where it has an
    alias); list indices are left out, the handler anchors the path in the answer (govshare.graphql_http.anchor)."""
    for item in selected:
        d = decision.items[item]
        if d.allowed:
            continue
        where = {
            "resource": decision.resource,
            "item": item,
            **({"grant": d.ref} if d.ref and d.ref.startswith(("G-", "P-")) else {}),
        }
        ctx.item_errors.append(
            {
                **error_entry(GovshareError(d.reason, extensions=where, **d.params), ctx.lang),
                "path": [*path, keys.get(item, item)],
            }
        )


HIDDEN = "__key__"  # prefix of the values a row carries for following links; never part of an answer
SEEN = "__seen__"  # prefix of the record's key, shown where an item its grants cover in some rows only is shown
# Prefix of the record's key, shown only in the rows whose item an open data-error report disputes (and only where the
# item itself is shown): the keys compared are the reports' own, so nothing the platform does not hold comes back.
DISPUTED = "__disputed__"
# Prefix of the keyed hash of a data subject's identifier (govshare.subjects), read beside the answer's items to index
# the rows answered (README "Who looked at my data"); never part of an answer, and never the identifier itself.
SUBJECT = "__subject__"


def _views(decision: ItemDecision, scopes: tuple[Scope, ...] | None) -> tuple[tuple[Scope, str | None], ...] | None:
    """How an allowed item is shown in the rows the request sees: None when in clear in every one of them,
    else (scope, mask) pairs tried in order, in-clear covers first (an item is masked in a row only when every
    grant covering that row masks it); a row none of them covers shows null."""
    covers = decision.covers
    clear = {c.scope for c in covers if c.mask is None}
    if () in clear or (scopes is not None and all(scope in clear for scope in scopes)):
        return None
    views: list[tuple[Scope, str | None]] = []
    for cover in sorted(covers, key=lambda c: c.mask is not None):
        if (cover.scope, cover.mask) not in views:
            views.append((cover.scope, cover.mask))
        if not cover.scope:
            break
    return tuple(views)


def _typed(item_type: str, values: tuple[str, ...]) -> tuple[object, ...]:
    """Scope values as the item's type; a text that is no value of that type matches no row, so it is left out."""
    typed = []
    for value in values:
        try:
            typed.append(typed_value(item_type, value))
        except ValueError:
            continue
    return tuple(typed)


def _source_query(
    ctx: RequestContext,
    resource: Resource,
    decision: AccessDecision,
    selected: list[str],
    where: list[Filter],
    *,
    hidden: list[str],
    limit: int | None,
    offset: int = 0,
    key_hidden: bool = False,
    disputed: Mapping[str, tuple[object, ...]] = NO_ALIASES,
    subjects: AccessDecision | None = None,
) -> SourceQuery:
    def column_name(item_name: str) -> str:
        return resource.item(item_name).column

    def conditions(scope: Scope) -> tuple[Condition, ...]:
        return tuple(
            Condition(column_name(item), "in", _typed(resource.item(item).type, values)) for item, values in scope
        )

    pseudonym_key = ""

    def views(item: str, *, masks: bool = True) -> tuple[View, ...] | None:
        nonlocal pseudonym_key
        planned = _views(decision.items[item], decision.scopes)
        if planned is None:
            return None
        shown = []
        for scope, mask_text in planned:
            mask = parse_mask(mask_text) if (mask_text and masks) else None
            if mask is not None and mask.kind == "hash":
                pseudonym_key = pseudonym_key or department_key(ctx.pseudonym_secret, ctx.caller.department)
                mask = mask.keyed(pseudonym_key)
            shown.append(View(conditions(scope), mask))
        return tuple(shown)

    def column_of(item_name: str, label: str | None = None, *, shown: bool = False, masks: bool = True) -> Column:
        item = resource.item(item_name)
        return Column(item.column, item.type, label, views(item_name, masks=masks) if shown else None)

    def visible(item: str) -> tuple[tuple[Condition, ...], ...]:
        planned = _views(decision.items[item], decision.scopes)
        return (
            ()
            if planned is None or any(not scope for scope, _ in planned)
            else tuple(conditions(scope) for scope, _ in planned)
        )

    # A filter holds only in rows that show its item: it can tell nothing of rows where the item is null.
    where_conditions = [Condition(column_name(f.item), f.op, f.value, visible(f.item)) for f in where]
    columns = [column_of(i, i, shown=True) for i in selected]
    # Link keys come back in clear (links by a masked key are refused before this) and only where shown.
    columns += [column_of(i, HIDDEN + i, shown=True, masks=False) for i in hidden]
    # Where an item is shown in some of the rows only, the record's key shown in the same rows says which, so
    # that its error is reported once (the key is never null).
    key_item = resource.item(resource.key)
    for item in selected:
        scopes = visible(item)
        if scopes:
            columns.append(Column(key_item.column, key_item.type, SEEN + item, tuple(View(scope) for scope in scopes)))
    for item, disputed_keys in disputed.items():
        match = Condition(key_item.column, "in", disputed_keys)
        shown_in = visible(item) or ((),)
        columns.append(
            Column(key_item.column, key_item.type, DISPUTED + item, tuple(View((*s, match)) for s in shown_in))
        )
    # The identifiers of the rows' data subjects that the caller may read (in clear or masked), in the rows it is shown
    # in: in clear from the source, hashed by the connectors as soon as read (connectors.registry).
    for item in subjects.allowed if subjects is not None else ():
        planned = _views(subjects.items[item], decision.scopes)
        shown_in = None  # in every row answered: every row is in one of the scopes it is shown in (masked or not)
        if planned is not None and all(planned_scope for planned_scope, _ in planned):
            in_scopes = list(dict.fromkeys(planned_scope for planned_scope, _ in planned))
            if decision.scopes is None or not all(scope in in_scopes for scope in decision.scopes):
                shown_in = tuple(View(conditions(planned_scope)) for planned_scope in in_scopes)
        data_item = resource.item(item)
        columns.append(Column(data_item.column, data_item.type, SUBJECT + item, shown_in, subject=True))
    # Rows come in key order, unless the caller does not see the key in clear in every row: then in the order of
    # the key's pseudonym for its department (stable for paging), so the order gives no hidden digit away.
    order = Column(key_item.column, key_item.type)
    if key_hidden:
        mask = parse_mask("hash").keyed(department_key(ctx.pseudonym_secret, ctx.caller.department))
        order = Column(key_item.column, key_item.type, None, (View((), mask),))
    return SourceQuery(
        table=resource.table,
        columns=tuple(columns),
        where=tuple(where_conditions),
        scopes=() if decision.scopes is None else tuple(conditions(scope) for scope in decision.scopes),
        order_by=(order,),
        limit=limit,
        offset=offset,
    )


async def _run(
    ctx: RequestContext,
    access: _Access,
    decision: AccessDecision,
    selected: list[str],
    where: list[Filter],
    path: list,
    *,
    limit: int,
    offset: int = 0,
    hidden: list[str] = (),
    answered: int | None = None,
    keys: Mapping[str, str] = NO_ALIASES,
) -> list[dict[str, object]] | None:
    """Fetch the allowed selected items; None when nothing selected may be read. ``answered``: how many of the
    rows will be answered (a page fetches one more, to know whether there is a next one).

    ``hidden`` items (allowed ones only) come back in clear under HIDDEN-prefixed keys, to follow links with.
    """
    record, resource = access.record, access.resource
    _report_denied(ctx, decision, selected, path, keys)
    allowed = [i for i in selected if decision.items[i].allowed]
    hidden = list(
        dict.fromkeys(i for i in hidden if decision.items[i].allowed and not decision.items[i].masked_somewhere)
    )  # a link key may serve two links
    record.items_denied = {i: decision.items[i].reason for i in selected if not decision.items[i].allowed}
    record.grants_used = list(decision.grants_used)
    if not allowed and not hidden:
        record.outcome = "denied"
        return None
    key = (
        decision.items.get(resource.key)
        or ctx.policy.decide(ctx.caller.department, ctx.purpose or "", resource, [resource.key], ctx.now).items[
            resource.key
        ]
    )
    key_hidden = not key.allowed or key.masked_somewhere or _views(key, decision.scopes) is not None
    disputed = _disputed(ctx, resource, allowed)
    # Decided on their own: the items a request touches decide its rows' scope, and an item only indexed touches none.
    subjects = (
        ctx.policy.decide(ctx.caller.department, ctx.purpose or "", resource, resource.subject_items, ctx.now)
        if allowed and resource.subject_items
        else None
    )
    query = _source_query(
        ctx,
        resource,
        decision,
        allowed,
        where,
        hidden=hidden,
        limit=limit,
        offset=offset,
        key_hidden=key_hidden,
        disputed={item: tuple(keys) for item, keys in disputed.items()},
        subjects=subjects,
    )
    source = ctx.catalog.departments[resource.provider].source
    try:
        ttl = min(resource.cache_seconds, ctx.settings.cache_max_seconds)
        rows = await ctx.connectors.fetch(ctx.settings.expand(source), query, source=resource.provider, ttl=ttl)
    except SourceUnavailable:
        raise access.fail("SOURCE_UNAVAILABLE", resource=resource.code) from None
    # The answer's cost is its rows x items, summed over every resource access and link hop of the operation.
    ctx.cost += len(rows) * max(len(allowed), 1)
    if ctx.cost > ctx.settings.max_cost:
        raise access.refuse("COST_TOO_HIGH", limit=ctx.settings.max_cost)
    record.items_returned = allowed
    record.items_masked = [
        i for i in allowed if any(v.mask for c in query.columns if c.label == i for v in c.views or ())
    ]
    record.row_count = len(rows)
    record.outcome = "partial" if record.items_denied else "allowed"
    sent = rows[:answered] if answered is not None else rows
    if subjects is not None:
        labels = [(item, SUBJECT + item) for item in subjects.allowed]
        record.subjects = sorted({(item, r[label]) for r in sent for item, label in labels if r[label] is not None})
    if disputed:
        _report_disputes(ctx, resource, disputed, sent, key_shown=not key_hidden)
    outside = [i for i in allowed if sent and SEEN + i in sent[0] and any(r[SEEN + i] is None for r in sent)]
    for item in outside:  # shown in some rows only: null in the others, said once
        refusal = GovshareError("ITEM_OUT_OF_SCOPE", extensions={"resource": resource.code, "item": item}, item=item)
        ctx.item_errors.append({**error_entry(refusal, ctx.lang), "path": [*path, keys.get(item, item)]})
    if not allowed:  # only link keys were read, to follow links; nothing of this resource is answered
        record.outcome = "denied" if record.items_denied else "allowed"
    return rows


def _disputed(ctx: RequestContext, resource: Resource, allowed: list[str]) -> dict[str, dict[object, tuple]]:
    """The allowed selected items of ``resource`` with open data-error reports (from the snapshot): item → the
    reported records' keys (as the key's type) → their reports."""
    open_reports = ctx.disputes.get(resource.code)
    if not open_reports:
        return {}
    key_type = resource.item(resource.key).type
    found: dict[str, dict[object, tuple]] = {}
    for item in allowed:
        for report in open_reports.get(item, ()):
            try:
                key = typed_value(key_type, report.key)
            except ValueError:
                continue
            found.setdefault(item, {}).setdefault(key, ())
            found[item][key] += (report,)
    return found


def _report_disputes(
    ctx: RequestContext, resource: Resource, disputed: dict[str, dict[object, tuple]], rows: list, *, key_shown: bool
) -> None:
    """Say in the response's ``extensions.disputes`` which answered items an open report disputes, once per report;
    the record's key only to a caller shown the key in clear."""
    entries = ctx.extensions.setdefault("disputes", [])
    for item, by_key in disputed.items():
        for row in rows:
            key = row.get(DISPUTED + item)
            for report in by_key.get(key, ()) if key is not None else ():
                if ("dispute", report.report_id) in ctx.reported:
                    continue
                ctx.reported.add(("dispute", report.report_id))
                entries.append(
                    {
                        "resource": resource.code,
                        "item": item,
                        "reportId": report.report_id,
                        "since": report.since.isoformat(),
                        **({"key": report.key} if key_shown else {}),
                    }
                )
    if not entries:
        del ctx.extensions["disputes"]


def _withdraw_disputes(ctx: RequestContext, said: int) -> None:
    """Take back the dispute entries said after the first ``said`` ones, by an access refused after its fetch."""
    entries = ctx.extensions.get("disputes")
    if not entries or len(entries) <= said:
        return
    ctx.reported -= {("dispute", e["reportId"]) for e in entries[said:]}
    del entries[said:]
    if not entries:
        del ctx.extensions["disputes"]


async def _traced(ctx: RequestContext, access: _Access, work):
    """Run ``work`` inside the access's span, and keep the record whatever happens."""
    record = access.record
    # Never the exception on the span (its message may quote a filter value): the record's code, set below.
    with ctx.tracer.start_as_current_span(
        "govshare.access", record_exception=False, set_status_on_exception=False
    ) as span:
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
            span.set_attributes(
                {
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
                }
            )
            if record.error_code:
                span.set_attribute("govshare.error_code", record.error_code)
                span.set_status(Status(StatusCode.ERROR, record.error_code))


async def lookup(
    ctx: RequestContext,
    resource: Resource,
    key_value: object,
    selected: list[str],
    path: list,
    link_items: list[str] = (),
    keys: Mapping[str, str] = NO_ALIASES,
    operation: str = "lookup",
) -> dict[str, object] | None:
    """One record by its key (e.g. a person by ID number); ``keys``: the response keys of aliased items;
    ``operation`` what the access record calls it (``report``: a data-error report on the record's item)."""
    access = _Access(ctx, resource, operation)

    async def work():
        purpose = _check_purpose(ctx, access)
        decision = ctx.policy.decide(
            ctx.caller.department, purpose, resource, {*selected, *link_items, resource.key}, ctx.now
        )
        key_filter = Filter(resource.key, "eq", key_value)
        _check_filters(access, decision, [key_filter], lookup=True)
        rows = await _run(ctx, access, decision, selected, [key_filter], path, limit=1, hidden=link_items, keys=keys)
        if rows is None:
            return None
        if not rows and decision.scopes is not None:
            # Nothing answered: the record says the lookup was refused by the scope, not that it was allowed.
            access._nothing_returned()
            access.record.outcome, access.record.error_code = "denied", "NOT_FOUND_IN_SCOPE"
            refusal = GovshareError("NOT_FOUND_IN_SCOPE", extensions={"resource": resource.code})
            ctx.item_errors.append({**error_entry(refusal, ctx.lang), "path": path})
        return rows[0] if rows else None

    return await _traced(ctx, access, work)


async def link_hop(
    ctx: RequestContext,
    target: Resource,
    join_item: str,
    keys: list[object],
    selected: list[str],
    link_items: list[str],
    path: tuple,
    aliases: Mapping[str, str] = NO_ALIASES,
) -> list[dict[str, object]] | None:
    """The rows of ``target`` whose ``join_item`` is one of ``keys`` (one hop of a link, for all its parent rows).

    One access of its own (operation "link"): decided under the target's policy and the request's purpose,
    filtered as a lookup by ``join_item`` (rows outside the caller's scope do not come back), recorded, and
    refused with LINK_TOO_LARGE beyond ``max_link_rows``. Each row carries ``HIDDEN + join_item`` (and
    ``HIDDEN +`` each of ``link_items``) for grouping by parent and following the links below. None when nothing
    selected may be read (the denied items are reported); a refusal raises GraphQLError.
    """
    access = _Access(ctx, target, "link")

    async def work():
        purpose = _check_purpose(ctx, access)
        decision = ctx.policy.decide(
            ctx.caller.department, purpose, target, {*selected, *link_items, join_item}, ctx.now
        )
        join = Filter(join_item, "in", sorted(set(keys), key=str))
        _check_filters(access, decision, [join], scoped=False, lookup=True)
        limit = ctx.settings.max_link_rows + 1
        said = len(ctx.extensions.get("disputes", ()))
        rows = await _run(
            ctx,
            access,
            decision,
            selected,
            [join],
            list(path),
            limit=limit,
            hidden=[join_item, *link_items],
            keys=aliases,
        )
        if rows is not None and len(rows) >= limit:
            _withdraw_disputes(ctx, said)  # nothing of the hop is answered: neither are its rows' disputes
            raise access.refuse("LINK_TOO_LARGE", limit=ctx.settings.max_link_rows)
        return rows

    return await _traced(ctx, access, work)


async def entities(
    ctx: RequestContext,
    resource: Resource,
    keys: list[object],
    selected: list[str],
    link_items: list[str],
    path: list,
) -> tuple[dict[object, dict[str, object]], bool] | None:
    """The rows of ``resource`` for the keys of the federation representations of its type in one request
    (``_entities``): one access of its own (operation "entity"), decided and filtered exactly as a lookup by the
    resource's key, for all the keys in one source statement.

    Returns the rows by key (each carries ``HIDDEN + key`` and ``HIDDEN +`` each of ``link_items``) and whether a
    row scope applied (a key without a row is then NOT_FOUND_IN_SCOPE, as a lookup says); None when nothing
    selected may be read (the denied items are reported at ``path``); a refusal raises GraphQLError.
    """
    access = _Access(ctx, resource, "entity")

    async def work():
        purpose = _check_purpose(ctx, access)
        decision = ctx.policy.decide(
            ctx.caller.department, purpose, resource, {*selected, *link_items, resource.key}, ctx.now
        )
        distinct = sorted(set(keys), key=str)
        key_filter = Filter(resource.key, "in", distinct)
        # The key of a representation is a filter value: a masked or denied key is refused as a lookup by it is.
        _check_filters(access, decision, [key_filter], lookup=True)
        rows = await _run(
            ctx,
            access,
            decision,
            selected,
            [key_filter],
            path,
            limit=len(distinct),
            hidden=[resource.key, *link_items],
        )
        if rows is None:
            return None
        scoped = decision.scopes is not None
        if not rows and scoped:
            access._nothing_returned()
            access.record.outcome, access.record.error_code = "denied", "NOT_FOUND_IN_SCOPE"
        return {row[HIDDEN + resource.key]: row for row in rows}, scoped

    return await _traced(ctx, access, work)


def refuse_link_key(ctx: RequestContext, parent: Resource, item: str, decision: ItemDecision) -> GraphQLError:
    """A link that cannot be followed because its key ``item`` of ``parent`` may not be read, or is masked
    (``decision`` says why): the refusal, its access record kept."""
    access = _Access(ctx, parent, "link")
    error = access.refuse_filter(item, decision, lookup=True)
    ctx.records.append(access.record)
    return error


async def list_rows(
    ctx: RequestContext,
    resource: Resource,
    filters: list[Filter],
    first: int | None,
    after: str | None,
    selected: list[str],
    path: list,
    link_items: list[str] = (),
    keys: Mapping[str, str] = NO_ALIASES,
    items_key: str = "items",
) -> Page | None:
    """A page of records matching ``filters``, in key order; ``keys``: the response keys of aliased items,
    ``items_key`` the page's items field's."""
    access = _Access(ctx, resource, "list")

    async def work():
        purpose = _check_purpose(ctx, access)
        size = ctx.settings.default_page_size if first is None else first
        if size < 1:
            raise access.refuse("PAGE_SIZE_INVALID", limit=ctx.settings.max_page_size, requested=size)
        if size > ctx.settings.max_page_size:
            raise access.refuse("PAGE_SIZE_TOO_LARGE", limit=ctx.settings.max_page_size, requested=size)
        offset = decode_cursor(after) if after else 0
        decision = ctx.policy.decide(
            ctx.caller.department, purpose, resource, {*selected, *link_items, *(f.item for f in filters)}, ctx.now
        )
        _check_filters(access, decision, filters)
        rows = await _run(
            ctx,
            access,
            decision,
            selected,
            filters,
            [*path, items_key],
            limit=size + 1,
            offset=offset,
            hidden=link_items,
            answered=size,
            keys=keys,
        )
        if rows is None:
            return None
        has_next = len(rows) > size
        rows = rows[:size]
        access.record.row_count = len(rows)
        return Page(rows, has_next, encode_cursor(offset + len(rows)) if has_next else None)

    return await _traced(ctx, access, work)
