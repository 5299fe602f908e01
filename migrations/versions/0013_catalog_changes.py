"""Each catalog version records the entries it changed from the version before: a process follows the catalog by them.

Two new tables (``catalog/store.py``): ``catalog_change_sets`` (the versions whose changes are recorded, and the
version each is recorded against) and ``catalog_changes`` (the entries a version changed, in the order they apply).
Every version made before has none and is read whole, as before; the first one published after follows it. No
chained table changes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_catalog_changes"
down_revision = "0012_usage_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_change_sets",
        sa.Column(
            "version", sa.Integer, sa.ForeignKey("catalog_versions.version"), primary_key=True, autoincrement=False
        ),
        sa.Column("changes_from", sa.Integer, nullable=False),
    )
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
    op.drop_table("catalog_change_sets")
