"""Trusted documents (safelisting): the GraphQL documents an application registered, and the rule that a key
restricted to them sends nothing else.

A document is identified by the SHA-256 of its exact text (UTF-8, lower-case hex), the id GraphQL over HTTP's
persisted documents (``sha256:<hex>``) and Apollo's persisted queries (``sha256Hash``) use: the text is not
normalised, so a document whose whitespace changed is another document. Documents belong to an application (its
department and name, as a key names them), so a key replacing another keeps them; whether a key is restricted to
them is the key's (``api_keys.trusted_documents_only``) or the platform's (``trusted_documents_required``).
Registering, withdrawing and restricting bump the policy version (every process reloads the registered set into its
snapshot; a request reads it there, never the database) and are process records (who, when, why).

GraphQL itself (is a document valid against the schema?) is the caller's: the command checks a document with
``schema.documents`` before it registers it here. May import what ``policies`` may.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.chain import append
from govshare.errors import GovshareError, NotFoundError
from govshare.i18n import Phrase
from govshare.keys import Caller, api_keys
from govshare.platformdb import bump_policy_version
from policies.tables import trusted_documents

_HEX = re.compile(r"[0-9a-f]{64}")
PREFIX = "sha256:"


def document_id(text: str) -> str:
    """The id of a document: the SHA-256 of its exact text (a lone surrogate, which no registered text holds,
    still hashes, to an id that is registered nowhere)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def parse_document_id(value: str) -> str:
    """The SHA-256 a sent id names: ``sha256:<64 hex>`` (GraphQL over HTTP) or the bare 64 hex digits (Apollo,
    Relay); DOCUMENT_ID_INVALID for anything else (another prefix, an MD5 id)."""
    digest = value.removeprefix(PREFIX).lower()
    if not _HEX.fullmatch(digest):
        raise GovshareError("DOCUMENT_ID_INVALID")
    return digest


@dataclass(frozen=True)
class TrustedDocuments:
    """The registered documents in force, by (department, application): id -> text. Part of a server's
    snapshot (server.Snapshot), so a request looks them up without the database."""

    texts: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)

    def text(self, department: str, application: str, digest: str) -> str | None:
        return self.texts.get((department, application), {}).get(digest)


async def load(conn: AsyncConnection) -> TrustedDocuments:
    """Every document registered and not withdrawn."""
    rows = (
        await conn.execute(
            select(
                trusted_documents.c.department,
                trusted_documents.c.application,
                trusted_documents.c.sha256,
                trusted_documents.c.text,
            ).where(trusted_documents.c.withdrawn_at.is_(None))
        )
    ).all()
    texts: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        texts.setdefault((row.department, row.application), {})[row.sha256] = row.text
    return TrustedDocuments(texts)


def admit(
    documents: TrustedDocuments, caller: Caller, *, required: bool, query: str | None, document_id_sent: str | None
) -> str:
    """The text ``caller`` may run for a request carrying ``query`` and/or ``document_id_sent``, or a refusal:

    - an id alone: the document the caller's application registered under it (any key may send one);
    - an id with a text: the text, when it is the one the id names (DOCUMENT_ID_MISMATCH otherwise, so a registered
      id never carries another text past the check);
    - a key restricted to trusted documents (``required``: the platform's setting or the key's own flag) runs only a
      registered text. Anything not registered (or withdrawn) for the caller's application: DOCUMENT_NOT_TRUSTED.
    """
    restricted = required or caller.trusted_documents_only
    if query is None:
        if document_id_sent is None:
            raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_NOT_JSON_OBJECT"))
        digest = parse_document_id(document_id_sent)
        text = documents.text(caller.department, caller.application, digest)
        if text is None:
            raise _not_trusted(digest)
        return text
    if document_id_sent is None and not restricted:
        return query
    digest = document_id(query)
    if document_id_sent is not None and parse_document_id(document_id_sent) != digest:
        raise GovshareError("DOCUMENT_ID_MISMATCH", id=PREFIX + digest)
    if restricted and documents.text(caller.department, caller.application, digest) is None:
        raise _not_trusted(digest)
    return query


def _not_trusted(digest: str) -> GovshareError:
    return GovshareError(
        "DOCUMENT_NOT_TRUSTED", http_status=403, extensions={"documentId": PREFIX + digest}, id=PREFIX + digest
    )


@dataclass(frozen=True)
class Registered:
    """A document registered for an application, as listed."""

    id: str  # sha256:<hex>
    name: str
    operations: tuple[str, ...]
    registered_at: datetime
    registered_by: str


