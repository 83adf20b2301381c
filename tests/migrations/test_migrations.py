from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_api.db.engine import create_engine
from loyalty_api.db.migrations import alembic_config, current_revision, downgrade, head_revision, upgrade
from loyalty_api.schema import metadata
from tests.databases import fresh_database


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def diff_against_models(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(_diff)


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_tables)


class TestMigrations:
    def test_there_is_one_head(self) -> None:
        assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1

    async def test_upgrade_downgrade_upgrade_matches_the_models(self, tmp_path: Path) -> None:
        async with fresh_database(tmp_path, "migrations") as url:
            engine = create_engine(url)
            try:
                await upgrade(engine)
                assert await current_revision(engine) == head_revision()
                assert await diff_against_models(engine) == []
                assert await tables(engine) == set(metadata.tables)

                await downgrade(engine, "base")
                assert await tables(engine) == set()

                await upgrade(engine)
                assert await diff_against_models(engine) == []
            finally:
                await engine.dispose()

    def test_revision_files_follow_the_naming_scheme(self) -> None:
        folder = Path(__file__).resolve().parents[2] / "migrations" / "versions"
        names = [p.name for p in folder.glob("*.py")]
        assert names
        for name in names:
            date, _, slug = name.partition("_")
            assert len(date) == len("YYYY-MM-DD-HHMM") and date[4] == date[7] == date[10] == "-", name
            assert slug.endswith(".py") and slug[:-3].replace("_", "").isalnum(), name
