"""Audit archives: records older than the retention period may leave the live tables for signed archive files.

One new append-only table, ``audit_archives`` (each archive of the access or process chain: its number, file,
digest, the positions it covers and where the live chain now starts). The append-only guard of
``access_records``, ``process_records`` and ``access_subjects`` (by its ``record_seq``) now lets a DELETE through for a record a recorded archive covers, and
refuses every other DELETE and every UPDATE as before (SQLite: the ``*_no_delete`` trigger gains a ``WHEN``;
PostgreSQL: the ``*_append_only`` trigger calls ``govshare_append_only_unless_archived``). No record changes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from govshare.platformdb import UTCDateTime

revision = "0010_archives"
down_revision = "0009_subject_index"
branch_labels = None
depends_on = None

# Each guarded table: the chain whose archives may take its rows, and the column holding the record's position
# (the data subjects of 0009 go with their access records).
ARCHIVED = {
    "access_records": ("access", "seq"),
    "process_records": ("process", "seq"),
    "access_subjects": ("access", "record_seq"),
}

UNLESS_ARCHIVED = """CREATE OR REPLACE FUNCTION govshare_append_only_unless_archived() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'DELETE' AND EXISTS (
              SELECT 1 FROM audit_archives a WHERE a.chain = TG_ARGV[0]
                AND (to_jsonb(OLD) ->> TG_ARGV[1])::bigint BETWEEN a.first_seq AND a.last_seq) THEN
           RETURN OLD;
         END IF;
         RAISE EXCEPTION '% are append-only', TG_TABLE_NAME;
       END $$ LANGUAGE plpgsql"""


def _sqlite_delete_guard(table: str, unless: str) -> str:
    return (
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}{unless}\n"
        f"       BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
    )


def upgrade() -> None:
    op.create_table(
        "audit_archives",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("chain", sa.String(20), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("file", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("first_seq", sa.Integer, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("last_at", UTCDateTime, nullable=False),
        sa.Column("archived_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("chain", "number", name="audit_archives_chain_number"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for action in ("update", "delete"):
            op.execute(
                f"CREATE TRIGGER audit_archives_no_{action} BEFORE {action.upper()} ON audit_archives\n"
                "       BEGIN SELECT RAISE(ABORT, 'audit_archives are append-only'); END"
            )
        for table, (chain, column) in ARCHIVED.items():
            op.execute(f"DROP TRIGGER {table}_no_delete")
            op.execute(
                _sqlite_delete_guard(
                    table,
                    f" WHEN NOT EXISTS (SELECT 1 FROM audit_archives WHERE chain = '{chain}'"  # noqa: S608 - names declared in code
                    f" AND OLD.{column} BETWEEN first_seq AND last_seq)",
                )
            )
        return
    op.execute(
        "CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE ON audit_archives "
        "FOR EACH ROW EXECUTE FUNCTION govshare_append_only()"
    )
    op.execute(UNLESS_ARCHIVED)
    for table, (chain, column) in ARCHIVED.items():
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION govshare_append_only_unless_archived('{chain}', '{column}')"
        )


def downgrade() -> None:
    # Without the table the live chains would start nowhere an older release knows: refuse while archives exist.
    if op.get_bind().execute(sa.text("SELECT COUNT(*) FROM audit_archives")).scalar():
        raise RuntimeError("audit_archives holds archives: the records they removed cannot be put back by a downgrade")
    if op.get_bind().dialect.name == "sqlite":
        for table in ARCHIVED:
            op.execute(f"DROP TRIGGER {table}_no_delete")
            op.execute(_sqlite_delete_guard(table, ""))
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_archives_no_{action}")
    else:
        for table in ARCHIVED:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION govshare_append_only()"
            )
        op.execute("DROP TRIGGER audit_archives_append_only ON audit_archives")
        op.execute("DROP FUNCTION govshare_append_only_unless_archived()")
    op.drop_table("audit_archives")
