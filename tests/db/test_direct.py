"""Direct statements (loyalty_api.db.direct) run inside the unit of work's transaction and give back what
SQLAlchemy would, on both databases (PostgreSQL runs them on asyncpg itself, SQLite through the session)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Numeric, bindparam, cast, insert, make_url, select, text, update
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.exc import IntegrityError, PendingRollbackError, StatementError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import loyalty_api.db
from loyalty_api.db.direct import DirectStatement, DirectStatementFailed
from loyalty_api.db.engine import Database, TransactionRolledBack, create_engine
from loyalty_api.db.ids import new_id
from loyalty_api.db.migrations import schema_status
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.outbox.models import OutboxEvent
from loyalty_api.outbox.repository import INSERT_EVENT
from tests.databases import is_postgres, listen_url
from tests.relay import Relay

_EVENTS = OutboxEvent.__table__
# Every column but the sequence, which SQLite's trigger fills after RETURNING has read the row.
_WRITTEN = [column for column in _EVENTS.c if column.key != "sequence"]
_INSERT_EVENT = DirectStatement(INSERT_EVENT.statement.returning(*_WRITTEN))
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
        "partner_id": None,
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


@contextmanager
def _through_sqlalchemy(units: UnitsOfWork) -> Iterator[list[str]]:
    """The statements on outbox events that SQLAlchemy's execution layer ran while the block ran."""
    ran: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "outbox_events" in statement:
            ran.append(statement)

    engine = units.database.engine.sync_engine
    sqlalchemy_event.listen(engine, "before_cursor_execute", count)
    try:
        yield ran
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", count)


class TestTransaction:
    async def test_no_direct_statement_goes_through_sqlalchemy_on_postgresql(
        self, units: UnitsOfWork
    ) -> None:
        """Not even a transaction's first: the unit of work began the transaction on the driver when the
        statement asked for its connection (PostgreSQL); SQLite runs them all through the session."""
        with _through_sqlalchemy(units) as through_sqlalchemy:
            for _ in range(2):  # two transactions, three direct statements each
                async with units.begin() as uow:
                    for _ in range(3):
                        await _INSERT_EVENT.fetch_one(uow.session, _event())
        assert len(await _stored_ids(units)) == 6
        assert len(through_sqlalchemy) == (0 if is_postgres() else 6)

    async def test_a_read_only_unit_reads_what_each_statement_finds_unless_it_asked_for_one_snapshot(
        self, units: UnitsOfWork
    ) -> None:
        """On PostgreSQL a read-only unit's statements are each a transaction of their own, so a change
        committed between two of them shows in the second; one that asked for one snapshot keeps reading
        what its first statement found. A SQLite read transaction is one snapshot anyway."""
        event = _event()
        async with units.begin() as uow:
            await _INSERT_EVENT.fetch_one(uow.session, event)
        payload = DirectStatement(select(_EVENTS.c.payload).where(_EVENTS.c.id == bindparam("id")))
        set_payload = DirectStatement(
            update(_EVENTS).where(_EVENTS.c.id == bindparam("event_id")).values(payload=bindparam("payload"))
        )

        async def change(to: dict[str, int]) -> None:
            async with units.begin() as uow:
                await set_payload.execute(uow.session, {"event_id": event["id"], "payload": to})

        seen = []
        with _through_sqlalchemy(units) as through_sqlalchemy:
            for round, snapshot in enumerate((True, False), start=1):
                async with units.read() as uow:
                    if snapshot:
                        await uow.read_one_snapshot()
                    first = await payload.fetch_one(uow.session, {"id": event["id"]})
                    await change({"round": round})
                    seen.append((first, await payload.fetch_one(uow.session, {"id": event["id"]})))
        assert seen[0] == ((event["payload"],), (event["payload"],))
        assert seen[1] == (({"round": 1},), ({"round": 2},) if is_postgres() else ({"round": 1},))
        assert len(through_sqlalchemy) == (0 if is_postgres() else 6)

    async def test_a_direct_write_is_undone_with_the_unit_of_work(self, units: UnitsOfWork) -> None:
        async with _rolled_back(units) as uow:
            # The first statement of the unit of work: it must begin the transaction, not run outside it.
            row = await _INSERT_EVENT.fetch_one(uow.session, _event())
            assert row is not None
        assert await _stored_ids(units) == set()

    async def test_a_direct_write_commits_with_the_statements_around_it(self, units: UnitsOfWork) -> None:
        before, direct, after = _event(), _event(), _event()
        async with units.begin() as uow:
            await uow.session.execute(insert(_EVENTS), before)
            await _INSERT_EVENT.fetch_one(uow.session, direct)
            await uow.session.execute(insert(_EVENTS), after)
        assert await _stored_ids(units) == {before["id"], direct["id"], after["id"]}

    async def test_each_transaction_of_a_session_gets_its_own(self, units: UnitsOfWork) -> None:
        """The connection a direct statement ran on is remembered for the rest of the transaction only: after
        a commit, the next statement runs in the next transaction (which this one rolls back)."""
        committed, rolled_back = _event(), _event()
        async with _rolled_back(units) as uow:
            await _INSERT_EVENT.fetch_one(uow.session, committed)
            await uow.commit()
            await _INSERT_EVENT.fetch_one(uow.session, rolled_back)
        assert await _stored_ids(units) == {committed["id"]}


