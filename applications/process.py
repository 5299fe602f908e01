"""The share-application process (Art 17-21): submit, answer within the deadline or be approved by silence.

Every step is a process record (append-only, beside the access records). Deemed approval needs no job:
the policies compile a pending application into a grant from its deadline on (policies/store.py), and
``settle`` only writes down, whenever it runs, what the policy already holds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from applications.tables import applications
from applications.workdays import WorkCalendar
from audit.chain import append, audit_archives
from audit.tables import process_records
from catalog.model import Catalog, ShareType
from govshare.config import Settings
from govshare.errors import GovshareError, NotFoundError, problem_entry
from govshare.keys import Caller
from govshare.platformdb import bump_policy_version
from policies import documents, store
from policies.model import Grant, GrantKind
from policies.store import create_grant, revoke_grant, undone_by
from policies.tables import grants

SHARE_MODES = ("online_query", "exchange", "interface")  # 联机查询 / 数据交换 / 接口服务 (Art 18)


@dataclass(frozen=True)
class FieldProblem:
    field: str
    code: str
    params: dict


class ApplicationInvalid(GovshareError):
    """An application refused at once, with a reason per field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("APPLICATION_INVALID", count=len(problems))
        self.problems = problems

    def details(self, lang: str) -> dict:
        return {
            **super().details(lang),
            "problems": [problem_entry(p.code, p.params, lang, field=p.field) for p in self.problems],
        }


def _deemed(row) -> Grant | None:
    """A pending application is approved by silence from its deadline on (Art 19): whether or not anything
    ran at the deadline, every decision after it sees a grant."""
    start = max(row.deadline_at, row.valid_from)
    until = row.valid_until
    if until <= start:
        return None
    return Grant(
        id=row.id,
        kind=GrantKind.DEEMED,
        consumer=row.consumer,
        resource=row.resource,
        items=tuple(row.items),
        purposes=(row.purpose,),
        valid_from=start,
        valid_until=until,
        row_scope={k: tuple(v) for k, v in row.row_scope.items()},
    )


async def deemed_grants(conn) -> tuple[Grant, ...]:
    """The pending applications silence may approve, as the grants they are from their deadlines on."""
    rows = (
        await conn.execute(select(applications).where(applications.c.status == "pending", applications.c.deemable == 1))
    ).all()
    return tuple(g for g in map(_deemed, rows) if g is not None)


store.declare_deemed_grants(deemed_grants)


async def record_step(
    conn,
    kind: str,
    *,
    at: datetime,
    department: str,
    actor: str,
    application_id: str | None = None,
    grant_id: str | None = None,
    reason: str | None = None,
    **detail,
) -> None:
    """Append one step of the process (who, when, what, why) to the process records."""
    await append(
        conn,
        "process",
        [
            dict(
                at=at.astimezone(UTC),  # stored in UTC: SQLite keeps no offset
                kind=kind,
                application_id=application_id,
                grant_id=grant_id,
                department=department,
                actor=actor,
                reason=reason,
                detail=detail,
            )
        ],
    )


async def _refused_action(
    conn,
    caller: Caller,
    now: datetime,
    code: str,
    application_id: str | None = None,
    grant_id: str | None = None,
    **params,
) -> GovshareError:
    """Record a refused action in its own transaction (the caller's is rolled back by the refusal)."""
    async with conn.engine.begin() as own:
        await record_step(
            own,
            "refused_action",
            at=now.astimezone(UTC),
            department=caller.department,
            actor=caller.key_id,
            application_id=application_id,
            grant_id=grant_id,
            reason=code,
        )
    return GovshareError(code, application=application_id, grant=grant_id, **params)


async def _require(
    conn, caller: Caller, role: str, now: datetime, application_id: str | None = None, grant_id: str | None = None
) -> None:
    if role not in caller.roles:
        raise await _refused_action(conn, caller, now, "FORBIDDEN", application_id, grant_id, role=role)


