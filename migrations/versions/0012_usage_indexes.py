"""An index for the usage reports over every resource (Art 24: the coordinating authority's and auditors' view).

Access records by time alone (``access_records_at``): a report on one department's resources uses
``access_records_resource_at``, one on all of them would otherwise read the whole table. No chained table changes."""

from __future__ import annotations

from alembic import op

revision = "0012_usage_indexes"
down_revision = "0011_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("access_records_at", "access_records", ["at"])


def downgrade() -> None:
    op.drop_index("access_records_at", table_name="access_records")
