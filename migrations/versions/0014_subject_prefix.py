"""The subject index by a 64-bit prefix of the subject hash, derived off the access records' transaction.

The index ``access_subjects_subject_hash`` (the 64 hex digits and the position, revision 0009) is dropped: written
with every record, its keys landing at random in the B-tree rewrote a page of the write-ahead log per subject on
SQLite. Instead (``audit/tables.py``): ``access_subject_keys`` (each record once under each of its subjects' index keys,
the hash's first 64 bits as a signed integer; append-only, its rows removed only with archived records) and
``access_subject_index`` (one row: the last record position whose subjects are in it), filled here from the subject
rows already written and from then on by the audit writer between transactions. The subject rows, the records and
their chain do not change."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from govshare.platformdb import table_guard

revision = "0014_subject_prefix"
down_revision = "0013_catalog_changes"
branch_labels = None
depends_on = None

BATCH = 1000  # records read at a time


def _key(subject_hash: str) -> int:  # govshare.subjects.index_key as of this revision
    return int.from_bytes(bytes.fromhex(subject_hash[:16]), "big", signed=True)


def upgrade() -> None:
    bind = op.get_bind()
    keys = op.create_table(
        "access_subject_keys",
        sa.Column("subject_key", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("record_seq", sa.Integer, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    head = op.create_table(
        "access_subject_index",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
    )
    # Its guard as access_subjects' (the functions exist since 0010_archives on PostgreSQL).
    for statement in table_guard(bind.dialect.name, "access_subject_keys", ("access", "record_seq")):
        op.execute(statement)
    # The records written so far: every one up to the chain's head (no server runs during an upgrade).
    last = bind.execute(sa.text("SELECT seq FROM chain_heads WHERE chain = 'access'")).scalar() or 0
    read = sa.text("SELECT record_seq, subject_hash FROM access_subjects WHERE record_seq BETWEEN :first AND :last")
    for first in range(1, last + 1, BATCH):
        rows = bind.execute(read, {"first": first, "last": min(first + BATCH - 1, last)}).all()
        found = sorted({(_key(r.subject_hash), r.record_seq) for r in rows})
        if found:
            op.bulk_insert(keys, [{"subject_key": key, "record_seq": seq} for key, seq in found])
    op.bulk_insert(head, [{"id": 1, "seq": last}])
    op.drop_index("access_subjects_subject_hash", table_name="access_subjects")


def downgrade() -> None:
    op.create_index("access_subjects_subject_hash", "access_subjects", ["subject_hash", "record_seq"])
    op.drop_table("access_subject_index")
    op.drop_table("access_subject_keys")  # its append-only triggers go with it
