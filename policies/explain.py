"""Explain: for a department, purpose, resource and time, every data item's decision, its reason and the
rule or grant that decided it. The same checks, in the same order, and the same PolicyEngine.decide
the GraphQL data path uses (resolvers/data.py), so the console never tells a different story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from catalog.model import Catalog
from govshare.i18n import message
from policies.engine import PolicyEngine
from policies.model import Cover


@dataclass(frozen=True)
class ItemExplanation:
    item: str
    label: str
    share_type: str
    allowed: bool
    reason: str  # an Allow or Deny code
    ref: str | None  # the grant, rule, deny rule or application that decided
    mask: str | None  # the mask when every grant giving the item masks it
    message: str  # the reason as the department would read it (for a denial, the exact error text)
    covers: tuple[Cover, ...] = ()  # every grant (or share type) that contributes, with its scope and mask


def describe_cover(cover: Cover) -> str:
    """One contributing grant as staff read it everywhere (console, CLI, API): ``G-1: countyCode ∈ 371311 · keep:6,4``;
    ``*`` for the item's share type or the provider's own data; "all rows" as ``*`` too."""
    scope = "; ".join(f"{item} ∈ {', '.join(values)}" for item, values in cover.scope) or "*"
    return f"{cover.ref or '*'}: {scope}" + (f" · {cover.mask}" if cover.mask else "")


@dataclass(frozen=True)
class Explanation:
    department: str
    purpose: str
    resource: str
    at: datetime
    policy_version: int
    refused: str | None  # a code refusing the whole access before any item is decided (as the data path does)
    refused_message: str | None
    items: tuple[ItemExplanation, ...]
    # The rows a query selecting every item would see: the union of these scopes; empty: every row.
    row_scopes: tuple[dict[str, tuple[str, ...]], ...]

    @property
    def row_scope(self) -> dict[str, tuple[str, ...]]:
        """Each item's allowed values over the union of the scopes (for one scope: that scope)."""
        merged: dict[str, tuple[str, ...]] = {}
        for scope in self.row_scopes:
            for item, values in scope.items():
                merged[item] = tuple(dict.fromkeys((*merged.get(item, ()), *values)))
        return merged


def explain(
    policy: PolicyEngine, department: str, purpose: str, resource: str, at: datetime, lang: str = "zh-CN"
) -> Explanation:
    catalog: Catalog = policy.catalog

    def refused(code: str, **params: object) -> Explanation:
        return Explanation(
            department, purpose, resource, at, policy.policies.version, code, message(code, lang, **params), (), ()
        )

    if department not in catalog.departments:
        return refused("DEPARTMENT_NOT_FOUND", department=department)
    target = next((r for r in catalog.published() if r.code == resource), None)
    if target is None:
        return refused("RESOURCE_NOT_FOUND", resource=resource)
    if not purpose:
        return refused("PURPOSE_REQUIRED")
    if catalog.purpose_for(department, purpose) is None:
        return refused("PURPOSE_NOT_REGISTERED", purpose=purpose, department=department)
    decision = policy.decide(department, purpose, target, [item.name for item in target.items], at)
    items = tuple(
        ItemExplanation(
            item=item.name,
            label=item.label,
            share_type=str(target.share_type_of(item)),
            allowed=d.allowed,
            reason=str(d.reason),
            ref=d.ref,
            mask=d.mask,
            message=message(str(d.reason), lang, **d.params),
            covers=d.covers,
        )
        for item in target.items
        for d in [decision.items[item.name]]
    )
    return Explanation(
        department,
        purpose,
        resource,
        at,
        policy.policies.version,
        None,
        None,
        items,
        tuple(dict(scope) for scope in decision.scopes or ()),
    )
