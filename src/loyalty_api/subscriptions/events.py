"""Subscription events: each says where the subscription now stands, so a receiver needs no read-back."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from loyalty_api.clock import UtcInstant
from loyalty_api.outbox.events import Event, MoneyPayload


class SubscriptionEvent(Event):
    subscription_id: uuid.UUID
    member_id: uuid.UUID
    plan: str
    state: str
    period: int
    period_end: UtcInstant


class SubscriptionCreated(SubscriptionEvent):
    event_type = "subscription.created"
    description = "A member subscribed to a plan, with a trial (state trialing) or a first paid period."

    trial_end: UtcInstant | None


class SubscriptionTrialWillEnd(SubscriptionEvent):
    event_type = "subscription.trial_will_end"
    description = (
        "The trial ends at `period_end` (sent the configured notice ahead). Never sent once the trial has "
        "ended: a worker that comes after its end (it was down) sends `subscription.renewed` or "
        "`subscription.past_due` instead."
    )


class SubscriptionRenewalDue(SubscriptionEvent):
    event_type = "subscription.renewal_due"
    description = (
        "Billing should collect `amount` for period `due_period` by `collect_by`, then report it to "
        "POST /v1/subscriptions/{id}/payments. Sent the configured notice ahead of `period_end`, it is not "
        "`overdue` and `collect_by` is `period_end`. Sent after `period_end` (the worker was down, or a "
        "price change, a resume or a change of plan reached a period already unpaid at its end), it is "
        "`overdue`: the subscription is past due (or falls so in the same run, with `subscription.past_due`) "
        "and `collect_by` is the end of its grace, when it expires unpaid."
    )

    due_period: int
    due_plan: str
    amount: MoneyPayload
    # Sent after period_end: the period is unpaid at its end already, and the fee is wanted now.
    overdue: bool
    collect_by: UtcInstant


class SubscriptionRenewed(SubscriptionEvent):
    event_type = "subscription.renewed"
    description = "A paid period began: after the trial, at period end, or when an overdue payment arrived."

    price: MoneyPayload


class SubscriptionPastDue(SubscriptionEvent):
    event_type = "subscription.past_due"
    description = "The period ended unpaid; the benefits last through grace, until `grace_until`."

    grace_until: UtcInstant


class UnusedPayment(BaseModel):
    model_config = ConfigDict(frozen=True)

    payment_ref: str
    period: int
    amount: MoneyPayload


class SubscriptionCanceled(SubscriptionEvent):
    event_type = "subscription.canceled"
    description = (
        "The subscription was canceled: it ends at `ends_at` (period end, or now). `unused_payment` is a fee "
        "billing took for the next period, which will not begin: refund it."
    )

    ends_at: UtcInstant
    unused_payment: UnusedPayment | None


class SubscriptionResumed(SubscriptionEvent):
    event_type = "subscription.resumed"
    description = "A pending cancel was undone: the subscription renews again."


class SubscriptionExpired(SubscriptionEvent):
    event_type = "subscription.expired"
    description = (
        "The subscription ended at `ended_at`: canceled (at period end, or now), or grace ran out. Its "
        "benefits are gone. `ended_at` is when its time ran out (the period's end, or grace's), however "
        "late the job that ended it came; for a cancel now, the moment of the cancel."
    )

    reason: str  # canceled | unpaid
    ended_at: UtcInstant


class SubscriptionPlanChanged(SubscriptionEvent):
    event_type = "subscription.plan_changed"
    description = (
        "The plan changed: an upgrade takes effect now with a new period (`effective_at` is now); a "
        "downgrade is pending until `effective_at`, the end of the current period."
    )

    from_plan: str
    to_plan: str
    effective_at: UtcInstant
