from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.auth.models import ApiKey

_BY_PREFIX = select(ApiKey).where(ApiKey.prefix == bindparam("prefix"))


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        result = await self.session.execute(_BY_PREFIX, {"prefix": prefix})
        return result.scalar_one_or_none()

    async def lock_by_prefix(self, prefix: str) -> ApiKey | None:
        result = await self.session.execute(select(ApiKey).where(ApiKey.prefix == prefix).with_for_update())
        return result.scalar_one_or_none()

    async def list_keys(
        self, *, after: uuid.UUID | None = None, limit: int | None = None
    ) -> Sequence[ApiKey]:
        """Oldest first (ids are time-ordered): those after the key `after`, at most `limit` of them."""
        query = select(ApiKey).order_by(ApiKey.id).limit(limit)
        if after is not None:
            query = query.where(ApiKey.id > after)
        result = await self.session.execute(query)
        return result.scalars().all()

    async def find_replacement(self, key: ApiKey, now: datetime) -> str | None:
        """The prefix of a key in force that replaced `key` (made later in its line, by rotating it or its
        replacement): ids are time-ordered, and clocks that stand still in tests do not order them."""
        result = await self.session.execute(
            select(ApiKey.prefix)
            .where(
                ApiKey.lineage == key.lineage,
                ApiKey.id > key.id,
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            )
            .order_by(ApiKey.id)
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def insert_key(self, key: ApiKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def revoke(self, prefix: str, at: datetime) -> bool:
        result = await self.session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(ApiKey.id)
        )
        return result.scalar_one_or_none() is not None

    async def record_use(self, key_id: uuid.UUID, at: datetime) -> None:
        """Set the key's last-used time to `at`, unless it is later already (another process wrote it)."""
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < at))
            .values(last_used_at=at)
        )
