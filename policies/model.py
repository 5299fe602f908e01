"""Grants, restrictions and the decisions made from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class GrantKind(StrEnum):
    GRANT = "grant"  # an approved share (有条件共享的授权)
    LEGAL_BASIS = "legal_basis"  # 依法应与特定部门共享 (Art 5 last paragraph), recorded by the coordinator
    DEEMED = "deemed"  # an application not answered by its deadline: approved by silence (视为同意, Art 19)


@dataclass(frozen=True)
class Grant:
    id: str
    kind: GrantKind
    consumer: str
    resource: str
    items: tuple[str, ...]
    purposes: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    row_scope: dict[str, tuple[str, ...]] = field(default_factory=dict)  # item -> allowed values
    masks: dict[str, str] = field(default_factory=dict)  # item -> mask kind
    legal_basis: str | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Restriction:
    """A department restricted from a resource ("*": from all), e.g. for not updating its own data (Art 20)."""

    id: str
    department: str
    resource: str
    reason: str
    valid_from: datetime | None = None  # None: from the beginning
    valid_until: datetime | None = None  # None: until lifted


@dataclass(frozen=True)
class PolicySet:
    grants: tuple[Grant, ...] = ()
    restrictions: tuple[Restriction, ...] = ()
    version: int = 0


class Allow(StrEnum):
    PROVIDER_OWN = "PROVIDER_OWN"
    UNCONDITIONAL = "UNCONDITIONAL"
    RELATED_DEPARTMENT = "RELATED_DEPARTMENT"
    GRANT = "GRANT"
    LEGAL_BASIS = "LEGAL_BASIS"
    DEEMED_APPROVAL = "DEEMED_APPROVAL"


class Deny(StrEnum):
    DEPARTMENT_RESTRICTED = "DEPARTMENT_RESTRICTED"
    GRANT_EXPIRED = "GRANT_EXPIRED"
    GRANT_NOT_YET_VALID = "GRANT_NOT_YET_VALID"
    APPLICATION_PENDING = "APPLICATION_PENDING"
    GRANT_REVOKED = "GRANT_REVOKED"
    PURPOSE_NOT_APPROVED = "PURPOSE_NOT_APPROVED"
    NOT_RELATED_DEPARTMENT = "NOT_RELATED_DEPARTMENT"
    NO_GRANT = "NO_GRANT"
    NOT_SHARED = "NOT_SHARED"
    MASK_UNDONE = "MASK_UNDONE"  # the only grants covering the item mask it, and the policies undo that mask
    ITEM_UNKNOWN = "ITEM_UNKNOWN"
    # The resource is retired in the catalog the engine was built on (or not published there at all): no rule, no
    # grant and not its provider reads it any more (catalog/workflow.py retire).
    RESOURCE_RETIRED = "RESOURCE_RETIRED"
    RESOURCE_NOT_PUBLISHED = "RESOURCE_NOT_PUBLISHED"


Scope = tuple[tuple[str, tuple[str, ...]], ...]  # (item, allowed values) pairs that must all hold; (): every row


@dataclass(frozen=True)
class Cover:
    """One way a caller may see an item: because of ``ref`` (a grant, rule or application; None for the item's
    share type or the provider's own data), in the rows of ``scope``, masked with ``mask`` or in clear.
    ``conditional`` covers come from grants: their scopes decide which rows a query sees; the others (unconditional
    items, the provider's own) add no rows and restrict none."""

    ref: str | None
    scope: Scope = ()
    mask: str | None = None
    conditional: bool = False


@dataclass(frozen=True)
class ItemDecision:
    item: str
    allowed: bool
    reason: str  # an Allow or Deny value
    ref: str | None = None  # the grant or restriction that decided (the first of ``covers`` when allowed)
    mask: str | None = None  # the mask when every cover masks the item (with this mask)
    params: dict[str, str] = field(default_factory=dict)  # for the denial message
    covers: tuple[Cover, ...] = ()  # when allowed: every live grant (or share type) that lets the caller see it

    @property
    def masked_somewhere(self) -> bool:
        """Some rows may show this item masked: it must not be filtered on, looked up or joined by."""
        return any(c.mask for c in self.covers)


@dataclass(frozen=True)
class AccessDecision:
    """Every requested item of one resource, decided once for the request, plus the rows it may see: the union
    of ``scopes`` (None: every row)."""

    resource: str
    items: dict[str, ItemDecision]
    scopes: tuple[Scope, ...] | None
    grants_used: tuple[str, ...]

    @property
    def allowed(self) -> list[str]:
        return [name for name, d in self.items.items() if d.allowed]

    @property
    def denied(self) -> dict[str, ItemDecision]:
        return {name: d for name, d in self.items.items() if not d.allowed}

    def values_in_scope(self, item: str) -> set[str] | None:
        """The values of ``item`` the rows may hold (None: any), when every scope constrains it."""
        if self.scopes is None:
            return None
        allowed: set[str] = set()
        for scope in self.scopes:
            values = dict(scope).get(item)
            if values is None:
                return None
            allowed.update(values)
        return allowed
