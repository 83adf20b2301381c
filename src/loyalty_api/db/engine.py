"""Async engine setup for asyncpg (PostgreSQL) and aiosqlite (SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session

from loyalty_api.settings import Pooler, Settings

READ_ONLY = "loyalty_read_only"  # in a read-only session's info and its connection's execution options


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


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Make SQLite behave like a server database for our purposes.

    The driver's own implicit BEGIN is turned off so that we emit it ourselves: `BEGIN IMMEDIATE` for
    units of work that may write (the transaction takes the single write lock up front, so a read followed by
    a write can never fail on a stale snapshot, and concurrent writers queue on busy_timeout), plain
    `BEGIN` for read-only ones.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def driver_options(pooler: Pooler) -> dict[str, Any]:
    """The asyncpg connection's options for the pooler in front of PostgreSQL (`connect_args`).

    Behind PgBouncer in transaction mode, consecutive transactions of one client connection may run on
    different server connections, so a statement prepared under a name in one is missing (or, under
    asyncpg's numbered names, another client's) in the next. With both statement caches off (asyncpg's,
    which direct statements use, and SQLAlchemy's) asyncpg prepares every statement unnamed and parses it
    again when it binds it, so nothing outlives its transaction, or its round trip outside one. Unique
    statement names (`prepared_statement_name_func`) would avoid the clashes too, but leave a statement
    behind on a server connection whenever asyncpg closes it in a later transaction."""
    if pooler == "pgbouncer":
        return {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    return {}


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    echo: bool = False,
    pooler: Pooler = "none",
) -> AsyncEngine:
    # hide_parameters: a logged database error must not carry the values it was given (personal data).
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args=driver_options(pooler),
    )


def engine_for(settings: Settings, url: str | None = None) -> AsyncEngine:
    """The engine the settings describe: the database (or `url`), its pool, the pooler in front of it."""
    return create_engine(
        url or settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        echo=settings.database_echo,
        pooler=settings.database_pooler,
    )


class Database:
    """The engine and the two kinds of session a unit of work can hold."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._writer = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        reading: dict[str, Any] = {READ_ONLY: True}
        if self.dialect == "postgresql":
            # A read-only unit of work sends no BEGIN and no ROLLBACK: each statement is its own transaction.
            # Under READ COMMITTED each statement of a transaction reads a snapshot of its own anyway, so this
            # reads what a transaction would, with two round trips fewer (a lookup made three). A unit that
            # needs one snapshot throughout asks its connection for REPEATABLE READ before its first
            # statement. Its writes would commit at once, so they are refused (WriteInReadOnlyUnit).
            reading["isolation_level"] = "AUTOCOMMIT"
        self._reader = async_sessionmaker(
            engine.execution_options(**reading),
            expire_on_commit=False,
            autoflush=False,
            info={READ_ONLY: True},
        )

    def session(self, *, read_only: bool = False) -> AsyncSession:
        return (self._reader if read_only else self._writer)()

    async def dispose(self) -> None:
        await self.engine.dispose()
