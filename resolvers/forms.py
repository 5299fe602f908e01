""" "Don't ask the citizen again" (Art 19 ¶2): which catalog items provide a form's fields, what the caller may read
of them now under which of its purposes, and what it would have to apply for.

Each item is decided by the policy engine exactly as a lookup of its resource would be (the item and the
resource's key, at the request's time, under each purpose registered for the caller's department); nothing is read
from any department's source, so there is no access record. The search itself is a process record
(``form_fields_searched``: who, when, the labels, what was found), so that the coordinating authority can see which
departments were told that the platform provides a field (Art 27 (五), collecting again what sharing provides).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from applications import process
from catalog.model import Resource, ShareType
from catalog.search import Hit, Match
from govshare.errors import GovshareError, graphql_error
from govshare.logs import logger
from policies.model import Allow
from resolvers.context import RequestContext
from resolvers.data import storable

log = logger(__name__)

MAX_LABELS = 100  # fields one search may name (a form rarely has more)
MAX_LABEL_LENGTH = 64  # characters of one field label
# Denials no application changes: a deny rule (Art 20), an application already waiting for its answer.
NOT_BY_APPLYING = {"DEPARTMENT_RESTRICTED", "APPLICATION_PENDING"}


@dataclass(frozen=True)
class PurposeDecision:
    purpose: str
    readable: bool  # a lookup by the resource's key under this purpose would answer the item
    code: str  # the item's decision (an Allow or Deny code)
    mask: str | None  # the mask every grant giving it applies
    row_scoped: bool  # only some rows (the grant's scope)
    lookup_code: str | None  # why a lookup by the key is refused although the item is allowed (its key's code)


@dataclass(frozen=True)
class Source:
    resource: Resource
    provider_name: str
    item: str
    label: str
    match: Match
    matched_text: str
    share_type: ShareType
    decisions: tuple[PurposeDecision, ...]

    @property
    def readable(self) -> bool:
        return any(d.readable for d in self.decisions)


@dataclass(frozen=True)
class FieldAnswer:
    label: str
    synonyms: tuple[str, ...]
    sources: tuple[Source, ...]
    providers: tuple[str, ...]  # providing departments of the label and synonym matches

    @property
    def several_providers(self) -> bool:
        """Claimed by more than one provider: the catalog should name one source for it (one lead collector)."""
        return len(self.providers) > 1


@dataclass(frozen=True)
class ToApply:
    resource: Resource
    items: tuple[str, ...]
    mutation: str
    needs_decision: bool  # not-shared items: the provider must decide (no approval by silence), then coordination
    purposes: tuple[str, ...]


@dataclass(frozen=True)
class Blocked:
    resource: str
    item: str
    code: str  # DEPARTMENT_RESTRICTED or APPLICATION_PENDING under every purpose that could read it


@dataclass(frozen=True)
class FormAnswer:
    fields: tuple[FieldAnswer, ...]
    to_apply: tuple[ToApply, ...]
    blocked: tuple[Blocked, ...]
    purposes: tuple[str, ...]


def _decide(ctx: RequestContext, resource: Resource, item: str, purposes: tuple[str, ...]) -> tuple:
    decisions = []
    for purpose in purposes:
        decision = ctx.policy.decide(ctx.caller.department, purpose, resource, [item, resource.key], ctx.now)
        own, key = decision.items[item], decision.items[resource.key]
        # A lookup refuses a denied key with its own code, and a masked key as it would any comparison with it.
        lookup_code = None
        if own.allowed and not key.allowed:
            lookup_code = key.reason
        elif own.allowed and key.masked_somewhere:
            lookup_code = "MASKED"
        decisions.append(
            PurposeDecision(
                purpose=purpose,
                readable=own.allowed and lookup_code is None,
                code=own.reason,
                mask=own.mask if own.allowed else None,
                row_scoped=own.allowed and any(c.scope for c in own.covers),
                lookup_code=lookup_code,
            )
        )
    return tuple(decisions)


def _check(ctx: RequestContext, labels: list[str], purpose: str | None) -> tuple[str, ...]:
    if len(labels) > MAX_LABELS:
        raise GovshareError("FORM_FIELDS_TOO_MANY", limit=MAX_LABELS, count=len(labels))
    for label in labels:
        if not label.strip() or len(label) > MAX_LABEL_LENGTH or not storable(label):
            raise GovshareError("FORM_FIELD_INVALID", limit=MAX_LABEL_LENGTH)
    department = ctx.caller.department
    if purpose is not None:
        if ctx.catalog.purpose_for(department, purpose) is None:
            raise GovshareError("PURPOSE_NOT_REGISTERED", purpose=purpose, department=department)
        return (purpose,)
    return tuple(p.code for p in ctx.catalog.purposes.values() if p.department == department)


def _to_apply(ctx: RequestContext, fields: tuple[FieldAnswer, ...], purposes: tuple[str, ...]) -> tuple[tuple, tuple]:
    """The applications that would open the items found by label or synonym that no purpose may read now: per
    resource, those items, and its key where no purpose lets the caller look up by it (a form is filled in by
    looking the citizen up). Items denied by a deny rule or waiting for an application are ``blocked`` instead."""
    wanted: dict[str, tuple[Resource, dict[str, None]]] = {}
    blocked: dict[tuple[str, str], Blocked] = {}
    allows = {a.value for a in Allow}
    for answer in fields:
        for source in answer.sources:
            if source.match == Match.PARTIAL or source.readable:
                continue
            resource = source.resource
            codes = {d.code for d in source.decisions}
            if not codes & allows:
                if codes and codes <= NOT_BY_APPLYING:
                    blocked[(resource.code, source.item)] = Blocked(resource.code, source.item, min(codes))
                    continue
                wanted.setdefault(resource.code, (resource, {}))[1][source.item] = None
            # Allowed under some purpose yet not readable: no lookup by the key answers it there (the key is denied or
            # masked); or not allowed anywhere, and no purpose lets the caller look up by the key either.
            if codes & allows or not any(_key_readable(ctx, resource, p) for p in purposes):
                wanted.setdefault(resource.code, (resource, {}))[1][resource.key] = None
    applications = []
    for resource, items in wanted.values():
        needs_decision = any(
            resource.share_type_of(item) == ShareType.NOT_SHARED for item in map(resource.item, items) if item
        )
        applications.append(ToApply(resource, tuple(items), "applyForShare", needs_decision, purposes))
    return tuple(applications), tuple(blocked.values())


def _key_readable(ctx: RequestContext, resource: Resource, purpose: str) -> bool:
    key = ctx.policy.decide(ctx.caller.department, purpose, resource, [resource.key], ctx.now).items[resource.key]
    return key.allowed and not key.masked_somewhere


async def form_fields(ctx: RequestContext, labels: list[str], purpose: str | None) -> FormAnswer:
    """The answer for a form's field ``labels`` (in their order), decided under ``purpose`` or, without one, under
    every purpose registered for the caller's department."""
    try:
        purposes = _check(ctx, labels, purpose)
    except GovshareError as refusal:
        raise graphql_error(refusal, ctx.lang) from None
    catalog, index = ctx.catalog, ctx.forms
    if index is None or index.version != catalog.version:  # never served: the snapshot builds one per catalog
        raise graphql_error(GovshareError("INTERNAL_ERROR", http_status=500), ctx.lang)
    unique = list(dict.fromkeys(labels))
    # Searching is CPU work (some 1 ms a label on the demo catalog, 15 ms on one of 6,000 items): off the event loop,
    # so that data requests go on meanwhile (the index's connection is serialised by SQLite, threadsafety 3).
    found = await asyncio.to_thread(lambda: [index.find(label) for label in unique])
    answers = []
    for label, (synonyms, hits) in zip(unique, found, strict=True):
        sources = tuple(_source(ctx, hit, purposes) for hit in hits)
        providers = tuple(dict.fromkeys(s.resource.provider for s in sources if s.match != Match.PARTIAL))
        answers.append(FieldAnswer(label, synonyms, sources, providers))
    fields = tuple(answers)
    to_apply, blocked = _to_apply(ctx, fields, purposes)
    await _record(ctx, fields, purpose)
    return FormAnswer(fields, to_apply, blocked, purposes)


