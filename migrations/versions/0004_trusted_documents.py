"""Trusted documents: the GraphQL documents each application registered, and keys restricted to them.

A new table (``policies/tables.py``: ``trusted_documents``, one registration in force per application and document)
and a flag on ``api_keys`` (``trusted_documents_only``, false for every key there is: nothing changes for them
until one is restricted). No chained table changes, so every record verifies as written."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_trusted_documents"
down_revision = "0003_query_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_documents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("department", sa.String(40), nullable=False),
        sa.Column("application", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("operations", sa.JSON, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered_by", sa.String(100), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_by", sa.String(100)),
    )
    op.create_index(
        "trusted_documents_in_force",
        "trusted_documents",
        ["department", "application", "sha256"],
        unique=True,
        sqlite_where=sa.text("withdrawn_at IS NULL"),
        postgresql_where=sa.text("withdrawn_at IS NULL"),
    )
    # Adding a column keeps the table (and on SQLite needs no rebuild: a constant default).
    op.add_column(
        "api_keys", sa.Column("trusted_documents_only", sa.Boolean, nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("trusted_documents_only")
    op.drop_index("trusted_documents_in_force", table_name="trusted_documents")
    op.drop_table("trusted_documents")
