"""The renewal job (`loyalty-api jobs subscriptions`): notices, renewals, grace, expiry, monthly coupons."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from loyalty_api.db.outage import database_out_of_reach
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.subscriptions.repository import SubscriptionRepository
from loyalty_api.subscriptions.service import advance_subscription

logger = logging.getLogger("loyalty_api.subscriptions")


async def run_subscriptions(units: UnitsOfWork, *, batch: int = 200) -> int:
    """Bring every subscription with something due up to date; returns the steps taken. Each subscription in
    its own transaction under its locks, so running twice, or in two processes, does each step once (the
    second finds nothing due, or skips a member another holds until its next run). One run walks
    everything due at its start, by (next action at, id)."""
    now = units.clock.now()
    steps = 0
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with units.read() as uow:
            due = await SubscriptionRepository(uow.session).list_due(now, after=after, limit=batch)
        for _, subscription_id in due:
            try:
                async with units.begin() as uow:
                    steps += await advance_subscription(uow, subscription_id)
            except Exception as exc:  # one broken subscription must not hold up everyone else's renewal
                if database_out_of_reach(exc):
                    # Everyone's renewal waits for the database alike: the run ends, and the worker says so
                    # once and runs it again at its next turn, not a stack trace for each of the batch.
                    raise
                logger.exception("subscription not advanced", extra={"subscription_id": str(subscription_id)})
        if len(due) < batch:
            return steps
        after = due[-1]
