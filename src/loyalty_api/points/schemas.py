from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic_core import PydanticCustomError

from loyalty_api.earning.kinds import EarnItem
from loyalty_api.http.schemas import (
    Instant,
    MoneyBody,
    MoneyRead,
    OrderRef,
    Points,
    PositiveMoneyBody,
    ReadModel,
    TierRef,
    sent_or_left_out,
)
from loyalty_api.points.ledger import RefundKind
from loyalty_api.text import FilledText

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
    amount: PositiveMoneyBody = Field(description="What the member paid that earns points.")
    items: list[ItemBody] = Field(default_factory=list, max_length=500)
    store_id: Code | None = None
    channel: Code | None = None
    occurred_at: Instant | None = Field(
        default=None,
        description="When the purchase happened, for a till that was offline (30 days at most); default now. "
        "It earns by the earning rules, the paid plans and the tier (its multiplier and benefits) in force "
        "then; from a calendar year that has ended, it also counts towards that year's tiers (the member "
        "moves up if that year's spend reaches a higher tier).",
    )


class BreakdownRead(ReadModel):
    rule: str
    kind: str
    points: int


class EarnRead(ReadModel):
    order_ref: str
    points_earned: int
    breakdown: list[BreakdownRead]
    balance: int
    available: int
    tier: TierRef | None
    tier_changed: bool


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Points
    order_ref: OrderRef
    order_total: PositiveMoneyBody | None = Field(
        default=None,
        description="The order's total before points pay any of it (what it costs after discounts, shipping "
        "included), more than zero: checks the programme's maximum share payable in points (the checkout "
        "quote's maximum, taken on the goods alone, always passes it), and is the base refunds are measured "
        "against (replacing the cash amount an earn on the order gave).",
    )


class RedeemRead(ReadModel):
    order_ref: str
    points_redeemed: int
    value: MoneyRead
    balance: int
    available: int


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Points
    order_ref: OrderRef
    ttl_seconds: int = Field(default=900, strict=True, ge=10, le=7 * 24 * 3600)


class CaptureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: Points | None = Field(default=None, description="Capture fewer than held; the rest is released.")
    order_total: PositiveMoneyBody | None = Field(
        default=None,
        description="The order's total before points pay any of it, as on a redeem: checks the programme's "
        "maximum share and is the base refunds by amount are measured against. It replaces the cash amount "
        "an earn on the order gave as its total.",
    )


class HoldRead(ReadModel):
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


class RefundRequest(BaseModel):
    """Exactly one of `amount`, `points` or `full`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1})

    amount: PositiveMoneyBody | None = sent_or_left_out(
        description="How much of the order's total is refunded (a part or all of it): earned points are "
        "taken back and redeemed points given back in proportion. Needs the order's total: an earn gives it, "
        "or `order_total` on the redeem or the capture.",
    )
    points: Points | None = sent_or_left_out(
        description="How many of the points the order redeemed or captured, and no refund gave back yet, to "
        "give back; points the order earned are taken back in the same proportion. Works whether or not the "
        "order's total is known.",
    )
    full: StrictBool | None = sent_or_left_out(
        description="`true`: refund everything still refundable on the order, whether or not its total is "
        "known.",
        schema={"const": True},
    )

    @field_validator("amount", "points", "full", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only runs for values sent: a way left out is left out, not sent as null.
        if value is None:
            raise PydanticCustomError("value_error", "cannot be null: leave it out")
        return value

    @field_validator("full")
    @classmethod
    def _only_true(cls, full: bool | None) -> bool | None:
        if full is False:
            raise PydanticCustomError(
                "value_error", "must be true when given: leave it out to refund by amount or by points"
            )
        return full

    @model_validator(mode="after")
    def _exactly_one(self) -> RefundRequest:
        given = [name for name in ("amount", "points", "full") if getattr(self, name) is not None]
        if len(given) != 1:
            listed = f"{', '.join(given[:-1])} and {given[-1]}" if given else "none"
            raise PydanticCustomError(
                "value_error", "give exactly one of amount, points or full, not {given}", {"given": listed}
            )
        return self


class RefundRead(ReadModel):
    order_ref: str
    member_id: uuid.UUID
    refunded_by: RefundKind = Field(description="Which kind of refund this was.")
    refunded: MoneyRead | None = Field(
        description="The share of the order's total this refund covers (for a refund by points, the share "
        "its points are of what the order redeemed); null when the order's total is not known."
    )
    refunded_total: MoneyRead | None = Field(
        description="Everything refunded on the order so far; null when its total is not known."
    )
    order_total: MoneyRead | None = Field(description="The order's total; null when it is not known.")
    points_taken_back: int = Field(description="Earned points taken back by this refund.")
    points_given_back: int = Field(description="Redeemed points given back by this refund.")
    shortfall: int = Field(description="Earned points the member had already spent, so not taken back.")
    shortfall_settled: int = Field(
        description="Points given back by this refund that went to settle the member's shortfalls on earlier "
        "refunds (each counts as taken back on its order), so not added to the balance."
    )
    already_expired: int = Field(
        description="Earned points of the order not taken back because they had expired already (the member "
        "lost them then; taking them back would take other points)."
    )
    points_refundable: int = Field(
        description="Redeemed points still left to give back: the most a later refund by points may ask for."
    )
    referral_taken_back: int = Field(
        description="The member's referral points taken back: this return, within the programme's return "
        "window, left the purchase that earned them short of the referral minimum (the referral is void)."
    )
    balance: int
    available: int


class AdjustmentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: int = Field(strict=True, ge=-1_000_000_000, le=1_000_000_000, description="Signed; not zero.")
    reason: FilledText = Field(max_length=500)


class AdjustmentRead(ReadModel):
    entry_id: uuid.UUID
    points: int
    reason: str
    balance: int
    available: int


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_member_id: uuid.UUID = Field(description="The member who receives the points.")
    points: Points = Field(description="How many of the sender's available points to send.")


class TransferRead(ReadModel):
    transfer_id: uuid.UUID = Field(
        description="Both members' ledger entries name it (`details.transfer_id`), as their events do."
    )
    from_member_id: uuid.UUID
    to_member_id: uuid.UUID
    points: int
    balance: int = Field(description="The sender's balance after the transfer.")
    available: int = Field(description="The sender's available points after the transfer.")
    created_at: datetime


class TransferReversalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: FilledText = Field(
        max_length=500,
        description="Kept in both ledgers and both events with the key; `erased` once either member is.",
    )


class TransferReversalRead(ReadModel):
    transfer_id: uuid.UUID
    from_member_id: uuid.UUID = Field(
        description="The member who sent the transfer, and has its points back."
    )
    to_member_id: uuid.UUID
    points: int
    balance: int = Field(description="The sender's balance after the reversal.")
    recipient_balance: int = Field(description="The recipient's balance after the reversal.")
    reversed_at: datetime


class ExpiringRead(ReadModel):
    month: str = Field(description="YYYY-MM in the programme's time zone")
    points: int
    expires_at: datetime = Field(description="When the first of these points expire")


class PointsRead(ReadModel):
    balance: int
    held: int
    available: int
    lifetime_earned: int
    available_value: MoneyRead
    expiring: list[ExpiringRead]


class LedgerEntryRead(ReadModel):
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


class LedgerPage(ReadModel):
    items: list[LedgerEntryRead]
    next_cursor: str | None