async def submit(
    conn,
    catalog: Catalog,
    calendar: WorkCalendar,
    settings: Settings,
    caller: Caller,
    *,
    resource: str,
    items: list[str],
    purpose: str,
    users: str,
    share_mode: str,
    row_scope: dict[str, list[str]],
    valid_from: datetime,
    valid_until: datetime,
    acknowledged: bool,
    now: datetime,
) -> str:
    """Validate and record an application of ``caller``'s department; returns its id."""
    now = now.astimezone(UTC)
    await _require(conn, caller, "applicant", now)
    problems: list[FieldProblem] = []
    target = catalog.resources.get(resource)
    if target is None or resource not in {r.code for r in catalog.published()}:
        problems.append(FieldProblem("resource", "RESOURCE_NOT_FOUND", {"resource": resource}))
    elif target.provider == caller.department:
        problems.append(
            FieldProblem("resource", "GRANT_FOR_PROVIDER", {"department": caller.department, "resource": resource})
        )
    elif (
        all(target.share_type_of(target.item(i)) == ShareType.UNCONDITIONAL for i in items if target.item(i))
        and not target.related_departments
    ):
        problems.append(FieldProblem("resource", "NOTHING_TO_APPLY", {"resource": resource}))
    if target is not None:
        for name in [*items, *row_scope]:
            if target.item(name) is None:
                problems.append(FieldProblem("items", "ITEM_NOT_FOUND", {"resource": resource, "item": name}))
        for name, values in row_scope.items():
            problems += [
                FieldProblem(place, code, params)
                for place, code, params in documents.scope_value_problems(target, name, values)
            ]
    if not items:
        problems.append(FieldProblem("items", "GRANT_NO_ITEMS", {}))
    if catalog.purpose_for(caller.department, purpose) is None:
        problems.append(
            FieldProblem("purpose", "PURPOSE_NOT_REGISTERED", {"purpose": purpose, "department": caller.department})
        )
    if not users.strip():
        problems.append(FieldProblem("users", "FIELD_REQUIRED_USERS", {}))
    if share_mode not in SHARE_MODES:
        problems.append(
            FieldProblem("shareMode", "SHARE_MODE_INVALID", {"mode": share_mode, "modes": ", ".join(SHARE_MODES)})
        )
    valid_from, valid_until = valid_from, valid_until
    if valid_until <= now:
        problems.append(FieldProblem("validUntil", "END_IN_PAST", {}))
    elif valid_until > now + timedelta(days=settings.max_grant_days):
        problems.append(FieldProblem("validUntil", "END_TOO_FAR", {"days": settings.max_grant_days}))
    if valid_until <= valid_from:
        problems.append(FieldProblem("validFrom", "GRANT_BAD_PERIOD", {}))
    if not acknowledged:
        problems.append(FieldProblem("acknowledged", "ACKNOWLEDGEMENT_REQUIRED", {}))
    deemable = not problems and not any(target.share_type_of(target.item(i)) == ShareType.NOT_SHARED for i in items)
    if deemable:  # silence may approve it with no decision to check then: its items must undo no mask now
        pending = Grant(
            id="new",
            kind=GrantKind.DEEMED,
            consumer=caller.department,
            resource=resource,
            items=tuple(dict.fromkeys(items)),
            purposes=(purpose,),
            valid_from=valid_from.astimezone(UTC),
            valid_until=valid_until.astimezone(UTC),
            row_scope={k: tuple(v) for k, v in row_scope.items()},
        )
        problems += [
            FieldProblem("items", found.code, found.params()) for found in await undone_by(conn, catalog, pending)
        ]
    if problems:
        raise ApplicationInvalid(problems)

    deadline = calendar.deadline(now, settings.answer_working_days)
    application_id = "A-" + secrets.token_hex(3)
    await conn.execute(
        applications.insert().values(
            id=application_id,
            consumer=caller.department,
            resource=resource,
            items=list(dict.fromkeys(items)),
            purpose=purpose,
            users=users,
            share_mode=share_mode,
            row_scope=row_scope,
            valid_from=valid_from.astimezone(UTC),
            valid_until=valid_until.astimezone(UTC),
            submitted_at=now,
            submitted_by=caller.key_id,
            deadline_at=deadline.at.astimezone(UTC),
            deadline_provisional=int(deadline.provisional),
            deemable=int(deemable),
            status="pending",
        )
    )
    await record_step(
        conn,
        "submitted",
        at=now,
        department=caller.department,
        actor=caller.key_id,
        application_id=application_id,
        deadline=deadline.at.isoformat(),
        provisional=deadline.provisional,
    )
    await bump_policy_version(conn)  # a pending application becomes a deemed grant at its deadline
    return application_id


