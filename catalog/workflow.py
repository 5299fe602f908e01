"""The catalog kept by its departments (Art 12-15): a department submits its own entries, the coordinating authority
publishes or returns them, a published resource is retired with a reason.

draft → under_review → published | returned. The conformance check (Art 14) runs when a submission is sent for review
and again before it is published; its findings are stored with the submission, per resource and field: an ``error``
(the source lacks the table or a column, or a type does not fit) blocks publishing, a ``warning`` (the source could
not be reached) informs the review. Publishing and retiring each make a new whole catalog version (``store.publish``:
who, when, why, whose entries), which every process brings into force with its next check, as any catalog change.
Every step, and every refused step, is a process record (``audit.tables``, hash-chained).

One department's entries never touch another's: a submission names one department, may hold only that department's
resources and purposes, and is merged into the catalog in force by ``loader.load_entries`` with the rest kept as is.
Shared by the ``govshare catalog`` commands, the GraphQL mutations of department systems and the console.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from audit.chain import append, chain_heads
from catalog import store
from catalog.loader import load_entries
from catalog.model import Catalog, Resource, Status
from catalog.tables import catalog_submissions
from connectors.conformance import check_table
from govshare.clock import CHINA
from govshare.config import Settings
from govshare.errors import GovshareError, NotFoundError

OPEN = ("draft", "under_review")


@dataclass(frozen=True)
class Actor:
    """Who acts: a department's key or account (its roles), or the platform's operator on the command line, who acts
    for the department a file names (``operator``) and as the coordinating authority's office (``coordinator``)."""

    department: str
    name: str
    roles: tuple[str, ...] = ()
    operator: bool = False

    @property
    def coordinator(self) -> bool:
        return "coordinator" in self.roles

    def keeps(self, department: str) -> bool:
        """May keep ``department``'s catalog entries (submit, send, retire): its own, as its reviewer (a key) or as
        its catalog staff in the console (``catalog_editor``, admin/accounts.py)."""
        return self.operator or (
            self.department == department and bool({"reviewer", "catalog_editor"} & set(self.roles))
        )


@dataclass(frozen=True)
class Finding:
    stage: str  # submission | publication
    resource: str
    field: str
    code: str
    severity: str  # error: blocks publishing | warning: informs the review
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "stage": self.stage,
            "resource": self.resource,
            "field": self.field,
            "code": self.code,
            "severity": self.severity,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Submission:
    id: str
    department: str
    status: str
    changed: tuple[str, ...]
    base_version: int
    findings: tuple[Finding, ...]
    created_by: str
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str | None
    published_version: int | None
    source: str
    entries: dict[str, Any]

    @property
    def blocking(self) -> list[Finding]:
        """The errors of the latest check (they block publishing)."""
        latest = [f for f in self.findings if f.stage == "publication"] or list(self.findings)
        return [f for f in latest if f.severity == "error"]


def _submission(row: Any) -> Submission:
    return Submission(
        id=row.id,
        department=row.department,
        status=row.status,
        changed=tuple(row.changed),
        base_version=row.base_version,
        findings=tuple(Finding(**f) for f in row.findings),
        created_by=row.created_by,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        reason=row.reason,
        published_version=row.published_version,
        source=row.source,
        entries=dict(row.entries),
    )


# ---------------------------------------------------------------------------------------------------------------
# The conformance check (Art 14), per field

_FIELDS = {"missing_table": "table", "missing_column": "column", "wrong_type": "type"}


async def conformance(catalog: Catalog, codes: tuple[str, ...], settings: Settings, stage: str) -> list[Finding]:
    """Each resource of ``codes`` against its source: a missing table or column, a type that does not fit (errors),
    an unreachable source (a warning: an outage is not the entry's fault)."""

    async def one(resource: Resource) -> list[Finding]:
        url = settings.expand(catalog.departments[resource.provider].source)
        columns = {item.column: item.type for item in resource.items}
        by_column = {item.column: item.name for item in resource.items}
        found = []
        for mismatch in await check_table(url, resource.table, columns, timeout=settings.source_timeout_seconds):
            if mismatch.kind == "unreachable":
                field, severity = "department.source", "warning"
            elif mismatch.column is None:
                field, severity = "table", "error"
            else:
                item = by_column.get(mismatch.column, mismatch.column)
                field, severity = f"items[{item}].{_FIELDS.get(mismatch.kind, 'column')}", "error"
            code = "SOURCE_UNAVAILABLE" if mismatch.kind == "unreachable" else "SOURCE_MISMATCH"
            found.append(Finding(stage, resource.code, field, code, severity, mismatch.detail))
        return found

    results = await asyncio.gather(*(one(catalog.resources[code]) for code in codes))
    return [finding for found in results for finding in found]


