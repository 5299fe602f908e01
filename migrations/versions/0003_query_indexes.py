"""Indexes for what providers and reviewers ask.

Access records by resource and by department in time, process records by application and by grant."""

from __future__ import annotations

from alembic import op

revision = "0003_query_indexes"
down_revision = "0002_chain_encoding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("access_records_resource_at", "access_records", ["resource", "at"])
    op.create_index("access_records_department_at", "access_records", ["department", "at"])
    op.create_index("process_records_application_id", "process_records", ["application_id"])
    op.create_index("process_records_grant_id", "process_records", ["grant_id"])


def downgrade() -> None:
    for name, table in (
        ("access_records_resource_at", "access_records"),
        ("access_records_department_at", "access_records"),
        ("process_records_application_id", "process_records"),
        ("process_records_grant_id", "process_records"),
    ):
        op.drop_index(name, table_name=table)