class TestRows:
    async def test_rows_come_back_as_sqlalchemy_gives_them(self, units: UnitsOfWork) -> None:
        event = _event()
        async with units.begin() as uow:
            returned = await _INSERT_EVENT.fetch_one(uow.session, event)
        async with units.read() as uow:
            query = select(*_WRITTEN).where(_EVENTS.c.id == event["id"])
            loaded = (await uow.session.execute(query)).one()
        assert returned == tuple(loaded)
        by_name = dict(zip([column.key for column in _WRITTEN], returned or (), strict=True))
        assert isinstance(by_name["id"], uuid.UUID) and by_name["id"] == event["id"]
        assert by_name["occurred_at"] == datetime(2026, 3, 16, 10, 30, tzinfo=UTC)
        assert by_name["occurred_at"].utcoffset() == timedelta(0)
        assert by_name["payload"] == event["payload"]
        assert by_name["dispatched_at"] is None

    async def test_no_row_and_many_rows(self, units: UnitsOfWork) -> None:
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


class TestRefusals:
    async def test_a_missing_value_is_refused_before_anything_runs(self, units: UnitsOfWork) -> None:
        event = _event()
        del event["aggregate_id"]
        async with units.begin() as uow:
            with pytest.raises(KeyError, match="aggregate_id"):
                await _INSERT_EVENT.fetch_one(uow.session, event)
        assert await _stored_ids(units) == set()

    @pytest.mark.parametrize(
        ("statement", "refusal"),
        [
            pytest.param(
                # The id column's default (a new id) is filled in by the execution layer a direct one skips.
                insert(_EVENTS).values({c.key: bindparam(c.key) for c in _EVENTS.c if c.key != "id"}),
                "column defaults",
                id="left-to-a-default",
            ),
            pytest.param(
                select(_EVENTS.c.id).where(_EVENTS.c.id.in_(bindparam("ids", expanding=True))),
                "IN lists",
                id="in-list",
            ),
            pytest.param(select(cast(bindparam("n"), Numeric(10, 2))), "Numeric", id="numeric-result"),
        ],
    )
    async def test_what_only_the_execution_layer_finishes_is_refused(
        self, units: UnitsOfWork, statement: Any, refusal: str
    ) -> None:
        event = _event()
        del event["id"]
        params = event | {"ids": [uuid.uuid4()], "n": 1}
        async with units.begin() as uow:
            with pytest.raises(ValueError, match=refusal):
                await DirectStatement(statement).fetch_all(uow.session, params)
        assert await _stored_ids(units) == set()

    async def test_a_refused_statement_does_not_carry_its_values(self, units: UnitsOfWork) -> None:
        """Errors are logged: a value the database or driver refuses (here a phone number where a member
        id belongs) must not end up in the log through the error's message."""
        phone = "13800138000"
        async with _rolled_back(units) as uow:
            # PostgreSQL: asyncpg refuses it, re-raised without values; SQLite: SQLAlchemy, which hides them.
            with pytest.raises((DirectStatementFailed, StatementError)) as refused:
                await _INSERT_EVENT.fetch_one(uow.session, _event(member_id=phone))
        error: BaseException | None = refused.value
        while error is not None:
            assert phone not in str(error)
            error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        assert await _stored_ids(units) == set()


