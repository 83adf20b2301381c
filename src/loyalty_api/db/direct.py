"""Hot-path statements that PostgreSQL runs on the asyncpg connection itself.

SQLAlchemy's execution layer (execution context, parameter and result processing, the result object, the
greenlet hop) costs about 130 µs of CPU per statement on our machine, more than asyncpg's whole round trip
(see "Direct statements" in benchmarks/README.md). A `DirectStatement` is still a SQLAlchemy Core statement.
SQLAlchemy compiles it once per engine, with the bind and result processors it would apply, and it runs on
the unit of work's own connection, inside its transaction. SQLite runs it through the session as usual: its
statements do not cross a network and it has no such driver.

What it gives up, and so what belongs here: statements of the till's and the checkout's paths, and those
every write shares (the outbox insert), each built once at import. It takes no IN lists, no column
defaults and no Numeric results, and `echo` does not log it. Everything else goes through the session.

The flush rule: a direct statement does not flush the session, so run one only after the session has
flushed what it must see (the services write the till's rows through direct statements or flush first).

Through public APIs only: the first direct statement of a transaction asks the session for its connection,
which begins the unit of work's transaction (the unit of work sends BEGIN on the driver, db/engine.py), and
every direct statement runs on that connection's asyncpg connection (the pooled connection's
`driver_connection`), inside that transaction, which the unit of work commits or rolls back as usual. A
read-only unit of work has no transaction (autocommit) unless it asked for one snapshot, and from its first
direct statement or snapshot holds its connection itself, its session bound to it (`get_bind()` is that
connection, db/engine.hold_connection): its statements run on that connection's driver, inside the
snapshot's transaction when there is one. asyncpg
prepares each statement once per connection and keeps it under a name; behind PgBouncer in transaction mode
(settings.database_pooler) its statement cache is off, and it prepares them unnamed, anew each time
(db/engine.py, `driver_options`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Numeric
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import Executable, ReturnsRows

from loyalty_api.db.engine import READ_ONLY, DirectStatementFailed, WriteInReadOnlyUnit, hold_connection

Processor = Callable[[Any], Any]
_CONNECTION = "loyalty_api.db.direct.connection"  # the key of the remembered connection in session.info
Driver = Any  # an asyncpg.Connection: asyncpg ships no type information
S = TypeVar("S", bound=ReturnsRows)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement compiled for one dialect. Processors are listed by position, for the values whose type has
    one (most have none): a run passes over the others once, to gather them."""

    sql: str
    # (name, default) in the order of the statement's $1, $2, …: the default is the value built into the
    # statement, None where the caller must give one.
    binds: tuple[tuple[str, Any], ...]
    bind_processors: tuple[tuple[int, Processor], ...]
    required: frozenset[str]
    returns_rows: bool  # a SELECT, or RETURNING
    # By result column; a None value is never processed.
    result_processors: tuple[tuple[int, Processor], ...]


def _compile(statement: ReturnsRows, dialect: Dialect) -> _Compiled:
    """Compile as SQLAlchemy would, refusing what only its execution layer would finish: column defaults,
    IN lists and values rendered at execution, values computed at execution, and Numeric results (their
    processors need the driver's type of each result column)."""
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError("a direct statement gets no column defaults: give every value")
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("a direct statement takes no IN lists or values rendered at execution")
    binds = []
    bind_processors = []
    required = set()
    for position, name in enumerate(compiled.positiontup):
        bind = compiled.binds[name]
        if bind.callable is not None:
            raise ValueError(f"{name}: a direct statement takes no values computed at execution")
        if bind.required:
            required.add(name)
        binds.append((name, None if bind.required else bind.value))
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            bind_processors.append((position, processor))
    columns = list(statement.exported_columns)
    result_processors = []
    for position, column in enumerate(columns):
        if isinstance(column.type, Numeric):
            raise ValueError(f"{column}: a direct statement returns no Numeric values")
        processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if processor is not None:
            result_processors.append((position, processor))
    return _Compiled(
        sql=str(compiled),
        binds=tuple(binds),
        bind_processors=tuple(bind_processors),
        required=frozenset(required),
        returns_rows=bool(columns),
        result_processors=tuple(result_processors),
    )


def _processed(record: Sequence[Any], processors: tuple[tuple[int, Processor], ...]) -> tuple[Any, ...]:
    """A row as SQLAlchemy would give it: `record`'s values, those of the processed columns converted."""
    if not processors:
        return tuple(record)
    row = list(record)
    for position, processor in processors:
        value = row[position]
        if value is not None:
            row[position] = processor(value)
    return tuple(row)


