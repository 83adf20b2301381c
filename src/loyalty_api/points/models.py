from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class PointsAccount(Base):
    """A member's cached balance. Every change goes through one conditional UPDATE of this row first."""

    __tablename__ = "points_accounts"

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class LedgerEntry(IdMixin, Base):
    """One change to a member's points. Append-only: a correction is a new entry."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index(None, "member_id", "id"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed change to the balance
    balance_after: Mapped[int] = mapped_column(BigInteger)
    held_change: Mapped[int] = mapped_column(BigInteger)  # signed change to the points on hold
    held_after: Mapped[int] = mapped_column(BigInteger)
    order_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    hold_id: Mapped[uuid.UUID | None]
    details: Mapped[dict[str, Any]]
    actor_key_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]


class PointLot(IdMixin, Base):
    """Points credited together, spent first-in first-out, expiring together."""

    __tablename__ = "point_lots"

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_entries.id"))
    order_ref: Mapped[str | None] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)


class Hold(IdMixin, Base):
    """Points reserved for a checkout until it is captured, released, or expires."""

    __tablename__ = "holds"

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    order_ref: Mapped[str] = mapped_column(String(64), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    captured_points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    resolved_at: Mapped[datetime | None]


class Order(Base):
    """What an order earned and redeemed, so refunds can take back and give back in proportion."""

    __tablename__ = "orders"
    __table_args__ = (Index(None, "member_id", "purchased_at"),)

    order_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    currency: Mapped[str | None] = mapped_column(String(3))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    points_earned: Mapped[int] = mapped_column(BigInteger)
    points_redeemed: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger)
    points_taken_back: Mapped[int] = mapped_column(BigInteger)
    points_given_back: Mapped[int] = mapped_column(BigInteger)
    points_shortfall: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime | None]
    purchased_at: Mapped[datetime | None]  # when the purchase happened (tiers count it then)
    redeemed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
