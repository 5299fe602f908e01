"""Security staff accounts and their sessions.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile);
a hash made with older parameters is replaced at the next good sign-in. Hashing runs in a pool of
``HASH_WORKERS`` threads (argon2-cffi releases the GIL), never on the event loop, so sign-ins queue
there while every other request is answered. After ``staff_max_failures`` failed sign-ins in a row an
account is locked for ``staff_lockout_minutes``: each attempt is counted in the database, in one
statement, before its password is checked, so however many arrive at once at most ``staff_max_failures``
checks run before the lock. An unknown user name costs the same hashing time as a known one, so timing
does not tell which exist. A session token is 256 random bits, sent only in a cookie (or a Bearer header
for scripts) and stored only as its SHA-256; each session carries its own CSRF token.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, case, literal, or_, select

from admin.tables import staff_accounts, staff_sessions
from govshare.config import Settings
from govshare.errors import AuthError, GovshareError, NotFoundError

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("govshare: not a password of anyone")
USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HASH_WORKERS = 2  # argon2id takes 64 MiB and ~50 ms a hash: two at a time, whatever the number of sign-ins
_pool = ThreadPoolExecutor(max_workers=HASH_WORKERS, thread_name_prefix="argon2")


async def _hashed(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_pool, _hasher.hash, password)


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _verified(password_hash: str, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_pool, _matches, password_hash, password)


CATALOG_EDITOR = "catalog_editor"  # a department's catalog staff: its own catalog entries in the console, nothing else
OFFICE = "coordinator"  # the coordinating authority's office: every console page, the catalog review


@dataclass(frozen=True)
class Staff:
    username: str
    display_name: str
    csrf_token: str
    session_expires: datetime
    department: str | None = None  # set: the department's catalog staff (``CATALOG_EDITOR``)

    @property
    def role(self) -> str:
        return CATALOG_EDITOR if self.department else OFFICE


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_account(
    conn, settings: Settings, username: str, password: str, display_name: str = "", department: str | None = None
) -> None:
    """An account; with ``department`` (a code of the catalog in force, checked by the caller) that department's
    catalog staff, without it the coordinating authority's office."""
    if not USERNAME.match(username or ""):
        raise GovshareError("STAFF_BAD_USERNAME")
    if len(password) < settings.staff_min_password_length:
        raise GovshareError("STAFF_PASSWORD_WEAK", length=settings.staff_min_password_length)
    if (await conn.execute(select(staff_accounts.c.username).where(staff_accounts.c.username == username))).first():
        raise GovshareError("STAFF_EXISTS", username=username)
    await conn.execute(
        staff_accounts.insert().values(
            username=username,
            display_name=display_name or username,
            password_hash=await _hashed(password),
            failed_attempts=0,
            created_at=datetime.now(UTC),
            department=department or None,
        )
    )


async def _account(conn, username: str):
    row = (await conn.execute(select(staff_accounts).where(staff_accounts.c.username == username))).first()
    if row is None:
        raise NotFoundError("STAFF_NOT_FOUND", username=username)
    return row


async def unlock(conn, username: str) -> None:
    await _account(conn, username)
    await conn.execute(
        staff_accounts.update()
        .where(staff_accounts.c.username == username)
        .values(failed_attempts=0, locked_until=None)
    )


async def disable(conn, username: str) -> None:
    await _account(conn, username)
    now = datetime.now(UTC)
    await conn.execute(staff_accounts.update().where(staff_accounts.c.username == username).values(disabled_at=now))
    await conn.execute(
        staff_sessions.update()
        .where(staff_sessions.c.username == username, staff_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )


async def list_accounts(conn) -> list:
    return (await conn.execute(select(staff_accounts).order_by(staff_accounts.c.username))).all()


async def sign_in(
    engine, settings: Settings, username: str, password: str, now: datetime | None = None
) -> tuple[str, Staff]:
    """Check the password and open a session: (session token, staff). The attempt is counted and committed
    before the check, and no connection is held while the password is hashed."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    c = staff_accounts.c
    lock_ends = now + timedelta(minutes=settings.staff_lockout_minutes)
    # One statement claims one of the staff_max_failures checks an account allows before its lock: the lock is
    # set by the claim that takes the last one (a right password then lifts it again). A lock that has ended
    # starts the count again.
    expired = and_(c.locked_until.is_not(None), c.locked_until <= now)
    attempts = case((expired, 1), else_=c.failed_attempts + 1)
    locks = literal(lock_ends, c.locked_until.type)
    async with engine.begin() as claim:  # committed at once: every other attempt sees it
        claimed = await claim.execute(
            staff_accounts.update()
            .where(
                c.username == username,
                c.disabled_at.is_(None),
                or_(expired, and_(c.locked_until.is_(None), c.failed_attempts < settings.staff_max_failures)),
            )
            .values(
                failed_attempts=attempts,
                locked_until=case((attempts >= settings.staff_max_failures, locks), else_=None),
            )
        )
        row = (await claim.execute(select(staff_accounts).where(c.username == username))).first()
    if claimed.rowcount != 1:
        if row is None or row.disabled_at is not None:
            await _verified(_DUMMY_HASH, password)  # the same work as for a real account
            raise AuthError("STAFF_SIGN_IN_FAILED")
        locked_until = row.locked_until or lock_ends
        raise AuthError("STAFF_LOCKED", until=locked_until.astimezone().strftime("%Y-%m-%d %H:%M:%S %z"))
    if not await _verified(row.password_hash, password):
        raise AuthError("STAFF_SIGN_IN_FAILED")
    values = {"failed_attempts": 0, "locked_until": None}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = await _hashed(password)
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.staff_session_hours)
    async with engine.begin() as conn:
        await conn.execute(staff_accounts.update().where(c.username == username).values(**values))
        await conn.execute(
            staff_sessions.insert().values(
                token_hash=_digest(token), username=username, csrf_token=csrf, created_at=now, expires_at=expires
            )
        )
    return token, Staff(username, row.display_name, csrf, expires, row.department)


async def session(conn, token: str | None, now: datetime | None = None) -> Staff | None:
    """The staff member a session token belongs to, or None (unknown, ended, expired, or account disabled)."""
    if not token:
        return None
    now = now or datetime.now(UTC)
    row = (
        await conn.execute(
            select(
                staff_sessions,
                staff_accounts.c.display_name,
                staff_accounts.c.disabled_at,
                staff_accounts.c.department,
            )
            .join(staff_accounts, staff_accounts.c.username == staff_sessions.c.username)
            .where(staff_sessions.c.token_hash == _digest(token))
        )
    ).first()
    if row is None or row.ended_at is not None or row.disabled_at is not None or row.expires_at <= now:
        return None
    return Staff(row.username, row.display_name, row.csrf_token, row.expires_at, row.department)


async def sign_out(conn, token: str) -> None:
    await conn.execute(
        staff_sessions.update()
        .where(staff_sessions.c.token_hash == _digest(token), staff_sessions.c.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
    )


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and secrets.compare_digest(a, b)