# ---------------------------------------------------------------------------------------------------------------
# Steps


async def _record(
    conn: AsyncConnection, kind: str, actor: Actor, now: dt.datetime, reason: str | None = None, **detail: Any
) -> None:
    """One step of the catalog workflow, appended to the process records (hash-chained)."""
    await append(
        conn,
        "process",
        [
            dict(
                at=now.astimezone(dt.UTC),
                kind=kind,
                application_id=None,
                grant_id=None,
                department=actor.department,
                actor=actor.name,
                reason=reason,
                detail=detail,
            )
        ],
    )


async def _refused(engine: AsyncEngine, actor: Actor, now: dt.datetime, code: str, **params: Any) -> GovshareError:
    """A refused step, recorded in its own transaction (the step's own is rolled back by the refusal)."""
    async with engine.begin() as own:
        await _record(own, "refused_action", actor, now, code, step=params.pop("step", ""), **params)
    return GovshareError(code, **params)


async def serialised(conn: AsyncConnection) -> None:
    """Changes of the catalog in force one at a time, across processes and on both engines: the transaction first
    takes the write lock every process record takes (the process chain's head row), so a change that merged its
    department's entries into the catalog it read is never overtaken by another change made meanwhile."""
    await conn.execute(chain_heads.update().where(chain_heads.c.chain == "process").values(seq=chain_heads.c.seq))


