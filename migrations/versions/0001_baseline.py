"""Baseline: the platform schema as create_all made it before migrations.

Tables, append-only triggers and seed rows, frozen here: later changes are later revisions, never edits to this one.

A database made by that ``create_all`` with exactly these tables and columns is adopted by ``govshare db upgrade``
(stamped at this revision; ``migrations.adopt``) rather than created again.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, Text, text

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

metadata = MetaData()

catalog_versions = Table(
    "catalog_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("source", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("document", JSON, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("department", String(40), nullable=False),
    Column("application", String(100), nullable=False),
    Column("roles", JSON, nullable=False),  # govshare.keys.ROLES
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

grants = Table(
    "grants",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("kind", String(20), nullable=False),  # grant | legal_basis
    Column("consumer", String(40), nullable=False),
    Column("resource", String(80), nullable=False),
    Column("items", JSON, nullable=False),
    Column("purposes", JSON, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("row_scope", JSON, nullable=False),
    Column("masks", JSON, nullable=False),
    Column("legal_basis", Text),
    Column("application_id", String(16)),  # the application it came from, if any
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(100)),
    Column("revoke_reason", Text),
)

# The rules security staff own (policies/documents.py): every version of them, whole, with who, when and why.
# The latest version is in force. Append-only and hash-chained like the records (chain "policy").
policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("author", String(100), nullable=False),  # a staff account, or the operator named on the command line
    Column("reason", Text, nullable=False),
    Column("action", String(20), nullable=False),  # change | import | rollback
    Column("restored_version", Integer),  # for a rollback: the version whose rules it restores
    Column("document", JSON, nullable=False),
    Column("digest", String(64), nullable=False),  # of the canonical document
    Column("seq", Integer, nullable=False, unique=True),  # the version number: position in the hash chain
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# Security staff who sign in to the policy console (admin/accounts.py). Application keys never sign in.
staff_accounts = Table(
    "staff_accounts",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("display_name", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("failed_attempts", Integer, nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    Column("disabled_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the session token; the token is never stored
    Column("username", String(64), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
)

# A year's official holiday schedule, loaded by an administrator (applications/workdays.py).
work_calendars = Table(
    "work_calendars",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("holidays", JSON, nullable=False),
    Column("workdays", JSON, nullable=False),
    Column("source", Text, nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

# One row: bumped by every change to grants, applications or the policy rules, so every process sees the change.
policy_version = Table(
    "policy_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

# Share applications (共享申请, Art 17-21). Status changes are also process_records, which are never changed.
applications = Table(
    "applications",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("consumer", String(40), nullable=False),
    Column("resource", String(80), nullable=False),
    Column("items", JSON, nullable=False),
    Column("purpose", String(80), nullable=False),
    Column("users", Text, nullable=False),  # 使用对象
    Column("share_mode", String(20), nullable=False),
    Column("row_scope", JSON, nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("submitted_by", String(16), nullable=False),  # key id
    Column("deadline_at", DateTime(timezone=True), nullable=False),
    Column("deadline_provisional", Integer, nullable=False),
    # Silence approves only conditional items; an application touching a not-shared item waits for coordination.
    Column("deemable", Integer, nullable=False),
    Column("status", String(30), nullable=False),
    # pending | approved | refused | deemed_approved | coordinating | coordination_approved | coordination_refused
    Column("decided_at", DateTime(timezone=True)),
    Column("grant_id", String(16)),
)

process_records = Table(
    "process_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(40), nullable=False),  # submitted | approved | refused | deemed_approved | ...
    Column("application_id", String(16)),
    Column("grant_id", String(16)),
    Column("department", String(40), nullable=False),
    Column("actor", String(100), nullable=False),  # key id or operator account
    Column("reason", Text),
    Column("detail", JSON, nullable=False),
    Column("seq", Integer, nullable=False, unique=True),  # position in the hash chain (audit/chain.py)
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

access_records = Table(
    "access_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("department", String(40), nullable=False),
    Column("application", String(100), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("operator", String(100)),
    Column("purpose", String(80)),
    Column("resource", String(80), nullable=False),
    Column("operation", String(20), nullable=False),  # lookup | list
    Column("items_returned", JSON, nullable=False),
    Column("items_masked", JSON, nullable=False),
    Column("items_denied", JSON, nullable=False),  # {item: reason code}
    Column("row_count", Integer, nullable=False),
    Column("grants_used", JSON, nullable=False),
    Column("outcome", String(20), nullable=False),  # allowed | partial | denied | failed
    Column("error_code", String(40)),
    Column("seq", Integer, nullable=False, unique=True),  # position in the hash chain (audit/chain.py)
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# The head of each hash chain (access, process): the last position and hash, updated with every append.
chain_heads = Table(
    "chain_heads",
    metadata,
    Column("chain", String(20), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

APPEND_ONLY = ("access_records", "process_records", "policy_versions")

GUARDS = {
    "sqlite": [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{action} BEFORE {action.upper()} ON {table}
       BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"""
        for table in APPEND_ONLY
        for action in ("update", "delete")
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION govshare_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION '% are append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql""",
    ]
    + [
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION govshare_append_only()"
        for table in APPEND_ONLY
    ],
}

SEEDS = [
    "INSERT INTO policy_version (id, version) VALUES (1, 0)",
] + [
    f"INSERT INTO chain_heads (chain, seq, hash) VALUES ('{chain}', 0, '{'0' * 64}')"  # noqa: S608 - constants only
    for chain in ("access", "process", "policy")
]


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind)
    for statement in GUARDS[bind.dialect.name] + SEEDS:
        op.execute(text(statement))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
        op.execute(text("DROP FUNCTION IF EXISTS govshare_append_only()"))
    metadata.drop_all(bind)
