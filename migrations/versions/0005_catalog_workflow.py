"""The catalog kept by its departments: their submissions, and who, why and whose entries on every catalog version.

A new table (``catalog/tables.py``: ``catalog_submissions``) and four columns on ``catalog_versions`` (``change``,
``reason``, ``department``, ``submission_id``; empty on the versions loaded before, which read as whole loads). No
chained table changes, so every record verifies as written."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_catalog_workflow"
down_revision = "0004_trusted_documents"
branch_labels = None
depends_on = None

COLUMNS = (
    ("change", sa.String(20)),
    ("reason", sa.Text),
    ("department", sa.String(40)),
    ("submission_id", sa.String(16)),
)


def upgrade() -> None:
    op.create_table(
        "catalog_submissions",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("department", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("entries", sa.JSON, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("changed", sa.JSON, nullable=False),
        sa.Column("base_version", sa.Integer, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("decided_by", sa.String(100)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text),
        sa.Column("published_version", sa.Integer),
    )
    op.create_index("catalog_submissions_department_status", "catalog_submissions", ["department", "status"])
    for name, kind in COLUMNS:  # nullable, no default: no table rebuild on SQLite
        op.add_column("catalog_versions", sa.Column(name, kind))


def downgrade() -> None:
    with op.batch_alter_table("catalog_versions") as batch:  # SQLite drops a column by rebuilding the table
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
    op.drop_index("catalog_submissions_department_status", table_name="catalog_submissions")
    op.drop_table("catalog_submissions")
