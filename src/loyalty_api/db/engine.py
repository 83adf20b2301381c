"""Async engine setup for asyncpg (PostgreSQL) and aiosqlite (SQLite)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.engine import AdaptedConnection, Connection, Dialect
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.pool import PoolResetState

from loyalty_api.settings import Pooler, Settings, asyncpg_url_arguments

READ_ONLY = "loyalty_read_only"  # in a read-only session's info and its connection's execution options
# A connection's execution option on SQLite: the event loop's time until which its writing transaction waits
# for another process's hold on the database's write lock, as it begins (UnitsOfWork.start).
LOCK_WAIT_UNTIL = "loyalty_lock_wait_until"
SNAPSHOT = "loyalty_snapshot"  # a connection's execution option: its transaction reads one snapshot
# In a read-only session's info on PostgreSQL (see hold_connection): how it takes the connection it will hold,
# until it takes it; then that connection, which closing the unit of work gives back.
_HOLD = "loyalty_hold"
_HELD = "loyalty_held"


class WriteInReadOnlyUnit(RuntimeError):
    """A read-only unit of work tried to write. On PostgreSQL each of its statements commits on its own (no
    transaction is begun, see Database), so the write would stay: it is refused before it is sent."""


@event.listens_for(Session, "before_flush")
def _refuse_flush_when_read_only(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise WriteInReadOnlyUnit("a read-only unit of work flushed changes")


@event.listens_for(Session, "do_orm_execute")
def _refuse_statement_writes_when_read_only(state: ORMExecuteState) -> None:
    # An insert, update or delete handed to the session itself, which no flush sees.
    if state.session.info.get(READ_ONLY) and (state.is_insert or state.is_update or state.is_delete):
        raise WriteInReadOnlyUnit("a read-only unit of work executed a write")


class DirectStatementFailed(SQLAlchemyError):
    """The database refused a statement sent on the driver itself (db/direct.py, the BEGIN and COMMIT of a
    unit of work on PostgreSQL, its BEGIN on SQLite), or could not be reached to run it. An SQLAlchemyError
    like those SQLAlchemy raises for its own statements, so what treats a database error as such (readiness,
    the metrics' backlog) treats this one alike. Unlike the driver's own error, the message never carries
    the statement's values (they may be personal data, and the error is logged); it names what failed."""

    def __init__(self, error: BaseException, *, connection_lost: bool = False) -> None:
        # The connection was found closed: the server ended it, or the network did (asyncpg's error then may
        # carry no SQLSTATE).
        self.connection_lost = connection_lost
        self.sqlstate: str | None = getattr(error, "sqlstate", None)
        self.constraint_name: str | None = getattr(error, "constraint_name", None)
        self.table_name: str | None = getattr(error, "table_name", None)
        # SQLite's code, for its BEGIN (db.outage.database_busy reads it).
        self.sqlite_errorcode: int | None = getattr(error, "sqlite_errorcode", None)
        sqlite_error: str | None = getattr(error, "sqlite_errorname", None)
        super().__init__(
            f"{type(error).__name__} ({sqlite_error})"
            if sqlite_error is not None
            else f"{type(error).__name__} (SQLSTATE {self.sqlstate}, table {self.table_name}, "
            f"constraint {self.constraint_name})"
        )


class ConnectTimedOut(ConnectionError):
    """The database did not answer a connection attempt within the driver's `timeout` (a host that drops what
    it is sent: a network cut, a failed-over address). A ConnectionError, so it counts as the database out of
    reach (db/outage.py), as a refused connection does; asyncpg says it with a bare TimeoutError, which a time
    limit of ours raises too."""


class DatabaseClosed(ConnectionError):
    """The server refused a login to a database an operator closed to connections: `ALTER DATABASE …
    ALLOW_CONNECTIONS false` (SQLSTATE 55000), or the CONNECT privilege revoked from the service's role
    (42501), as one does for maintenance or a restore; or to one a DROP DATABASE cut off partway left invalid
    (55000 too, `cannot connect to invalid database`). A ConnectionError, so it counts as the database out of
    reach (db/outage.py) until it is opened again. Both SQLSTATEs are also a statement's refusals (55000 a
    sequence's currval before its nextval, 42501 a table the role has no right to), which are bugs: only met
    while connecting are they the database closed. The message is the server's (it names the database)."""


class TransactionRolledBack(RuntimeError):
    """COMMIT found the transaction failed (a statement of it was refused and the error was caught): the
    server rolled it back instead. Nothing of it was written."""


# How long an SQLite connection waits for another process's hold on a lock (the write lock, mostly): a
# `loyalty-api` command, a migration, a shell with a transaction open. A request's writer waits until its
# time limit instead, if that comes first (LOCK_WAIT_UNTIL), rounded down to a step: the wait the writer
# before it on the connection set, mostly, so it is not set again (each time costs a round trip to the
# driver's thread).
BUSY_TIMEOUT_MS = 30_000
_LOCK_WAIT_STEP_MS = 100
# A reader waits for a lock only in rare moments (another process recovering the WAL after a crash, say):
# the wait a writer left on the connection will do, unless it is shorter than this.
_READER_WAIT_MS = 1_000
_BUSY_TIMEOUT = "loyalty_busy_timeout"  # in a pooled SQLite connection's info: the busy timeout it has


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Make SQLite behave like a server database for our purposes.

    The driver's own implicit BEGIN is turned off so that we emit it ourselves: `BEGIN IMMEDIATE` for
    units of work that may write (the transaction takes the single write lock up front, so a read followed by
    a write can never fail on a stale snapshot, and concurrent writers queue on busy_timeout), plain
    `BEGIN` for read-only ones.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()
        record.info[_BUSY_TIMEOUT] = BUSY_TIMEOUT_MS

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        read_only = options.get(READ_ONLY, False)
        info = connection.connection.info
        has = info.get(_BUSY_TIMEOUT)
        if read_only:
            wait = has if has is not None and has >= _READER_WAIT_MS else BUSY_TIMEOUT_MS
        else:
            wait = _lock_wait(options.get(LOCK_WAIT_UNTIL))
        if has != wait:
            info.pop(_BUSY_TIMEOUT, None)  # unknown, should this fail
            _run_on_sqlite(connection, f"PRAGMA busy_timeout={wait}")
            info[_BUSY_TIMEOUT] = wait
        _run_on_sqlite(connection, "BEGIN" if read_only else "BEGIN IMMEDIATE")


def _run_on_sqlite(connection: Connection, sql: str) -> None:
    """Run `sql` on the connection's aiosqlite connection, from SQLAlchemy's side of its greenlet: through
    SQLAlchemy's execution a statement costs several times as much (a BEGIN, 175-220 µs of CPU against 35;
    an earn, 2.6 % more instructions: benchmarks/README.md).

    A refusal (`database is locked`, mostly) is raised as DirectStatementFailed with SQLite's error code
    (db.outage.database_busy reads it), an SQLAlchemyError as SQLAlchemy's own would have been. A
    cancellation invalidates the connection, as SQLAlchemy does when one cuts its own statement off: the
    driver's thread goes on with the statement, and the pool must never hand out a connection inside a
    transaction no unit of work began."""
    try:
        _adapted(connection).run_async(lambda driver: driver.execute(sql))
    except Exception as exc:
        raise DirectStatementFailed(exc) from exc
    except BaseException:
        connection.invalidate()
        raise


def _lock_wait(until: float | None) -> int:
    """How many milliseconds a writer waits for another process's write lock: until `until` (the event
    loop's time, a request's time limit; to the step before it) if that comes before the busy timeout ends.
    SQLite waits in the driver's thread, where no asyncio time limit can cut the wait short, so the limit is
    SQLite's own: once it has passed, `database is locked` (db.outage.database_busy)."""
    if until is None:
        return BUSY_TIMEOUT_MS
    left = int((until - asyncio.get_running_loop().time()) * 1000)
    return max(0, min(BUSY_TIMEOUT_MS, left - left % _LOCK_WAIT_STEP_MS))


def _adapted(connection: Connection) -> AdaptedConnection:
    """SQLAlchemy's adaptor of the connection's driver connection (`driver_connection`: asyncpg's or
    aiosqlite's)."""
    return cast(AdaptedConnection, connection.connection.dbapi_connection)


def _send(connection: Connection, sql: str) -> str:
    """Send `sql` on the connection's asyncpg connection, from SQLAlchemy's side of its greenlet; its status
    (`COMMIT`, `ROLLBACK`…).

    Unless the server answered with an error (the connection is then as the error leaves it), a failure
    leaves the connection in a state nobody knows: lost, or cut off by a time limit or a cancelled task
    while the statement was out, when the server may have begun the transaction without asyncpg having read
    so. It is invalidated, as SQLAlchemy does when one of its own statements fails that way: the pool never
    hands it out again, to a unit of work that would run inside a transaction it did not begin."""
    adapted = _adapted(connection)
    try:
        status: str = adapted.run_async(lambda driver: driver.execute(sql))
    except BaseException as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        answered = sqlstate is not None and not sqlstate.startswith("08")  # class 08: connection exception
        closed = adapted.driver_connection.is_closed()
        if not answered or closed:
            connection.invalidate(exc if isinstance(exc, Exception) else None)
        if isinstance(exc, Exception):
            raise DirectStatementFailed(exc, connection_lost=closed) from None
        raise
    return status


def _ours(connection: Connection) -> bool:
    """Whether this connection's transactions are the unit of work's, sent on the driver (they are unless
    the connection was set to AUTOCOMMIT, as tests' watchers are). Any other level would have the adaptor
    begin a transaction of its own beside ours: refused."""
    level = connection.get_execution_options().get("isolation_level")
    if level not in (None, "AUTOCOMMIT"):
        raise ValueError(f"isolation level {level}: ask the unit of work for one snapshot instead")
    return level is None


def _own_transactions(engine: AsyncEngine) -> None:
    """On PostgreSQL the unit of work sends BEGIN, COMMIT and ROLLBACK itself, on the asyncpg connection.

    The engine's connections are in autocommit, so SQLAlchemy's asyncpg adaptor never begins a transaction
    of its own; SQLAlchemy still says when one begins and ends (its connection events), and these listeners
    send the statements then. A transaction begun this way is begun with the unit of work's first use of its
    connection, so even its first statement can run on the driver (db/direct.py), past SQLAlchemy's
    execution layer (an earn: 3 % less CPU, benchmarks/README.md). A read-only unit of work sends
    nothing: each of its statements is a transaction of its own (see Database), unless it asked for one
    snapshot."""

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if not _ours(connection):
            return
        options = connection.get_execution_options()
        if options.get(SNAPSHOT):
            _send(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ")
        elif not options.get(READ_ONLY):
            _send(connection, "BEGIN")

    @event.listens_for(engine.sync_engine, "commit")
    def _on_commit(connection: Connection) -> None:
        driver = _adapted(connection).driver_connection
        if _ours(connection) and driver.is_in_transaction() and _send(connection, "COMMIT") != "COMMIT":
            raise TransactionRolledBack("the transaction had failed: the server rolled it back")

    @event.listens_for(engine.sync_engine, "rollback")
    def _on_rollback(connection: Connection) -> None:
        if connection.invalidated:  # the server ended it: there is nothing to roll back
            return
        driver = _adapted(connection).driver_connection
        if _ours(connection) and not driver.is_closed() and driver.is_in_transaction():
            _send(connection, "ROLLBACK")

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(adapted: Any, _record: Any, _proxy: Any) -> None:
        # The server ended this pooled connection while it sat idle (a restart, a failover, a proxy's
        # timeout) and asyncpg has seen it close: the pool replaces it before the unit of work has it, so
        # a restart fails no request for each connection the pool held.
        if adapted.driver_connection.is_closed():
            raise DisconnectionError("the server ended this pooled connection")

    @event.listens_for(engine.sync_engine, "reset")
    def _on_return(adapted: Any, _record: Any, state: PoolResetState) -> None:
        # A transaction no connection event ended must not reach the next unit of work on this connection:
        # one whose commit failed before COMMIT was sent (SQLAlchemy drops it then without a rollback).
        driver = adapted.driver_connection
        if state.asyncio_safe and not driver.is_closed() and driver.is_in_transaction():
            adapted.run_async(lambda driver: driver.execute("ROLLBACK"))


def driver_options(pooler: Pooler) -> dict[str, Any]:
    """The asyncpg connection's options for the pooler in front of PostgreSQL (`connect_args`).

    Connected directly, the session turns PostgreSQL's JIT compilation off (`jit`, sent as the connection
    starts). The till's reads carry scalar subqueries whose estimated cost grows with the orders and lots
    tables; past `jit_above_cost` (100,000) every lookup compiled its plan to machine code first: 50 ms a
    lookup, and 700 ms once asyncpg's prepared statement went to a generic plan (which JIT also optimises),
    with 70,000 orders in a benchmark's database. Nothing the service runs is long enough to win that back.
    A transaction-mode PgBouncer refuses startup settings it does not know: its deployments turn JIT off
    for the service's role instead (README, "Several processes, PgBouncer").

    Behind PgBouncer in transaction mode, consecutive transactions of one client connection may run on
    different server connections, so a statement prepared under a name in one is missing (or, under
    asyncpg's numbered names, another client's) in the next. With both statement caches off (asyncpg's,
    which direct statements use, and SQLAlchemy's) asyncpg prepares every statement unnamed and parses it
    again when it binds it, so nothing outlives its transaction, or its round trip outside one. Unique
    statement names (`prepared_statement_name_func`) would avoid the clashes too, but leave a statement
    behind on a server connection whenever asyncpg closes it in a later transaction."""
    if pooler == "pgbouncer":
        return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    return {"server_settings": {"jit": "off"}}


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
    echo: bool = False,
    pooler: Pooler = "none",
) -> AsyncEngine:
    # hide_parameters: a logged database error must not carry the values it was given (personal data).
    if url.startswith("sqlite"):
        # The same pool as on PostgreSQL (SQLAlchemy's own for an SQLite file is 5 + 10 connections and a 30 s
        # wait, whatever the settings said): each connection is a thread of the driver's, the readers' limit
        # (WAL lets them read beside the writer), and a request that waits out the pool's wait for one is
        # answered 503 as on PostgreSQL. No recycling: a file has no server to drop an idle connection.
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        hide_parameters=True,
        # The URL's numbers and flags typed (SQLAlchemy hands them on as text); the pooler's needs win.
        connect_args=asyncpg_url_arguments(url) | driver_options(pooler),
        isolation_level="AUTOCOMMIT",  # the unit of work sends BEGIN itself: see _own_transactions
    )
    _own_transactions(engine)
    _connect_failures_named(engine)
    return engine


