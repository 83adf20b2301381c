"""Listening to PostgreSQL's notifications (LISTEN/NOTIFY) on a connection of one's own.

LISTEN belongs to a session: the listening connection is a direct asyncpg connection, never one of the
pool's, and never through PgBouncer in transaction mode (which hands the server connection to another
client after each statement, so notifications would go astray): settings.listen_url names where to
connect. A notification is delivered only to sessions listening when its transaction commits, so whoever
listens must assume it missed some whenever it was not listening: `on_listening` runs each time listening
(re)starts, to catch up. A silent connection is probed now and then, so that one lost without a word (a
network gone) is noticed and replaced too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import make_url

from loyalty_api.db.outage import what_the_driver_said
from loyalty_api.settings import ADAPTOR_STATEMENT_CACHE, asyncpg_connect_arguments

RECONNECT_SECONDS = 1.0
PROBE_EVERY_SECONDS = 30.0
PROBE_TIMEOUT_SECONDS = 5.0

logger = logging.getLogger("loyalty_api.db")


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


@asynccontextmanager
async def listening(
    url: str,
    channel: str,
    *,
    on_notification: Callable[[str], None],
    on_listening: Callable[[], None],
    name: str,
) -> AsyncIterator[None]:
    """Call `on_notification(payload)` for each notification on `channel` while the block runs, on a
    connection to the PostgreSQL database `url` (reconnected whenever lost); `on_listening()` once listening
    has begun, and again after each reconnection. `name` is the connection's application_name."""
    arguments = _connect_arguments(url)
    task = asyncio.create_task(_listen(arguments, channel, on_notification, on_listening, name), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def why_not_listening(url: str) -> str | None:
    """Why no listening connection to `url` can be had now (what the driver said, on one line), or None when
    one can. Asked once at start: a listener that cannot connect only warns and retries, while every change
    made in another process waits for the cache's lifetime."""
    try:
        connection = await asyncpg.connect(**_connect_arguments(url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return what_the_driver_said(exc, make_url(url).password)
    await connection.close(timeout=1)
    return None


def _connect_arguments(url: str) -> dict[str, Any]:
    """asyncpg.connect's arguments for the database URL, as the pool's connections get them, without the
    statement cache of SQLAlchemy's adaptor (not asyncpg's). asyncpg's own reading of the URL as a DSN would
    differ: it keeps only the last of several hosts, prefers a host before the path to those after it, and
    sends a setting it does not know (`ssl`, which libpq's `sslmode` becomes) to the server, which refuses
    it."""
    arguments = asyncpg_connect_arguments(url)
    arguments.pop(ADAPTOR_STATEMENT_CACHE, None)
    return arguments


async def _listen(
    arguments: dict[str, Any],
    channel: str,
    on_notification: Callable[[str], None],
    on_listening: Callable[[], None],
    name: str,
) -> None:
    # An outage is said once as it begins and once as it ends, not at each try to reconnect (every second,
    # in each listener of each process).
    interrupted = False

    def listened() -> None:
        nonlocal interrupted
        if interrupted:
            interrupted = False
            logger.info("listening again", extra={"listener": name})
        on_listening()

    while True:
        try:
            await _listen_until_lost(arguments, channel, on_notification, listened, name)
            logger.warning("listening connection lost", extra={"listener": name})
        except Exception as exc:  # the listener must outlive any failure: its process leans on it
            if not interrupted:
                logger.warning("listening interrupted", extra={"listener": name, "error": type(exc).__name__})
        interrupted = True
        await asyncio.sleep(RECONNECT_SECONDS)


async def _listen_until_lost(
    arguments: dict[str, Any],
    channel: str,
    on_notification: Callable[[str], None],
    on_listening: Callable[[], None],
    name: str,
) -> None:
    lost = asyncio.Event()
    connection = await asyncpg.connect(server_settings={"application_name": name}, **arguments)
    try:
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(channel, lambda _c, _pid, _channel, payload: on_notification(payload))
        on_listening()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), PROBE_EVERY_SECONDS)
                return
            # Raises, and so reconnects, when the connection died without the server saying so.
            await connection.execute("SELECT 1", timeout=PROBE_TIMEOUT_SECONDS)
    finally:
        with contextlib.suppress(Exception):
            await connection.close(timeout=1)
