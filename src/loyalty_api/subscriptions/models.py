from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin
from loyalty_api.db.constant import constant


class Subscription(IdMixin, Base):
    """A member's paid membership of one plan, and where it stands in its clock-driven life
    (subscriptions/lifecycle.py has the states and the allowed transitions).

    Period n (n ≥ 1 is paid; 0 is the trial) runs from `anchor_at` + (n − anchor_period) × `period_months`
    to one period later, in calendar months of the programme's time zone, so month-end anchors do not drift
    (31 Jan → 28 Feb → 31 Mar)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        # One live subscription per member and plan family; expired ones are history.
        Index(
            "uq_subscriptions__member_id_family",
            "member_id",
            "family",
            unique=True,
            postgresql_where=text("state <> 'expired'"),
            sqlite_where=text("state <> 'expired'"),
        ),
        CheckConstraint("price_amount_minor >= 0", name="price_not_negative"),
        CheckConstraint("period_months > 0", name="period_months_positive"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id"), index=True)
    family: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    period_number: Mapped[int]
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    anchor_at: Mapped[datetime]
    anchor_period: Mapped[int]
    # The length of the current period in months, as its plan had it then: editing a plan's interval reaches
    # a subscription at its next period, like a new price.
    period_months: Mapped[int]
    # The price of the current period: a plan's new price applies from the next period on.
    price_amount_minor: Mapped[int] = mapped_column(BigInteger)
    price_currency: Mapped[str] = mapped_column(String(3))
    trial_end: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]
    # The plan's benefits are the member's until then (None: no longer).
    benefits_until: Mapped[datetime | None]
    pending_plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("plans.id"), index=True)
    # The period whose end billing was told about (renewal_due, trial_will_end); −1 for none yet. A change of
    # plan or price sets it back, for billing to hear the new price.
    notice_sent_for: Mapped[int]
    # When the member was told their trial is ending: once, however often the renewal notice goes again.
    trial_notice_sent_at: Mapped[datetime | None]
    next_coupon_at: Mapped[datetime | None]
    # When the renewal job next has something to do here (None: nothing, ever).
    next_action_at: Mapped[datetime | None] = mapped_column(index=True)
    payment_ref: Mapped[str | None] = mapped_column(String(100))
    canceled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# A success a cancel named for a refund (subscription.canceled's unused_payment): it pays for nothing.
UNUSED = "unused"


# The subscriptions the partial unique index holds, as a statement must name them to use it
# (db/constant.py).
SUBSCRIPTION_NOT_EXPIRED = Subscription.state != constant("expired")


class SubscriptionPayment(IdMixin, Base):
    """What billing told us about one fee: paid or failed, for which period, under its own reference."""

    __tablename__ = "subscription_payments"
    __table_args__ = (
        UniqueConstraint("subscription_id", "payment_ref"),
        # A period is paid once.
        Index(
            "uq_subscription_payments__subscription_id_period",
            "subscription_id",
            "period",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
            sqlite_where=text("status = 'succeeded'"),
        ),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        # A fee is `unused` exactly when it knows since when: churn reads the time, renewals the status.
        CheckConstraint("(status = 'unused') = (unused_at IS NOT NULL)", name="unused_at_when_unused"),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    period: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # succeeded | failed | unused
    payment_ref: Mapped[str] = mapped_column(String(100))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The length in months of the period it pays for, as the plan had it when billing charged: a period paid
    # ahead keeps its length through a change of interval, as it keeps its price through a change of price.
    # None on payments recorded before lengths were kept: the period takes its plan's length then.
    period_months: Mapped[int | None]
    actor_key_id: Mapped[uuid.UUID | None]
    recorded_at: Mapped[datetime]
    # When a cancel named it `unused`: it paid ahead until then, and for nothing after, a resume or not.
    unused_at: Mapped[datetime | None]


# The payments the partial unique index holds, as a statement must name them to use it (db/constant.py).
PAYMENT_SUCCEEDED = SubscriptionPayment.status == constant("succeeded")
