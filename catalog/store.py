"""The catalog in force: every change is a new whole version in the platform database (who, when, why, which
department's entries); the newest is in force, and two versions compare field by field (``diff``).

Beside its whole document, a version records the entries it changed from the version before it (``catalog_changes``,
revision 0013), so that a process holding one version reads the next by its changes alone (``current``'s
``previous``): a change to one resource of a city's catalog is one entry read, not the document of 10,000."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog.model import Catalog, Change, changes
from govshare.errors import NotFoundError
from govshare.platformdb import UTCDateTime, metadata

# Every catalog loaded, whole; the latest is in force.
catalog_versions = Table(
    "catalog_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("source", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("document", JSON, nullable=False),
    # Revision 0005: what the change was (load | publish | retire; empty on versions loaded before), why, whose
    # entries it changed (empty: every department's, a whole catalog) and the submission it published.
    Column("change", String(20)),
    Column("reason", Text),
    Column("department", String(40)),
    Column("submission_id", String(16)),
)

# Revision 0013: the versions whose changes are recorded, each against the version that was the newest when it was
# published (``changes_from``). A version without one (the first, those before the revision, one with an entry moved)
# is read whole. A table of its own, not a column after ``document``: SQLite would read a whole document to reach it.
catalog_change_sets = Table(
    "catalog_change_sets",
    metadata,
    Column("version", Integer, ForeignKey("catalog_versions.version"), primary_key=True, autoincrement=False),
    Column("changes_from", Integer, nullable=False),
)

# Revision 0013: the entries a version changed from its ``changes_from`` version, in the order they apply (``seq``):
# the entry as the version's document holds it, or none for an entry gone (catalog.model ``Catalog.following``).
catalog_changes = Table(
    "catalog_changes",
    metadata,
    Column("version", Integer, ForeignKey("catalog_versions.version"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(20), nullable=False),  # department | purpose | resource
    Column("code", String(200), nullable=False),
    Column("entry", JSON),
)


def digest(catalog: Catalog) -> str:
    canonical = json.dumps(catalog.to_document(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def publish(
    conn: AsyncConnection,
    catalog: Catalog,
    *,
    source: str,
    loaded_by: str,
    change: str = "load",
    reason: str | None = None,
    department: str | None = None,
    submission_id: str | None = None,
    at: datetime | None = None,
) -> int:
    """Record ``catalog`` as the catalog in force; returns its version. The entries it changes from the newest version
    are recorded beside it (against ``catalog.loaded`` when it was read from that version, else that version read
    whole), so that a reader holding the newest version reads this one by them."""
    newest = (await conn.execute(select(func.max(catalog_versions.c.version)))).scalar()
    found: list[Change] | None = None
    if newest is not None:
        base = catalog.loaded
        if base is None or base.version != newest:
            read = await _read(conn, newest)
            base = read.loaded if read is not None else None
        found = changes(base, catalog) if base is not None else None
    result = await conn.execute(
        catalog_versions.insert().values(
            loaded_at=(at or datetime.now(UTC)).astimezone(UTC),
            loaded_by=loaded_by,
            source=source,
            digest=digest(catalog),
            document=catalog.to_document(),
            change=change,
            reason=reason,
            department=department,
            submission_id=submission_id,
        )
    )
    key = result.inserted_primary_key
    if key is None:  # every dialect we run on returns it for an autoincrement key
        raise RuntimeError("the database returned no version number for the catalog")
    version = int(key[0])
    if found is not None:
        await conn.execute(catalog_change_sets.insert().values(version=version, changes_from=newest))
    if found:
        await conn.execute(
            catalog_changes.insert(),
            [
                {"version": version, "seq": seq, "kind": kind, "code": code, "entry": entry}
                for seq, (kind, code, entry) in enumerate(found)
            ],
        )
    return version


async def _read(conn: AsyncConnection, version: int) -> Catalog | None:
    document = (
        await conn.execute(select(catalog_versions.c.document).where(catalog_versions.c.version == version))
    ).scalar()
    return Catalog.from_document(document, version=version) if document is not None else None


async def current(conn: AsyncConnection, previous: Catalog | None = None) -> Catalog | None:
    """The catalog in force. Following ``previous`` (a catalog read from a version before, the one in force), the
    versions since are read by the changes each recorded, when each was recorded against the one before it (none
    skipped, none published meanwhile against an older one): the entries not changed are the objects ``previous``
    was read as (``Catalog.following``), so a change to one resource of a city's catalog reads one entry, and the
    schema follows it without comparing every other one. Otherwise the newest document is read whole, taking the
    resources of entries equal to those of ``previous``'s version as they are (``Catalog.from_document``'s
    ``before``; a version is never changed once recorded)."""
    loaded = previous.loaded if previous is not None else None
    if loaded is not None:
        since = (
            (
                await conn.execute(
                    select(catalog_versions.c.version)
                    .where(catalog_versions.c.version >= loaded.version)
                    .order_by(catalog_versions.c.version)
                )
            )
            .scalars()
            .all()
        )
        sets = dict(
            (
                await conn.execute(
                    select(catalog_change_sets.c.version, catalog_change_sets.c.changes_from).where(
                        catalog_change_sets.c.version > loaded.version
                    )
                )
            ).all()
        )
        chained = bool(since) and since[0] == loaded.version
        for before, after in itertools.pairwise(since):
            chained = chained and sets.get(after) == before
        if chained:
            newest = since[-1]
            rows = (
                await conn.execute(
                    select(catalog_changes.c.kind, catalog_changes.c.code, catalog_changes.c.entry)
                    .where(catalog_changes.c.version > loaded.version, catalog_changes.c.version <= newest)
                    .order_by(catalog_changes.c.version, catalog_changes.c.seq)
                )
            ).all()
            return Catalog.following(loaded, newest, [(r.kind, r.code, r.entry) for r in rows])
    row = (
        await conn.execute(
            select(catalog_versions.c.version, catalog_versions.c.document)
            .order_by(catalog_versions.c.version.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    before = None
    if loaded is not None and loaded.version != row.version:
        earlier = (
            await conn.execute(select(catalog_versions.c.document).where(catalog_versions.c.version == loaded.version))
        ).scalar()
        before = (earlier, loaded.resources) if earlier is not None else None
    return Catalog.from_document(row.document, version=row.version, before=before)


@dataclass(frozen=True)
class Version:
    """One catalog version: who made it, when, why, what kind of change, and whose entries it changed."""

    version: int
    at: datetime
    by: str
    source: str
    change: str
    reason: str
    department: str
    submission_id: str


async def versions(conn: AsyncConnection, resource: str | None = None) -> list[Version]:
    """Every catalog version, newest first; with ``resource``, those in which that resource changed (its first
    appearance included)."""
    columns = [
        catalog_versions.c.version,
        catalog_versions.c.loaded_at,
        catalog_versions.c.loaded_by,
        catalog_versions.c.source,
        catalog_versions.c.change,
        catalog_versions.c.reason,
        catalog_versions.c.department,
        catalog_versions.c.submission_id,
    ]
    if resource is not None:
        columns.append(catalog_versions.c.document)
    rows = (await conn.execute(select(*columns).order_by(catalog_versions.c.version))).all()
    found: list[Version] = []
    previous: dict[str, Any] | None = None
    for row in rows:
        if resource is not None:
            entry = _resources(row.document).get(resource)
            if entry is None or entry == previous:
                previous = entry
                continue
            previous = entry
        found.append(
            Version(
                row.version,
                row.loaded_at,
                row.loaded_by,
                row.source,
                row.change or "load",
                row.reason or "",
                row.department or "",
                row.submission_id or "",
            )
        )
    return found[::-1]


async def document(conn: AsyncConnection, version: int) -> dict[str, Any]:
    row = (await conn.execute(select(catalog_versions.c.document).where(catalog_versions.c.version == version))).first()
    if row is None:
        raise NotFoundError("CATALOG_VERSION_NOT_FOUND", version=version)
    return dict(row.document)


@dataclass(frozen=True)
class FieldChange:
    """One field of one entry that differs between two versions (``before`` None: added; ``after`` None: removed)."""

    entry: str  # resource:police.person | department:police | purpose:police.case-investigation
    field: str  # name, items[idNumber].label, status, ... ("" for the whole entry)
    before: Any
    after: Any


def _resources(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in doc.get("resources", ())}


def _fields(prefix: str, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """Field-level differences of two values: tables by key, lists of named tables (items, links) by name."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            found += _fields(f"{prefix}.{key}" if prefix else key, before.get(key), after.get(key))
        return found
    named = (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(x, dict) and "name" in x for x in [*before, *after])
        and (before or after)
    )
    if named:
        old = {x["name"]: x for x in before}
        new = {x["name"]: x for x in after}
        found = []
        for name in [*old, *(n for n in new if n not in old)]:
            found += _fields(f"{prefix}[{name}]", old.get(name), new.get(name))
        if not found and [x["name"] for x in before] != [x["name"] for x in after]:
            found.append((f"{prefix}.order", [x["name"] for x in before], [x["name"] for x in after]))
        return found
    return [(prefix, before, after)]


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """Every field of every department, purpose and resource entry that differs from ``before`` to ``after``."""
    changes: list[FieldChange] = []
    for kind, key in (("department", "departments"), ("purpose", "purposes"), ("resource", "resources")):
        old = {e["code"]: e for e in before.get(key, ())}
        new = {e["code"]: e for e in after.get(key, ())}
        for code in sorted(set(old) | set(new)):
            if code not in old or code not in new:
                changes.append(FieldChange(f"{kind}:{code}", "", old.get(code), new.get(code)))
                continue
            changes += [FieldChange(f"{kind}:{code}", f, a, b) for f, a, b in _fields("", old[code], new[code])]
    return changes


