"""Freshness: the last change of each resource's source, as the platform last read it (Art 16, 20).

A new table (``catalog/freshness.py``: ``source_freshness``, one row per resource, updated in place by the server's
schedule). No chained table changes, so every record verifies as written."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_freshness"
down_revision = "0005_catalog_workflow"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_freshness",
        sa.Column("resource", sa.String(100), primary_key=True),
        sa.Column("last_change", sa.DateTime(timezone=True)),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("indexed", sa.Boolean, nullable=False),
        sa.Column("error", sa.String(40)),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("source_freshness")
