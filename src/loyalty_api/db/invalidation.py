"""Cache entries forgotten in every process at once, on PostgreSQL.

A change to something processes cache (cache.py) notifies CHANNEL with the entry's key inside its own
transaction: PostgreSQL delivers a notification only once its transaction commits, so no process forgets
too early (and reloads the old value), and a change rolled back is never heard of. Every API and worker
process listens on a connection of its own (db/notifications.py) and forgets each key it hears of; when it
(re)starts listening it clears everything, as it may have missed notifications meanwhile. Within the
time to live (settings.cache_seconds) that is the only way a change reaches another process. SQLite has
no notifications: there the time to live alone paces other processes (the CLI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.cache import TtlCache
from loyalty_api.db.notifications import is_postgres, listening
from loyalty_api.settings import Settings

CHANNEL = "loyalty_cache"


async def announce(session: AsyncSession, key: str) -> None:
    """Have every process listening forget `key` once the session's transaction commits (PostgreSQL)."""
    await session.execute(select(func.pg_notify(CHANNEL, key)))


@asynccontextmanager
async def invalidations(settings: Settings, cache: TtlCache) -> AsyncIterator[None]:
    """While the block runs, `cache` forgets what other processes changed (nothing to do on SQLite)."""
    if not is_postgres(settings.database_url):
        yield
        return
    async with listening(
        settings.listen_url,
        CHANNEL,
        on_notification=cache.forget,
        on_listening=cache.clear,
        name="loyalty-api cache invalidations",
    ):
        yield