def without_password(url: str) -> str:
    """A source URL as it is shown (a workbook, the catalog's diff): a password in it written as ``***`` (a workbook
    travels between departments; the loader refuses ``***`` back, so that it is written in again rather than lost).
    Up to the URL's last ``@``: a password may hold one; and a password given as a query parameter (``?password=``,
    which the PostgreSQL and MySQL drivers read too)."""
    return _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))


_PASSWORD = re.compile(r"^([a-z0-9+]+://[^:/@]*:).*@")
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pwd)=)[^&#]*", re.IGNORECASE)


def department_view(document: dict[str, Any], department: str | None) -> dict[str, Any]:
    """A version as one department may read it: its own department's entries (``None``, the coordinating authority:
    every department's), sources without their passwords. Another department's entries carry its database's
    address, tables and columns, and in production resources the reader's view hides (README "production")."""
    shown = passwords_hidden(document)
    if department is None:
        return shown
    return {
        "departments": [d for d in shown.get("departments", ()) if d.get("code") == department],
        "purposes": [p for p in shown.get("purposes", ()) if p.get("department") == department],
        "resources": [r for r in shown.get("resources", ()) if r.get("provider") == department],
    }


def versions_of(versions: list[Version], department: str | None) -> list[Version]:
    """The versions one department may see: those of its own changes and the whole-catalog loads (``None``: all)."""
    return list(versions) if department is None else [v for v in versions if v.department in ("", department)]


def passwords_hidden(document: dict[str, Any]) -> dict[str, Any]:
    """A version's document with each department's source ``without_password`` (what the console shows)."""
    departments = [
        {**d, "source": without_password(d["source"])} if d.get("source") else d
        for d in document.get("departments", ())
    ]
    return {**document, "departments": departments}
