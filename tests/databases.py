"""Test databases: a fresh PostgreSQL database per run (and per xdist worker), or an SQLite file.

LOYALTY_TEST_DATABASE_URL picks the server: `postgresql+asyncpg://postgres@127.0.0.1:5432/postgres` makes
the suite create `loyalty_test_<random>` on that server and drop it afterwards. Unset, the suite runs on
SQLite in a temporary folder.

Through PgBouncer in transaction mode (as `.ci/run` runs part of the suite): LOYALTY_TEST_DATABASE_URL names
the PgBouncer (which must reach any database on the server: a `*` entry), LOYALTY_TEST_DATABASE_POOLER is
`pgbouncer`, and LOYALTY_TEST_LISTEN_DATABASE_URL names the PostgreSQL server itself, where the service
LISTENs (the test database's name is put in both).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from loyalty_api.db.engine import driver_options
from loyalty_api.settings import Pooler, Settings

ENV_VAR = "LOYALTY_TEST_DATABASE_URL"
POOLER_ENV_VAR = "LOYALTY_TEST_DATABASE_POOLER"
LISTEN_ENV_VAR = "LOYALTY_TEST_LISTEN_DATABASE_URL"


def server_url() -> str | None:
    return os.environ.get(ENV_VAR) or None


def is_postgres() -> bool:
    url = server_url()
    return url is not None and url.startswith("postgresql")


def pooler() -> Pooler:
    return "pgbouncer" if os.environ.get(POOLER_ENV_VAR) == "pgbouncer" else "none"


def listen_url(database_url: str) -> str | None:
    """Where the service LISTENs when its database is `database_url`: the same database on the server that
    LOYALTY_TEST_LISTEN_DATABASE_URL names, or None (the database URL itself)."""
    server = os.environ.get(LISTEN_ENV_VAR)
    if not server or not database_url.startswith("postgresql"):
        return None
    database = make_url(database_url).database
    return make_url(server).set(database=database).render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(folder: Path, label: str) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database and remove it afterwards."""
    server = server_url()
    if server is None:
        yield f"sqlite+aiosqlite:///{folder / f'{label}.db'}"
        return
    name = f"loyalty_test_{label}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT", connect_args=driver_options(pooler()))
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
            # A commit does not wait for its WAL to reach the disk: the tests commit thousands of times and
            # test no crash of the server (a backend ended by pg_terminate_backend loses nothing this way),
            # and on a disk with slow flushes that wait was most of the PostgreSQL suite's time.
            await connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


# How an operator closes a database to the service's connections, for maintenance or a restore.
CLOSINGS = ("ALLOW_CONNECTIONS false", "CONNECT revoked", "DROP DATABASE interrupted")


@asynccontextmanager
async def closed_database(how: str) -> AsyncIterator[str]:
    """Yield the URL of a new database of the test server that refuses the service's logins as an operator
    closed it (`how`, one of CLOSINGS: the database altered, or the CONNECT privilege revoked from PUBLIC for
    a role of the service's own), or as a DROP DATABASE cut off partway leaves it (marked invalid, as
    PostgreSQL's own tests mark one), and remove both afterwards."""
    server = server_url()
    assert server is not None and server.startswith("postgresql"), "closing a database needs a server"
    name = f"loyalty_test_closed_{uuid.uuid4().hex[:10]}"
    url = make_url(server).set(database=name)
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT", connect_args=driver_options(pooler()))
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
            if how == "ALLOW_CONNECTIONS false":
                await connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            elif how == "DROP DATABASE interrupted":
                invalid = text("UPDATE pg_database SET datconnlimit = -2 WHERE datname = :name")
                await connection.execute(invalid, {"name": name})
            else:
                await connection.execute(text(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC'))
                await connection.execute(text(f'CREATE ROLE "{name}" LOGIN'))
                url = url.set(username=name, password=None)
        yield url.render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        await admin.dispose()


def side_engine(settings: Settings) -> AsyncEngine:
    """Connections of a test's own to the service's database, outside the app's pool, one per `connect()`."""
    return create_async_engine(
        settings.database_url, poolclass=NullPool, connect_args=driver_options(settings.database_pooler)
    )


@asynccontextmanager
async def account_locked(settings: Settings, member_id: str) -> AsyncIterator[AsyncConnection]:
    """The member's points account locked, by a connection of the test's own, until the block ends: a
    write to it waits meanwhile. Yields a second connection, in autocommit (inside a transaction the view of
    pg_stat_activity stands still), to see the waiting server process or end it."""
    engine = side_engine(settings)
    try:
        async with engine.connect() as gate, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            lock = text("SELECT 1 FROM points_accounts WHERE member_id = :m FOR UPDATE")
            await gate.execute(lock, {"m": uuid.UUID(member_id)})
            try:
                yield watcher
            finally:
                await gate.rollback()
    finally:
        await engine.dispose()


async def lock_waiters(watcher: AsyncConnection) -> int:
    """How many of the test database's sessions wait for a lock now (`watcher` in autocommit)."""
    waiting = await watcher.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )
    return int(waiting or 0)


async def until_waiting_for_a_lock(watcher: AsyncConnection, work: asyncio.Future[Any] | None = None) -> None:
    """Return once a session of the test database waits for a lock, or `work` ended without waiting, or after
    five seconds (the test's own assertions then say what went wrong)."""
    for _ in range(500):
        if (work is not None and work.done()) or await lock_waiters(watcher):
            return
        await asyncio.sleep(0.01)
