"""The listening connection (LISTEN/NOTIFY) is made from the database URL as the pool's connections are: the
settings a URL may carry for asyncpg reach it as arguments, never as server settings the server refuses."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from loyalty_api.db.notifications import listening
from loyalty_api.settings import Settings, check_database_url
from tests.databases import is_postgres, side_engine


@pytest.mark.skipif(not is_postgres(), reason="LISTEN/NOTIFY is PostgreSQL's")
async def test_a_url_with_asyncpg_settings_listens_and_hears(settings: Settings) -> None:
    base = settings.listen_database_url or settings.database_url
    # As an operator writes it: libpq's sslmode (asyncpg's ssl), asyncpg's numbers, the adaptor's cache.
    url = check_database_url(
        f"{base}?sslmode=prefer&timeout=5&command_timeout=30&statement_cache_size=10"
        "&prepared_statement_cache_size=10&direct_tls=false"
    )
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
