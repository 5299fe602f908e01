"""What a consumer department may learn of a resource's values, and the masks that learning would undo (Art 28).

A mask shows some characters of an item's value in clear (``Mask.kept``, connectors/masking.py) and hides the
rest. The catalog says which facts a value carries at which characters (``DataItem.parts``: an ID number's
county, birth year, month and day, sequence, gender and check) or which facts a value is (``DataItem.reveals``:
a gender item is the gender). A mask on item X in a grant or rule is *undone* when the same consumer may learn
what it hides from what else it may read of the same resource:

- another item read unmasked, or under a mask that keeps the hidden fact's characters (``reveals`` items:
  under any mask that shows something);
- X itself under another grant's different mask (keep:0,12 in one and keep:6,0 in another show everything).

"What else it may read" is every source in force or still to come, under any of its purposes: grants, staff
rules and applications silence may approve, not revoked and not ended (a grant not yet started counts), and
the items shared with it unconditionally (the item's or the resource's share type; among related departments
only where it is listed). Deny rules are not counted: they can be lifted. Then:

1. X readable unmasked from a source whose period and rows hold the mask's is no conflict: the consumer has
   the value lawfully wherever and whenever the mask is in force. X in clear for some rows only says nothing of
   the others, and does not count as revealing either.
2. What the consumer learns of X is the characters its views of X show and the characters of X's facts other
   items reveal. When one view of X (whose period holds the mask's) shows all of that, nothing is undone.
3. Otherwise a mask that shows some character is undone when what the consumer learns holds a character it
   hides (for a ``reveals`` item: any of its facts). A mask that shows none (nullify, hash, keep:0,0) is undone
   only when the value is rebuilt whole from elsewhere: a gender beside an opaque ID number rebuilds nothing.

Pure functions over the catalog and Grant values; policies/store.py, policies/documents.py and
applications/process.py call them where a mask or a revealing item can come into force.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from catalog.model import Catalog, DataItem, Resource, ShareType
from connectors.masking import Mask, parse_mask
from policies.model import Grant, PolicySet

CODE = "GRANT_MASK_UNDONE"
NOMINAL_LENGTH = 1000  # a text of no declared length is compared as a long one: keep:H,T shows H and T characters
FOREVER = None  # the period of what is shared unconditionally


@dataclass(frozen=True)
class MaskUndone:
    """A mask on ``item`` in ``grant`` that ``revealed_by`` would undo."""

    grant: str  # the grant, rule or application whose mask is undone
    consumer: str
    resource: str
    item: str
    mask: str
    facts: tuple[str, ...]  # the hidden facts learned (or "characters a-b" of an item without parts)
    revealed_by: tuple[tuple[str, str | None], ...]  # (item, grant/rule/application id; None: shared unconditionally)

    code = CODE

    @property
    def others(self) -> tuple[str, ...]:
        """The other grants, rules or applications involved."""
        return tuple(dict.fromkeys(ref for _, ref in self.revealed_by if ref is not None and ref != self.grant))

    @property
    def revealing(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item for item, _ in self.revealed_by))

    def params(self) -> dict[str, str]:
        """The parameters of the GRANT_MASK_UNDONE message."""
        sources = ", ".join(f"{item} ({ref})" if ref else item for item, ref in dict.fromkeys(self.revealed_by))
        return {
            "grant": self.grant,
            "resource": self.resource,
            "item": self.item,
            "mask": self.mask,
            "revealing": sources,
            "facts": ", ".join(self.facts),
            "others": ", ".join(self.others),
        }


@dataclass(frozen=True)
class _View:
    """One way the consumer may read an item: through a source, with or without a mask."""

    item: DataItem
    mask: Mask | None
    mask_text: str | None
    ref: str | None
    period: tuple[datetime, datetime] | None  # None: for ever (unconditional sharing, the provider's own)
    scope: tuple[tuple[str, frozenset[str]], ...] = ()  # the rows it shows (item, values); (): every row

    def length(self) -> int:
        return self.item.text_length or NOMINAL_LENGTH

    def shown(self) -> frozenset[int]:
        if self.mask is None:
            return frozenset(range(1, self.length() + 1))
        return self.mask.kept(self.length())

    def shows_something(self) -> bool:
        mask = self.mask
        return mask is None or not (
            mask.kind in ("nullify", "hash") or (mask.kind == "keep" and mask.head + mask.tail == 0)
        )

    def holds(self, other: _View) -> bool:
        """This view is readable whenever and wherever ``other`` is: over its whole period and in every row of its
        row scope (a view in clear for county B only leaves the mask to hold in every other county)."""
        if not _rows_within(other.scope, self.scope):
            return False
        if self.period is None:
            return True
        return other.period is not None and self.period[0] <= other.period[0] and self.period[1] >= other.period[1]

    def revealed(self) -> dict[str, frozenset[int] | None]:
        """The facts this view discloses: fact -> the offsets (0-based) of its characters shown; None: all of it."""
        if self.item.parts:
            shown = self.shown()
            found: dict[str, frozenset[int] | None] = {}
            for part in self.item.parts:
                offsets = frozenset(k for k, p in enumerate(part.positions) if p in shown)
                if offsets:
                    found[part.fact] = offsets
            return found
        if self.item.reveals and self.shows_something():
            return dict.fromkeys(self.item.reveals)
        return {}


def _rows_within(inner: tuple[tuple[str, frozenset[str]], ...], outer: tuple[tuple[str, frozenset[str]], ...]) -> bool:
    """Every row of scope ``inner`` lies in scope ``outer`` (each condition of ``outer`` is implied by ``inner``)."""
    conditions = dict(inner)
    return all(item in conditions and conditions[item] <= values for item, values in outer)


def _shared_unconditionally(resource: Resource, item: DataItem, consumer: str) -> bool:
    if resource.share_type_of(item) != ShareType.UNCONDITIONAL:
        return False
    return not resource.related_departments or consumer in resource.related_departments


def _views(resource: Resource, consumer: str, grants: Iterable[Grant], now: datetime) -> list[_View]:
    if consumer == resource.provider:  # a provider reads its own resources whole
        return [_View(i, None, None, None, FOREVER) for i in resource.items]
    views = [
        _View(i, None, None, None, FOREVER) for i in resource.items if _shared_unconditionally(resource, i, consumer)
    ]
    for grant in grants:
        if grant.revoked_at is not None or grant.valid_until <= now:
            continue
        for name in grant.items:
            item = resource.item(name)
            if item is None:
                continue
            text = grant.masks.get(name)
            views.append(
                _View(
                    item,
                    parse_mask(text) if text else None,
                    text,
                    grant.id,
                    (grant.valid_from, grant.valid_until),
                    tuple(sorted((k, frozenset(v)) for k, v in grant.row_scope.items())),
                )
            )
    return views


def _span(positions: Iterable[int]) -> str:
    ordered, spans = sorted(positions), list[list[int]]()
    for p in ordered:
        if spans and p == spans[-1][1] + 1:
            spans[-1][1] = p
        else:
            spans.append([p, p])
    return "characters " + ",".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def _check(resource: Resource, consumer: str, views: list[_View], masked: _View) -> MaskUndone | None:
    item = masked.item
    own = [v for v in views if v.item.name == item.name]
    if any(v.mask is None and v.holds(masked) for v in own):  # rule 1
        return None
    shown = masked.shown()
    # What other items disclose of X, as X's characters (parts) or X's facts (reveals).
    learned: set[int] = set()
    learned_facts: set[str] = set()
    sources: list[tuple[str, str | None, set[str]]] = []
    for view in views:
        if view.item.name == item.name:
            continue
        facts: set[str] = set()
        for fact, offsets in view.revealed().items():
            if item.parts:
                for part in item.parts:
                    if part.fact != fact:
                        continue
                    positions = {p for k, p in enumerate(part.positions) if offsets is None or k in offsets}
                    learned.update(positions)
                    if positions - shown:
                        facts.add(fact)
            elif fact in item.reveals:
                learned_facts.add(fact)
                facts.add(fact)
        if facts:
            sources.append((view.item.name, view.ref, facts))
    for view in own:
        # X in clear elsewhere is lawful where it applies and tells nothing of the rows it does not (rule 1 took
        # the case where it holds wherever the mask does); X under another mask may overlap it row for row.
        if view is masked or view.mask is None:
            continue
        extra = view.shown() - shown
        learned.update(view.shown())
        if extra:
            named = {p.fact for p in item.parts if set(p.positions) & extra} or {_span(extra)}
            sources.append((item.name, view.ref, named))
    learned.update(shown)
    if not learned_facts and any(learned <= v.shown() and v.holds(masked) for v in own):  # rule 2
        return None
    if masked.shows_something():  # rule 3
        undone = bool(learned - shown) or bool(learned_facts)
    else:
        whole = {p for part in item.parts for p in part.positions} if item.parts else set(range(1, masked.length() + 1))
        undone = (set(item.reveals) <= learned_facts) if item.reveals else whole <= learned
    if not undone or not sources:
        return None
    told = tuple(dict.fromkeys(f for part in item.parts for _, _, named in sources for f in named if f == part.fact))
    told += tuple(sorted({f for _, _, named in sources for f in named} - set(told)))
    return MaskUndone(
        masked.ref or "",
        consumer,
        resource.code,
        item.name,
        masked.mask_text or "",
        told,
        tuple((name, ref) for name, ref, _ in sources),
    )


def find_undone(catalog: Catalog, grants: Iterable[Grant], *, now: datetime) -> list[MaskUndone]:
    """Every mask in ``grants`` (of any consumers and resources) that the sources beside it undo."""
    groups: dict[tuple[str, str], list[Grant]] = defaultdict(list)
    for grant in grants:
        groups[(grant.consumer, grant.resource)].append(grant)
    found: list[MaskUndone] = []
    for (consumer, code), members in groups.items():
        resource = catalog.resources.get(code)
        if resource is None or not any(g.masks for g in members):
            continue
        views = _views(resource, consumer, members, now)
        for view in views:
            if view.mask is not None and (problem := _check(resource, consumer, views, view)) is not None:
                found.append(problem)
    return found


def newly_undone(
    catalog: Catalog, before: Iterable[Grant], after: Iterable[Grant], *, now: datetime
) -> list[MaskUndone]:
    """The masks undone by ``after`` that ``before`` did not undo: what a change (new, changed or removed grants and
    rules, or a new catalog over the same grants) would bring."""
    known = {(p.grant, p.item) for p in find_undone(catalog, before, now=now)}
    return [p for p in find_undone(catalog, after, now=now) if (p.grant, p.item) not in known]


def mask_problems(catalog: Catalog, grants: Iterable[Grant], new: Grant, *, now: datetime) -> list[MaskUndone]:
    """The masks that adding ``new`` (or changing the grant or rule with its id) to the consumer's ``grants`` would
    undo, whether ``new``'s own or another's it would reveal."""
    grants = list(grants)
    return newly_undone(catalog, grants, [g for g in grants if g.id != new.id] + [new], now=now)


def undone_masks(catalog: Catalog, policies: PolicySet, *, now: datetime) -> frozenset[tuple[str, str]]:
    """Every (grant id, masked item) whose mask the policy set as it is undoes: for the engine to deny (fail closed)."""
    return frozenset((p.grant, p.item) for p in find_undone(catalog, policies.grants, now=now))