def _database(url: str) -> tuple[str, ...]:
    """What a source URL reads: an SQLite file by its resolved path, a server's database by host, port and name."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return (url,)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return (backend, str(Path(parsed.database or "").resolve()) if parsed.database else ":memory:")
    host = (parsed.host or "localhost").lower()
    host = "localhost" if host in _LOOPBACK else host
    port = parsed.port or _DEFAULT_PORTS.get(backend, 0)
    return ("mysql" if backend == "mariadb" else backend, host, str(port), parsed.database or "")


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


async def _source_allowed(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    now: dt.datetime,
    current: Catalog,
    merged: Catalog,
    department: str,
) -> None:
    """A department's source is registered by the coordinating authority (with the department, or by the operator's
    load): a department's own key cannot move it, neither to another department's database nor to the platform's
    (the conformance check would read that database's schema for it, and publishing would serve its tables). No
    one's submission names the platform's own database."""
    source = merged.departments[department].source
    if _database(settings.expand(source)) == _database(settings.platform_url):
        raise await _refused(
            conn.engine, actor, now, "CATALOG_SOURCE_NOT_ALLOWED", step="submit", department=department
        )
    before = current.departments.get(department)
    if before is not None and before.source != source and not actor.operator:
        raise await _refused(conn.engine, actor, now, "CATALOG_SOURCE_NOT_YOURS", step="submit", department=department)


async def _in_force(conn: AsyncConnection) -> Catalog:
    catalog = await store.current(conn)
    if catalog is None:
        raise GovshareError("CATALOG_NOT_LOADED")
    return catalog


def _department_entries(catalog: Catalog, department: str) -> dict[str, Any]:
    # as stored (JSON: lists, not the model's tuples), so that entries compare equal to their stored form
    document = json.loads(json.dumps(catalog.to_document(), ensure_ascii=False))
    return {
        "department": next(d for d in document["departments"] if d["code"] == department),
        "purposes": [p for p in document["purposes"] if p["department"] == department],
        "resources": [r for r in document["resources"] if r["provider"] == department],
    }


def _changes(before: Catalog, after: Catalog, department: str) -> tuple[tuple[str, ...], bool]:
    """(codes of the department's resources new or changed, whether its department entry or purposes changed)."""
    old = _department_entries(before, department) if department in before.departments else {}
    new = _department_entries(after, department)
    old_resources = {r["code"]: r for r in old.get("resources", ())}
    changed = tuple(r["code"] for r in new["resources"] if old_resources.get(r["code"]) != r)
    header = (old.get("department"), old.get("purposes")) != (new["department"], new["purposes"])
    return changed, header


async def submit(
    conn: AsyncConnection,
    settings: Settings,
    actor: Actor,
    *,
    source: str,
    text: str,
    reason: str,
    now: dt.datetime,
    draft: bool = False,
    workbook: bytes | None = None,
) -> str:
    """A department's catalog file as a submission: TOML (``text``) or a workbook (``workbook``, the .xlsx's bytes;
    ``text`` is then ignored): validated against the catalog in force (a fault refuses it with every problem, a
    workbook's located at its cell as ``catalog load`` locates them), checked against its sources unless kept as a
    draft; returns its id. A workbook's department is kept as the TOML file it reads as (``workbook_toml``), which
    sending and approving read again."""
    current = await _in_force(conn)
    merged, departments, _ = load_entries(Path(source), current, text=None if workbook else text, data=workbook)
    if len(departments) != 1:
        raise GovshareError("CATALOG_ONE_DEPARTMENT", count=len(departments))
    (department,) = departments
    if workbook is not None:
        text = workbook_toml(source, workbook, department)
    if actor.operator:  # acting for the department the file names
        actor = replace(actor, department=department)
    # a new department is registered by the coordinating authority (its source, its first entries)
    new_department = department not in current.departments
    allowed = (actor.operator or actor.coordinator) if new_department else actor.keeps(department)
    if not allowed:
        raise await _refused(
            conn.engine, actor, now, "CATALOG_NOT_YOUR_DEPARTMENT", step="submit", department=department
        )
    open_now = await conn.scalar(
        select(func.count())
        .select_from(catalog_submissions)
        .where(
            catalog_submissions.c.department == department,
            catalog_submissions.c.status.in_(("draft", "under_review")),
        )
    )
    if (open_now or 0) >= settings.catalog_open_submission_limit:  # each waits in the coordinator's queue, up to 64 KiB
        raise await _refused(
            conn.engine,
            actor,
            now,
            "CATALOG_SUBMISSION_LIMIT_REACHED",
            step="submit",
            limit=settings.catalog_open_submission_limit,
        )
    await _source_allowed(conn, settings, actor, now, current, merged, department)
    changed, header = _changes(current, merged, department)
    if not changed and not header:
        raise GovshareError("CATALOG_NO_CHANGE", department=department)
    if (retired := _revived(current, changed)) is not None:
        raise await _refused(conn.engine, actor, now, "CATALOG_RESOURCE_RETIRED", step="submit", resource=retired)
    findings = (
        []
        if draft
        else await conformance(merged, _checked(merged, department, changed, header), settings, "submission")
    )
    submission_id = secrets.token_hex(6)
    await conn.execute(
        catalog_submissions.insert().values(
            id=submission_id,
            department=department,
            status="draft" if draft else "under_review",
            entries=_department_entries(merged, department),
            source=source[-200:],
            text=text,
            changed=list(changed),
            base_version=current.version,
            findings=[f.as_dict() for f in findings],
            created_by=actor.name,
            created_at=now,
            submitted_at=None if draft else now,
            reason=reason,
        )
    )
    await _record(
        conn,
        "catalog_drafted" if draft else "catalog_submitted",
        actor,
        now,
        reason,
        submission=submission_id,
        resources=list(changed),
        findings=len(findings),
        errors=sum(f.severity == "error" for f in findings),
    )
    return submission_id


def workbook_toml(source: str, workbook: bytes, department: str) -> str:
    """The department's entries of a valid workbook as the TOML file they read as (the same document)."""
    from catalog import xlsx  # openpyxl is imported only for a workbook

    read, _ = xlsx.read_documents(Path(source), workbook)
    (document,) = [d for d, _ in read if d.get("department", {}).get("code") == department]
    return tomli_w.dumps(_without_none(document))


def _without_none(value: Any) -> Any:
    """TOML has no null: an empty cell is an absent key, as in a TOML file."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


async def read(conn: AsyncConnection, submission_id: str) -> Submission:
    row = (await conn.execute(select(catalog_submissions).where(catalog_submissions.c.id == submission_id))).first()
    if row is None:
        raise NotFoundError("CATALOG_SUBMISSION_NOT_FOUND", submission=submission_id)
    return _submission(row)


async def listing(
    conn: AsyncConnection, *, department: str | None = None, status: str | None = None
) -> list[Submission]:
    query = select(catalog_submissions).order_by(catalog_submissions.c.created_at.desc(), catalog_submissions.c.id)
    if department is not None:
        query = query.where(catalog_submissions.c.department == department)
    if status is not None:
        query = query.where(catalog_submissions.c.status == status)
    return [_submission(row) for row in (await conn.execute(query)).all()]


def visible(actor: Actor, submission: Submission) -> bool:
    """A department sees its own submissions; the coordinating authority (and the operator) sees every one."""
    return actor.operator or actor.coordinator or actor.department == submission.department


async def _open(conn: AsyncConnection, actor: Actor, submission_id: str, now: dt.datetime, step: str) -> Submission:
    submission = await read(conn, submission_id)
    if not visible(actor, submission):  # another department's submission is not there for it
        raise await _refused(
            conn.engine, actor, now, "CATALOG_SUBMISSION_NOT_FOUND", step=step, submission=submission_id
        )
    return submission


async def send(
    conn: AsyncConnection, settings: Settings, actor: Actor, submission_id: str, *, now: dt.datetime
) -> None:
    """A draft sent for review: checked against the catalog in force and the sources now."""
    submission = await _open(conn, actor, submission_id, now, "send")
    if not actor.keeps(submission.department):
        raise await _refused(
            conn.engine, actor, now, "CATALOG_NOT_YOUR_DEPARTMENT", step="send", submission=submission_id
        )
    if submission.status != "draft":
        raise GovshareError("CATALOG_SUBMISSION_STATE", submission=submission_id, status=submission.status)
    merged, changed, header, _ = await _recheck(conn, submission)
    checked = _checked(merged, submission.department, changed, header)
    findings = await conformance(merged, checked, settings, "submission")
    await conn.execute(
        catalog_submissions.update()
        .where(catalog_submissions.c.id == submission_id, catalog_submissions.c.status == "draft")
        .values(
            status="under_review", submitted_at=now, findings=[f.as_dict() for f in findings], changed=list(changed)
        )
    )
    await _record(
        conn, "catalog_submitted", actor, now, submission.reason, submission=submission_id, resources=list(changed)
    )


async def _recheck(conn: AsyncConnection, submission: Submission) -> tuple[Catalog, tuple[str, ...], bool, int]:
    """The submission merged into the catalog in force now (validated again), and what it changes there. Refused
    when one of its resources changed in force since it was submitted (it would silently undo that change)."""
    current = await _in_force(conn)
    merged, _, _ = load_entries(Path(submission.source), current, text=await _text(conn, submission.id))
    if current.version != submission.base_version:
        base = Catalog.from_document(await store.document(conn, submission.base_version))
        for code in (r["code"] for r in submission.entries["resources"]):
            if _entry(base, code) != _entry(current, code):
                raise GovshareError("CATALOG_SUBMISSION_STALE", submission=submission.id, resource=code)
        if base.departments.get(submission.department) != current.departments.get(submission.department):
            # its department entry (the source) changed meanwhile: the submission would put the old one back
            raise GovshareError("CATALOG_SUBMISSION_STALE", submission=submission.id, resource=submission.department)
    changed, header = _changes(current, merged, submission.department)
    if not changed and not header:
        raise GovshareError("CATALOG_NO_CHANGE", department=submission.department)
    if (retired := _revived(current, changed)) is not None:  # retired since it was submitted
        raise GovshareError("CATALOG_RESOURCE_RETIRED", resource=retired)
    return merged, changed, header, current.version


def _revived(current: Catalog, changed: tuple[str, ...]) -> str | None:
    """A changed resource that is retired in force: publishing it again would revive every grant its retirement
    stopped (the grants stay in the platform DB, the decision refuses them only while it is retired). A retired
    resource stays retired (kept, never deleted); what replaces it is a new resource, applied for anew."""
    return next((c for c in changed if c in current.resources and current.resources[c].status == Status.RETIRED), None)


def _checked(catalog: Catalog, department: str, changed: tuple[str, ...], header: bool) -> tuple[str, ...]:
    """The resources the conformance check reads: those changed, and every one of the department's when its
    department entry changed (its source may be another database now)."""
    if not header:
        return changed
    return tuple(sorted({*changed, *(r.code for r in catalog.published() if r.provider == department)}))


def _entry(catalog: Catalog, code: str) -> Any:
    resource = catalog.resources.get(code)
    return None if resource is None else Catalog(resources={code: resource}).to_document()["resources"][0]


async def _text(conn: AsyncConnection, submission_id: str) -> str:
    row = (
        await conn.execute(select(catalog_submissions.c.text).where(catalog_submissions.c.id == submission_id))
    ).one()
    return str(row.text)


async def approve(
    conn: AsyncConnection, settings: Settings, actor: Actor, submission_id: str, *, reason: str, now: dt.datetime
) -> int:
    """The coordinating authority publishes a submission under review: checked again against the catalog in force
    and its sources (an error refuses it, ``CATALOG_NONCONFORMING``, and stays among its findings); returns the new
    catalog version. The checks read in the caller's transaction; the change is written in one of its own that takes
    the catalog's write lock first (``serialised``), so nothing written meanwhile is undone."""
    submission = await _open(conn, actor, submission_id, now, "approve")
    if not actor.coordinator:
        raise await _refused(
            conn.engine, actor, now, "FORBIDDEN", step="approve", submission=submission_id, role="coordinator"
        )
    # Its own department's entries are reviewed by someone else: not by the key that made them, nor by another key of
    # that department holding the coordinator role (the console's staff and the operator are the coordinating office).
    if submission.created_by == actor.name or (not actor.operator and actor.department == submission.department):
        raise await _refused(
            conn.engine, actor, now, "CATALOG_OWN_SUBMISSION", step="approve", submission=submission_id
        )
    if submission.status != "under_review":
        raise GovshareError("CATALOG_SUBMISSION_STATE", submission=submission_id, status=submission.status)
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    merged, changed, header, read_version = await _recheck(conn, submission)
    checked = _checked(merged, submission.department, changed, header)
    findings = await conformance(merged, checked, settings, "publication")
    kept = [f for f in submission.findings if f.stage == "submission"]
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        async with conn.engine.begin() as own:  # the findings are part of the review, whatever happens here
            await own.execute(
                catalog_submissions.update()
                .where(catalog_submissions.c.id == submission_id)
                .values(findings=[f.as_dict() for f in [*kept, *findings]])
            )
            await _record(
                own, "refused_action", actor, now, "CATALOG_NONCONFORMING", step="approve", submission=submission_id
            )
        raise GovshareError("CATALOG_NONCONFORMING", submission=submission_id, count=len(errors))
    today = now.astimezone(CHINA).date().isoformat()
    resources = dict(merged.resources)
    for code in changed:
        resource = resources[code]
        resources[code] = replace(resource, status=Status.PUBLISHED, publish_date=resource.publish_date or today)
    published = replace(merged, resources=resources)
    async with conn.engine.begin() as own:
        await serialised(own)
        if (await _in_force(own)).version != read_version:
            raise GovshareError("CATALOG_CHANGED_MEANWHILE")
        version = await store.publish(
            own,
            published,
            source=f"submission {submission_id}",
            loaded_by=actor.name,
            change="publish",
            reason=reason,
            department=submission.department,
            submission_id=submission_id,
            at=now,
        )
        done = await own.execute(
            catalog_submissions.update()
            .where(catalog_submissions.c.id == submission_id, catalog_submissions.c.status == "under_review")
            .values(
                status="published",
                decided_by=actor.name,
                decided_at=now,
                reason=reason,
                published_version=version,
                changed=list(changed),
                findings=[f.as_dict() for f in [*kept, *findings]],
            )
        )
        if done.rowcount != 1:  # answered meanwhile (returned, or published by another reviewer)
            raise GovshareError("CATALOG_CHANGED_MEANWHILE")
        await _record(
            own,
            "catalog_published",
            actor,
            now,
            reason,
            submission=submission_id,
            resources=list(changed),
            version=version,
        )
    return version


async def return_(conn: AsyncConnection, actor: Actor, submission_id: str, *, reason: str, now: dt.datetime) -> None:
    """The coordinating authority returns a submission under review to its department, with a reason."""
    submission = await _open(conn, actor, submission_id, now, "return")
    if not actor.coordinator:
        raise await _refused(
            conn.engine, actor, now, "FORBIDDEN", step="return", submission=submission_id, role="coordinator"
        )
    if submission.status != "under_review":
        raise GovshareError("CATALOG_SUBMISSION_STATE", submission=submission_id, status=submission.status)
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    await conn.execute(
        catalog_submissions.update()
        .where(catalog_submissions.c.id == submission_id, catalog_submissions.c.status == "under_review")
        .values(status="returned", decided_by=actor.name, decided_at=now, reason=reason)
    )
    await _record(
        conn, "catalog_returned", actor, now, reason, submission=submission_id, resources=list(submission.changed)
    )


async def retire(conn: AsyncConnection, actor: Actor, code: str, *, reason: str, now: dt.datetime) -> int:
    """A published resource retired by its provider (or the coordinating authority), with a reason: a new catalog
    version in which it is ``retired`` (kept, never deleted). It leaves the schema with the next snapshot, and no
    grant on it is decided allowed any more (policies/engine.py: RESOURCE_RETIRED). Returns the version."""
    current = await _in_force(conn)
    resource = current.resources.get(code)
    if resource is None:
        raise NotFoundError("RESOURCE_NOT_FOUND", resource=code)
    if not (actor.keeps(resource.provider) or actor.coordinator):
        raise await _refused(conn.engine, actor, now, "CATALOG_NOT_YOUR_RESOURCE", step="retire", resource=code)
    if resource.status != Status.PUBLISHED:
        raise GovshareError("CATALOG_NOT_PUBLISHED", resource=code, status=resource.status.value)
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    retired = replace(current, resources={**current.resources, code: replace(resource, status=Status.RETIRED)})
    async with conn.engine.begin() as own:  # written under the catalog's write lock (see approve)
        await serialised(own)
        if (await _in_force(own)).version != current.version:
            raise GovshareError("CATALOG_CHANGED_MEANWHILE")
        version = await store.publish(
            own,
            retired,
            source=f"retire {code}",
            loaded_by=actor.name,
            change="retire",
            reason=reason,
            department=resource.provider,
            at=now,
        )
        await _record(own, "catalog_retired", actor, now, reason, resources=[code], version=version)
    return version


async def record_load(
    conn: AsyncConnection, actor: Actor, *, version: int, departments: set[str], reason: str, now: dt.datetime
) -> None:
    """The operator's direct load (``govshare catalog load``) as a process record too."""
    await _record(conn, "catalog_loaded", actor, now, reason, version=version, departments=sorted(departments))


async def submission_diff(conn: AsyncConnection, submission: Submission) -> list[store.FieldChange]:
    """What the submission changes, field by field, against its department's entries in the version it was made on."""
    base = (
        Catalog.from_document(await store.document(conn, submission.base_version)) if submission.base_version else None
    )
    before = (
        _department_entries(base, submission.department) if base and submission.department in base.departments else {}
    )

    def whole(entries: dict[str, Any]) -> dict[str, Any]:
        return {
            "departments": [entries["department"]] if entries.get("department") else [],
            "purposes": entries.get("purposes", []),
            "resources": entries.get("resources", []),
        }

    return store.diff(store.passwords_hidden(whole(before)), store.passwords_hidden(whole(submission.entries)))
