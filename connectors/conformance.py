"""Does a source hold what the catalog says? Tables, columns and types (the conformance test of Art 14)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.graphql import is_upstream
from connectors.urls import async_url
from govshare.logs import logger

log = logger(__name__)

# A catalog type, and the column types that can carry it.
FITS = {
    "string": (sqltypes.String, sqltypes.Text, sqltypes.Enum),
    "integer": (sqltypes.Integer,),
    "decimal": (sqltypes.Numeric, sqltypes.Float, sqltypes.Integer),
    "date": (sqltypes.Date, sqltypes.DateTime),
    "boolean": (sqltypes.Boolean, sqltypes.Integer),
}


@dataclass(frozen=True)
class Mismatch:
    column: str | None  # None: the table itself
    kind: str  # unreachable | missing_table | missing_column | wrong_type
    detail: str


async def check_table(url: str, table: str, columns: dict[str, str], *, timeout: float = 10.0) -> list[Mismatch]:
    """Compare ``table`` at ``url`` with ``columns`` (column name -> catalog type).

    An upstream platform is not inspected here: it checks its own sources, and answers for them.
    """
    if is_upstream(url):
        return []
    engine = create_async_engine(async_url(url))

    def reflect(sync_conn: Connection) -> dict[str, Any] | None:
        inspector = sa_inspect(sync_conn)
        if not inspector.has_table(table):
            return None
        return {c["name"]: c["type"] for c in inspector.get_columns(table)}

    try:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                found = await conn.run_sync(reflect)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return [Mismatch(None, "unreachable", exc.__class__.__name__)]
    except Exception as exc:
        # raised, it would fail every server's rebuild after a catalog change and keep the old policies in force.
        log.warning("checking %s at its source failed: %s", table, exc.__class__.__name__)
        return [Mismatch(None, "unreachable", exc.__class__.__name__)]
    finally:
        await engine.dispose()
    if found is None:
        return [Mismatch(None, "missing_table", f"no table {table}")]
    problems = []
    for column, catalog_type in columns.items():
        if column not in found:
            problems.append(Mismatch(column, "missing_column", f"no column {table}.{column}"))
        elif not isinstance(found[column], FITS[catalog_type]):
            problems.append(
                Mismatch(column, "wrong_type", f"{table}.{column} is {found[column]}, the catalog says {catalog_type}")
            )
    return problems
