"""Several statements' rows in one statement (PostgreSQL's data-modifying CTEs): each part's values are bound
as `<prefix>__<column>`, so they sit beside one another."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam

# A row to insert, by column.
Row = dict[str, Any]


def prefixed_binds(table: Table, prefix: str) -> dict[str, Any]:
    """A bind per column, but those the database fills (an event's sequence)."""
    return {
        column.key: bindparam(f"{prefix}__{column.key}", type_=column.type)
        for column in table.columns
        if column.server_default is None
    }


def prefixed(row: Row, prefix: str) -> Row:
    return dict(zip(_prefixed_names(prefix, tuple(row)), row.values(), strict=True))


@cache
def _prefixed_names(prefix: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    # A row's keys are its table's columns, the same on every call: named once (an earn binds forty-odd).
    return tuple(f"{prefix}__{key}" for key in keys)
