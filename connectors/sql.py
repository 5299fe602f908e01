"""The SQL connector: one department database, read with only the columns, rows and masks it is given.

Every value in a query is a bound parameter; identifiers come from the validated catalog only.
"""

from __future__ import annotations

import asyncio
import datetime
import logging

from sqlalchemy import Boolean, Date, Integer, Numeric, Select, String, and_, bindparam, column, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.breaker import Breaker, CircuitOpen
from connectors.base import Column, Condition, SourceQuery, SourceUnavailable
from connectors.masking import parse_mask
from connectors.urls import async_url

log = logging.getLogger(__name__)

SQL_TYPES = {
    "string": String(),
    "integer": Integer(),
    "decimal": Numeric(asdecimal=False),
    "date": Date(),
    "boolean": Boolean(),
}


STATEMENTS_KEPT = 256  # statement shapes kept per source
PY_TYPES = ((bool, "boolean"), (int, "integer"), (float, "decimal"), (datetime.date, "date"))


def _value_type(condition: Condition) -> str:
    values = list(condition.value) if condition.op == "in" else [condition.value]  # type: ignore[call-overload]
    for python_type, name in PY_TYPES:
        if values and all(isinstance(v, python_type) for v in values):
            return name
    return "string"


def _build(query: SourceQuery) -> Select:
    by_name = {c.name: c for c in (*query.columns, *query.order_by)}
    cols = {name: column(name, SQL_TYPES[c.type]) for name, c in by_name.items()}
    source = table(query.table, *cols.values())
    clauses = []
    for n, condition in enumerate(query.where):
        # A condition's value is bound with its own type (a date as a date), as a literal value would be.
        target = cols.get(condition.column)
        if target is None:
            target = column(condition.column, SQL_TYPES[_value_type(condition)])
        value = bindparam(f"p{n}", expanding=condition.op == "in", type_=SQL_TYPES[_value_type(condition)])
        if condition.op == "eq":
            clauses.append(target == value)
        elif condition.op == "in":
            clauses.append(target.in_(value))  # an empty list matches nothing
        elif condition.op == "gte":
            clauses.append(target >= value)
        elif condition.op == "lte":
            clauses.append(target <= value)
        else:
            raise ValueError(f"unknown operator {condition.op!r}")
    statement = select(*(cols[c.name].label(c.key) if c.label else cols[c.name] for c in query.columns)).select_from(source)
    if clauses:
        statement = statement.where(and_(*clauses))
    if query.order_by:
        statement = statement.order_by(*(cols[c.name] for c in query.order_by))
    if query.limit is not None:
        statement = statement.limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer))
    return statement


class SqlConnector:
    def __init__(self, url: str, *, timeout: float, breaker: Breaker, pool_size: int = 5) -> None:
        self.url = url
        self.timeout = timeout
        self.breaker = breaker
        # pool_size connections are kept open: beyond them each query opens and closes one, which under load
        # costs more than the query. A database server may drop an idle connection (pinged before use); a
        # SQLite file cannot, and a read leaves no transaction open to roll back: no round trips for either.
        sqlite = make_url(url).get_backend_name() == "sqlite"
        self._engine: AsyncEngine = create_async_engine(async_url(url), pool_size=pool_size, pool_pre_ping=not sqlite,
                                                        pool_reset_on_return=None if sqlite else "rollback")
        self._statements: dict[tuple, Select] = {}

    def _statement(self, query: SourceQuery) -> tuple[Select, dict[str, object]]:
        """The statement for ``query`` and its parameters. Statements are kept by the query's shape (table,
        columns, conditions' columns and operators, order, paging) with every value a bound parameter, so a
        repeated shape is not built and compiled again."""
        shape = (query.table, query.columns, tuple((c.column, c.op, _value_type(c)) for c in query.where),
                 query.order_by, query.limit is not None)
        statement = self._statements.get(shape)
        if statement is None:
            if len(self._statements) >= STATEMENTS_KEPT:
                self._statements.clear()
            statement = self._statements[shape] = _build(query)
        params: dict[str, object] = {f"p{n}": list(c.value) if c.op == "in" else c.value  # type: ignore[call-overload]
                                     for n, c in enumerate(query.where)}
        if query.limit is not None:
            params |= {"limit": query.limit, "offset": query.offset}
        return statement, params

    async def fetch(self, query: SourceQuery) -> list[dict[str, object]]:
        statement, params = self._statement(query)
        try:
            self.breaker.before_call()
        except CircuitOpen:
            raise SourceUnavailable(query.table) from None
        try:
            async with asyncio.timeout(self.timeout):
                async with self._engine.connect() as conn:
                    result = await conn.execute(statement, params)
                    keys, rows = tuple(result.keys()), result.all()
        except (TimeoutError, SQLAlchemyError, OSError) as exc:
            self.breaker.failed()
            log.warning("source %s failed on table %s (breaker %s): %s", self._engine.url.render_as_string(),
                        query.table, self.breaker.state, exc)
            raise SourceUnavailable(query.table) from exc
        self.breaker.succeeded()
        answer = [dict(zip(keys, row)) for row in rows]
        for key, kind in query.masks:
            mask = parse_mask(kind)
            for values in answer:
                values[key] = mask.apply(values[key])
        return answer

    async def close(self) -> None:
        await self._engine.dispose()
