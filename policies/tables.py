"""The policies' tables: grants, every version of the staff's policy rules (append-only, hash-chained as
chain ``policy``, ``audit.chain``), and the trusted documents registered for each application."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text, text

from audit import chain
from govshare.platformdb import UTCDateTime, append_only, metadata

grants = Table(
    "grants",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("kind", String(20), nullable=False),  # grant | legal_basis
    Column("consumer", String(40), nullable=False),
    Column("resource", String(80), nullable=False),
    Column("items", JSON, nullable=False),
    Column("purposes", JSON, nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime, nullable=False),
    Column("row_scope", JSON, nullable=False),
    Column("masks", JSON, nullable=False),
    Column("legal_basis", Text),
    Column("application_id", String(16)),  # the application it came from, if any
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("revoked_by", String(100)),
    Column("revoke_reason", Text),
)

# The rules security staff own (policies/documents.py): every version of them, whole, with who, when and why.
# The latest version is in force. Append-only and hash-chained like the records (chain "policy").
policy_versions = append_only(
    Table(
        "policy_versions",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", UTCDateTime, nullable=False),
        Column("author", String(100), nullable=False),  # a staff account, or the operator named on the command line
        Column("reason", Text, nullable=False),
        Column("action", String(20), nullable=False),  # change | import | rollback
        Column("restored_version", Integer),  # for a rollback: the version whose rules it restores
        Column("document", JSON, nullable=False),
        Column("digest", String(64), nullable=False),  # of the canonical document
        Column("seq", Integer, nullable=False, unique=True),  # the version number: position in the hash chain
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
        Column("encoding", Integer, nullable=False, server_default="1"),  # audit/chain.py
    )
)

POLICY = chain.declare(
    "policy",
    policy_versions,
    {
        1: ("at", "author", "reason", "action", "restored_version", "document", "digest"),
    },
)


# The GraphQL documents an application registered (policies/trusted.py): a key restricted to trusted documents may
# send only these. A document is withdrawn, never deleted; registering it again adds a row. Each registration and
# withdrawal is also a process record (who, when, why), which is where the trail lives.
trusted_documents = Table(
    "trusted_documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("department", String(40), nullable=False),
    Column("application", String(100), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the exact text, UTF-8: the document's id
    Column("name", String(200), nullable=False),  # where it came from (the file's name)
    Column("text", Text, nullable=False),
    Column("operations", JSON, nullable=False),  # the names of the operations it holds ("" for an anonymous one)
    Column("registered_at", UTCDateTime, nullable=False),
    Column("registered_by", String(100), nullable=False),
    Column("withdrawn_at", UTCDateTime),
    Column("withdrawn_by", String(100)),
    # One registration in force per application and document.
    Index(
        "trusted_documents_in_force",
        "department",
        "application",
        "sha256",
        unique=True,
        sqlite_where=text("withdrawn_at IS NULL"),
        postgresql_where=text("withdrawn_at IS NULL"),
    ),
)
