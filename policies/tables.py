"""The policies' tables: grants, and every version of the staff's policy rules (append-only, hash-chained as
chain ``policy``, ``audit.chain``)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Integer, String, Table, Text

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
