"""Security staff accounts and their sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile);
a hash made with older parameters is replaced at the next good sign-in. After ``staff_max_failures``
failed sign-ins in a row an account is locked for ``staff_lockout_minutes``; an unknown user name costs
the same hashing time as a known one, so timing does not tell which exist. A session token is 256
random bits, sent only in a cookie (or a Bearer header for scripts) and stored only as its SHA-256;
each session carries its own CSRF token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from govshare.config import Settings
from govshare.errors import AuthError, GovshareError, NotFoundError
from govshare.platformdb import staff_accounts, staff_sessions

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("govshare: not a password of anyone")
USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Staff:
    username: str
    display_name: str
    csrf_token: str
    session_expires: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives times back without their offset (stored as UTC); PostgreSQL with it."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def create_account(conn, settings: Settings, username: str, password: str, display_name: str = "") -> None:
    if not USERNAME.match(username or ""):
        raise GovshareError("STAFF_BAD_USERNAME")
    if len(password) < settings.staff_min_password_length:
        raise GovshareError("STAFF_PASSWORD_WEAK", length=settings.staff_min_password_length)
    if (await conn.execute(select(staff_accounts.c.username).where(staff_accounts.c.username == username))).first():
        raise GovshareError("STAFF_EXISTS", username=username)
    await conn.execute(staff_accounts.insert().values(
        username=username, display_name=display_name or username, password_hash=_hasher.hash(password),
        failed_attempts=0, created_at=datetime.now(UTC)))


async def _account(conn, username: str):
    row = (await conn.execute(select(staff_accounts).where(staff_accounts.c.username == username))).first()
    if row is None:
        raise NotFoundError("STAFF_NOT_FOUND", username=username)
    return row


async def unlock(conn, username: str) -> None:
    await _account(conn, username)
    await conn.execute(staff_accounts.update().where(staff_accounts.c.username == username)
                       .values(failed_attempts=0, locked_until=None))


async def disable(conn, username: str) -> None:
    await _account(conn, username)
    now = datetime.now(UTC)
    await conn.execute(staff_accounts.update().where(staff_accounts.c.username == username).values(disabled_at=now))
    await conn.execute(staff_sessions.update().where(staff_sessions.c.username == username,
                                                     staff_sessions.c.ended_at.is_(None)).values(ended_at=now))


async def list_accounts(conn) -> list:
    return (await conn.execute(select(staff_accounts).order_by(staff_accounts.c.username))).all()


async def sign_in(conn, settings: Settings, username: str, password: str, now: datetime | None = None) -> tuple[str, Staff]:
    """Check the password and open a session: (session token, staff). Commit the caller's transaction
    even when this raises, so that a failed attempt is counted."""
    now = now or datetime.now(UTC)
    row = (await conn.execute(select(staff_accounts).where(staff_accounts.c.username == username))).first()
    if row is None or row.disabled_at is not None:
        try:
            _hasher.verify(_DUMMY_HASH, password)  # the same work as for a real account
        except VerificationError:
            pass
        raise AuthError("STAFF_SIGN_IN_FAILED")
    locked_until = _aware(row.locked_until)
    if locked_until is not None and locked_until > now:
        raise AuthError("STAFF_LOCKED", until=locked_until.astimezone().strftime("%Y-%m-%d %H:%M:%S %z"))
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        failures = row.failed_attempts + 1
        values: dict = {"failed_attempts": failures}
        if failures >= settings.staff_max_failures:
            values = {"failed_attempts": 0, "locked_until": now + timedelta(minutes=settings.staff_lockout_minutes)}
        await conn.execute(staff_accounts.update().where(staff_accounts.c.username == username).values(**values))
        raise AuthError("STAFF_SIGN_IN_FAILED") from None
    values = {"failed_attempts": 0, "locked_until": None}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    await conn.execute(staff_accounts.update().where(staff_accounts.c.username == username).values(**values))
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.staff_session_hours)
    await conn.execute(staff_sessions.insert().values(token_hash=_digest(token), username=username, csrf_token=csrf,
                                                      created_at=now, expires_at=expires))
    return token, Staff(username, row.display_name, csrf, expires)


async def session(conn, token: str | None, now: datetime | None = None) -> Staff | None:
    """The staff member a session token belongs to, or None (unknown, ended, expired, or account disabled)."""
    if not token:
        return None
    now = now or datetime.now(UTC)
    row = (await conn.execute(
        select(staff_sessions, staff_accounts.c.display_name, staff_accounts.c.disabled_at)
        .join(staff_accounts, staff_accounts.c.username == staff_sessions.c.username)
        .where(staff_sessions.c.token_hash == _digest(token))
    )).first()
    if row is None or row.ended_at is not None or row.disabled_at is not None or _aware(row.expires_at) <= now:
        return None
    return Staff(row.username, row.display_name, row.csrf_token, _aware(row.expires_at))


async def sign_out(conn, token: str) -> None:
    await conn.execute(staff_sessions.update().where(staff_sessions.c.token_hash == _digest(token),
                                                     staff_sessions.c.ended_at.is_(None))
                       .values(ended_at=datetime.now(UTC)))


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and secrets.compare_digest(a, b)
