from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class ActivityRule(IdMixin, Base):
    """What one type of activity (a check-in, a review, …) earns: points each time, at most so many times a
    programme day and a period, and bonuses for consecutive days, while it is in force (active, and within
    its window when it has one). One rule per type."""

    __tablename__ = "activity_rules"
    __table_args__ = (
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("daily_cap IS NULL OR daily_cap > 0", name="daily_cap_positive"),
        CheckConstraint("period_cap IS NULL OR period_cap > 0", name="period_cap_positive"),
        CheckConstraint(
            "valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from", name="window_not_empty"
        ),
    )

    type: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    points: Mapped[int] = mapped_column(BigInteger)
    daily_cap: Mapped[int | None]  # rewarded activities per programme day (None: no cap)
    period_cap: Mapped[int | None]  # rewarded activities per `cap_period` (None: no cap)
    cap_period: Mapped[str] = mapped_column(String(16))  # week | month | year | lifetime
    streak_bonuses: Mapped[list[Any]]  # [{"days": 7, "points": 50}, …]
    active: Mapped[bool]
    valid_from: Mapped[datetime | None]  # None: in force from its making
    valid_until: Mapped[datetime | None]  # None: no end
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MemberActivity(IdMixin, Base):
    """An activity a member was rewarded for: once per member, type and `ref` (the same ref again answers this
    row). `day` is the programme day it fell on, `streak` the consecutive days of this type up to it."""

    __tablename__ = "member_activities"
    __table_args__ = (
        UniqueConstraint("member_id", "type", "ref"),
        Index(None, "member_id", "type", "day"),
        CheckConstraint("points >= 0 AND bonus >= 0", name="points_not_negative"),
        CheckConstraint("streak > 0", name="streak_positive"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    rule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("activity_rules.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    streak: Mapped[int]
    points: Mapped[int] = mapped_column(BigInteger)  # the rule's points
    bonus: Mapped[int] = mapped_column(BigInteger)  # the streak bonus, if this activity completed one
    breakdown: Mapped[list[Any]]  # [{"rule", "kind", "points"}], as the ledger entry has it
    entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_entries.id"))  # None: 0 points
    balance_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