@pytest.mark.skipif(not is_postgres(), reason="only PostgreSQL runs statements on the driver")
class TestOnPostgreSQL:
    async def test_a_broken_constraint_is_named(self, units: UnitsOfWork) -> None:
        event = _event()
        async with units.begin() as uow:
            await _INSERT_EVENT.fetch_one(uow.session, event)
        async with _rolled_back(units) as uow:
            with pytest.raises(DirectStatementFailed) as refused:
                await _INSERT_EVENT.fetch_one(uow.session, _event(id=event["id"]))
        assert refused.value.sqlstate == "23505"  # unique_violation
        assert refused.value.constraint_name == "pk_outbox_events"
        assert refused.value.table_name == "outbox_events"
        assert await _stored_ids(units) == {event["id"]}

    async def test_a_lost_connection_is_not_handed_out_again(self, units: UnitsOfWork) -> None:
        """The server ends the connection under a direct statement: the statement fails, the rollback after
        it does not (the connection was invalidated, as SQLAlchemy does for its own statements), and the
        next units of work, on whichever pooled connection, work."""
        uow = await units.start()
        try:
            backend = await uow.session.scalar(text("SELECT pg_backend_pid()"))
            async with units.database.engine.connect() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            with pytest.raises(DirectStatementFailed):
                await _INSERT_EVENT.fetch_one(uow.session, _event())
            await uow.rollback()
        finally:
            await uow.close()
        written = [_event() for _ in range(units.settings.database_pool_size + 1)]
        for event in written:
            async with units.begin() as uow:
                await _INSERT_EVENT.fetch_one(uow.session, event)
        assert await _stored_ids(units) == {event["id"] for event in written}

    async def test_a_transaction_a_statement_failed_in_does_not_commit(self, units: UnitsOfWork) -> None:
        """PostgreSQL answers COMMIT of a failed transaction by rolling it back, without an error: the unit of
        work says so instead of reporting a commit (the refused statement's error was caught)."""
        event = _event()

        async def write_twice() -> None:
            async with units.begin() as uow:
                await _INSERT_EVENT.fetch_one(uow.session, event)
                with pytest.raises(DirectStatementFailed):
                    await _INSERT_EVENT.fetch_one(uow.session, _event(id=event["id"]))

        with pytest.raises(TransactionRolledBack):
            await write_twice()
        assert await _stored_ids(units) == set()

    async def test_no_direct_statement_runs_after_a_failed_flush_rolled_the_transaction_back(
        self, units: UnitsOfWork
    ) -> None:
        """A failed flush rolls the session's transaction back at once; a direct statement after it (its
        error caught) must be refused as the session refuses its own statements, not run on the driver
        outside any transaction, where it would commit on its own."""
        first, late = _event(), _event()
        async with _rolled_back(units) as uow:
            await _INSERT_EVENT.fetch_one(uow.session, first)
            uow.session.add(OutboxEvent(**_event(id=first["id"])))
            with pytest.raises(IntegrityError):
                await uow.session.flush()
            with pytest.raises(PendingRollbackError):
                await _INSERT_EVENT.fetch_one(uow.session, late)
        assert await _stored_ids(units) == set()

    async def test_a_transaction_left_open_on_the_driver_ends_when_its_connection_returns(
        self, units: UnitsOfWork
    ) -> None:
        """Whatever began a transaction the unit of work did not see, the pool rolls it back when the
        connection comes back: the next unit of work on it starts clean, and nothing of it stays."""
        async with units.database.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            await driver.execute("BEGIN")
            await driver.execute("CREATE TABLE left_open (id int)")
        assert not driver.is_closed() and not driver.is_in_transaction()
        async with units.read() as uow:
            assert await uow.session.scalar(text("SELECT to_regclass('left_open') IS NULL")) is True

    async def test_pooled_connections_the_server_ended_fail_no_unit(self, units: UnitsOfWork) -> None:
        """The server ends idle pooled connections (a restart, a failover, a proxy's timeout): once asyncpg
        has seen them close, the pool replaces each as it is checked out, and no unit of work fails. (Behind
        PgBouncer our connections are to PgBouncer, which still stand: it takes new server connections.)"""
        held = [await units.start() for _ in range(3)]
        backends = [await uow.session.scalar(text("SELECT pg_backend_pid()")) for uow in held]
        for uow in held:
            await uow.commit()
            await uow.close()
        # On the server itself: through PgBouncer the killer could be handed one of the connections it ends.
        server = listen_url(units.settings.database_url) or units.settings.database_url
        engine = create_async_engine(server, poolclass=NullPool)
        try:
            async with engine.connect() as killer:
                await killer.execute(
                    text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                    {"pids": backends},
                )
                await killer.commit()
                # pg_terminate_backend only signals: wait until the server processes are gone, then let the
                # event loop read the closed sockets, as it has long done by the time a restart is over.
                alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(CAST(:pids AS int[]))")
                for _ in range(100):
                    if not await killer.scalar(alive, {"pids": backends}):
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.1)
        finally:
            await engine.dispose()
        written, failed = set(), 0
        for _ in range(2 * units.settings.database_pool_size):
            event = _event()
            try:
                async with units.begin() as uow:
                    await _INSERT_EVENT.fetch_one(uow.session, event)
            except DirectStatementFailed:
                failed += 1
            else:
                written.add(event["id"])
        assert failed == 0
        assert await _stored_ids(units) == written


