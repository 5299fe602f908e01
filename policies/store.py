"""Everything that decides, read as one PolicySet: grants (direct, legal-basis, from applications), pending
applications that silence approves, and the staff's policy rules in force (policies/documents.py).

Every change bumps the policy version in the same transaction, so every server process picks it up.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog.model import Catalog
from govshare.errors import GovshareError, NotFoundError
from govshare.platformdb import bump_policy_version, policy_version
from policies import disclosure, documents
from policies.model import Grant, GrantKind, PolicySet, Restriction
from policies.tables import grants

# The applications silence may approve (Art 19) are grants in the policy set, from their deadline on; the
# applications package owns them and imports this one, so it declares here how to read them (applications/process.py).
_deemed_grants: Callable[[object], Awaitable[tuple[Grant, ...]]] | None = None


def declare_deemed_grants(read: Callable[[object], Awaitable[tuple[Grant, ...]]]) -> None:
    global _deemed_grants
    _deemed_grants = read


async def load_policy_set(conn: AsyncConnection, *, silence_approves: bool = True) -> PolicySet:
    """The grants, restrictions and (when silence approves) pending applications in force."""
    read_deemed = _deemed_grants
    if silence_approves and read_deemed is None:
        raise RuntimeError("the applications silence may approve are not declared: import applications.process")
    version = (await conn.execute(select(policy_version.c.version).where(policy_version.c.id == 1))).scalar() or 0
    grant_rows = (await conn.execute(select(grants).order_by(grants.c.created_at))).all()
    _, document = await documents.current_document(conn)
    deemed = await read_deemed(conn) if silence_approves and read_deemed is not None else ()
    return PolicySet(
        grants=(
            tuple(
                Grant(
                    id=r.id,
                    kind=GrantKind(r.kind),
                    consumer=r.consumer,
                    resource=r.resource,
                    items=tuple(r.items),
                    purposes=tuple(r.purposes),
                    valid_from=r.valid_from,
                    valid_until=r.valid_until,
                    row_scope={k: tuple(v) for k, v in r.row_scope.items()},
                    masks=dict(r.masks),
                    legal_basis=r.legal_basis,
                    revoked_at=r.revoked_at,
                )
                for r in grant_rows
            )
            + deemed
            + tuple(map(rule_grant, document.rules))
        ),
        restrictions=tuple(
            Restriction(d.id, d.department, d.resource, d.reason, d.valid_from, d.valid_until) for d in document.deny
        ),
        version=int(version),
    )


def rule_grant(rule: documents.Rule) -> Grant:
    """A staff allow rule decides like a grant, cited by the rule's id."""
    return Grant(
        id=rule.id,
        kind=GrantKind.LEGAL_BASIS if rule.legal_basis else GrantKind.GRANT,
        consumer=rule.department,
        resource=rule.resource,
        items=rule.items,
        purposes=rule.purposes,
        valid_from=rule.valid_from,
        valid_until=rule.valid_until,
        row_scope=dict(rule.row_scope),
        masks=dict(rule.masks),
        legal_basis=rule.legal_basis,
    )


async def create_grant(
    conn: AsyncConnection,
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
    # Stored in UTC: SQLite keeps no offset, so a local time would shift on the way back.
    valid_from, valid_until = valid_from.astimezone(UTC), valid_until.astimezone(UTC)
    problems = documents.grant_problems(
        catalog,
        department=consumer,
        resource=resource,
        items=items,
        purposes=purposes,
        valid_from=valid_from,
        valid_until=valid_until,
        row_scope=row_scope,
        masks=masks,
        legal_basis=legal_basis,
    )
    if problems:
        _, code, params = problems[0]
        raise (NotFoundError if code.endswith("_NOT_FOUND") else GovshareError)(code, **params)
    kind = kind or (GrantKind.LEGAL_BASIS if legal_basis else GrantKind.GRANT)
    new = Grant(
        id=application_id or "new",
        kind=kind,
        consumer=consumer,
        resource=resource,
        items=tuple(items),
        purposes=tuple(purposes),
        valid_from=valid_from,
        valid_until=valid_until,
        row_scope={k: tuple(v) for k, v in row_scope.items()},
        masks=dict(masks),
        legal_basis=legal_basis,
    )
    await refuse_undone_masks(conn, catalog, new)

    grant_id = "G-" + secrets.token_hex(3)
    await conn.execute(
        grants.insert().values(
            id=grant_id,
            kind=kind,
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


async def undone_by(conn: AsyncConnection, catalog: Catalog, new: Grant) -> list[disclosure.MaskUndone]:
    """The masks ``new`` would undo, its own or another's, beside the consumer's other grants, rules and pending
    applications on the resource (policies/disclosure.py). The application a grant is made from is not its own
    other source, except for a deemed approval: silence has put it in force already, and it was checked when
    it was submitted."""
    policies = await load_policy_set(conn)
    others = [
        g
        for g in policies.grants
        if g.consumer == new.consumer
        and g.resource == new.resource
        and (g.id != new.id or new.kind == GrantKind.DEEMED)
    ]
    return disclosure.mask_problems(catalog, others, new, now=datetime.now(UTC))


async def refuse_undone_masks(conn: AsyncConnection, catalog: Catalog, new: Grant) -> None:
    """Refuse (GRANT_MASK_UNDONE, naming the items) a grant that would undo a mask."""
    if problems := await undone_by(conn, catalog, new):
        raise GovshareError.of(disclosure.CODE, problems[0].params())


async def revoke_grant(conn: AsyncConnection, grant_id: str, *, reason: str, revoked_by: str) -> None:
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