async def application_of(conn: AsyncConnection, key_id: str) -> tuple[str, str]:
    """(department, application) of a key, revoked or not (KEY_NOT_FOUND)."""
    row = (
        await conn.execute(select(api_keys.c.department, api_keys.c.application).where(api_keys.c.id == key_id))
    ).first()
    if row is None:
        raise NotFoundError("KEY_NOT_FOUND", key=key_id)
    return str(row.department), str(row.application)


async def _record(
    conn: AsyncConnection, kind: str, *, at: datetime, department: str, actor: str, reason: str | None, **detail: object
) -> None:
    await append(
        conn,
        "process",
        [
            dict(
                at=at.astimezone(UTC),
                kind=kind,
                application_id=None,
                grant_id=None,
                department=department,
                actor=actor,
                reason=reason,
                detail=detail,
            )
        ],
    )


async def register(
    conn: AsyncConnection,
    *,
    department: str,
    application: str,
    name: str,
    text: str,
    operations: tuple[str, ...],
    actor: str,
    reason: str | None,
    now: datetime,
) -> tuple[str, bool]:
    """Register ``text`` (already checked against the schema by the caller) for the application: (its id, whether
    it was new). A document already registered and not withdrawn is left as it is (no new record)."""
    digest = document_id(text)
    in_force = (
        await conn.execute(
            select(trusted_documents.c.id).where(
                trusted_documents.c.department == department,
                trusted_documents.c.application == application,
                trusted_documents.c.sha256 == digest,
                trusted_documents.c.withdrawn_at.is_(None),
            )
        )
    ).first()
    if in_force is not None:
        return PREFIX + digest, False
    await conn.execute(
        trusted_documents.insert().values(
            department=department,
            application=application,
            sha256=digest,
            name=name,
            text=text,
            operations=list(operations),
            registered_at=now,
            registered_by=actor,
        )
    )
    await _record(
        conn,
        "trusted_document_registered",
        at=now,
        department=department,
        actor=actor,
        reason=reason,
        application=application,
        document=PREFIX + digest,
        name=name,
        operations=list(operations),
    )
    await bump_policy_version(conn)
    return PREFIX + digest, True


async def withdraw(
    conn: AsyncConnection, *, department: str, application: str, document: str, actor: str, reason: str, now: datetime
) -> None:
    """Withdraw a registered document: from the next snapshot on no key of the application may send it."""
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    digest = parse_document_id(document)
    result = await conn.execute(
        trusted_documents.update()
        .where(
            trusted_documents.c.department == department,
            trusted_documents.c.application == application,
            trusted_documents.c.sha256 == digest,
            trusted_documents.c.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=now, withdrawn_by=actor)
    )
    if result.rowcount != 1:
        raise NotFoundError("TRUSTED_DOCUMENT_NOT_FOUND", document=PREFIX + digest, application=application)
    await _record(
        conn,
        "trusted_document_withdrawn",
        at=now,
        department=department,
        actor=actor,
        reason=reason,
        application=application,
        document=PREFIX + digest,
    )
    await bump_policy_version(conn)


async def registered(conn: AsyncConnection, *, department: str, application: str) -> list[Registered]:
    """The application's documents in force, oldest first."""
    rows = (
        await conn.execute(
            select(trusted_documents)
            .where(
                trusted_documents.c.department == department,
                trusted_documents.c.application == application,
                trusted_documents.c.withdrawn_at.is_(None),
            )
            .order_by(trusted_documents.c.id)
        )
    ).all()
    return [
        Registered(PREFIX + row.sha256, row.name, tuple(row.operations), row.registered_at, row.registered_by)
        for row in rows
    ]


async def restrict(
    conn: AsyncConnection, key_id: str, *, only: bool, actor: str, reason: str | None, now: datetime
) -> bool:
    """Restrict a key to its application's trusted documents (``only``) or lift that; whether anything changed."""
    department, application = await application_of(conn, key_id)
    result = await conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.trusted_documents_only == (not only))
        .values(trusted_documents_only=only)
    )
    if result.rowcount != 1:
        return False
    await _record(
        conn,
        "trusted_documents_only" if only else "trusted_documents_lifted",
        at=now,
        department=department,
        actor=actor,
        reason=reason,
        application=application,
        key=key_id,
    )
    await bump_policy_version(conn)  # every process drops the keys it has seen, and with them the old flag
    return True
