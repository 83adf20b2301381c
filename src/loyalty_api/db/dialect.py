"""The few statements whose spelling differs between PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import FromClause, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_or_ignore(session: AsyncSession, table: FromClause, conflict_columns: list[str]) -> Any:
    """INSERT … ON CONFLICT (columns) DO NOTHING for the session's database."""
    assert isinstance(table, Table)
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
