"""Staff accounts may belong to a department: its catalog staff (catalog_editor) in the console.

One new nullable column (``staff_accounts.department``); every account made before has none and stays the
coordinating authority's office. No chained table changes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_staff_department"
down_revision = "0007_data_errors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("staff_accounts", sa.Column("department", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("staff_accounts") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("department")
