"""The answer's ``extensions.freshness``: per resource the operation read, its last change, due-by and overdue.

A resource counts as touched when an access of it read its source: an access record whose outcome is ``allowed`` or
``partial`` (a list, a lookup, a link hop, an ``_entities`` type), including a lookup that found no record (the
source said so). A resource refused as a whole (``denied``: purpose, restriction, scope, a denied lookup key) or
whose source failed (``failed``) was not read, and carries no entry: nothing of it was answered. Each resource is
listed once, in the order of the resource codes (link hops run
concurrently: the order they finish in is no order a client could rely on); the state comes from what the platform recorded (catalog/freshness.py),
computed at the request's time, without asking any source.
"""

from __future__ import annotations

from catalog import freshness
from resolvers.context import RequestContext

READ = ("allowed", "partial")


def entries(ctx: RequestContext) -> list[dict[str, object]]:
    touched = sorted({r.resource for r in ctx.records if r.outcome in READ})
    found = []
    for code in touched:
        resource = ctx.catalog.resources.get(code)
        if resource is None:
            continue
        state = freshness.state(
            resource, ctx.freshness.get(code), ctx.now, realtime_minutes=ctx.settings.freshness_realtime_minutes
        )
        found.append(state.entry())
    return found


def visible(ctx: RequestContext) -> list[freshness.Freshness]:
    """The freshness of the published resources the caller may oversee: its department's own, or every one for the
    coordinating authority (the ``coordinator`` role)."""
    return freshness.states(
        ctx.catalog,
        ctx.freshness,
        ctx.now,
        realtime_minutes=ctx.settings.freshness_realtime_minutes,
        provider="" if "coordinator" in ctx.caller.roles else ctx.caller.department,
    )
