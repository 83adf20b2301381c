"""Tiers (the full ladder arrives with the tiers issue; this is what members and the demo need now)."""

from __future__ import annotations

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.tiers.models import Tier
from loyalty_api.tiers.repository import TierRepository


async def ensure_tier(uow: UnitOfWork, *, rank: int, code: str, name: str) -> Tier:
    repo = TierRepository(uow.session)
    existing = await repo.get_by_code(code)
    if existing is not None:
        return existing
    tier = Tier(rank=rank, code=code, name=name, created_at=uow.clock.now())
    await repo.insert_tier(tier)
    return tier
