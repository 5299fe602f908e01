"""When did a source last change? The greatest value of one change-time column, read with one ``max()`` statement.

The column is either a change-time column of the resource's own table (``updated_at``, kept by the provider's
exchange jobs) or a marker column the provider keeps elsewhere in its source (a one-row status table). ``max()``
of an indexed column is answered from the index's end on SQLite, PostgreSQL and MariaDB; without an index it scans
the table, so the read also says whether an index leads with the column (a marker table of a few rows needs none).

A naive time (no zone: SQLite text, PostgreSQL ``timestamp``, MariaDB ``DATETIME``) is read as China time, the zone
the departments' systems write in; a date as the start of that day in China.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import column, func, select, table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.graphql import is_upstream
from connectors.urls import async_url
from govshare.clock import CHINA
from govshare.logs import logger

log = logger(__name__)


@dataclass(frozen=True)
class ChangeRead:
    """What one read found: the last change (None: the column holds no value yet), whether an index serves the
    ``max()``, or the reason nothing could be read (``error``: unreachable, no_table, no_column, not_a_time,
    upstream)."""

    last_change: datetime | None = None
    indexed: bool = False
    error: str = ""
    detail: str = ""


def as_utc(value: object) -> datetime | None:
    """A source's change time as an aware UTC datetime; ValueError for a value that is no time."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=CHINA)).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), CHINA).astimezone(UTC)
    raise ValueError(f"{type(value).__name__} is not a time")


async def read_last_change(url: str, table_name: str, column_name: str, *, timeout: float = 10.0) -> ChangeRead:
    """``max(column_name)`` of ``table_name`` at ``url``, and whether an index leads with the column."""
    if is_upstream(url):  # another platform answers for its own sources; it has no statement to run here
        return ChangeRead(error="upstream", detail="an upstream platform's change time cannot be read")
    engine = create_async_engine(async_url(url))

    def inspect(sync_conn: Connection) -> ChangeRead | tuple[bool, bool]:
        inspector = sa_inspect(sync_conn)
        if not inspector.has_table(table_name):
            return ChangeRead(error="no_table", detail=f"no table {table_name}")
        if column_name not in {c["name"] for c in inspector.get_columns(table_name)}:
            return ChangeRead(error="no_column", detail=f"no column {table_name}.{column_name}")
        leading = [i["column_names"][0] for i in inspector.get_indexes(table_name) if i.get("column_names")]
        primary = inspector.get_pk_constraint(table_name).get("constrained_columns") or []
        leading += primary[:1]
        return column_name in leading, True

    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                found = await conn.run_sync(inspect)
                if isinstance(found, ChangeRead):
                    return found
                indexed, _ = found
                value = (
                    await conn.execute(select(func.max(column(column_name))).select_from(table(table_name)))
                ).scalar()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return ChangeRead(error="unreachable", detail=exc.__class__.__name__)
    except Exception as exc:  # a driver's own exception: the read failed, the schedule goes on
        log.warning("reading the last change of %s failed: %s", table_name, exc.__class__.__name__)
        return ChangeRead(error="unreachable", detail=exc.__class__.__name__)
    finally:
        await engine.dispose()
    try:
        return ChangeRead(last_change=as_utc(value), indexed=indexed)
    except ValueError:
        return ChangeRead(indexed=indexed, error="not_a_time", detail=f"{table_name}.{column_name} holds no time")