async def _pending(conn, catalog: Catalog, caller: Caller, application_id: str, now: datetime, settings: Settings):
    now = now.astimezone(UTC)
    row = (await conn.execute(select(applications).where(applications.c.id == application_id))).first()
    if row is None:
        raise NotFoundError("APPLICATION_NOT_FOUND", application=application_id)
    await _require(conn, caller, "reviewer", now, application_id)
    provider = catalog.resources[row.resource].provider if row.resource in catalog.resources else None
    if caller.department != provider:
        raise await _refused_action(conn, caller, now, "NOT_YOUR_RESOURCE", application_id)
    if row.status == "pending" and row.deemable and settings.silence_approves and now >= row.deadline_at:
        async with conn.engine.begin() as own:  # kept, though the late answer itself is refused
            await settle(own, catalog, now, settings)
        raise GovshareError("APPLICATION_DEEMED_APPROVED", application=application_id)
    if row.status != "pending":
        raise GovshareError("APPLICATION_ANSWERED", application=application_id, status=row.status)
    return row


async def approve(
    conn,
    catalog: Catalog,
    settings: Settings,
    caller: Caller,
    application_id: str,
    *,
    now: datetime,
    items: list[str] | None = None,
    row_scope: dict[str, list[str]] | None = None,
    valid_until: datetime | None = None,
) -> str:
    """The provider approves, possibly narrowing items, scope or end; returns the grant's id."""
    row = await _pending(conn, catalog, caller, application_id, now, settings)
    items = list(row.items) if items is None else items
    if not set(items) <= set(row.items) or not items:
        raise GovshareError("NARROWING_INVALID", detail="items")
    until = row.valid_until if valid_until is None else valid_until
    if until > row.valid_until:
        raise GovshareError("NARROWING_INVALID", detail="validUntil")
    scope = {**row.row_scope, **(row_scope or {})}
    for name, values in (row_scope or {}).items():
        if name in row.row_scope and not set(values) <= set(row.row_scope[name]):
            raise GovshareError("NARROWING_INVALID", detail=f"rowScope.{name}")
    grant_id = await create_grant(
        conn,
        catalog,
        consumer=row.consumer,
        resource=row.resource,
        items=items,
        purposes=[row.purpose],
        valid_from=row.valid_from,
        valid_until=until,
        row_scope=scope,
        created_by=caller.key_id,
        application_id=application_id,
    )
    await conn.execute(
        applications.update()
        .where(applications.c.id == application_id)
        .values(status="approved", decided_at=now, grant_id=grant_id)
    )
    await record_step(
        conn,
        "approved",
        at=now,
        department=caller.department,
        actor=caller.key_id,
        application_id=application_id,
        grant_id=grant_id,
        items=items,
        row_scope=scope,
        valid_until=until.isoformat(),
    )
    return grant_id


async def refuse(
    conn, catalog: Catalog, settings: Settings, caller: Caller, application_id: str, *, now: datetime, reason: str
) -> None:
    """The provider refuses; a refusal must say why (Art 19)."""
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    await _pending(conn, catalog, caller, application_id, now, settings)
    await conn.execute(
        applications.update().where(applications.c.id == application_id).values(status="refused", decided_at=now)
    )
    await record_step(
        conn,
        "refused",
        at=now,
        department=caller.department,
        actor=caller.key_id,
        application_id=application_id,
        reason=reason,
    )
    await bump_policy_version(conn)


async def settle(conn, catalog: Catalog, now: datetime, settings: Settings) -> list[str]:
    """Write down the deemed approvals whose deadline has passed: a grant each, marked as deemed."""
    if not settings.silence_approves:
        return []
    now = now.astimezone(UTC)
    rows = (
        await conn.execute(
            select(applications).where(
                applications.c.status == "pending", applications.c.deemable == 1, applications.c.deadline_at <= now
            )
        )
    ).all()
    settled = []
    for row in rows:
        grant_id = await create_grant(
            conn,
            catalog,
            consumer=row.consumer,
            resource=row.resource,
            items=list(row.items),
            purposes=[row.purpose],
            valid_from=max(row.valid_from, row.deadline_at),
            valid_until=row.valid_until,
            row_scope=row.row_scope,
            created_by="deemed-approval",
            application_id=row.id,
            kind=GrantKind.DEEMED,
        )
        await conn.execute(
            applications.update()
            .where(applications.c.id == row.id)
            .values(status="deemed_approved", decided_at=row.deadline_at, grant_id=grant_id)
        )
        await record_step(
            conn,
            "deemed_approved",
            at=row.deadline_at,
            department=catalog.resources[row.resource].provider,
            actor="deemed-approval",
            application_id=row.id,
            grant_id=grant_id,
            recorded_at=now.isoformat(),
        )
        settled.append(row.id)
    return settled


