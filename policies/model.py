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
    ITEM_UNKNOWN = "ITEM_UNKNOWN"


@dataclass(frozen=True)
class ItemDecision:
    item: str
    allowed: bool
    reason: str  # an Allow or Deny value
    ref: str | None = None  # the grant or restriction that decided
    mask: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # for the denial message


@dataclass(frozen=True)
class AccessDecision:
    """Every requested item of one resource, decided once for the request, plus the row scope to apply."""

    resource: str
    items: dict[str, ItemDecision]
    row_scope: dict[str, tuple[str, ...]]
    grants_used: tuple[str, ...]

    @property
    def allowed(self) -> list[str]:
        return [name for name, d in self.items.items() if d.allowed]

    @property
    def denied(self) -> dict[str, ItemDecision]:
        return {name: d for name, d in self.items.items() if not d.allowed}

    @property
    def masks(self) -> dict[str, str]:
        return {name: d.mask for name, d in self.items.items() if d.allowed and d.mask}
