"""Does a source hold what the catalog says? Tables, columns and types (the conformance test of Art 14)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
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
    return compare(table, (await reflect_tables(url, [table], timeout=timeout))[table], columns)


async def check_tables(
    checks: Iterable[tuple[str, str, str, dict[str, str]]], *, timeout: float = 10.0
) -> dict[str, list[Mismatch]]:
    """``check_table`` for many tables: (key, url, table, columns) each, the mismatches by key. Each database is read
    once, on one connection, for all the tables named in it (``reflect_tables``)."""
    wanted = list(checks)
    tables: dict[str, set[str]] = {}
    for _, url, table, _ in wanted:
        if not is_upstream(url):
            tables.setdefault(url, set()).add(table)
    read = await asyncio.gather(*(reflect_tables(url, names, timeout=timeout) for url, names in tables.items()))
    found = dict(zip(tables, read, strict=True))
    return {
        key: [] if is_upstream(url) else compare(table, found[url][table], columns)
        for key, url, table, columns in wanted
    }


async def reflect_tables(
    url: str, tables: Iterable[str], *, timeout: float = 10.0
) -> dict[str, dict[str, Any] | Mismatch | None]:
    """Each of ``tables`` at ``url`` (not an upstream platform): its columns and their types, None where there is
    no such table, or the mismatch ``unreachable`` where it could not be read. One engine and one connection for all
    of them (a catalog names thousands of tables in tens of databases); the connection and each table's reading are
    given ``timeout`` each, as a table read alone is."""
    names = sorted(set(tables))
    engine = create_async_engine(async_url(url))

    def reflect(sync_conn: Connection, table: str) -> dict[str, Any] | None:
        inspector = sa_inspect(sync_conn)
        if not inspector.has_table(table):
            return None
        return {c["name"]: c["type"] for c in inspector.get_columns(table)}

    found: dict[str, dict[str, Any] | Mismatch | None] = {}
    try:
        async with asyncio.timeout(timeout):
            conn = await engine.connect()
        try:
            for table in names:
                try:
                    async with asyncio.timeout(timeout):
                        found[table] = await conn.run_sync(reflect, table)
                except Exception as exc:
                    found[table] = _unreachable(exc)
        finally:
            await conn.close()
    except Exception as exc:
        failed = _unreachable(exc)
        for table in names:
            found.setdefault(table, failed)
    finally:
        await engine.dispose()
    return found


def _unreachable(exc: Exception) -> Mismatch:
    if not isinstance(exc, (SQLAlchemyError, OSError, TimeoutError)):
        # raised, it would fail every server's rebuild after a catalog change and keep the old policies in force.
        log.warning("checking a table at its source failed: %s", exc.__class__.__name__)
    return Mismatch(None, "unreachable", exc.__class__.__name__)


def compare(table: str, found: dict[str, Any] | Mismatch | None, columns: dict[str, str]) -> list[Mismatch]:
    """``columns`` (column name -> catalog type) against what ``reflect_tables`` found of ``table``."""
    if isinstance(found, Mismatch):
        return [found]
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
