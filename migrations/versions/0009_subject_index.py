"""The data-subject index: which data subjects each access record's answer was about (README "Who looked at my data").

One new append-only table (``audit/tables.py``: ``access_subjects``, a row per subject of a record: its position
``record_seq``, the ``item`` that named the subject and the subject's keyed hash ``subject_hash``) and one new
column of the access records, ``subjects_digest``: new records are written under encoding 3, which hashes it
(audit/chain.py: attached rows), so ``govshare audit verify`` finds a subject row deleted, added or altered. Every
record written before keeps its encoding and verifies as before (its digest is NULL: no subjects)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from govshare.platformdb import GUARD_FUNCTIONS, table_guard

revision = "0009_subject_index"
down_revision = "0008_staff_department"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("access_records", sa.Column("subjects_digest", sa.String(64)))
    op.create_table(
        "access_subjects",
        sa.Column("record_seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("item", sa.String(80), primary_key=True),
        sa.Column("subject_hash", sa.String(64), primary_key=True),
        sqlite_with_rowid=False,  # as audit/tables.py: the rows are their primary key's B-tree
    )
    op.create_index("access_subjects_subject_hash", "access_subjects", ["subject_hash", "record_seq"])
    dialect = op.get_bind().dialect.name
    # The plain guard (0010_archives lets through the DELETE of rows an archive took with their records).
    for statement in [
        *(GUARD_FUNCTIONS[:1] if dialect == "postgresql" else ()),
        *table_guard(dialect, "access_subjects"),
    ]:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    # Records chained under encoding 3 commit to their subjects: without the column and the table they could not be
    # verified any more, so they are never taken back.
    written = bind.execute(sa.text("SELECT COUNT(*) FROM access_records WHERE encoding >= 3")).scalar()
    if written:
        raise RuntimeError(f"{written} access records commit to their data subjects (encoding 3): not downgraded")
    op.drop_index("access_subjects_subject_hash", table_name="access_subjects")
    op.drop_table("access_subjects")  # its append-only triggers go with it
    if bind.dialect.name == "sqlite":
        # Not batch_alter_table: rebuilding access_records would drop its append-only triggers. SQLite (3.35 on)
        # drops a column no trigger, index or constraint names in place.
        op.execute("ALTER TABLE access_records DROP COLUMN subjects_digest")
    else:
        op.drop_column("access_records", "subjects_digest")
