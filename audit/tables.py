"""The audit package's tables: the access records and the share-application process records, both append-only
and hash-chained (``audit.chain``; the chain heads are there).

The process records live here, beside the access records, rather than in ``applications/``: they are the
audit trail of the process (who applied, reviewed, granted, revoked, and why), verified and checkpointed
with the access records by ``govshare audit verify``; the applications package only appends to them.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text

from audit import chain
from govshare.platformdb import SEED_ROWS, UTCDateTime, append_only, metadata
from govshare.subjects import index_key

# Removable only once archived (``govshare audit archive``, audit/archives.py): the guard lets a DELETE through for
# a record an archive recorded in audit_archives covers, and refuses every other.
access_records = append_only(
    Table(
        "access_records",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", UTCDateTime, nullable=False),
        Column("request_id", String(36), nullable=False),
        Column("trace_id", String(32), nullable=False),
        Column("department", String(40), nullable=False),
        Column("application", String(100), nullable=False),
        Column("key_id", String(16), nullable=False),
        Column("operator", String(100)),
        Column("purpose", String(80)),
        Column("resource", String(80), nullable=False),
        Column("operation", String(20), nullable=False),  # lookup | list | link | entity | report (a data-error report)
        Column("items_returned", JSON, nullable=False),
        Column("items_masked", JSON, nullable=False),
        Column("items_denied", JSON, nullable=False),  # {item: reason code}
        Column("row_count", Integer, nullable=False),
        Column("grants_used", JSON, nullable=False),
        Column("outcome", String(20), nullable=False),  # allowed | partial | denied | failed
        Column("error_code", String(40)),
        Column("seq", Integer, nullable=False, unique=True),  # position in the hash chain (audit/chain.py)
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
        # The encoding the record's hash was made under (audit/chain.py); records written before it existed are 1.
        Column("encoding", Integer, nullable=False, server_default="1"),
        # The policy version in force for the request (the number /healthz, the console and the log show).
        # Empty on records written before revision 0002.
        Column("policy_version", Integer),
        # The digest of the record's data subjects (its rows in access_subjects; audit.chain.attached_digest), NULL
        # for none. Hashed from encoding 3 on (revision 0009).
        Column("subjects_digest", String(64)),
        # What providers (usageRecords, Art 24) and reviewers ask: a resource's or a department's accesses in time.
        Index("access_records_resource_at", "resource", "at"),
        Index("access_records_department_at", "department", "at"),
        # The usage reports over every resource in a period (oversight/usage.py; revision 0012).
        Index("access_records_at", "at"),
    ),
    archived=("access", "seq"),
)

# The data subjects of each access record (README "Who looked at my data"): one row per data subject of the rows an
# access record answered, written in the record's transaction and committed to by its subjects_digest (audit.chain:
# attached rows). A subject is the keyed hash of its identifier (govshare.subjects: HMAC-SHA256 under the subject key
# kept outside this database), never the number; ``item`` is the catalog item that named it (the record's key, a legal
# representative's ID number, ...). Rows belong to their record: whatever archives or removes a record does the same
# to its rows (``record_seq`` is the record's ``seq``). Keyed by the record first, so a record's rows are appended at
# the end of the B-tree; a subject's records are found by ``access_subject_keys`` (revision 0014).
access_subjects = append_only(
    Table(
        "access_subjects",
        metadata,
        Column("record_seq", Integer, primary_key=True, autoincrement=False),
        Column("item", String(80), primary_key=True),
        Column("subject_hash", String(64), primary_key=True),
        # SQLite: the rows are their primary key's B-tree, not a rowid table beside it (one B-tree less to write).
        sqlite_with_rowid=False,
    ),
    archived=("access", "record_seq"),
)

# The subject index proper: each record once under each of its subjects' index keys (govshare.subjects.index_key, the
# hash's first 64 bits), a subject's records in order. Derived from access_subjects off the records' transaction, in
# batches (audit.chain.index_sync, run by the audit writer's thread between transactions: audit/records.py), up to
# the position in access_subject_index; a lookup reads the records after it from access_subjects itself and checks
# the full hash on every row it found (resolvers/subjects.py). ``govshare audit verify`` checks that it holds exactly
# the keys of the subject rows up to that position.
access_subject_keys = append_only(
    Table(
        "access_subject_keys",
        metadata,
        Column("subject_key", BigInteger, primary_key=True, autoincrement=False),
        Column("record_seq", Integer, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    ),
    archived=("access", "record_seq"),
)
# One row: the last access record position whose subjects are in access_subject_keys.
access_subject_index = Table(
    "access_subject_index",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
)
SEED_ROWS[access_subject_index.name] = [{"id": 1, "seq": 0}]

process_records = append_only(
    Table(
        "process_records",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", UTCDateTime, nullable=False),
        Column("kind", String(40), nullable=False),  # submitted | approved | refused | deemed_approved | ...
        Column("application_id", String(16)),
        Column("grant_id", String(16)),
        Column("department", String(40), nullable=False),
        Column("actor", String(100), nullable=False),  # key id or operator account
        Column("reason", Text),
        Column("detail", JSON, nullable=False),
        Column("seq", Integer, nullable=False, unique=True),  # position in the hash chain (audit/chain.py)
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
        Column("encoding", Integer, nullable=False, server_default="1"),  # as access_records.encoding
        # An application's or a grant's history.
        Index("process_records_application_id", "application_id"),
        Index("process_records_grant_id", "grant_id"),
    ),
    archived=("process", "seq"),
)

_ACCESS_V1 = (
    "at",
    "request_id",
    "trace_id",
    "department",
    "application",
    "key_id",
    "operator",
    "purpose",
    "resource",
    "operation",
    "items_returned",
    "items_masked",
    "items_denied",
    "row_count",
    "grants_used",
    "outcome",
    "error_code",
)

ACCESS = chain.declare(
    "access",
    access_records,
    {
        1: _ACCESS_V1,  # the records written before encodings (revision 0001)
        2: (*_ACCESS_V1, "policy_version"),
        3: (*_ACCESS_V1, "policy_version", "subjects_digest"),  # the data subjects (revision 0009)
    },
    chain.Attached(
        access_subjects,
        given="subjects",
        digest="subjects_digest",
        derived=chain.Derived(access_subject_keys, access_subject_index, "subject_key", "subject_hash", index_key),
    ),
)
PROCESS = chain.declare(
    "process",
    process_records,
    {
        1: ("at", "kind", "application_id", "grant_id", "department", "actor", "reason", "detail"),
    },
)
