"""The few statements whose spelling differs between PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FromClause, Interval, Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


def dialect_insert(session: AsyncSession, table: FromClause) -> Any:
    """An INSERT that knows ON CONFLICT for the session's database (both spell it the same way)."""
    assert isinstance(table, Table)
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_or_ignore(session: AsyncSession, table: FromClause, conflict_columns: list[str]) -> Any:
    """INSERT … ON CONFLICT (columns) DO NOTHING for the session's database."""
    return dialect_insert(session, table).on_conflict_do_nothing(index_elements=conflict_columns)


def days_later(
    session: AsyncSession, instant: ColumnElement[Any] | InstrumentedAttribute[Any], days: int
) -> ColumnElement[Any]:
    """A stored instant (UTCDateTime) moved by whole `days`, computed by the database, for a set-based UPDATE.
    SQLite keeps it as text, `YYYY-MM-DD HH:MM:SS.ffffff`: its date functions keep the seconds only, so the
    fraction is carried over from the text as it was."""
    if session.get_bind().dialect.name == "postgresql":
        # In seconds: an interval's days are added on the session's calendar, 23 or 25 hours across a clock
        # change where the server's time zone has one.
        return instant + func.make_interval(0, 0, 0, 0, 0, 0, days * 86400, type_=Interval())
    moved = func.strftime("%Y-%m-%d %H:%M:%S", instant, f"{days:+d} days")
    return moved.op("||")(func.substr(instant, 20))