async def recompute_deadlines(conn, calendar: WorkCalendar, settings: Settings) -> int:
    """Deadlines counted without a schedule, counted again now that one may be loaded."""
    rows = (
        await conn.execute(
            select(applications).where(applications.c.status == "pending", applications.c.deadline_provisional == 1)
        )
    ).all()
    for row in rows:
        deadline = calendar.deadline(row.submitted_at, settings.answer_working_days)
        await conn.execute(
            applications.update()
            .where(applications.c.id == row.id)
            .values(deadline_at=deadline.at.astimezone(UTC), deadline_provisional=int(deadline.provisional))
        )
    if rows:
        await bump_policy_version(conn)
    return len(rows)


async def history(conn, application_id: str) -> list:
    return (
        await conn.execute(
            select(process_records)
            .where(process_records.c.application_id == application_id)
            .order_by(process_records.c.id)
        )
    ).all()


async def request_coordination(
    conn, catalog: Catalog, caller: Caller, application_id: str, *, now: datetime, reason: str
) -> None:
    """The applicant sends a refused application, or one for not-shared data, to the coordinator (Art 19)."""
    now = now.astimezone(UTC)
    await _require(conn, caller, "applicant", now, application_id)
    row = (await conn.execute(select(applications).where(applications.c.id == application_id))).first()
    if row is None:
        raise NotFoundError("APPLICATION_NOT_FOUND", application=application_id)
    if row.consumer != caller.department:
        raise await _refused_action(conn, caller, now, "NOT_YOUR_APPLICATION", application_id)
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    if not (row.status == "refused" or (row.status == "pending" and not row.deemable)):
        raise GovshareError("COORDINATION_NOT_ALLOWED")
    await conn.execute(applications.update().where(applications.c.id == application_id).values(status="coordinating"))
    await record_step(
        conn,
        "coordination_requested",
        at=now,
        department=caller.department,
        actor=caller.key_id,
        application_id=application_id,
        reason=reason,
    )


async def decide_coordination(
    conn, catalog: Catalog, caller: Caller, application_id: str, *, now: datetime, approve: bool, reason: str
) -> str | None:
    """The coordinator's final decision; an approval becomes a grant (citing the decision for not-shared items)."""
    now = now.astimezone(UTC)
    await _require(conn, caller, "coordinator", now, application_id)
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    row = (await conn.execute(select(applications).where(applications.c.id == application_id))).first()
    if row is None:
        raise NotFoundError("APPLICATION_NOT_FOUND", application=application_id)
    if row.status != "coordinating":
        raise GovshareError("APPLICATION_ANSWERED", application=application_id, status=row.status)
    grant_id = None
    if approve:
        grant_id = await create_grant(
            conn,
            catalog,
            consumer=row.consumer,
            resource=row.resource,
            items=list(row.items),
            purposes=[row.purpose],
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            row_scope=row.row_scope,
            legal_basis=f"协调决定（第十九条）：{reason}",
            created_by=caller.key_id,
            application_id=application_id,
        )
    status = "coordination_approved" if approve else "coordination_refused"
    await conn.execute(
        applications.update()
        .where(applications.c.id == application_id)
        .values(status=status, decided_at=now, grant_id=grant_id)
    )
    await record_step(
        conn,
        status,
        at=now,
        department=caller.department,
        actor=caller.key_id,
        application_id=application_id,
        grant_id=grant_id,
        reason=reason,
    )
    return grant_id


async def revoke(conn, catalog: Catalog, caller: Caller, grant_id: str, *, now: datetime, reason: str) -> None:
    """The provider's reviewer or the coordinator revokes a grant, with a reason."""
    now = now.astimezone(UTC)
    row = (await conn.execute(select(grants).where(grants.c.id == grant_id))).first()
    if row is None:
        raise NotFoundError("GRANT_NOT_FOUND", grant=grant_id)
    provider = catalog.resources[row.resource].provider if row.resource in catalog.resources else None
    if "coordinator" not in caller.roles:
        await _require(conn, caller, "reviewer", now, grant_id=grant_id)
        if caller.department != provider:
            raise await _refused_action(conn, caller, now, "NOT_YOUR_RESOURCE", row.application_id, grant_id)
    await withdraw(conn, grant_id, now=now, department=caller.department, actor=caller.key_id, reason=reason)


async def withdraw(conn, grant_id: str, *, now: datetime, department: str, actor: str, reason: str) -> None:
    """Revoke a grant and record it (``revoked``, naming the application it came from, so the application's
    history shows it): what ``revoke`` does once it has allowed the caller, and what ``govshare grant revoke``
    does for the coordinating authority."""
    application_id = (await conn.execute(select(grants.c.application_id).where(grants.c.id == grant_id))).scalar()
    await revoke_grant(conn, grant_id, reason=reason, revoked_by=actor)
    await record_step(
        conn,
        "revoked",
        at=now,
        department=department,
        actor=actor,
        application_id=application_id,
        grant_id=grant_id,
        reason=reason,
    )


