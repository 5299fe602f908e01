"""The catalog workflow's table: each department's submissions of its own catalog entries (Art 12-14).

The catalog in force and its versions are ``catalog_versions`` (``store.py``); a submission becomes one of them when
the coordinator publishes it. Every step of a submission is also a process record (``audit.tables``), hash-chained.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text

from govshare.platformdb import UTCDateTime, metadata

# draft → under_review → published | returned (catalog/workflow.py); a returned submission stays as it was.
catalog_submissions = Table(
    "catalog_submissions",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("department", String(40), nullable=False),  # the providing department whose entries these are
    Column("status", String(20), nullable=False),
    # The department's entries as submitted: {"department": {...}, "purposes": [...], "resources": [...]} (the
    # document form of catalog.model), and the codes of the resources new or changed against base_version.
    Column("entries", JSON, nullable=False),
    Column("source", String(200), nullable=False),  # the file's name as sent
    Column("text", Text, nullable=False),  # the file's text, checked again on publishing
    Column("changed", JSON, nullable=False),
    Column("base_version", Integer, nullable=False),  # the catalog version in force when it was submitted
    # The conformance findings (Art 14): [{stage, resource, field, code, severity, detail}], of the submission and
    # again of the check before publishing; ``error`` blocks publishing, ``warning`` informs the review.
    Column("findings", JSON, nullable=False),
    Column("created_by", String(100), nullable=False),  # key id or operator account
    Column("created_at", UTCDateTime, nullable=False),
    Column("submitted_at", UTCDateTime),
    Column("decided_by", String(100)),
    Column("decided_at", UTCDateTime),
    Column("reason", Text),  # why it was submitted; replaced by the coordinator's reason when decided
    Column("published_version", Integer),
    Index("catalog_submissions_department_status", "department", "status"),
)
