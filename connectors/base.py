"""What every connector takes and gives: a source query (columns, conditions, order, page, masks) and rows."""

from __future__ import annotations

from dataclasses import dataclass

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
