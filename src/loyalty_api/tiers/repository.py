from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.tiers.models import Tier


class TierRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_entry_tier(self) -> Tier | None:
        result = await self.session.execute(select(Tier).order_by(Tier.rank).limit(1))
        return result.scalar_one_or_none()

    async def get_by_code(self, code: str) -> Tier | None:
        result = await self.session.execute(select(Tier).where(Tier.code == code))
        return result.scalar_one_or_none()

    async def insert_tier(self, tier: Tier) -> None:
        self.session.add(tier)
        await self.session.flush()