def _remembered(session: AsyncSession) -> tuple[Connection, Driver] | None:
    """The session's connection and its asyncpg connection: the one a read-only unit holds and bound its
    session to (db/engine.hold_connection), or, for a session that takes its own, once a direct statement of
    the session's current transaction asked for them; None before that. Remembered for the rest of the
    transaction: asking the session costs about 50 µs a time, a greenlet hop, and a redeem runs eight direct
    statements."""
    bind = session.get_bind()
    if isinstance(bind, Connection):  # checked out by now: reading its pooled connection does no I/O
        if bind.invalidated:
            # Lost under an earlier statement: the unit goes on failing as an outage does, rather than have
            # SQLAlchemy reconnect it here (outside its greenlet, or inside a snapshot that is gone).
            raise DirectStatementFailed(ConnectionError("the connection was lost"), connection_lost=True)
        return bind, bind.connection.driver_connection
    remembered = session.info.get(_CONNECTION)
    transaction = session.sync_session.get_transaction()
    # A transaction a failed flush rolled back is still the session's, but no longer active: asking the
    # session again raises as it does for its own statements, where the driver would run this on its own.
    if remembered is not None and transaction is not None and remembered[0] is transaction:
        return (remembered[1], remembered[2]) if transaction.is_active else None
    return None


async def _connection_of(session: AsyncSession) -> tuple[Connection, Driver]:
    """The session's connection (asking for it begins the unit of work's transaction: db/engine.py) and its
    asyncpg connection, remembered for the rest of the transaction. One greenlet hop for both."""

    def find(sync_session: Session) -> tuple[Connection, Driver]:
        connection = sync_session.connection()
        # Connected by now: reading the pooled connection does no I/O.
        return connection, connection.connection.driver_connection

    try:
        connection, driver = await session.run_sync(find)
    except DBAPIError as exc:
        # The same failure the driver would have given: asyncpg's error, under the adaptor's.
        adaptor_error = exc.orig if exc.orig is not None else exc
        raise DirectStatementFailed(adaptor_error.__cause__ or adaptor_error) from None
    session.info[_CONNECTION] = (session.sync_session.get_transaction(), connection, driver)
    return connection, driver


async def _on_driver(
    session: AsyncSession, found: tuple[Connection, Driver], run: Callable[[Driver], Awaitable[Any]]
) -> Any:
    """`run` on the asyncpg connection, in the session's transaction. A failure comes out as
    DirectStatementFailed. When it lost the connection, the connection is invalidated first, as SQLAlchemy
    does for its own statements: otherwise the rollback that follows fails too, and the pool would hand the
    dead connection out again."""
    connection, driver = found
    try:
        return await run(driver)
    except Exception as exc:
        session.info.pop(_CONNECTION, None)
        closed = driver.is_closed()
        if closed:
            await session.run_sync(lambda _: connection.invalidate())
        raise DirectStatementFailed(exc, connection_lost=closed) from None


class DirectStatement(Generic[S]):
    """A Core statement (a SELECT, an INSERT or UPDATE, with or without RETURNING) run past SQLAlchemy's
    execution layer on PostgreSQL. Rows come back as tuples of the values SQLAlchemy would give."""

    def __init__(self, statement: S) -> None:
        if not isinstance(statement, Executable):
            raise TypeError("a direct statement must be executable")
        self.statement: S = statement
        self._executable: Executable = statement  # the same statement, typed for session.execute
        self._writes: bool = isinstance(statement, UpdateBase)  # an INSERT, UPDATE or DELETE
        self._compiled: dict[Dialect, _Compiled] = {}

    def _compiled_for(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = _compile(self.statement, dialect)
        missing = compiled.required - params.keys()
        if missing:  # the session would quietly write NULL or a default there: refused on both databases
            raise KeyError(f"no value for {', '.join(sorted(missing))}")
        return compiled

    @staticmethod
    def _arguments(compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
        given = params.get
        arguments = [given(name, default) for name, default in compiled.binds]
        for position, processor in compiled.bind_processors:
            arguments[position] = processor(arguments[position])
        return arguments

    async def execute(self, session: AsyncSession, params: Mapping[str, Any]) -> None:
        """Run it for its effect."""
        await self.fetch_all(session, params)

    async def fetch_all(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[tuple[Any, ...]]:
        if self._writes and session.info.get(READ_ONLY):
            raise WriteInReadOnlyUnit("a read-only unit of work ran a direct write")
        found = _remembered(session)  # only ever on PostgreSQL
        if found is None:
            dialect = session.get_bind().dialect
            if dialect.name != "postgresql":
                compiled = self._compiled_for(dialect, params)
                result = await session.execute(self._executable, dict(params))
                return [tuple(row) for row in result] if compiled.returns_rows else []
            held = await hold_connection(session)  # a read-only unit's first statement on PostgreSQL
            if held is not None:  # checked out just now: reading its pooled connection does no I/O
                found = held, held.connection.driver_connection
            else:
                found = await _connection_of(session)
        compiled = self._compiled_for(found[0].dialect, params)
        arguments = self._arguments(compiled, params)
        records = await _on_driver(session, found, lambda driver: driver.fetch(compiled.sql, *arguments))
        return [_processed(record, compiled.result_processors) for record in records]

    async def fetch_one(self, session: AsyncSession, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The only row, or None when there is none."""
        rows = await self.fetch_all(session, params)
        if len(rows) > 1:
            raise ValueError(f"{len(rows)} rows where at most one was expected")
        return rows[0] if rows else None
