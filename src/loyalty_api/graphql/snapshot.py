"""One read snapshot per GraphQL request.

Every field of a query reads through the same read-only unit of work, opened on the first read: a member,
their benefits and their subscriptions are one consistent picture (REPEATABLE READ on PostgreSQL; a SQLite
read transaction is a snapshot already), and a request holds one connection, not one per field.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from loyalty_api.db.uow import UnitOfWork, UnitsOfWork


class Snapshot:
    def __init__(self, units: UnitsOfWork) -> None:
        self._units = units
        self._uow: UnitOfWork | None = None
        # Strawberry resolves sibling fields concurrently, and one session runs one statement at a time.
        self._turn = asyncio.Lock()
        self._closed = False

    @asynccontextmanager
    async def read(self) -> AsyncIterator[UnitOfWork]:
        if self._closed:
            # A loader batch still running after its request was answered (graphql-core leaves siblings of
            # a failed non-null field running): it reads on its own, and nothing is left open.
            async with self._units.read() as uow:
                yield uow
            return
        async with self._turn:
            if self._uow is None:
                uow = await self._units.start(read_only=True)
                try:
                    await uow.read_one_snapshot()
                except BaseException:  # its connection goes back to the pool, not to the collector
                    try:
                        await uow.rollback()
                    finally:
                        await uow.close()
                    raise
                self._uow = uow
            yield self._uow

    async def renew(self) -> None:
        """End this snapshot; the next read starts another (a mutation has committed since)."""
        async with self._turn:
            uow, self._uow = self._uow, None
            if uow is not None:
                try:
                    await uow.rollback()
                finally:
                    await uow.close()

    async def close(self) -> None:
        """End the snapshot with the request."""
        self._closed = True
        await self.renew()
