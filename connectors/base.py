"""What every connector takes and gives: a source query (columns, conditions, order, page, masks) and rows."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.masking import Mask

OPERATORS = ("eq", "in", "gte", "lte")


class SourceUnavailable(Exception):
    """The source did not answer in time or refused the query; the caller decides what to tell whom."""


class SourceRefused(SourceUnavailable):
    """The source answered, refusing this query for what it asks (a remote platform's decision, a value the
    database cannot take): not a failure of the source, so it does not count towards its circuit breaker."""


@dataclass(frozen=True)
class Condition:
    column: str
    op: str  # one of OPERATORS
    value: object
    # The condition is asked only of rows in one of these scopes (a filter on an item some rows do not show
    # matches none of those rows); empty: of every row.
    within: tuple[tuple[Condition, ...], ...] = ()


@dataclass(frozen=True)
class View:
    """One way a column's value is shown: in the rows where every condition of ``where`` holds (none: every
    row), masked with ``mask`` (None: as it is)."""

    where: tuple[Condition, ...] = ()
    mask: Mask | None = None


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a catalog item type
    label: str | None = None  # the key in the returned rows (default: the column name)
    # None: the value as it is. Otherwise the first view whose conditions hold in a row decides how the value is
    # shown in that row, and a row no view holds for shows null.
    views: tuple[View, ...] | None = None
    # A data subject's identifier, read only to be indexed: the connectors give its keyed hash in place of the value
    # (connectors.registry, govshare.subjects), never the value itself.
    subject: bool = False

    @property
    def key(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class SourceQuery:
    table: str
    columns: tuple[Column, ...]
    where: tuple[Condition, ...] = ()
    order_by: tuple[Column, ...] = ()
    limit: int | None = None
    offset: int = 0
    scopes: tuple[tuple[Condition, ...], ...] = ()  # the rows: those in one of these scopes (none given: every row)


def holds(condition: Condition, row: dict[str, object]) -> bool:
    """Whether ``condition`` holds for a row of raw values keyed by column name (the reference for SQL)."""
    if condition.within and not any(all(holds(c, row) for c in scope) for scope in condition.within):
        return False
    value = row.get(condition.column)
    if value is None:
        return False
    if condition.op == "eq":
        return value == condition.value
    if condition.op == "in":
        return value in condition.value  # type: ignore[operator]
    if condition.op == "gte":
        return bool(value >= condition.value)  # type: ignore[operator]  # values of one item compare
    if condition.op == "lte":
        return bool(value <= condition.value)  # type: ignore[operator]
    raise ValueError(f"unknown operator {condition.op!r}")


def shown(column: Column, row: dict[str, object]) -> object:
    """The value of ``column`` as its views show it in a row of raw values keyed by column name."""
    value = row.get(column.name)
    if column.views is None:
        return value
    for view in column.views:
        if all(holds(c, row) for c in view.where):
            return view.mask.apply(value) if view.mask is not None else value
    return None
