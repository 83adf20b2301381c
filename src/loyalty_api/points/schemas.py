from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from loyalty_api.earning.calculator import BreakdownLine
from loyalty_api.earning.kinds import EarnItem
from loyalty_api.http.schemas import MoneyBody, OrderRef, Points
from loyalty_api.points.holds import HoldView
from loyalty_api.points.models import LedgerEntry
from loyalty_api.points.refunds import RefundResult
from loyalty_api.points.service import AdjustResult, EarnResult, PointsSummary, RedeemResult

Code = Annotated[str, Field(min_length=1, max_length=64)]


class ItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Code | None = None
    category: Code | None = None
    quantity: int = Field(strict=True, ge=1, le=100_000)
    unit_price: MoneyBody

    def item(self) -> EarnItem:
        unit = self.unit_price.money()
        total = type(unit)(amount_minor=unit.amount_minor * self.quantity, currency=unit.currency)
        return EarnItem(sku=self.sku, category=self.category, quantity=self.quantity, line_total=total)


class EarnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_ref: OrderRef = Field(description="The receipt or order number; an order earns once.")
    amount: MoneyBody = Field(description="What the member paid that earns points.")
    items: list[ItemBody] = Field(default_factory=list, max_length=500)
    store_id: Code | None = None
    channel: Code | None = None
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When the purchase happened (for a till that was offline); default now."
    )


class BreakdownRead(BaseModel):
    rule: str
    kind: str
    points: int

    @classmethod
    def of(cls, line: BreakdownLine) -> BreakdownRead:
        return cls(rule=line.rule, kind=line.kind, points=line.points)


class EarnRead(BaseModel):
    order_ref: str
    points_earned: int
    breakdown: list[BreakdownRead]
    balance: int
    available: int
    tier: str | None
    tier_changed: bool

    @classmethod
    def of(cls, result: EarnResult) -> EarnRead:
        return cls(
            order_ref=result.order_ref,
            points_earned=result.points_earned,
            breakdown=[BreakdownRead.of(line) for line in result.breakdown],
            balance=result.balance,
            available=result.available,
            tier=result.tier,
            tier_changed=result.tier_changed,
        )


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Points
    order_ref: OrderRef
    order_total: MoneyBody | None = Field(
        default=None,
        description="The order's total: checks the programme's maximum share payable in points, and is the "
        "base refunds are measured against.",
    )


class RedeemRead(BaseModel):
    order_ref: str
    points_redeemed: int
    value: MoneyBody
    balance: int
    available: int

    @classmethod
    def of(cls, result: RedeemResult) -> RedeemRead:
        return cls(
            order_ref=result.order_ref,
            points_redeemed=result.points_redeemed,
            value=MoneyBody.of(result.value),
            balance=result.balance,
            available=result.available,
        )


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Points
    order_ref: OrderRef
    ttl_seconds: int = Field(default=900, strict=True, ge=10, le=7 * 24 * 3600)


class CaptureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Points | None = Field(default=None, description="Capture fewer than held; the rest is released.")


class HoldRead(BaseModel):
    id: uuid.UUID
    member_id: uuid.UUID
    order_ref: str
    points: int
    captured_points: int
    status: Literal["active", "captured", "released", "expired"]
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None
    balance: int | None = Field(description="The member's balance after this call (null on a plain read).")
    available: int | None

    @classmethod
    def of(cls, hold: HoldView) -> HoldRead:
        return cls(
            id=hold.id,
            member_id=hold.member_id,
            order_ref=hold.order_ref,
            points=hold.points,
            captured_points=hold.captured_points,
            status=hold.status,
            created_at=hold.created_at,
            expires_at=hold.expires_at,
            resolved_at=hold.resolved_at,
            balance=hold.balance,
            available=hold.available,
        )


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MoneyBody = Field(description="How much of the order is refunded.")


class RefundRead(BaseModel):
    order_ref: str
    member_id: uuid.UUID
    refunded: MoneyBody
    refunded_total: MoneyBody
    order_total: MoneyBody
    points_taken_back: int
    points_given_back: int
    shortfall: int = Field(description="Earned points the member had already spent, so not taken back.")
    balance: int
    available: int

    @classmethod
    def of(cls, result: RefundResult) -> RefundRead:
        return cls(
            order_ref=result.order_ref,
            member_id=result.member_id,
            refunded=MoneyBody.of(result.refunded),
            refunded_total=MoneyBody.of(result.refunded_total),
            order_total=MoneyBody.of(result.order_total),
            points_taken_back=result.points_taken_back,
            points_given_back=result.points_given_back,
            shortfall=result.shortfall,
            balance=result.balance,
            available=result.available,
        )


class AdjustmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: int = Field(strict=True, ge=-1_000_000_000, le=1_000_000_000, description="Signed; not zero.")
    reason: str = Field(min_length=1, max_length=500)


class AdjustmentRead(BaseModel):
    entry_id: uuid.UUID
    points: int
    reason: str
    balance: int
    available: int

    @classmethod
    def of(cls, result: AdjustResult) -> AdjustmentRead:
        return cls(
            entry_id=result.entry_id,
            points=result.points,
            reason=result.reason,
            balance=result.balance,
            available=result.available,
        )


class ExpiringRead(BaseModel):
    month: str = Field(description="YYYY-MM in the programme's time zone")
    points: int
    expires_at: datetime = Field(description="When the first of these points expire")


class PointsRead(BaseModel):
    balance: int
    held: int
    available: int
    lifetime_earned: int
    available_value: MoneyBody
    expiring: list[ExpiringRead]

    @classmethod
    def of(cls, summary: PointsSummary) -> PointsRead:
        return cls(
            balance=summary.balance,
            held=summary.held,
            available=summary.available,
            lifetime_earned=summary.lifetime_earned,
            available_value=MoneyBody.of(summary.available_value),
            expiring=[
                ExpiringRead(month=e.month, points=e.points, expires_at=e.first_expires_at)
                for e in summary.expiring
            ],
        )


class LedgerEntryRead(BaseModel):
    id: uuid.UUID
    type: str
    amount: int
    balance_after: int
    held_change: int
    held_after: int
    order_ref: str | None
    hold_id: uuid.UUID | None
    details: dict[str, Any]
    actor_key_id: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> LedgerEntryRead:
        return cls(
            id=entry.id,
            type=entry.type,
            amount=entry.amount,
            balance_after=entry.balance_after,
            held_change=entry.held_change,
            held_after=entry.held_after,
            order_ref=entry.order_ref,
            hold_id=entry.hold_id,
            details=entry.details,
            actor_key_id=entry.actor_key_id,
            created_at=entry.created_at,
        )


class LedgerPage(BaseModel):
    items: list[LedgerEntryRead]
    next_cursor: str | None
