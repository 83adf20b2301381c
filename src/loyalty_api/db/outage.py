"""Telling an outage from a bug: whether an error says the database could not be reached, or dropped the
connection while a statement was out (a restart, a failover, a network cut, every connection slot taken, a
login refused, the database dropped, renamed or closed to connections, or every connection of the process's
pool busy), which the same request may get past a moment later, rather than that the database refused a
statement."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from loyalty_api.db.engine import DirectStatementFailed

# SQLSTATEs of a server that is not there to answer: connection exceptions (class 08), the server shutting
# down or starting up (57P01–57P03), no connection slot free (53300), and a connection refused its login
# (class 28: a password rotated, a role locked while the service runs; only a login raises it), or refused
# because the database it names is not there (3D000: dropped, renamed or being restored; the service's
# statements name no other database, so only a login raises it).
_OUT_OF_REACH = ("08", "28", "3D000", "57P01", "57P02", "57P03", "53300")
# SQLite's SQLITE_BUSY, the primary result code beneath its extended ones (the low byte).
_SQLITE_BUSY = 5


def _links(error: BaseException) -> Iterator[BaseException]:
    """The error, then, for SQLAlchemy's, what it wraps: the adaptor's error and the driver's beneath it.
    Nothing else's causes: an HTTP client's failure to connect has an OSError beneath it too."""
    yield error
    if isinstance(error, DBAPIError) and error.orig is not None:
        yield error.orig
        if error.orig.__cause__ is not None:
            yield error.orig.__cause__


def database_out_of_reach(error: BaseException) -> bool:
    """Whether `error` is the database being out of reach: SQLAlchemy or a direct statement found the
    connection gone, or the SQLSTATE says so (a direct statement's `DirectStatementFailed` carries the
    driver's). An OSError counts (asyncpg's own, from opening a connection, comes out unwrapped:
    `ConnectionRefusedError` while the server is down; a server that never answers is ConnectTimedOut, a
    database closed to connections DatabaseClosed), but not a bare TimeoutError, which a time limit of ours
    raises. So does the pool's wait for a connection running out (pool_exhausted): the request never reached
    the database either; nor SQLite's wait for its write lock (database_busy)."""
    if pool_exhausted(error) or database_busy(error):
        return True
    for link in _links(error):
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            return True
        if isinstance(link, DirectStatementFailed) and link.connection_lost:
            return True
        sqlstate = getattr(link, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_OUT_OF_REACH):
            return True
        if isinstance(link, OSError) and not isinstance(link, TimeoutError):
            return True
    return False


def pool_exhausted(error: BaseException) -> bool:
    """Whether `error` is the pool's wait for a connection running out: every one it may open was busy (an
    overload, or connections held by slow work), so the request never reached the database."""
    return isinstance(error, PoolTimeout)


def database_busy(error: BaseException) -> bool:
    """Whether `error` is SQLite's wait for its one write lock running out (`database is locked`): another
    process held it past the busy timeout (a `loyalty-api` command, a migration, a shell with a transaction
    open), so the statement was not run; this process's own writers take turns and never meet it."""
    for link in _links(error):
        code = getattr(link, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == _SQLITE_BUSY:
            return True
    return False


def what_the_driver_said(error: BaseException, password: str | None) -> str:
    """Why a connection failed, on one line, for an operator: the driver's message without SQLAlchemy's
    wrapping (the statement, a link to its docs), and never the URL's password."""
    said = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    line = next(iter(str(said).strip().splitlines()), "") or type(said).__name__
    return line.replace(password, "***") if password else line
