"""Alembic environment for both PostgreSQL and SQLite.

Called from code (loyalty_api.db.migrations) a connection comes in `config.attributes`; called from the
`alembic` command line the URL comes from LOYALTY_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from loyalty_api.db.engine import engine_for
from loyalty_api.db.migrations import take_migration_turn
from loyalty_api.db.types import DecimalText, UTCDateTime
from loyalty_api.schema import metadata
from loyalty_api.settings import Settings


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our portable column types by name, so generated revisions import one module."""
    if type_ != "type":
        return False
    autogen_context.imports.add("import loyalty_api.db.types")
    if isinstance(obj, UTCDateTime):
        return "loyalty_api.db.types.UTCDateTime()"
    if isinstance(obj, DecimalText):
        return "loyalty_api.db.types.DecimalText()"
    if isinstance(obj, sa.JSON):
        return "loyalty_api.db.types.JSONDocument"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite can only ALTER through table copies
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        take_migration_turn(connection)
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = engine_for(Settings())
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
elif context.is_offline_mode():
    context.configure(url=Settings().database_url, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_with_own_engine())
