"""Chained records carry their encoding version; access records name the policy version in force.


Every record already written is encoding 1 (the hash it was written with); new access records are written
under encoding 2, which also hashes ``policy_version`` (audit/chain.py, audit/tables.py). Adding a column
keeps the append-only triggers on SQLite and PostgreSQL alike (no table is rebuilt).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_chain_encoding"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

CHAINED = ("access_records", "process_records", "policy_versions")


def upgrade() -> None:
    for table in CHAINED:
        op.add_column(table, sa.Column("encoding", sa.Integer, nullable=False, server_default="1"))
    op.add_column("access_records", sa.Column("policy_version", sa.Integer))


def downgrade() -> None:
    raise NotImplementedError("the audit trail is never taken back to an older schema")
