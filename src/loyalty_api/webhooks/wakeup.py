"""Wake the webhook worker when there is something to send, instead of waiting for its timer.

On PostgreSQL a trigger on the outbox and on the deliveries notifies CHANNEL when a transaction that wrote
there commits; the worker listens on a connection of its own (settings.listen_url). SQLite has no
notifications: the worker's timer paces it alone. A notification only says "look now": the timer stays, so
one lost (a dropped connection, a restart) delays a delivery by a tick, never loses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from loyalty_api.db.notifications import is_postgres, listening
from loyalty_api.settings import Settings

CHANNEL = "loyalty_webhooks"  # the migration's trigger notifies this


@asynccontextmanager
async def wake_ups(settings: Settings) -> AsyncIterator[asyncio.Event]:
    """An event set whenever the database says new events or deliveries were committed (never, on SQLite);
    the caller clears it before it looks."""
    woken = asyncio.Event()
    if not is_postgres(settings.database_url):
        yield woken
        return
    async with listening(
        settings.listen_url,
        CHANNEL,
        on_notification=lambda _payload: woken.set(),
        # Whatever was committed while nobody listened.
        on_listening=woken.set,
        name="loyalty-api webhook wake-ups",
    ):
        yield woken
