"""Grants and restrictions in the platform database: read them as a PolicySet, and change them.

Every change bumps the policy version in the same transaction, so every server process picks it up.
Direct grants are recorded by the coordinator; the application workflow (共享申请) comes later.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Iterable

from sqlalchemy import select

from catalog.model import Catalog, ShareType
from connectors.masking import MASK_KINDS
from govshare.errors import GovshareError, NotFoundError
from govshare.platformdb import applications, bump_policy_version, grants, policy_version, restrictions
from policies.model import Grant, GrantKind, PolicySet, Restriction


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def load_policy_set(conn, *, silence_approves: bool = True) -> PolicySet:
    """The grants, restrictions and (when silence approves) pending applications in force."""
    version = (await conn.execute(select(policy_version.c.version).where(policy_version.c.id == 1))).scalar() or 0
    grant_rows = (await conn.execute(select(grants).order_by(grants.c.created_at))).all()
    restriction_rows = (await conn.execute(select(restrictions).where(restrictions.c.lifted_at.is_(None)))).all()
    application_rows = (await conn.execute(select(applications).where(
        applications.c.status == "pending", applications.c.deemable == 1))).all() if silence_approves else []
    return PolicySet(
        grants=(tuple(
            Grant(
                id=r.id,
                kind=GrantKind(r.kind),
                consumer=r.consumer,
                resource=r.resource,
                items=tuple(r.items),
                purposes=tuple(r.purposes),
                valid_from=_aware(r.valid_from),
                valid_until=_aware(r.valid_until),
                row_scope={k: tuple(v) for k, v in r.row_scope.items()},
                masks=dict(r.masks),
                legal_basis=r.legal_basis,
                revoked_at=_aware(r.revoked_at) if r.revoked_at else None,
            )
            for r in grant_rows
        ) + tuple(g for g in map(_deemed, application_rows) if g is not None)),
        restrictions=tuple(Restriction(r.id, r.department, r.resource, r.reason) for r in restriction_rows),
        version=int(version),
    )


def _deemed(row) -> Grant | None:
    """A pending application is approved by silence from its deadline on (Art 19): whether or not anything
    ran at the deadline, every decision after it sees a grant."""
    start = max(_aware(row.deadline_at), _aware(row.valid_from))
    until = _aware(row.valid_until)
    if until <= start:
        return None
    return Grant(id=row.id, kind=GrantKind.DEEMED, consumer=row.consumer, resource=row.resource, items=tuple(row.items),
                 purposes=(row.purpose,), valid_from=start, valid_until=until,
                 row_scope={k: tuple(v) for k, v in row.row_scope.items()})




async def create_grant(
    conn,
    catalog: Catalog,
    *,
    consumer: str,
    resource: str,
    items: Iterable[str],
    purposes: Iterable[str],
    valid_from: datetime,
    valid_until: datetime,
    row_scope: dict[str, list[str]] | None = None,
    masks: dict[str, str] | None = None,
    legal_basis: str | None = None,
    created_by: str,
    application_id: str | None = None,
    kind: GrantKind | None = None,
) -> str:
    """Validate against the catalog in force and record a grant; returns its id."""
    items, purposes = list(dict.fromkeys(items)), list(dict.fromkeys(purposes))
    row_scope, masks = row_scope or {}, masks or {}
    if consumer not in catalog.departments:
        raise NotFoundError("DEPARTMENT_NOT_FOUND", department=consumer)
    target = catalog.resources.get(resource)
    if target is None:
        raise NotFoundError("RESOURCE_NOT_FOUND", resource=resource)
    if target.provider == consumer:
        raise GovshareError("GRANT_FOR_PROVIDER", department=consumer, resource=resource)
    if not items:
        raise GovshareError("GRANT_NO_ITEMS")
    for name in [*items, *row_scope, *masks]:
        if target.item(name) is None:
            raise NotFoundError("ITEM_NOT_FOUND", resource=resource, item=name)
    if not purposes:
        raise GovshareError("GRANT_NO_PURPOSES")
    for code in purposes:
        if catalog.purpose_for(consumer, code) is None:
            raise NotFoundError("PURPOSE_NOT_FOUND", department=consumer, purpose=code)
    for name, mask in masks.items():
        if mask not in MASK_KINDS:
            raise GovshareError("GRANT_BAD_MASK", mask=mask, item=name, kinds=", ".join(sorted(MASK_KINDS)))
        if target.item(name).type != "string":  # a masked value is text; and text filters only by eq/in
            raise GovshareError("GRANT_MASK_NOT_TEXT", item=name)
        if name not in items:
            raise GovshareError("GRANT_MASK_NOT_COVERED", item=name)
    for name, values in row_scope.items():
        if not values or not all(isinstance(v, str) and v for v in values):
            raise GovshareError("GRANT_EMPTY_SCOPE", item=name)
    # Stored in UTC: SQLite keeps no offset, so a local time would shift on the way back.
    valid_from, valid_until = _aware(valid_from).astimezone(UTC), _aware(valid_until).astimezone(UTC)
    if valid_until <= valid_from:
        raise GovshareError("GRANT_BAD_PERIOD")
    not_shared = [n for n in items if target.share_type_of(target.item(n)) == ShareType.NOT_SHARED]
    if legal_basis is None and not_shared:
        raise GovshareError("GRANT_NOT_SHARED_ITEMS", items=", ".join(not_shared))

    grant_id = "G-" + secrets.token_hex(3)
    await conn.execute(
        grants.insert().values(
            id=grant_id,
            kind=kind or (GrantKind.LEGAL_BASIS if legal_basis else GrantKind.GRANT),
            application_id=application_id,
            consumer=consumer,
            resource=resource,
            items=items,
            purposes=purposes,
            valid_from=valid_from,
            valid_until=valid_until,
            row_scope={k: list(v) for k, v in row_scope.items()},
            masks=masks,
            legal_basis=legal_basis,
            created_by=created_by,
            created_at=datetime.now(UTC),
        )
    )
    await bump_policy_version(conn)
    return grant_id


async def revoke_grant(conn, grant_id: str, *, reason: str, revoked_by: str) -> None:
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    result = await conn.execute(
        grants.update()
        .where(grants.c.id == grant_id, grants.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_by=revoked_by, revoke_reason=reason)
    )
    if result.rowcount != 1:
        if (await conn.execute(select(grants.c.id).where(grants.c.id == grant_id))).first():
            raise GovshareError("GRANT_ALREADY_REVOKED", grant=grant_id)
        raise NotFoundError("GRANT_NOT_FOUND", grant=grant_id)
    await bump_policy_version(conn)


async def add_restriction(conn, catalog: Catalog, *, department: str, resource: str, reason: str, created_by: str) -> str:
    if department not in catalog.departments:
        raise NotFoundError("DEPARTMENT_NOT_FOUND", department=department)
    if resource != "*" and resource not in catalog.resources:
        raise NotFoundError("RESOURCE_NOT_FOUND", resource=resource)
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    restriction_id = "R-" + secrets.token_hex(3)
    await conn.execute(
        restrictions.insert().values(
            id=restriction_id, department=department, resource=resource, reason=reason,
            created_by=created_by, created_at=datetime.now(UTC),
        )
    )
    await bump_policy_version(conn)
    return restriction_id


async def lift_restriction(conn, restriction_id: str, *, lifted_by: str) -> None:
    result = await conn.execute(
        restrictions.update()
        .where(restrictions.c.id == restriction_id, restrictions.c.lifted_at.is_(None))
        .values(lifted_at=datetime.now(UTC), lifted_by=lifted_by)
    )
    if result.rowcount != 1:
        if (await conn.execute(select(restrictions.c.id).where(restrictions.c.id == restriction_id))).first():
            raise GovshareError("RESTRICTION_ALREADY_LIFTED", restriction=restriction_id)
        raise NotFoundError("RESTRICTION_NOT_FOUND", restriction=restriction_id)
    await bump_policy_version(conn)
