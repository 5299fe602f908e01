"""The oversight package's table: the consumers' feedback on the effect of shared data (Art 24).

One row per grant (or approved share application) and month: what the consumer department reports the data
achieved. A second report for the same grant and month replaces the figures (a department corrects its own
report); every report, first or replacing, is also a process record (``audit/tables.py``, kind ``feedback``,
hash-chained, never changed), which keeps the figures each report gave."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text, UniqueConstraint

from govshare.platformdb import UTCDateTime, metadata

consumer_feedback = Table(
    "consumer_feedback",
    metadata,
    Column("id", String(16), primary_key=True),
    # The grant (policies/tables.py grants.id) or, for a deemed approval not yet written down as a grant, the
    # application (applications.id): what the department holds the data under.
    Column("grant_ref", String(16), nullable=False),
    Column("application_id", String(16)),  # the application it came from, if any
    Column("consumer", String(40), nullable=False),
    Column("provider", String(40), nullable=False),
    Column("resource", String(80), nullable=False),
    Column("period", String(7), nullable=False),  # a month, YYYY-MM (China time)
    Column("matters_handled", Integer, nullable=False),  # 办理事项数
    Column("documents_spared", Integer, nullable=False),  # 不再要求群众提交的材料数
    Column("note", Text, nullable=False),
    Column("revision", Integer, nullable=False),  # 1 for the first report of the period, +1 for each replacing one
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(16), nullable=False),  # key id
    Column("operator", String(100)),
    UniqueConstraint("grant_ref", "period", name="consumer_feedback_grant_period"),
    Index("consumer_feedback_provider_period", "provider", "period"),
    Index("consumer_feedback_consumer_period", "consumer", "period"),
)
