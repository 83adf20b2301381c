"""Test databases: a fresh PostgreSQL database per run (and per xdist worker), or an SQLite file.

LOYALTY_TEST_DATABASE_URL picks the server: `postgresql+asyncpg://postgres@127.0.0.1:5432/postgres` makes
the suite create `loyalty_test_<random>` on that server and drop it afterwards. Unset, the suite runs on
SQLite in a temporary folder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ENV_VAR = "LOYALTY_TEST_DATABASE_URL"


def server_url() -> str | None:
    return os.environ.get(ENV_VAR) or None


def is_postgres() -> bool:
    url = server_url()
    return url is not None and url.startswith("postgresql")


@asynccontextmanager
async def fresh_database(folder: Path, label: str) -> AsyncIterator[str]:
    """Yield the URL of a new, empty database and remove it afterwards."""
    server = server_url()
    if server is None:
        yield f"sqlite+aiosqlite:///{folder / f'{label}.db'}"
        return
    name = f"loyalty_test_{label}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
