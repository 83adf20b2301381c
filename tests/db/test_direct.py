"""Direct statements (loyalty_api.db.direct) run inside the unit of work's transaction and give back what
SQLAlchemy would, on both databases (PostgreSQL runs them on asyncpg itself, SQLite through the session)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import StatementError

from loyalty_api.db.direct import DirectStatement, DirectStatementFailed
from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.webhooks.models import OutboxEvent

_EVENTS = OutboxEvent.__table__
_INSERT_EVENT = DirectStatement(insert(_EVENTS).returning(*_EVENTS.c))
_EVENT_TYPE = "test.direct"


def _event(**changes: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "type": _EVENT_TYPE,
        # Not in UTC: what comes back is the same instant, in UTC, as SQLAlchemy gives it.
        "occurred_at": datetime(2026, 3, 16, 18, 30, tzinfo=timezone(timedelta(hours=8))),
        "aggregate_type": "member",
        "aggregate_id": "m-1",
        "member_id": uuid.uuid4(),
        "payload": {"points": 120, "note": "会员日", "lines": [{"rule": "base", "points": 100}]},
        "dispatched_at": None,
    } | changes


async def _stored_ids(units: UnitsOfWork) -> set[uuid.UUID]:
    async with units.read() as uow:
        result = await uow.session.execute(select(_EVENTS.c.id).where(_EVENTS.c.type == _EVENT_TYPE))
        return set(result.scalars())


@asynccontextmanager
async def _rolled_back(units: UnitsOfWork) -> AsyncIterator[UnitOfWork]:
    """A writing unit of work that is rolled back however its block ends."""
    uow = await units.start()
    try:
        yield uow
    finally:
        await uow.rollback()
        await uow.close()


async def test_a_direct_write_is_undone_with_the_unit_of_work(units: UnitsOfWork) -> None:
    async with _rolled_back(units) as uow:
        # The first statement of the unit of work: it must begin the transaction, not run outside it.
        row = await _INSERT_EVENT.fetch_one(uow.session, _event())
        assert row is not None
    assert await _stored_ids(units) == set()


async def test_a_direct_write_commits_with_the_statements_around_it(units: UnitsOfWork) -> None:
    before, direct, after = _event(), _event(), _event()
    async with units.begin() as uow:
        await uow.session.execute(insert(_EVENTS), before)
        await _INSERT_EVENT.fetch_one(uow.session, direct)
        await uow.session.execute(insert(_EVENTS), after)
    assert await _stored_ids(units) == {before["id"], direct["id"], after["id"]}


async def test_rows_come_back_as_sqlalchemy_gives_them(units: UnitsOfWork) -> None:
    event = _event()
    async with units.begin() as uow:
        returned = await _INSERT_EVENT.fetch_one(uow.session, event)
    async with units.read() as uow:
        loaded = (await uow.session.execute(select(*_EVENTS.c).where(_EVENTS.c.id == event["id"]))).one()
    assert returned == tuple(loaded)
    by_name = dict(zip(_EVENTS.c.keys(), returned or (), strict=True))
    assert isinstance(by_name["id"], uuid.UUID) and by_name["id"] == event["id"]
    assert by_name["occurred_at"] == datetime(2026, 3, 16, 10, 30, tzinfo=UTC)
    assert by_name["occurred_at"].utcoffset() == timedelta(0)
    assert by_name["payload"] == event["payload"]
    assert by_name["dispatched_at"] is None


async def test_no_row_and_many_rows(units: UnitsOfWork) -> None:
    first, second = _event(aggregate_id="m-2"), _event(aggregate_id="m-2")
    by_aggregate = DirectStatement(
        select(_EVENTS.c.id).where(_EVENTS.c.aggregate_id == "m-2").order_by(_EVENTS.c.id)
    )
    async with units.begin() as uow:
        assert await by_aggregate.fetch_one(uow.session, {}) is None
        await _INSERT_EVENT.fetch_one(uow.session, first)
        await _INSERT_EVENT.fetch_one(uow.session, second)
        assert await by_aggregate.fetch_all(uow.session, {}) == sorted([(first["id"],), (second["id"],)])
        with pytest.raises(ValueError, match="2 rows"):
            await by_aggregate.fetch_one(uow.session, {})


async def test_a_missing_value_is_refused_before_anything_runs(units: UnitsOfWork) -> None:
    event = _event()
    del event["aggregate_id"]
    async with units.begin() as uow:
        with pytest.raises(KeyError, match="aggregate_id"):
            await _INSERT_EVENT.fetch_one(uow.session, event)
    assert await _stored_ids(units) == set()


async def test_a_refused_statement_does_not_carry_its_values(units: UnitsOfWork) -> None:
    """Errors are logged: a value the database or driver refuses (here a phone number where a member id
    belongs) must not end up in the log through the error's message."""
    phone = "13800138000"
    async with _rolled_back(units) as uow:
        # PostgreSQL: asyncpg refuses it, re-raised without the values; SQLite: SQLAlchemy, which hides them.
        with pytest.raises((DirectStatementFailed, StatementError)) as refused:
            await _INSERT_EVENT.fetch_one(uow.session, _event(member_id=phone))
    error: BaseException | None = refused.value
    while error is not None:
        assert phone not in str(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    assert await _stored_ids(units) == set()


async def test_a_statement_that_leaves_a_column_to_its_default_is_refused(units: UnitsOfWork) -> None:
    """The id column's default (a new id) is filled in by SQLAlchemy's execution layer, which a direct
    statement skips: such a statement is refused rather than run with the id missing."""
    without_id = DirectStatement(
        insert(_EVENTS).values({c.key: bindparam(c.key) for c in _EVENTS.c if c.key != "id"})
    )
    event = _event()
    del event["id"]
    async with units.begin() as uow:
        with pytest.raises(ValueError, match="column defaults"):
            await without_id.execute(uow.session, event)
    assert await _stored_ids(units) == set()
