"""The applications package's tables: share applications and the official holiday schedules.

An application's steps are also process records (``audit/tables.py``), which are never changed."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Integer, String, Table, Text

from govshare.platformdb import UTCDateTime, metadata

# Share applications (共享申请, Art 17-21). Status changes are also process_records, which are never changed.
applications = Table(
    "applications",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("consumer", String(40), nullable=False),
    Column("resource", String(80), nullable=False),
    Column("items", JSON, nullable=False),
    Column("purpose", String(80), nullable=False),
    Column("users", Text, nullable=False),  # 使用对象
    Column("share_mode", String(20), nullable=False),
    Column("row_scope", JSON, nullable=False),
    Column("valid_from", UTCDateTime, nullable=False),
    Column("valid_until", UTCDateTime, nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("submitted_by", String(16), nullable=False),  # key id
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("deadline_provisional", Integer, nullable=False),
    # Silence approves only conditional items; an application touching a not-shared item waits for coordination.
    Column("deemable", Integer, nullable=False),
    Column("status", String(30), nullable=False),
    # pending | approved | refused | deemed_approved | coordinating | coordination_approved | coordination_refused
    Column("decided_at", UTCDateTime),
    Column("grant_id", String(16)),
)

# A year's official holiday schedule, loaded by an administrator (applications/workdays.py).
work_calendars = Table(
    "work_calendars",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("holidays", JSON, nullable=False),
    Column("workdays", JSON, nullable=False),
    Column("source", Text, nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("loaded_at", UTCDateTime, nullable=False),
)
