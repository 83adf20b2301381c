from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Reward(IdMixin, Base):
    """A catalogue item bought with points. Redeeming one issues a coupon made from `coupon`."""

    __tablename__ = "rewards"
    __table_args__ = (
        CheckConstraint("cost_points > 0", name="cost_points_positive"),
        CheckConstraint("stock_left >= 0", name="stock_left_not_negative"),
        CheckConstraint("per_member_limit > 0", name="per_member_limit_positive"),
        CheckConstraint("coupon_valid_days > 0", name="coupon_valid_days_positive"),
    )

    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    cost_points: Mapped[int] = mapped_column(BigInteger)
    stock_left: Mapped[int | None]  # None: unlimited
    per_member_limit: Mapped[int | None]  # None: no limit
    coupon_kind: Mapped[str] = mapped_column(String(32))
    coupon_properties: Mapped[dict[str, Any]]
    coupon_valid_days: Mapped[int]
    active: Mapped[bool]
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RewardRedemption(IdMixin, Base):
    __tablename__ = "reward_redemptions"
    __table_args__ = (
        Index(None, "member_id", "reward_id"),
        CheckConstraint("points > 0", name="points_positive"),
    )

    reward_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rewards.id"), index=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    coupon_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupons.id"))
    ledger_entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_entries.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
