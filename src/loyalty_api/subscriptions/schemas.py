from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from loyalty_api.http.schemas import MoneyBody, MoneyRead, PlanCode, ReadModel
from loyalty_api.subscriptions.lifecycle import State

PaymentRef = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$", description="Billing's reference for the payment"),
]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: PlanCode
    payment_ref: PaymentRef | None = Field(
        default=None,
        description="Required without a trial: billing took the first period's fee under this reference.",
    )
    trial: bool = Field(
        default=True,
        description="Start with the plan's trial, if it has one (once per member and plan family).",
    )


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at_period_end: bool = Field(
        default=True, description="true: keep the benefits to the end of the period; false: end now."
    )


class PlanChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: PlanCode
    payment_ref: PaymentRef | None = Field(
        default=None,
        description="Required for an upgrade (a plan dearer per month whose period runs at least as long), "
        "whose new period starts now; refused for a change that waits for period end.",
    )


class PaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["succeeded", "failed"]
    payment_ref: PaymentRef
    amount: MoneyBody
    period: int = Field(strict=True, ge=1, le=100_000, description="The period paid for: the next one.")


class PlanRefRead(ReadModel):
    code: str
    name: str


class SubscriptionRead(ReadModel):
    id: uuid.UUID
    member_id: uuid.UUID
    plan: PlanRefRead
    family: str
    state: State
    period: int = Field(description="0 is the trial; paid periods count from 1.")
    period_start: datetime
    period_end: datetime
    trial_end: datetime | None
    price: MoneyRead = Field(description="The current period's price.")
    grace_until: datetime | None = Field(description="Past due: the benefits last until then.")
    benefits_until: datetime | None = Field(description="The plan's benefits are the member's until then.")
    cancel_at_period_end: bool
    pending_plan: PlanRefRead | None = Field(description="A downgrade that takes over at period end.")
    payment_ref: str | None
    canceled_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SubscriptionPage(BaseModel):
    items: list[SubscriptionRead]
    next_cursor: str | None


class PaymentRead(ReadModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    period: int
    status: Literal["succeeded", "failed", "unused"] = Field(
        description="As billing reported it; `unused`: a success a cancel named for a refund "
        "(`unused_payment` in `subscription.canceled`), which pays for nothing since."
    )
    payment_ref: str
    amount: MoneyRead
    recorded_at: datetime
    unused_at: datetime | None = Field(
        description="When a cancel named this fee `unused`: it paid ahead until then, and pays for nothing "
        "since, a resume or not. Null unless `status` is `unused`."
    )


class PaymentPage(BaseModel):
    items: list[PaymentRead]
    next_cursor: str | None


class PaymentResultRead(ReadModel):
    payment: PaymentRead
    subscription: SubscriptionRead


class PlanRevenueRead(ReadModel):
    plan: PlanRefRead
    paying: int = Field(description="Paid-up subscriptions: active, or canceled with a paid period running.")
    trialing: int
    past_due: int
    monthly_recurring_revenue: MoneyRead


class RevenueRead(ReadModel):
    paying_members: int = Field(description="Members with at least one paid-up subscription.")
    monthly_recurring_revenue: MoneyRead = Field(
        description="Per month, from paid-up subscriptions at their current price; a yearly plan counts 1/12."
    )
    plans: list[PlanRevenueRead]
