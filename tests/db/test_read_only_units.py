"""Read-only units of work (lookups, the checkout quote, every GET): on PostgreSQL they begin no transaction,
so each statement commits on its own; a write in one (a flush, a direct write, an insert, update or delete
through the session) is refused before it is sent, on both databases."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Integer, bindparam, func, select, text

from loyalty_api.db.direct import DirectStatement
from loyalty_api.db.engine import DirectStatementFailed, WriteInReadOnlyUnit
from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.outbox.models import OutboxEvent
from loyalty_api.outbox.repository import INSERT_EVENT
from tests.databases import is_postgres, pooler

_TYPE = "test.read_only"


def _event_row() -> dict[str, object]:
    return {
        "id": new_id(),
        "type": _TYPE,
        "occurred_at": None,
        "aggregate_type": "member",
        "aggregate_id": "m-ro",
        "member_id": uuid.uuid4(),
        "partner_id": None,
        "payload": {"points": 1},
        "dispatched_at": None,
    }


async def _stored(units: UnitsOfWork) -> int:
    async with units.read() as uow:
        found = await uow.session.execute(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == _TYPE)
        )
        return int(found.scalar_one())


async def test_a_direct_write_in_a_read_only_unit_is_refused_and_nothing_is_stored(
    units: UnitsOfWork,
) -> None:
    async with units.read() as uow:
        await uow.session.execute(select(1))  # the unit has read something first
        with pytest.raises(WriteInReadOnlyUnit):
            await INSERT_EVENT.execute(uow.session, _event_row() | {"occurred_at": units.clock.now()})
    assert await _stored(units) == 0


async def test_orm_changes_in_a_read_only_unit_are_refused_at_flush_and_nothing_is_stored(
    units: UnitsOfWork,
) -> None:
    async with units.read() as uow:
        uow.session.add(OutboxEvent(**(_event_row() | {"occurred_at": units.clock.now()})))
        with pytest.raises(WriteInReadOnlyUnit):
            await uow.session.flush()
    assert await _stored(units) == 0


async def test_a_write_statement_through_the_session_in_a_read_only_unit_is_refused(
    units: UnitsOfWork,
) -> None:
    async with units.begin() as uow:
        await INSERT_EVENT.execute(uow.session, _event_row() | {"occurred_at": units.clock.now()})
    async with units.read() as uow:
        with pytest.raises(WriteInReadOnlyUnit):
            await uow.session.execute(OutboxEvent.__table__.delete().where(OutboxEvent.type == _TYPE))
        with pytest.raises(WriteInReadOnlyUnit):
            await uow.session.execute(
                OutboxEvent.__table__.insert().values(_event_row() | {"occurred_at": units.clock.now()})
            )
    assert await _stored(units) == 1
    async with units.begin() as uow:
        await uow.session.execute(OutboxEvent.__table__.delete().where(OutboxEvent.type == _TYPE))


async def test_the_same_writes_in_a_writing_unit_are_stored(units: UnitsOfWork) -> None:
    async with units.begin() as uow:
        await INSERT_EVENT.execute(uow.session, _event_row() | {"occurred_at": units.clock.now()})
        uow.session.add(OutboxEvent(**(_event_row() | {"occurred_at": units.clock.now()})))
        await uow.session.flush()
    assert await _stored(units) == 2
    async with units.begin() as uow:
        await uow.session.execute(OutboxEvent.__table__.delete().where(OutboxEvent.type == _TYPE))


@pytest.mark.skipif(not is_postgres(), reason="SQLite has no server sessions to look at")
async def test_an_open_read_only_unit_holds_no_transaction_on_the_server(units: UnitsOfWork) -> None:
    """Between its statements a read-only unit's server session is `idle`, not `idle in transaction`: it
    holds no snapshot back from vacuum and, behind PgBouncer, no server connection."""
    async with units.read() as reading:
        pid = (await reading.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with units.read() as looking:
            state = await looking.session.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            # `idle` (or, behind PgBouncer, `active` when this very query got that server connection)
            assert state.scalar_one() != "idle in transaction"
    async with units.begin() as writing:
        pid = (await writing.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with units.read() as looking:
            state = await looking.session.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            assert state.scalar_one() == "idle in transaction"  # a writing unit does hold one


_BACKEND = DirectStatement(select(func.pg_backend_pid().label("pid")))


@pytest.mark.skipif(not is_postgres(), reason="a read-only unit holds a connection of its own on PostgreSQL")
class TestTheConnectionAReadOnlyUnitHolds:
    async def test_its_direct_statements_begin_nothing_in_the_session(self, units: UnitsOfWork) -> None:
        """They run on the connection the unit took as it started: the session is not asked for one, so its
        transaction machinery (a transaction begun and rolled back around nothing) costs nothing."""
        async with units.read() as uow:
            await _BACKEND.fetch_one(uow.session, {})
            await _BACKEND.fetch_one(uow.session, {})
            assert not uow.session.in_transaction()

    @pytest.mark.skipif(pooler() == "pgbouncer", reason="PgBouncer hands each autocommit statement a backend")
    async def test_its_orm_and_direct_statements_share_one_connection(self, units: UnitsOfWork) -> None:
        """One connection a unit whatever it runs, as before: a unit holding two would halve what the pool
        serves, and units each waiting for a second connection could wait for one another."""
        pool = units.database.engine.sync_engine.pool
        for snapshot in (False, True):
            async with units.read() as uow:
                if snapshot:
                    await uow.read_one_snapshot()
                direct_first = await _BACKEND.fetch_one(uow.session, {})
                orm = (await uow.session.execute(select(func.pg_backend_pid()))).scalar_one()
                direct_after = await _BACKEND.fetch_one(uow.session, {})
                assert direct_first == (orm,) == direct_after
                assert pool.checkedout() == 1  # type: ignore[attr-defined]
            assert pool.checkedout() == 0  # type: ignore[attr-defined]

    async def test_a_unit_that_reads_nothing_from_the_database_takes_no_connection(
        self, units: UnitsOfWork
    ) -> None:
        """A read answered from memory (the programme, the ladder, the event types) or refused before it reads
        (403, 422) takes nothing from the pool: the unit takes its connection at its first statement."""
        pool = units.database.engine.sync_engine.pool
        async with units.read():
            assert pool.checkedout() == 0  # type: ignore[attr-defined]
        async with units.read() as uow:
            await _BACKEND.fetch_one(uow.session, {})
            assert pool.checkedout() == 1  # type: ignore[attr-defined]
        assert pool.checkedout() == 0  # type: ignore[attr-defined]

    async def test_it_is_given_back_when_a_statement_fails(self, units: UnitsOfWork) -> None:
        pool = units.database.engine.sync_engine.pool
        failing = DirectStatement(select(func.pg_backend_pid() / bindparam("zero", type_=Integer)))
        with pytest.raises(DirectStatementFailed):
            async with units.read() as uow:
                await failing.fetch_one(uow.session, {"zero": 0})
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        async with units.read() as uow:  # and the pool hands out a connection that works
            assert await _BACKEND.fetch_one(uow.session, {}) is not None


@pytest.mark.skipif(not is_postgres(), reason="PostgreSQL's JIT compilation")
@pytest.mark.skipif(pooler() == "pgbouncer", reason="behind PgBouncer the role's setting does it (README)")
async def test_the_services_sessions_never_compile_a_plan_first(units: UnitsOfWork) -> None:
    """A lookup's plan, once its tables grew, crossed `jit_above_cost` and was compiled to machine code before
    each run: 50–700 ms a lookup. The service's connections have JIT off, read and write alike."""
    async with units.read() as reading:
        assert (await reading.session.execute(text("SHOW jit"))).scalar_one() == "off"
    async with units.begin() as writing:
        assert (await writing.session.execute(text("SHOW jit"))).scalar_one() == "off"


@pytest.mark.skipif(not is_postgres(), reason="only PostgreSQL has a connection to lose")
async def test_every_statement_after_the_held_connection_was_lost_says_so(units: UnitsOfWork) -> None:
    """The server ends the connection a read-only unit holds: the statement under way fails as the connection
    lost (an outage, 503), and so does any the unit runs after it, not an error nobody reads as an outage."""
    async with units.read() as uow:
        [backend] = await _BACKEND.fetch_one(uow.session, {}) or (None,)
        async with units.database.engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        for _ in range(2):
            with pytest.raises(DirectStatementFailed) as failed:
                await _BACKEND.fetch_one(uow.session, {})
            assert failed.value.connection_lost
    async with units.read() as uow:  # the pool hands out a connection that works
        assert await _BACKEND.fetch_one(uow.session, {}) is not None
