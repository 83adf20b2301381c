"""The listening connection (LISTEN/NOTIFY) is made from the database URL as the pool's connections are: the
settings a URL may carry for asyncpg reach it as arguments, never as server settings the server refuses, and
each of several hosts is tried in turn."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import make_url, text

from loyalty_api.db import notifications
from loyalty_api.db.notifications import listening
from loyalty_api.settings import Settings, check_database_url
from tests.databases import is_postgres, side_engine
from tests.relay import Relay

# libpq's sslmode (asyncpg's ssl), asyncpg's numbers, SQLAlchemy's adaptor's own statement cache.
SETTINGS = (
    "sslmode=prefer&timeout=5&command_timeout=30&statement_cache_size=10&prepared_statement_cache_size=10"
)
NOTHING = "127.0.0.1:9"  # the discard port: nothing listens there


@pytest.mark.skipif(not is_postgres(), reason="LISTEN/NOTIFY is PostgreSQL's")
@pytest.mark.parametrize(
    "written", ["settings", "server, then nothing", "nothing, then server", "host twice"]
)
async def test_the_listener_connects_and_hears_with_the_url_as_an_operator_writes_it(
    settings: Settings, written: str
) -> None:
    base = make_url(settings.listen_database_url or settings.database_url)
    server = f"{base.host}:{base.port or 5432}"
    user = f"{base.drivername}://{base.username}@"  # the suite's server takes no password
    url = check_database_url(
        {
            "settings": f"{user}{server}/{base.database}?{SETTINGS}",
            # Failover: the server, and a port where nothing listens, in either order.
            "server, then nothing": f"{user}/{base.database}?host={server}&host={NOTHING}",
            "nothing, then server": f"{user}/{base.database}?host={NOTHING}&host={server}",
            # A host before the path as well: SQLAlchemy, and so the pool, takes those after it.
            "host twice": f"{user}{NOTHING}/{base.database}?host={server}&host={NOTHING}",
        }[written]
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


@pytest.mark.skipif(not is_postgres(), reason="LISTEN/NOTIFY is PostgreSQL's")
async def test_an_outage_is_logged_once_as_it_begins_and_once_as_it_ends_not_at_each_reconnection(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener tries again every second while the database is away: each try is no news, and one
    line a second per listener and process would bury what the outage's other lines say."""
    monkeypatch.setattr(notifications, "RECONNECT_SECONDS", 0.01)
    caplog.set_level(logging.INFO, logger="loyalty_api.db")
    base = make_url(settings.listen_database_url or settings.database_url)
    relay = Relay((base.host or "127.0.0.1", base.port or 5432))
    url = base.set(host="127.0.0.1", port=await relay.start()).render_as_string(hide_password=False)
    started = asyncio.Event()
    try:
        async with listening(
            url, "loyalty_test", on_notification=lambda _: None, on_listening=started.set, name="test-listen"
        ):
            await asyncio.wait_for(started.wait(), timeout=10)
            started.clear()
            await relay.cut()
            await asyncio.sleep(0.5)  # some dozens of tries
            await relay.restore()
            await asyncio.wait_for(started.wait(), timeout=10)
    finally:
        await relay.close()
    said = [record.getMessage() for record in caplog.records if record.name == "loyalty_api.db"]
    assert said == ["listening connection lost", "listening again"], said
