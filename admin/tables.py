"""The admin package's tables: the security staff's accounts and console sessions."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from govshare.platformdb import UTCDateTime, metadata

# Staff who sign in to the console (admin/accounts.py). Application keys never sign in.
staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", UTCDateTime),
    Column("disabled_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # None: the coordinating authority's office (every console page); a department's code: its catalog staff
    # (role catalog_editor), who see and keep only that department's catalog entries (revision 0008)
    Column("department", String(40)),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the session token; the token is never stored
    Column("username", String(64), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
)
