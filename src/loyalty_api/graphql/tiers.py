"""Tiers in GraphQL."""

from __future__ import annotations

import strawberry

from loyalty_api.http.schemas import TierRef as TierRead
from loyalty_api.tiers.ladder import TierRef


@strawberry.type(description="A tier as every reply shows one (REST and webhooks too): code, name, rank.")
class Tier:
    code: str
    name: str
    rank: int = strawberry.field(description="Higher is better; the lowest rank is everyone's entry tier.")

    @classmethod
    def of(cls, tier: TierRef) -> Tier:
        return cls(code=tier.code, name=tier.name, rank=tier.rank)

    @classmethod
    def of_read(cls, tier: TierRead | None) -> Tier | None:
        return None if tier is None else cls(code=tier.code, name=tier.name, rank=tier.rank)
