"""Several statements' rows in one statement (PostgreSQL's data-modifying CTEs): each part's values are bound
as `<prefix>__<column>`, so they sit beside one another."""

from __future__ import annotations

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
    return {f"{prefix}__{key}": value for key, value in row.items()}
