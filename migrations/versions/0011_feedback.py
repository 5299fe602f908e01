"""Consumers' feedback on the effect of shared data (Art 24).

One new table (``oversight/tables.py``: ``consumer_feedback``, one row per grant and month). No chained table
changes: each report is also a process record as they are."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_feedback"
down_revision = "0010_archives"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consumer_feedback",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("grant_ref", sa.String(16), nullable=False),
        sa.Column("application_id", sa.String(16)),
        sa.Column("consumer", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("resource", sa.String(80), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("matters_handled", sa.Integer, nullable=False),
        sa.Column("documents_spared", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(16), nullable=False),
        sa.Column("operator", sa.String(100)),
        sa.UniqueConstraint("grant_ref", "period", name="consumer_feedback_grant_period"),
    )
    op.create_index("consumer_feedback_provider_period", "consumer_feedback", ["provider", "period"])
    op.create_index("consumer_feedback_consumer_period", "consumer_feedback", ["consumer", "period"])


def downgrade() -> None:
    op.drop_index("consumer_feedback_consumer_period", table_name="consumer_feedback")
    op.drop_index("consumer_feedback_provider_period", table_name="consumer_feedback")
    op.drop_table("consumer_feedback")