def _source(ctx: RequestContext, hit: Hit, purposes: tuple[str, ...]) -> Source:
    resource = ctx.catalog.resources[hit.resource]
    item = resource.item(hit.item)
    if item is None:  # the index holds the items of this very catalog (version checked above)
        raise GovshareError("INTERNAL_ERROR", http_status=500)
    department = ctx.catalog.departments.get(resource.provider)
    return Source(
        resource=resource,
        provider_name=department.name if department else resource.provider,
        item=item.name,
        label=item.label,
        match=hit.match,
        matched_text=hit.text,
        share_type=resource.share_type_of(item),
        decisions=_decide(ctx, resource, item.name, purposes),
    )


async def _record(ctx: RequestContext, fields: tuple[FieldAnswer, ...], purpose: str | None) -> None:
    """The search as a process record; if it cannot be written, nothing is answered."""
    if ctx.platform is None:
        raise graphql_error(GovshareError("AUDIT_UNAVAILABLE", http_status=500), ctx.lang)
    try:
        async with ctx.platform.begin() as conn:
            await process.record_step(
                conn,
                "form_fields_searched",
                at=ctx.now,
                department=ctx.caller.department,
                actor=ctx.caller.key_id,
                operator=ctx.operator,
                application=ctx.caller.application,
                request_id=ctx.request_id,
                purpose=purpose,
                found={
                    f.label: [f"{s.resource.code}.{s.item}" for s in f.sources if s.match != Match.PARTIAL]
                    for f in fields
                },
            )
    except Exception:
        log.exception("the form search's process record could not be written")
        raise graphql_error(GovshareError("AUDIT_UNAVAILABLE", http_status=500), ctx.lang) from None
