"""Purging what is past its retention, a batch per transaction: the job never holds locks for long, a crash
loses at most one batch's work, and the tills' writes to the same tables are never kept waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork

PURGE_BATCH = 1000


async def purge_in_batches(
    units: UnitsOfWork, purge_batch: Callable[[UnitOfWork, int], Awaitable[int]], *, batch: int = PURGE_BATCH
) -> int:
    """Run `purge_batch(uow, batch)`, which purges at most `batch` rows and says how many, in a transaction
    of its own each time, until a run purges less than a batch; how many in all."""
    purged = 0
    while True:
        async with units.begin() as uow:
            done = await purge_batch(uow, batch)
        purged += done
        if done < batch:
            return purged
