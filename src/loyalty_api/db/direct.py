"""Hot-path statements that PostgreSQL runs on the asyncpg connection itself.

SQLAlchemy's execution layer (execution context, parameter and result processing, the result object, the
greenlet hop) costs about 130 µs of CPU per statement on our machine: more than asyncpg's whole round trip,
and a tenth of the till's earn (see benchmarks/README.md). A `DirectStatement` is still a SQLAlchemy Core
statement. SQLAlchemy compiles it once for the dialect, with the same bind and result processors it would
apply, and it runs on the unit of work's own connection, inside its transaction. SQLite runs it through the
session as usual: its statements do not cross a network and it has no such driver.

Only statements on a path a benchmark drives belong here; everything else goes through the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable, ReturnsRows

Processor = Callable[[Any], Any]
S = TypeVar("S", bound=ReturnsRows)


class DirectStatementFailed(Exception):
    """The database refused a direct statement. Unlike the driver's own error, the message never carries the
    statement's values (they may be personal data, and the error is logged)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[
        tuple[str, Any, Processor | None], ...
    ]  # name, default value (None when required), processor
    required: frozenset[str]
    results: tuple[Processor | None, ...]


def _compile(statement: ReturnsRows, dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError("a direct statement gets no column defaults: give every value")
    binds = []
    required = set()
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        if bind.expanding:
            raise ValueError(f"{name}: a direct statement takes no IN lists")
        if bind.required:
            required.add(name)
        binds.append((name, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect)))
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.exported_columns
    )
    return _Compiled(str(compiled), tuple(binds), frozenset(required), results)


@contextmanager
def _values_kept_out() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        raise DirectStatementFailed(f"{type(exc).__name__} (SQLSTATE {sqlstate})") from None


async def _driver_in_transaction(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, its transaction begun. SQLAlchemy's adaptor begins it only
    on the first statement it runs itself; beginning it through the adaptor keeps it the one that the unit
    of work commits or rolls back."""
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    adapted: Any = pooled.dbapi_connection
    if adapted._transaction is None:
        await adapted._start_transaction()
    return pooled.driver_connection


class DirectStatement(Generic[S]):
    """A Core statement (a SELECT, an INSERT or UPDATE, with or without RETURNING) run past SQLAlchemy's
    execution layer on PostgreSQL. Rows come back as tuples of the values SQLAlchemy would give."""

    def __init__(self, statement: S) -> None:
        if not isinstance(statement, Executable):
            raise TypeError("a direct statement must be executable")
        self.statement: S = statement
        self._executable: Executable = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return compiled

    def _arguments(self, compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
        return [
            value if processor is None else processor(value)
            for name, default, processor in compiled.binds
            for value in (params.get(name, default),)
        ]

    def _checked(self, session: AsyncSession, params: Mapping[str, Any]) -> tuple[Dialect, _Compiled]:
        dialect = session.get_bind().dialect
        compiled = self._for(dialect)
        missing = compiled.required - params.keys()
        if missing:  # the session would leave such a column out of an INSERT: refused alike on both databases
            raise KeyError(f"no value for {', '.join(sorted(missing))}")
        return dialect, compiled

    async def execute(self, session: AsyncSession, params: Mapping[str, Any]) -> None:
        """Run it for its effect."""
        dialect, compiled = self._checked(session, params)
        if dialect.name != "postgresql":
            await session.execute(self._executable, dict(params))
            return
        arguments = self._arguments(compiled, params)
        driver = await _driver_in_transaction(session)
        with _values_kept_out():
            await driver.execute(compiled.sql, *arguments)

    async def fetch_all(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[tuple[Any, ...]]:
        dialect, compiled = self._checked(session, params)
        if dialect.name != "postgresql":
            result = await session.execute(self._executable, dict(params))
            return [tuple(row) for row in result]
        arguments = self._arguments(compiled, params)
        driver = await _driver_in_transaction(session)
        with _values_kept_out():
            records = await driver.fetch(compiled.sql, *arguments)
        return [
            tuple(
                value if processor is None or value is None else processor(value)
                for value, processor in zip(record, compiled.results, strict=True)
            )
            for record in records
        ]

    async def fetch_one(self, session: AsyncSession, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The only row, or None when there is none."""
        rows = await self.fetch_all(session, params)
        if len(rows) > 1:
            raise ValueError(f"{len(rows)} rows where at most one was expected")
        return rows[0] if rows else None
