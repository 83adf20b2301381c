"""Deliveries are kept for operators to read (every attempt) for `webhook_retention_days`; after that, those
that are done, delivered or given up, are purged with their attempts, a batch per transaction so the job
never holds locks for long. A delivery still pending is never purged, however old."""

from __future__ import annotations

from datetime import timedelta

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.webhooks.delivery_repository import DeliveryRepository

PURGE_BATCH = 1000


async def purge_deliveries(units: UnitsOfWork) -> int:
    """Purge the deliveries past retention; how many."""
    purged = 0
    while True:
        async with units.begin() as uow:
            before = uow.clock.now() - timedelta(days=uow.settings.webhook_retention_days)
            batch = await DeliveryRepository(uow.session).purge_done(before, limit=PURGE_BATCH)
        purged += batch
        if batch < PURGE_BATCH:
            return purged
