"""Following a cross-department link (e.g. person → enterprises): each hop decided under the linked
resource's own policy and purpose, recorded as its own access, and loaded in one query per source per
nesting level, whatever the number of parent rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from graphql import GraphQLError
from strawberry.dataloader import DataLoader

from catalog.model import Link, Resource
from policies.model import ItemDecision
from resolvers.context import RequestContext
from resolvers.data import HIDDEN, NO_ALIASES, link_hop, refusal, refuse_link_key


def _report_once(ctx: RequestContext, path: tuple, error: GraphQLError) -> None:
    if path in ctx.reported:
        return
    ctx.reported.add(path)
    entry = error.formatted
    entry["path"] = list(path)
    ctx.item_errors.append(entry)


def _loader(
    ctx: RequestContext,
    link: Link,
    target: Resource,
    selected: list[str],
    link_items: list[str],
    path: tuple,
    keys: Mapping[str, str],
) -> DataLoader:
    """One loader per link occurrence in the operation (its path without list indices) and selection."""
    cache_key = (path, tuple(selected), tuple(link_items), tuple(sorted(keys.items())))
    loader = ctx.loaders.get(cache_key)
    if loader is not None:
        return loader

    async def batch(parent_keys: list[object]) -> list[object]:
        try:
            rows = await link_hop(ctx, target, link.target_item, parent_keys, selected, link_items, path, aliases=keys)
        except GraphQLError as error:
            _report_once(ctx, path, error)
            return [None] * len(parent_keys)
        if rows is None:  # nothing selected may be read: the denied items are already reported
            return [None] * len(parent_keys)
        grouped: dict[object, list[dict]] = defaultdict(list)
        for row in rows:
            grouped[row[HIDDEN + link.target_item]].append(row)
        if link.many:
            return [grouped.get(key, []) for key in parent_keys]
        return [grouped[key][0] if grouped.get(key) else None for key in parent_keys]

    loader = ctx.loaders[cache_key] = DataLoader(load_fn=batch, cache=False)
    return loader


async def follow(
    ctx: RequestContext,
    parent: Resource,
    link: Link,
    hidden: dict[str, object],
    selected: list[str],
    link_items: list[str],
    path: tuple,
    keys: Mapping[str, str] = NO_ALIASES,
) -> object:
    """The linked record(s) of one parent row; ``hidden`` holds the parent row's link keys, ``link_items``
    the target's items that links selected below this one need, ``keys`` the response keys of aliased items."""
    target = ctx.catalog.resources.get(link.target)
    if target is None:  # the target is not published (or failed its conformance check)
        _report_once(ctx, path, refusal(ctx, "RESOURCE_NOT_FOUND", resource=link.target))
        return None
    if link.item not in hidden:
        # The parent's key item may not be read by this caller: the link may not be followed either.
        decision = ctx.policy.decide(ctx.caller.department, ctx.purpose or "", parent, [link.item], ctx.now).items[
            link.item
        ]
        if decision.allowed:  # read, but masked in some rows: joining by it would give the value away
            decision = ItemDecision(link.item, False, "MASKED", params={"item": link.item})
        if path not in ctx.reported:
            _report_once(ctx, path, refuse_link_key(ctx, parent, link.item, decision))
        return None
    key = hidden[link.item]
    if key is None:
        return [] if link.many else None
    return await _loader(ctx, link, target, selected, link_items, path, keys).load(key)
