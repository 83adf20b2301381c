"""Retention of what the webhooks leave behind.

Deliveries are kept for operators to read (every attempt) for `webhook_retention_days`; after that, those
that are done, delivered or given up, are purged with their attempts. A delivery still pending is never
purged, however old. Events are kept for `event_retention_days` after they were made (the events list,
replays, a member's export list them); after that, those dispatched whose deliveries are all purged go
too."""

from __future__ import annotations

from datetime import timedelta

from loyalty_api.db.ids import first_id_at
from loyalty_api.db.retention import purge_in_batches
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.webhooks.delivery_repository import DeliveryRepository


async def purge_deliveries(units: UnitsOfWork) -> int:
    """Purge the deliveries past retention; how many."""

    async def batch(uow: UnitOfWork, limit: int) -> int:
        before = uow.clock.now() - timedelta(days=uow.settings.webhook_retention_days)
        return await DeliveryRepository(uow.session).purge_done(before, limit=limit)

    return await purge_in_batches(units, batch)


async def purge_events(units: UnitsOfWork) -> int:
    """Purge the events past retention; how many."""

    async def batch(uow: UnitOfWork, limit: int) -> int:
        before = uow.clock.now() - timedelta(days=uow.settings.event_retention_days)
        return await DeliveryRepository(uow.session).purge_events(first_id_at(before), limit=limit)

    return await purge_in_batches(units, batch)