# SQLSTATEs of a login refused because the database is closed to connections (see DatabaseClosed).
_CLOSED = ("55000", "42501")


def _connect_failures_named(engine: AsyncEngine) -> None:
    """A connection attempt the database never answers fails as ConnectTimedOut: raised inside the driver's
    connect, a TimeoutError can only be the driver's own (a time limit of ours cancels the attempt instead,
    and says so where it was set). A login refused because the database is closed to connections fails as
    DatabaseClosed: the server's SQLSTATE alone could be a statement's (a bug), but here it is a login's."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: object, cargs: list[Any], cparams: dict[str, Any]) -> object:
        try:
            return dialect.connect(*cargs, **cparams)
        except TimeoutError as exc:
            raise ConnectTimedOut("the database did not answer a connection attempt in time") from exc
        except Exception as exc:
            # SQLAlchemy's adaptor of asyncpg's error carries the server's SQLSTATE.
            if getattr(exc, "sqlstate", None) in _CLOSED:
                raise DatabaseClosed(str(exc)) from exc
            raise


def engine_for(settings: Settings, url: str | None = None) -> AsyncEngine:
    """The engine the settings describe: the database (or `url`), its pool, the pooler in front of it."""
    return create_engine(
        url or settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        echo=settings.database_echo,
        pooler=settings.database_pooler,
    )


class Database:
    """The engine and the two kinds of session a unit of work can hold."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._writer = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        # On PostgreSQL a read-only unit of work sends no BEGIN and no ROLLBACK: each statement is its own
        # transaction. Under READ COMMITTED each statement of a transaction reads a snapshot of its own
        # anyway, so this reads what a transaction would, with two round trips fewer (a lookup made three).
        # A unit that needs one snapshot throughout asks for it (UnitOfWork.read_one_snapshot). Its writes
        # would commit at once, so they are refused (WriteInReadOnlyUnit).
        self._read_engine = engine.execution_options(**{READ_ONLY: True})
        self._reader = async_sessionmaker(
            self._read_engine, expire_on_commit=False, autoflush=False, info={READ_ONLY: True}
        )

    def session(self, *, read_only: bool = False) -> AsyncSession:
        """A session. A read-only one on PostgreSQL holds a connection of its own from its first direct
        statement or snapshot on (`hold_connection`), not from the start: a unit answered from memory, or
        refused before it reads, takes nothing from the pool."""
        if not read_only:
            return self._writer()
        session = self._reader()
        if self.dialect == "postgresql":
            session.info[_HOLD] = self._read_engine.connect
        return session

    async def dispose(self) -> None:
        await self.engine.dispose()


async def hold_connection(session: AsyncSession) -> Connection | None:
    """The connection a read-only session on PostgreSQL holds itself, its session bound to it: taken from the
    pool at the first call, if the session has not begun a transaction on a connection of its own by then (an
    ORM statement first; that one then serves the unit). Direct statements run on its driver without the
    session's transaction machinery (db/direct.py); the session begins a transaction on it only for an ORM
    statement or a snapshot. None for any other session. `release_connection` gives it back."""
    held: AsyncConnection | None = session.info.get(_HELD)
    if held is not None:
        return held.sync_connection
    take = session.info.get(_HOLD)
    if take is None or session.in_transaction():
        return None
    del session.info[_HOLD]  # one try: should it fail, the session takes its own as it needs one
    connection: AsyncConnection = await take()
    session.info[_HELD] = connection
    session.bind = connection
    session.sync_session.bind = connection.sync_connection
    return connection.sync_connection


async def release_connection(session: AsyncSession) -> None:
    """Give back the connection the session holds (`hold_connection`), if it took one. Its session must have
    ended any transaction on it first (closing the session does)."""
    held: AsyncConnection | None = session.info.pop(_HELD, None)
    if held is not None:
        await held.close()
