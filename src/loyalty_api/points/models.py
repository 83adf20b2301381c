from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin
from loyalty_api.db.constant import constant
from loyalty_api.orders.models import ORDER_REF_LENGTH


class PointsAccount(Base):
    """A member's cached balance. Every change goes through one conditional UPDATE of this row first."""

    __tablename__ = "points_accounts"
    # The conditional UPDATE that changes an account refuses to spend or hold more than is available, so the
    # database can say it too: a statement that would break these is a bug, refused rather than stored.
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("held >= 0 AND held <= balance", name="held_within_balance"),
        CheckConstraint("lifetime_earned >= 0", name="lifetime_earned_not_negative"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class LedgerEntry(IdMixin, Base):
    """One change to a member's points. Append-only: a correction is a new entry."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index(None, "member_id", "id"),
        # The leaderboard and the points reports read a window of time: its entries, not the whole ledger.
        Index(None, "created_at"),
        # Settlement statements read a partner's entries by time; most entries have no partner.
        Index(
            None,
            "partner_id",
            "created_at",
            postgresql_where=text("partner_id IS NOT NULL"),
            sqlite_where=text("partner_id IS NOT NULL"),
        ),
        # The account as it stood after the change: the account's own checks hold here too.
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        CheckConstraint("held_after >= 0 AND held_after <= balance_after", name="held_after_within_balance"),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed change to the balance
    balance_after: Mapped[int] = mapped_column(BigInteger)
    held_change: Mapped[int] = mapped_column(BigInteger)  # signed change to the points on hold
    held_after: Mapped[int] = mapped_column(BigInteger)
    order_ref: Mapped[str | None] = mapped_column(String(ORDER_REF_LENGTH), index=True)
    hold_id: Mapped[uuid.UUID | None]
    partner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("partners.id")
    )  # earned or exchanged there
    details: Mapped[dict[str, Any]]
    actor_key_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]


class PointLot(IdMixin, Base):
    """Points credited together, spent first-in first-out, expiring together."""

    __tablename__ = "point_lots"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_within_points"),
        # The expiry job reads lots still holding points whose time has come, and the reminder job those whose
        # end is near and of which nobody was told yet (the second column spares it the rows): spent lots
        # leave the index, so it does not grow with the ledger.
        Index(
            None,
            "expires_at",
            "expiry_reminded_at",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
        # A member's points as reads show them count their lots past their end: live lots only, by member.
        Index(
            None,
            "member_id",
            "expires_at",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    # The entry that credited the points, and its order. Points a refund gives back come back as a lot of
    # their own with the entry and order of the lot they were spent from (points/refunds.py), so that entry
    # may have credited more than its own lot now shows.
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_entries.id"))
    order_ref: Mapped[str | None] = mapped_column(String(ORDER_REF_LENGTH))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    # When the member was told these points reach their end soon (`points.expiring`), once.
    expiry_reminded_at: Mapped[datetime | None]


# The lots PointLot's partial indexes hold, as a statement must name them to use those (db/constant.py).
LOT_HOLDS_POINTS = PointLot.remaining > constant(0)


class PointStandIn(IdMixin, Base):
    """Points taken from another lot in place of an order's own points that were spent (by the order's refund,
    or a settlement of its shortfall), and how many of them went back to that lot's like once the order's own
    points came back (points/accounts.pay_with_own_points)."""

    __tablename__ = "point_stand_ins"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("returned >= 0 AND returned <= points", name="returned_within_points"),
        # Read by order when its own points come back: only those not all returned.
        Index(
            None,
            "member_id",
            "order_ref",
            postgresql_where=text("returned < points"),
            sqlite_where=text("returned < points"),
        ),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    order_ref: Mapped[str] = mapped_column(String(ORDER_REF_LENGTH))
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_lots.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    returned: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class Hold(IdMixin, Base):
    """Points reserved for a checkout until it is captured, released, or expires."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("captured_points >= 0 AND captured_points <= points", name="captured_within_points"),
        CheckConstraint("status IN ('active', 'captured', 'released', 'expired')", name="status_known"),
        # The release job reads active holds whose time has come; resolved holds leave the index.
        Index(
            None,
            "expires_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        # A member's points as reads show them count their active holds past their time.
        Index(
            None,
            "member_id",
            "expires_at",
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    order_ref: Mapped[str] = mapped_column(String(64), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    captured_points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]


# The holds Hold's partial indexes hold, as a statement must name them to use those (db/constant.py).
HOLD_ACTIVE = Hold.status == constant("active")


class ReferralReward(Base):
    """A referred member's first qualifying purchase, rewarded once: the friend's points at once, the
    referrer's by the referral job (each member's points change in a transaction of their own)."""

    __tablename__ = "referral_rewards"
    __table_args__ = (
        Index(
            "ix_referral_rewards__pending",
            "created_at",
            postgresql_where=text("credited_at IS NULL"),
            sqlite_where=text("credited_at IS NULL"),
        ),
    )

    friend_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    referrer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    order_ref: Mapped[str] = mapped_column(String(ORDER_REF_LENGTH))
    friend_points: Mapped[int] = mapped_column(BigInteger)
    referrer_points: Mapped[int] = mapped_column(BigInteger)  # as the programme said at the purchase
    min_purchase_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")  # what a return must keep
    created_at: Mapped[datetime]
    # When the referrer's points were credited (or skipped: a referrer no longer active gets none, nor does
    # one whose friend returned the purchase within the programme's return window).
    credited_at: Mapped[datetime | None]
    referrer_credited: Mapped[bool | None]
    # When a return within the window left the purchase short of the programme's minimum: the reward is void.
    voided_at: Mapped[datetime | None]
