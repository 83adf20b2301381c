from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, String, false
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Program(Base):
    """The programme's settings: one row (id 1)."""

    __tablename__ = "programs"
    __table_args__ = (
        CheckConstraint("min_redeem_points > 0", name="min_redeem_points_positive"),
        CheckConstraint("expiry_months > 0", name="expiry_months_positive"),  # NULL: points never expire
        CheckConstraint("transfer_daily_limit > 0", name="transfer_daily_limit_positive"),  # NULL: no limit
        CheckConstraint("return_window_days >= 0", name="return_window_days_not_negative"),
        CheckConstraint("expiry_reminder_days >= 0", name="expiry_reminder_days_not_negative"),
        CheckConstraint("tier_reminder_days >= 0", name="tier_reminder_days_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    earn_rate: Mapped[Decimal]  # points per major currency unit
    point_value_minor: Mapped[Decimal]  # minor currency units one point is worth when redeemed
    rounding: Mapped[str] = mapped_column(String(16))
    expiry_months: Mapped[int | None]
    min_redeem_points: Mapped[int]
    max_redeem_share: Mapped[Decimal]  # 0..1 of an order payable with points
    tier_downgrade: Mapped[str] = mapped_column(String(16), server_default="one_step")  # | to_qualified
    # Days without a purchase after which a member is at risk, lapsed, churned (members/lifecycle.py).
    lifecycle_at_risk_days: Mapped[int] = mapped_column(server_default="30")
    lifecycle_lapsed_days: Mapped[int] = mapped_column(server_default="90")
    lifecycle_churned_days: Mapped[int] = mapped_column(server_default="365")
    # When those last changed: members assessed before then are assessed again.
    lifecycle_changed_at: Mapped[datetime | None]
    # A referred member's first purchase of at least this much gives them and their referrer these points.
    referral_friend_points: Mapped[int] = mapped_column(server_default="0")
    referral_referrer_points: Mapped[int] = mapped_column(server_default="0")
    referral_min_purchase_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # RFM scores count the purchases of this many days back.
    rfm_window_days: Mapped[int] = mapped_column(server_default="365")
    # Whether members may send points to one another, and how many a member may send in a programme's day.
    transfers_enabled: Mapped[bool] = mapped_column(server_default=false())
    transfer_daily_limit: Mapped[int | None]
    # How many days after a purchase it may still be returned (0: no window): a referrer's reward waits them
    # out, and the points a purchase earned cannot be sent to another member until they pass.
    return_window_days: Mapped[int] = mapped_column(server_default="0")
    # How many days before points reach their end the member is told (`points.expiring`; 0: never).
    expiry_reminder_days: Mapped[int] = mapped_column(server_default="0")
    # How many days before the window that keeps their tier ends the member is told what it still takes
    # (`tier.review_due`; 0: never).
    tier_reminder_days: Mapped[int] = mapped_column(server_default="0")
    updated_at: Mapped[datetime]


class PointValueChange(IdMixin, Base):
    """From `effective_at` on, a point is worth `point_value_minor` (until the next change): what a partner's
    statement values the points moved at each moment with, so a later change of the programme's point value
    leaves the statements of past periods as they were."""

    __tablename__ = "point_value_changes"

    effective_at: Mapped[datetime] = mapped_column(unique=True)
    point_value_minor: Mapped[Decimal]