@asynccontextmanager
async def _through_relay(units: UnitsOfWork) -> AsyncIterator[tuple[UnitsOfWork, Relay]]:
    """Units of work of their own (one pooled connection) whose connections pass through a relay."""
    url = make_url(units.settings.database_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    port = await relay.start()
    engine = create_engine(
        url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False),
        pool_size=1,
        max_overflow=0,
        pooler=units.settings.database_pooler,
    )
    try:
        yield UnitsOfWork(Database(engine), units.clock, units.vault, units.settings), relay
    finally:
        relay.release()
        await engine.dispose()
        await relay.close()


@pytest.mark.skipif(not is_postgres(), reason="only PostgreSQL has a connection to lose")
class TestLosingTheConnection:
    async def test_a_unit_cut_off_while_its_begin_is_out_leaves_no_transaction_behind(
        self, units: UnitsOfWork
    ) -> None:
        """A time limit cuts a snapshot's unit off after its BEGIN reached the server and before the reply
        came back. The connection it leaves must not carry that transaction into the next unit of work (a
        writer would then run in REPEATABLE READ, and its COMMIT would end a transaction it did not begin)."""
        async with _through_relay(units) as (relayed, relay):
            async with relayed.begin() as uow:  # the pool's one connection, opened
                await uow.session.execute(text("SELECT 1"))
            relay.hold()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2), relayed.read() as uow:
                    await uow.read_one_snapshot()
            relay.release()
            async with relayed.begin() as uow:
                level = await uow.session.scalar(text("SELECT current_setting('transaction_isolation')"))
                transactions = await uow.session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
                    )
                )
        assert level == "read committed"
        assert transactions == 0

    async def test_a_connection_lost_at_begin_is_the_database_unreachable_not_an_internal_error(
        self, units: UnitsOfWork
    ) -> None:
        """The network drops the pooled connection as BEGIN goes out (a NAT that forgot it): readiness
        reports the database unreachable (its check is the first to use the connection), a unit of work
        meanwhile fails (its new connection cannot be opened), and once the network is back the next one
        works."""
        event = _event()
        async with _through_relay(units) as (relayed, relay):
            async with relayed.begin() as uow:  # the pool's one connection, opened
                await uow.session.execute(text("SELECT 1"))
            relay.dropping = True
            status = await schema_status(relayed.database.engine)
            with pytest.raises(ConnectionError):
                async with relayed.begin() as uow:
                    await _INSERT_EVENT.fetch_one(uow.session, event)
            relay.dropping = False
            async with relayed.begin() as uow:
                await _INSERT_EVENT.fetch_one(uow.session, event)
            recovered = await schema_status(relayed.database.engine)
        assert (status.reachable, status.ready) == (False, False)
        assert recovered.ready
        assert await _stored_ids(units) == {event["id"]}


def test_the_database_layer_touches_no_private_part_of_a_library() -> None:
    """SQLAlchemy (or asyncpg) renaming a private member must not turn every earn into a 500: db/ reaches
    nothing of a library's that starts with an underscore (its own names aside)."""
    folder = Path(loyalty_api.db.__file__).parent
    private = re.compile(r"(?<!self)(?<!cls)\.\_[a-z]\w*")
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(folder.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if private.search(line.split("#")[0])
    ]
    assert found == []
