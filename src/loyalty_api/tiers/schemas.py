from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from loyalty_api.http.schemas import Instant, ReadModel, TierRef
from loyalty_api.money import Multiplier, plain_decimal
from loyalty_api.text import FilledText
from loyalty_api.tiers.ladder import LadderTier, Metric, Window
from loyalty_api.tiers.service import TierDefinition

TierCode = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="e.g. gold")]


class TierWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FilledText = Field(max_length=100)
    rank: int = Field(
        ge=0, le=1000, description="Higher is better; the lowest rank is everyone's entry tier."
    )
    metric: Metric = Field(description="Qualify by spend (minor units, less refunds) or by points earned.")
    window: Window = Field(description="Count purchases of the calendar year, or of the last `window_days`.")
    window_days: int | None = Field(default=None, ge=1, le=3660)
    threshold: int = Field(
        strict=True, ge=0, le=10**12, description="Minor units for spend, whole points for points."
    )
    points_multiplier: Annotated[Multiplier, AfterValidator(plain_decimal)] = Field(
        default=Decimal(1), description="Base points × this when the member earns."
    )
    grace_days: int = Field(
        default=0,
        ge=0,
        le=3660,
        description="Kept this many days after the window ends without requalifying.",
    )
    benefit_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)

    def definition(self) -> TierDefinition:
        return TierDefinition(
            name=self.name,
            rank=self.rank,
            metric=self.metric,
            window=self.window,
            window_days=self.window_days,
            threshold=self.threshold,
            points_multiplier=self.points_multiplier,
            grace_days=self.grace_days,
            benefit_ids=self.benefit_ids,
        )


class TierCreate(TierWrite):
    code: TierCode


class BenefitRef(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    active: bool


class TierRead(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    rank: int
    metric: Metric
    window: Window
    window_days: int | None
    threshold: int
    points_multiplier: Decimal
    grace_days: int
    benefits: list[BenefitRef]

    @classmethod
    def of(cls, tier: LadderTier) -> TierRead:
        return cls(
            id=tier.id,
            code=tier.code,
            name=tier.name,
            rank=tier.rank,
            metric=tier.metric,
            window=tier.window,
            window_days=tier.window_days,
            threshold=tier.threshold,
            points_multiplier=tier.points_multiplier,
            grace_days=tier.grace_days,
            benefits=[
                BenefitRef(id=b.id, name=b.name, kind=b.properties.kind, active=b.active)
                for b in tier.benefits
            ],
        )


class TierList(BaseModel):
    version: int = Field(
        description="The ladder's version: it changes with every change to any tier (pages read under one "
        "version belong to one ladder)."
    )
    items: list[TierRead]
    next_cursor: str | None


class LadderVersionRead(ReadModel):
    version: int
    tiers: list[dict[str, Any]]
    created_at: datetime


class LadderVersionPage(BaseModel):
    items: list[LadderVersionRead]
    next_cursor: str | None


class GoalRead(ReadModel):
    tier: TierRef
    metric: str
    window_start: datetime = Field(description="Purchases from this instant on count.")
    value: int
    threshold: int
    remaining: int
    by: datetime | None = Field(description="The review date by which the goal must be met (keep only).")


class MemberTierRead(ReadModel):
    member_id: uuid.UUID
    tier: TierRef | None
    since: datetime | None
    kept_until: datetime | None = Field(description="The tier is kept at least until then (then reviewed).")
    override_until: datetime | None
    next: GoalRead | None = Field(
        description="What reaches the next tier up (null at the top); while an override holds the tier, "
        "reaching it moves the member when the override ends."
    )
    keep: GoalRead | None = Field(description="What keeps the current tier at its review.")
    ladder_version: int


class TierChangeRead(ReadModel):
    id: uuid.UUID
    from_tier: TierRef | None
    to_tier: TierRef
    change: str = Field(description="upgrade, downgrade, renewal, override, override_ended or import")
    reason: str
    ladder_version: int | None = Field(description="The ladder whose rules decided (see /v1/tier-versions).")
    qualification: dict[str, Any] = Field(description="Per tier: metric, window start, value, threshold.")
    kept_until: datetime | None
    created_at: datetime


class TierChangePage(BaseModel):
    items: list[TierChangeRead]
    next_cursor: str | None


class OverrideWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: TierCode
    until: Instant
    reason: FilledText = Field(max_length=200)
