from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Campaign(IdMixin, Base):
    """One action (a coupon, or points) for every active member of an audience, run by the worker in batches.

    The audience is kept as the operator gave it (tier, plan, lifecycle stage, RFM segment, birthday month)
    and read again at each batch, so a tier or plan deleted afterwards leaves the campaign reaching nobody
    more rather than failing: hence no foreign keys to tiers and plans. `cursor` is the last member id a
    batch reached; members are reached in id order, each once (campaign_members)."""

    __tablename__ = "campaigns"
    __table_args__ = (
        Index(None, "status", "id"),
        CheckConstraint("status IN ('pending', 'running', 'completed', 'cancelled')", name="status_known"),
        CheckConstraint("action IN ('issue_coupon', 'grant_points')", name="action_known"),
        CheckConstraint(
            "(action = 'grant_points' AND points > 0 AND reason IS NOT NULL)"
            " OR (action = 'issue_coupon' AND coupon_kind IS NOT NULL AND coupon_valid_days > 0)",
            name="action_complete",
        ),
        CheckConstraint(
            "birthday_month IS NULL OR birthday_month BETWEEN 1 AND 12", name="birthday_month_valid"
        ),
        CheckConstraint(
            "reached >= 0 AND coupons_issued >= 0 AND points_granted >= 0", name="counts_not_negative"
        ),
    )

    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    # The audience: every filter given must hold (None: not filtered on it).
    tier_id: Mapped[uuid.UUID | None]
    plan_id: Mapped[uuid.UUID | None]
    lifecycle: Mapped[str | None] = mapped_column(String(16))
    segment: Mapped[str | None] = mapped_column(String(24))
    birthday_month: Mapped[int | None] = mapped_column(SmallInteger)
    # The action: issue_coupon (the coupon_* columns) or grant_points (points, reason).
    action: Mapped[str] = mapped_column(String(16))
    points: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    coupon_name: Mapped[str | None] = mapped_column(String(100))
    coupon_kind: Mapped[str | None] = mapped_column(String(32))
    coupon_properties: Mapped[dict[str, Any] | None]
    coupon_valid_days: Mapped[int | None]
    # Progress: the last member reached, how many were, what they were given.
    cursor: Mapped[uuid.UUID | None]
    reached: Mapped[int] = mapped_column(BigInteger)
    coupons_issued: Mapped[int] = mapped_column(BigInteger)
    points_granted: Mapped[int] = mapped_column(BigInteger)
    actor_key_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class CampaignMember(Base):
    """A member a campaign reached, once: the primary key is the guarantee that nobody gets its action
    twice, whatever the worker does. `member_id` is in the key so the table can be distributed by member."""

    __tablename__ = "campaign_members"
    __table_args__ = (Index(None, "member_id"),)

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))  # coupon_issued | points_granted
    reached_at: Mapped[datetime]
