"""Each catalog version records the entries it changed from the version before: a process follows the catalog by them.

A new table (``catalog/store.py``: ``catalog_changes``, the entries a version changed, in the order they apply) and
one nullable column on ``catalog_versions`` (``changes_from``: the version they are recorded against). Every version
made before has none and is read whole, as before; the first one published after follows it. No chained table
changes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_catalog_changes"
down_revision = "0008_staff_department"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("catalog_versions", sa.Column("changes_from", sa.Integer))
    op.create_table(
        "catalog_changes",
        sa.Column("version", sa.Integer, sa.ForeignKey("catalog_versions.version"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("code", sa.String(200), nullable=False),
        sa.Column("entry", sa.JSON),
    )


def downgrade() -> None:
    op.drop_table("catalog_changes")
    with op.batch_alter_table("catalog_versions") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("changes_from")