async def record_expiries(conn, now: datetime) -> list[str]:
    """Write down each grant that has reached its end since the last look (expiry needs no job to take effect)."""
    now = now.astimezone(UTC)
    recorded = select(process_records.c.grant_id).where(process_records.c.kind == "expired")
    # A grant that ended before the newest archived process record may have its expiry in an archive (govshare audit
    # archive removed it from process_records): it is not written down again.
    archived = select(func.max(audit_archives.c.last_at)).where(audit_archives.c.chain == "process")
    horizon = (await conn.execute(archived)).scalar()
    due = [grants.c.valid_until <= now, grants.c.revoked_at.is_(None), grants.c.id.not_in(recorded)]
    if horizon is not None:
        due.append(grants.c.valid_until > horizon)
    rows = (await conn.execute(select(grants).where(*due))).all()
    for row in rows:
        await record_step(
            conn,
            "expired",
            at=row.valid_until,
            department=row.consumer,
            actor="expiry",
            application_id=row.application_id,
            grant_id=row.id,
        )
    return [r.id for r in rows]


async def record_legal_basis_grant(
    conn,
    catalog: Catalog,
    caller: Caller,
    *,
    now: datetime,
    consumer: str,
    resource: str,
    items: list[str],
    purposes: list[str],
    valid_from: datetime,
    valid_until: datetime,
    legal_basis: str,
) -> str:
    """The coordinator records a grant the law requires (依法应与特定部门共享, Art 5 last paragraph)."""
    now = now.astimezone(UTC)
    await _require(conn, caller, "coordinator", now)
    if not legal_basis.strip():
        raise GovshareError("REASON_REQUIRED")
    return await grant_directly(
        conn,
        catalog,
        now=now,
        department=caller.department,
        actor=caller.key_id,
        consumer=consumer,
        resource=resource,
        items=items,
        purposes=purposes,
        valid_from=valid_from,
        valid_until=valid_until,
        legal_basis=legal_basis,
    )


async def grant_directly(
    conn,
    catalog: Catalog,
    *,
    now: datetime,
    department: str,
    actor: str,
    consumer: str,
    resource: str,
    items: list[str],
    purposes: list[str],
    valid_from: datetime,
    valid_until: datetime,
    row_scope: dict[str, list[str]] | None = None,
    masks: dict[str, str] | None = None,
    legal_basis: str | None = None,
) -> str:
    """A grant the coordinating authority makes without an application (a direct grant, or a legal-basis grant
    when ``legal_basis`` is given), with its process record (``granted`` or ``legal_basis_granted``, naming the
    consumer, resource and items); returns its id. ``recordLegalBasisGrant``, ``govshare grant create`` and the
    demo's grants are made here."""
    grant_id = await create_grant(
        conn,
        catalog,
        consumer=consumer,
        resource=resource,
        items=items,
        purposes=purposes,
        valid_from=valid_from,
        valid_until=valid_until,
        row_scope=row_scope,
        masks=masks,
        legal_basis=legal_basis,
        created_by=actor,
    )
    await record_step(
        conn,
        "legal_basis_granted" if legal_basis else "granted",
        at=now,
        department=department,
        actor=actor,
        grant_id=grant_id,
        reason=legal_basis,
        consumer=consumer,
        resource=resource,
        items=list(dict.fromkeys(items)),
    )
    return grant_id


async def grant_history(conn, catalog: Catalog, caller: Caller, grant_id: str) -> list:
    """The steps of a grant (and of the application it came from), for its parties, the coordinator and auditors."""
    row = (await conn.execute(select(grants).where(grants.c.id == grant_id))).first()
    if row is None:
        raise NotFoundError("GRANT_NOT_FOUND", grant=grant_id)
    provider = catalog.resources[row.resource].provider if row.resource in catalog.resources else None
    if caller.department not in (row.consumer, provider) and not {"coordinator", "auditor"} & set(caller.roles):
        raise NotFoundError("GRANT_NOT_FOUND", grant=grant_id)
    condition = process_records.c.grant_id == grant_id
    if row.application_id:
        condition = condition | (process_records.c.application_id == row.application_id)
    return (await conn.execute(select(process_records).where(condition).order_by(process_records.c.id))).all()
