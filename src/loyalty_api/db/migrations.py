"""Running the Alembic migrations from code: the CLI, `serve`, /readyz and the tests all use these."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import column, func, inspect, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_api.db.engine import READ_ONLY
from loyalty_api.db.outage import what_the_driver_said

# Where alembic records the schema's revision (its default name, as env.py leaves it).
VERSION_TABLE = "alembic_version"
# The advisory lock key of a migration's turn (take_migration_turn).
MIGRATION_LOCK = 0x0A_1E_B1_C0


def script_location() -> Path:
    """The migrations folder: packaged inside the wheel, or at the top of a source checkout."""
    packaged = Path(str(resources.files("loyalty_api") / "_migrations"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    """Every revision this release's migrations hold."""
    return frozenset(
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    )


def take_migration_turn(connection: Connection) -> None:
    """Wait for any other migration to end, and hold the turn until this one's transaction ends, before
    alembic reads the schema's revision. A rolling deploy may run `migrate` on two hosts at once: without a
    turn both read the same revision and run the same upgrade, and the second fails on what the first made
    (an index or table already there, or the version row it no longer finds). In turn, the second reads the
    revision the first left and has nothing to do. PostgreSQL: a transaction-scoped advisory lock, so it
    holds through a transaction-mode PgBouncer. SQLite: the migration's transaction begins IMMEDIATE, so
    migrations take turns already."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))


def _current(connection: Connection) -> str | None:
    # Read as alembic keeps it, without its MigrationContext: that logs two INFO lines ("Context impl …") at
    # each read, and /readyz reads at every probe, the CLI before each command.
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(select(column("version_num")).select_from(table(VERSION_TABLE))).scalar()


async def current_revision(engine: AsyncEngine) -> str | None:
    # A read-only connection: on SQLite a plain BEGIN, never BEGIN IMMEDIATE, so the read (every /readyz
    # probe, the CLI's check before each command) neither waits for the database's one writer, a request's
    # or a job's transaction, nor makes the next writer wait in SQLite's busy handler.
    async with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        return await connection.run_sync(_current)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    reachable: bool
    revision: str | None
    expected: str | None
    # Why the database did not answer: the error's class, and what the driver said (never the URL's password).
    error: str | None = None
    problem: str | None = None

    @property
    def ahead(self) -> bool:
        """At a revision this release does not know: a newer release migrated the database. A rolling upgrade
        does that (migrate first, then replace the processes one by one), and a rollback finds it, so this
        release runs on it: each release's migrations leave a schema the release before runs on."""
        return self.reachable and self.revision is not None and self.revision not in known_revisions()

    @property
    def behind(self) -> bool:
        """At an older revision of this release, or none: this release's `migrate` brings it up."""
        return self.reachable and not self.ahead and self.revision != self.expected

    @property
    def ready(self) -> bool:
        return self.reachable and not self.behind


async def schema_status(engine: AsyncEngine, *, within: float | None = None) -> SchemaStatus:
    """The schema's revision against this release's; unreachable when the database fails, or does not answer
    `within` seconds (a server that takes connections and never answers would hold the caller forever, or
    for the driver's connection timeout)."""
    expected = head_revision()
    limit = asyncio.timeout(within)
    try:
        async with limit:
            revision = await current_revision(engine)
    except (SQLAlchemyError, OSError) as exc:  # TimeoutError is an OSError
        if limit.expired():
            problem = f"no answer within {within:g} s"
        else:
            problem = what_the_driver_said(exc, engine.url.password)
        return SchemaStatus(
            reachable=False, revision=None, expected=expected, error=type(exc).__name__, problem=problem
        )
    return SchemaStatus(reachable=True, revision=revision, expected=expected)
