"""Wake the webhook worker when there is something to send, instead of waiting for its timer.

On PostgreSQL a trigger on the outbox and on the deliveries notifies CHANNEL when a transaction that wrote
there commits; the worker listens on a connection of its own. SQLite has no notifications: the worker's timer
paces it alone. A notification only says "look now": the timer stays, so one lost (a dropped connection, a
restart) delays a delivery by a tick, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import make_url

from loyalty_api.settings import Settings

CHANNEL = "loyalty_webhooks"  # the migration's trigger notifies this
_RECONNECT_SECONDS = 1.0

logger = logging.getLogger("loyalty_api.webhooks")


@asynccontextmanager
async def wake_ups(settings: Settings) -> AsyncIterator[asyncio.Event]:
    """An event set whenever the database says new events or deliveries were committed (never, on SQLite);
    the caller clears it before it looks."""
    woken = asyncio.Event()
    url = make_url(settings.database_url)
    if url.get_backend_name() != "postgresql":
        yield woken
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    listener = asyncio.create_task(_listen(dsn, woken), name="webhook-wake-ups")
    try:
        yield woken
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def _listen(dsn: str, woken: asyncio.Event) -> None:
    while True:
        try:
            await _listen_until_lost(dsn, woken)
        except Exception as exc:  # the listener must outlive any failure: the worker leans on it
            logger.warning("webhook wake-ups interrupted", extra={"error": type(exc).__name__})
        await asyncio.sleep(_RECONNECT_SECONDS)


async def _listen_until_lost(dsn: str, woken: asyncio.Event) -> None:
    lost = asyncio.Event()
    connection = await asyncpg.connect(dsn)
    try:
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, lambda *_: woken.set())
        woken.set()  # whatever was committed while nobody listened
        await lost.wait()
    finally:
        with contextlib.suppress(Exception):
            await connection.close(timeout=1)
