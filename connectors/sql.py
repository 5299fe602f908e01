"""The SQL connector: one department database, read with only the columns, rows and masks it is given.

Every value in a query is a bound parameter; identifiers come from the validated catalog only.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import Boolean, Date, Integer, Numeric, String, and_, column, false, select, table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.breaker import Breaker, CircuitOpen
from connectors.cache import SourceCache, cache_key
from connectors.masking import apply_mask
from connectors.urls import async_url

log = logging.getLogger(__name__)

SQL_TYPES = {
    "string": String(),
    "integer": Integer(),
    "decimal": Numeric(asdecimal=False),
    "date": Date(),
    "boolean": Boolean(),
}
OPERATORS = ("eq", "in", "gte", "lte")


class SourceUnavailable(Exception):
    """The source did not answer in time or refused the query; the caller decides what to tell whom."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a catalog item type
    label: str | None = None  # the key in the returned rows (default: the column name)

    @property
    def key(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # one of OPERATORS
    value: object


@dataclass(frozen=True)
class SourceQuery:
    table: str
    columns: tuple[Column, ...]
    where: tuple[Condition, ...] = ()
    order_by: tuple[Column, ...] = ()
    limit: int | None = None
    offset: int = 0
    masks: tuple[tuple[str, str], ...] = ()  # (column key in the rows, mask kind)


class SqlConnector:
    def __init__(self, url: str, *, timeout: float, breaker: Breaker) -> None:
        self.url = url
        self.timeout = timeout
        self.breaker = breaker
        self._engine: AsyncEngine = create_async_engine(async_url(url), pool_pre_ping=True)

    def _statement(self, query: SourceQuery):
        by_name = {c.name: c for c in (*query.columns, *query.order_by)}
        for condition in query.where:
            by_name.setdefault(condition.column, Column(condition.column, "string"))
        cols = {name: column(name, SQL_TYPES[c.type]) for name, c in by_name.items()}
        source = table(query.table, *cols.values())
        clauses = []
        for condition in query.where:
            target = cols[condition.column]
            if condition.op == "eq":
                clauses.append(target == condition.value)
            elif condition.op == "in":
                values = list(condition.value)  # type: ignore[arg-type]
                clauses.append(target.in_(values) if values else false())
            elif condition.op == "gte":
                clauses.append(target >= condition.value)
            elif condition.op == "lte":
                clauses.append(target <= condition.value)
            else:
                raise ValueError(f"unknown operator {condition.op!r}")
        statement = select(*(cols[c.name].label(c.key) if c.label else cols[c.name] for c in query.columns)).select_from(source)
        if clauses:
            statement = statement.where(and_(*clauses))
        if query.order_by:
            statement = statement.order_by(*(cols[c.name] for c in query.order_by))
        if query.limit is not None:
            statement = statement.limit(query.limit).offset(query.offset)
        return statement

    async def fetch(self, query: SourceQuery, *, cache: SourceCache | None = None, ttl: int = 0) -> list[dict[str, object]]:
        """Rows of ``query``; from ``cache`` when it holds them (``ttl`` seconds, 0: never cached)."""
        key = cache_key(self.url, query) if cache is not None and ttl > 0 else None
        if key is not None:
            cached = await cache.get(key)
            if cached is not None:
                return cached
        rows = await self._fetch(query)
        if key is not None:
            await cache.set(key, rows, ttl)
        return rows

    async def _fetch(self, query: SourceQuery) -> list[dict[str, object]]:
        statement = self._statement(query)
        try:
            self.breaker.before_call()
        except CircuitOpen:
            raise SourceUnavailable(query.table) from None
        try:
            async with asyncio.timeout(self.timeout):
                async with self._engine.connect() as conn:
                    rows = (await conn.execute(statement)).mappings().all()
        except (TimeoutError, SQLAlchemyError, OSError) as exc:
            self.breaker.failed()
            log.warning("source %s failed on table %s (breaker %s): %s", self._engine.url.render_as_string(),
                        query.table, self.breaker.state, exc)
            raise SourceUnavailable(query.table) from exc
        self.breaker.succeeded()
        masks = dict(query.masks)
        if not masks:
            return [dict(row) for row in rows]
        return [{k: (apply_mask(masks[k], v) if k in masks else v) for k, v in row.items()} for row in rows]

    async def close(self) -> None:
        await self._engine.dispose()


class Connectors:
    """One connector per source URL, opened on first use, and the source-result cache they share."""

    def __init__(self, *, timeout: float, cache_url: str = "memory://", breaker_failures: int = 3,
                 breaker_reset_seconds: float = 10.0) -> None:
        self.timeout = timeout
        self.cache = SourceCache(cache_url)
        self._breaker = {"failures": breaker_failures, "reset_seconds": breaker_reset_seconds}
        self._by_url: dict[str, SqlConnector] = {}

    def get(self, url: str) -> SqlConnector:
        connector = self._by_url.get(url)
        if connector is None:
            connector = self._by_url[url] = SqlConnector(url, timeout=self.timeout, breaker=Breaker(**self._breaker))
        return connector

    async def close(self) -> None:
        for connector in self._by_url.values():
            await connector.close()
        self._by_url.clear()
        await self.cache.close()
