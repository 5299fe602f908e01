"""Following a cross-department link (e.g. person → enterprises): each hop decided under the linked
resource's own policy and purpose, recorded as its own access, and loaded in one query per source per
nesting level, whatever the number of parent rows.

Two executions share what is here: graphql-core's generic one, a resolver per parent row batched by a DataLoader per
link occurrence (``follow``), and the compiled plans (schema.plans), which gather the parent rows of one occurrence
themselves. Both check the target and the link's key the same way (``target_of``, ``key_refused``), make one
``link_hop`` per occurrence and level and group its rows by parent (``hop``), and report a refusal once per path."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

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


def target_of(ctx: RequestContext, link: Link, path: tuple) -> Resource | None:
    """The link's target in the request's catalog; None (RESOURCE_NOT_FOUND, said once for ``path``) when it is not
    published there (or failed its conformance check)."""
    target = ctx.catalog.resources.get(link.target)
    if target is None:
        _report_once(ctx, path, refusal(ctx, "RESOURCE_NOT_FOUND", resource=link.target))
    return target


def key_refused(ctx: RequestContext, parent: Resource, link: Link, path: tuple) -> None:
    """A parent row without the link's key (the caller may not read it, or it is masked in some rows): the link is
    refused, once for ``path``, with the key's own decision (and its access record)."""
    if path in ctx.reported:
        return
    decision = ctx.policy.decide(ctx.caller.department, ctx.purpose or "", parent, [link.item], ctx.now).items[
        link.item
    ]
    if decision.allowed:  # read, but masked in some rows: joining by it would give the value away
        decision = ItemDecision(link.item, False, "MASKED", params={"item": link.item})
    _report_once(ctx, path, refuse_link_key(ctx, parent, link.item, decision))


async def hop(
    ctx: RequestContext,
    link: Link,
    target: Resource,
    parent_keys: Sequence[object],
    selected: list[str],
    link_items: list[str],
    path: tuple,
    keys: Mapping[str, str] = NO_ALIASES,
) -> list[object]:
    """One hop of ``link`` for the parent keys of one occurrence (its path without list indices): one access on the
    data path (resolvers.data.link_hop), then for each parent key its rows (a list for a link to many, a row or None
    for a link to one). A refusal is reported once for ``path`` and answers None for every parent."""
    try:
        rows = await link_hop(
            ctx, target, link.target_item, list(parent_keys), selected, link_items, path, aliases=keys
        )
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
        return await hop(ctx, link, target, parent_keys, selected, link_items, path, keys)

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
    target = target_of(ctx, link, path)
    if target is None:
        return None
    if link.item not in hidden:
        # The parent's key item may not be read by this caller: the link may not be followed either.
        key_refused(ctx, parent, link, path)
        return None
    key = hidden[link.item]
    if key is None:
        return [] if link.many else None
    return await _loader(ctx, link, target, selected, link_items, path, keys).load(key)
