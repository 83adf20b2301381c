from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from loyalty_api.coupons.schemas import CouponRead
from loyalty_api.http.schemas import Instant, Points
from loyalty_api.offers import CouponOffer
from loyalty_api.rewards.service import RedemptionResult, RewardDefinition, RewardView
from loyalty_api.text import FilledText

Stock = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]


class RewardWrite(BaseModel):
    """A catalogue item bought with points; redeeming it gives the member a coupon made from `coupon`."""

    model_config = ConfigDict(extra="forbid")

    name: FilledText = Field(max_length=100, description="Also the name of the coupons it issues.")
    description: FilledText | None = Field(default=None, max_length=2000)
    cost_points: Points
    stock: Stock | None = Field(
        default=None,
        description="How many are left to redeem; null: unlimited. On PUT, leaving it out keeps the stock "
        "left as it is, and giving it (or null) sets it.",
    )
    per_member_limit: int | None = Field(
        default=None, strict=True, ge=1, le=1_000_000, description="Redemptions per member; null: no limit."
    )
    coupon: CouponOffer = Field(
        description="The offer of the coupon a redemption issues: `kind` and that kind's settings. Money "
        "amounts are minor units of the programme's currency."
    )
    coupon_valid_days: int = Field(
        default=30, strict=True, ge=1, le=3660, description="The coupon is valid this many days from issue."
    )
    active: bool = True
    valid_from: Instant | None = Field(default=None, description="Offered from this instant (null: now).")
    valid_until: Instant | None = Field(default=None, description="Offered until this instant (null: ever).")

    def definition(self) -> RewardDefinition:
        return RewardDefinition(
            name=self.name,
            description=self.description,
            cost_points=self.cost_points,
            per_member_limit=self.per_member_limit,
            coupon=self.coupon,
            coupon_valid_days=self.coupon_valid_days,
            active=self.active,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
        )


class RewardRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    cost_points: int
    stock_left: int | None = Field(description="null: unlimited")
    per_member_limit: int | None
    coupon: CouponOffer
    coupon_valid_days: int
    currency: str = Field(description="The programme's currency, which money amounts in `coupon` are in")
    active: bool
    valid_from: datetime | None
    valid_until: datetime | None
    available: bool = Field(description="Offered now (active, inside its window) and in stock")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, reward: RewardView) -> RewardRead:
        return cls(
            id=reward.id,
            name=reward.name,
            description=reward.description,
            cost_points=reward.cost_points,
            stock_left=reward.stock_left,
            per_member_limit=reward.per_member_limit,
            coupon=reward.coupon,
            coupon_valid_days=reward.coupon_valid_days,
            currency=reward.currency,
            active=reward.active,
            valid_from=reward.valid_from,
            valid_until=reward.valid_until,
            available=reward.available,
            created_at=reward.created_at,
            updated_at=reward.updated_at,
        )


class RewardPage(BaseModel):
    items: list[RewardRead]
    next_cursor: str | None


class RedemptionRead(BaseModel):
    id: uuid.UUID
    reward_id: uuid.UUID
    member_id: uuid.UUID
    points_spent: int
    balance: int = Field(description="The member's points balance after the redemption")
    available: int
    coupon: CouponRead
    created_at: datetime

    @classmethod
    def of(cls, result: RedemptionResult) -> RedemptionRead:
        return cls(
            id=result.id,
            reward_id=result.reward_id,
            member_id=result.member_id,
            points_spent=result.points_spent,
            balance=result.balance,
            available=result.available,
            coupon=CouponRead.of(result.coupon),
            created_at=result.created_at,
        )
