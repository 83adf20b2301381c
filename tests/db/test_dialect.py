"""Date arithmetic done by the database (db/dialect.py) gives what the services' own arithmetic gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import literal, select, text, type_coerce

from loyalty_api.db.dialect import days_later
from loyalty_api.db.types import UTCDateTime
from tests.conftest import units_of
from tests.databases import is_postgres

# 30 days across the last Sunday of March, when Europe moves its clocks an hour on.
ACROSS_A_CLOCK_CHANGE = datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize("days", [30, -30, 365, 0])
async def test_days_later_moves_by_whole_days_of_24_hours(app: FastAPI, days: int) -> None:
    async with units_of(app).begin() as uow:
        instant = literal(ACROSS_A_CLOCK_CHANGE, UTCDateTime())
        # Read as the column's type reads it: SQLite's expression is text.
        later = type_coerce(days_later(uow.session, instant, days), UTCDateTime())
        moved = await uow.session.scalar(select(later))
    assert moved == ACROSS_A_CLOCK_CHANGE + timedelta(days=days)


@pytest.mark.skipif(not is_postgres(), reason="SQLite's dates have no session time zone")
async def test_days_later_does_not_follow_the_sessions_time_zone(app: FastAPI) -> None:
    """PostgreSQL adds an interval's days on the session's calendar: 23 hours across a spring clock change in
    Europe/Berlin. A server set to a local zone must not move a tier's window ends by an hour."""
    async with units_of(app).begin() as uow:
        await uow.session.execute(text("SET LOCAL TIME ZONE 'Europe/Berlin'"))
        instant = literal(ACROSS_A_CLOCK_CHANGE, UTCDateTime())
        moved = await uow.session.scalar(select(days_later(uow.session, instant, 30)))
    assert moved == ACROSS_A_CLOCK_CHANGE + timedelta(days=30)
