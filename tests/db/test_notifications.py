"""The listening connection (LISTEN/NOTIFY) is made from the database URL as the pool's connections are: the
settings a URL may carry for asyncpg reach it as arguments, never as server settings the server refuses, and
each of several hosts is tried in turn."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import make_url, text

from loyalty_api.db.notifications import listening
from loyalty_api.settings import Settings, check_database_url
from tests.databases import is_postgres, side_engine

# libpq's sslmode (asyncpg's ssl), asyncpg's numbers, SQLAlchemy's adaptor's own statement cache.
SETTINGS = (
    "sslmode=prefer&timeout=5&command_timeout=30&statement_cache_size=10&prepared_statement_cache_size=10"
)


@pytest.mark.skipif(not is_postgres(), reason="LISTEN/NOTIFY is PostgreSQL's")
@pytest.mark.parametrize("written", ["settings", "failover hosts"])
async def test_the_listener_connects_and_hears_with_the_url_as_an_operator_writes_it(
    settings: Settings, written: str
) -> None:
    base = make_url(settings.listen_database_url or settings.database_url)
    if written == "settings":
        url = check_database_url(f"{base.render_as_string(hide_password=False)}?{SETTINGS}")
    else:  # the server first, then a port where nothing listens (the discard port)
        server = f"{base.host}:{base.port or 5432}"
        no_host = (
            f"{base.drivername}://{base.username}@/{base.database}"  # the suite's server takes no password
        )
        url = check_database_url(f"{no_host}?host={server}&host=127.0.0.1:9&target_session_attrs=any")
    heard: asyncio.Queue[str] = asyncio.Queue()
    started = asyncio.Event()
    async with listening(
        url, "loyalty_test", on_notification=heard.put_nowait, on_listening=started.set, name="test-listener"
    ):
        await asyncio.wait_for(started.wait(), timeout=10)
        engine = side_engine(settings)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("SELECT pg_notify('loyalty_test', 'hello')"))
        finally:
            await engine.dispose()
        assert await asyncio.wait_for(heard.get(), timeout=10) == "hello"
