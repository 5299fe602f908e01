"""Application keys: who is asking. A key maps to a department and an application; only its hash is stored."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, Boolean, Column, String, Table, false, select

from govshare.errors import AuthError, ConfigError, GovshareError, NotFoundError
from govshare.platformdb import UTCDateTime, bump_policy_version, metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("department", String(40), nullable=False),
    Column("application", String(100), nullable=False),
    Column("roles", JSON, nullable=False),  # govshare.keys.ROLES
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    # The key may send only the documents registered for its application (policies/trusted.py).
    Column("trusted_documents_only", Boolean, nullable=False, server_default=false()),
)

PREFIX = "gs_"


# What a key may do besides reading data under the policies (every key may do that).
# subject_service: a service hall answering a person or an enterprise who looked at their data (subjectAccesses).
ROLES = ("applicant", "reviewer", "coordinator", "auditor", "subject_service")
DEFAULT_ROLES = ("applicant", "reviewer")


@dataclass(frozen=True)
class Caller:
    key_id: str
    department: str
    application: str
    roles: tuple[str, ...] = DEFAULT_ROLES
    trusted_documents_only: bool = False


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(
    conn,
    *,
    department: str,
    application: str,
    departments: set[str] | dict,
    roles: tuple[str, ...] = DEFAULT_ROLES,
    trusted_documents_only: bool = False,
) -> tuple[str, str]:
    """Returns (key id, key). The key is shown once and never stored."""
    if department not in departments:
        raise NotFoundError("DEPARTMENT_NOT_FOUND", department=department)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise GovshareError("ROLE_UNKNOWN", role=", ".join(unknown), roles=", ".join(ROLES))
    if not application.strip():
        raise GovshareError("BAD_REQUEST", detail="the application needs a name")
    key_id = secrets.token_hex(4)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            key_hash=hash_key(key),
            department=department,
            application=application,
            roles=list(roles),
            created_at=datetime.now(UTC),
            trusted_documents_only=trusted_documents_only,
        )
    )
    return key_id, key


async def revoke_key(conn, key_id: str) -> None:
    result = await conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        exists = (await conn.execute(select(api_keys.c.id).where(api_keys.c.id == key_id))).first()
        if exists:
            raise GovshareError("KEY_ALREADY_REVOKED", key=key_id)
        raise NotFoundError("KEY_NOT_FOUND", key=key_id)
    await bump_policy_version(conn)  # every server process drops the keys it has seen (server.Runtime)


async def authenticate(conn, authorization: str | None) -> Caller:
    """The caller named by an ``Authorization: Bearer <key>`` header, or AuthError."""
    if not authorization:
        raise AuthError("UNAUTHENTICATED")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("UNAUTHENTICATED")
    row = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == hash_key(key.strip())))).first()
    if row is None:
        raise AuthError("KEY_INVALID")
    if row.revoked_at is not None:
        raise AuthError("KEY_REVOKED")
    return Caller(
        key_id=row.id,
        department=row.department,
        application=row.application,
        roles=tuple(row.roles),
        trusted_documents_only=bool(row.trusted_documents_only),
    )


def platform_secret(path: Path, *, create: bool = True, name: str = "pseudonym secret") -> bytes:
    """The 32-byte secret in ``path``, created (readable by its owner only) when the file does not exist and
    ``create`` allows it; otherwise a missing file is a ConfigError (production: every process of a platform must
    read the same secret, so none may make one of its own)."""
    if not path.exists() and not create:
        raise ConfigError(
            f"{path} does not exist: production needs the platform's {name} (32 random "
            f"bytes, e.g. `head -c 32 /dev/urandom > {path}`), the same file for every process"
        )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole beside it, then linked in place: a process starting at the same moment reads the whole
        # secret or makes its own draft, and the first link wins (link fails on an existing name).
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            with open(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
                file.write(secrets.token_bytes(32))
            os.link(draft, path)
        except FileExistsError:  # another process made it first
            pass
        finally:
            draft.unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) < 32:
        raise ConfigError(f"{path} holds {len(secret)} bytes; a platform secret needs 32")
    return secret
