"""What a request answers when its database is out of reach: `database_unavailable`, logged as an outage
rather than a bug. Two moments change what its caller must be told: the commit, which may have landed, and
freeing the Idempotency-Key, which then stays claimed until its lease ends. REST and GraphQL answer alike."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from loyalty_api.clock import Clock
from loyalty_api.db.outage import database_busy, database_out_of_reach, pool_exhausted
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.http.errors import DatabaseUnavailable
from loyalty_api.idempotency.service import Claim

logger = logging.getLogger("loyalty_api.errors")


def unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """The answer to `error` when it is the database out of reach (logged with the error's class only: the
    driver's message may name the host), every connection of the pool busy, or SQLite's write lock held by
    another process past the busy timeout, else None."""
    if pool_exhausted(error):
        logger.warning("every database connection busy", extra={"error": type(error).__name__})
        return DatabaseUnavailable.pool_busy()
    if database_busy(error):
        logger.warning("database locked by another process", extra={"error": type(error).__name__})
        return DatabaseUnavailable.locked()
    if not database_out_of_reach(error):
        return None
    logger.warning("database unreachable", extra={"error": type(error).__name__})
    return DatabaseUnavailable()


async def commit(uow: UnitOfWork) -> None:
    """Commit the unit of work; DatabaseUnavailable.while_committing when the connection was lost on the way,
    since the server may have committed before the answer was lost."""
    try:
        await uow.commit()
    except Exception as exc:
        if not database_out_of_reach(exc) or database_busy(exc):  # a COMMIT refused as busy did nothing
            raise
        logger.warning("database unreachable while committing", extra={"error": type(exc).__name__})
        raise DatabaseUnavailable.while_committing() from exc


async def settle(settle_claim: Callable[[], Awaitable[None]], claimed: Claim, clock: Clock) -> None:
    """Record what became of the request's claim on its key; DatabaseUnavailable.key_held when the database is
    out of reach, with the seconds until the claim's lease ends (until then a retry with the key is 409)."""
    try:
        await settle_claim()
    except Exception as exc:
        if not database_out_of_reach(exc):
            raise
        seconds = max(2, math.ceil((claimed.lease - clock.now()).total_seconds()))
        logger.warning("Idempotency-Key left claimed", extra={"error": type(exc).__name__})
        raise DatabaseUnavailable.key_held(seconds) from exc
