"""The corrections package's table: data-error reports (校核纠错).

A report's steps are also process records (``audit/tables.py``, hash-chained, never changed); those name the report
(``detail.report``), the resource and the item, never the record's key value or the proposed value. Both are
sealed here (``corrections/sealing.py``: AES-GCM under a key derived from the platform secret), so a copy of the
platform database or its backups does not hold them in clear."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from govshare.platformdb import UTCDateTime, metadata

data_error_reports = Table(
    "data_error_reports",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("resource", String(80), nullable=False),
    Column("item", String(80), nullable=False),
    Column("key_sealed", Text, nullable=False),  # the record's key value, sealed
    Column("proposed_sealed", Text, nullable=False),  # what the reporter believes is right, sealed
    Column("reason", Text, nullable=False),  # why (refused when it repeats the key value)
    Column("reporter", String(40), nullable=False),  # the reporting department
    Column("reported_by", String(16), nullable=False),  # its key id
    Column("purpose", String(80), nullable=False),  # the purpose the record was read under to report on it
    Column("reported_at", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("deadline_provisional", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # open | escalated | corrected | rejected
    Column("escalated_at", UTCDateTime),
    Column("answered_at", UTCDateTime),
    Column("answered_by", String(100)),
    Column("answer_reason", Text),
    # The open reports (every snapshot reads them) and a department's own.
    Index("data_error_reports_status", "status"),
    Index("data_error_reports_reporter", "reporter"),
)
