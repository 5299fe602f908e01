"""Data-error reports (校核纠错): the reports consumers file and providers answer.

One new table (``corrections/tables.py``: ``data_error_reports``). No chained table changes: a report's steps are
process records as they are."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_data_errors"
down_revision = "0006_freshness"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_error_reports",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("resource", sa.String(80), nullable=False),
        sa.Column("item", sa.String(80), nullable=False),
        sa.Column("key_sealed", sa.Text, nullable=False),
        sa.Column("proposed_sealed", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("reporter", sa.String(40), nullable=False),
        sa.Column("reported_by", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(80), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_provisional", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("answered_by", sa.String(100)),
        sa.Column("answer_reason", sa.Text),
    )
    op.create_index("data_error_reports_status", "data_error_reports", ["status"])
    op.create_index("data_error_reports_reporter", "data_error_reports", ["reporter"])


def downgrade() -> None:
    op.drop_index("data_error_reports_reporter", table_name="data_error_reports")
    op.drop_index("data_error_reports_status", table_name="data_error_reports")
    op.drop_table("data_error_reports")
