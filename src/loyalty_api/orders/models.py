"""Orders: what each purchase or redemption earned, redeemed and had refunded."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base
from loyalty_api.db.constant import constant

# Room for a partner's order reference under its partner's code (`bookshop/<64 characters>`): see
# coalition.purchases.partner_order_ref.
ORDER_REF_LENGTH = 100


class Order(Base):
    """What an order earned and redeemed, so refunds can take back and give back in proportion."""

    __tablename__ = "orders"
    __table_args__ = (
        Index(None, "member_id", "purchased_at"),
        # Open shortfalls, which reads of a member's points and a hold's release look for: hardly any member
        # has one, so the index holds hardly any row.
        Index(
            "ix_orders__member_id_shortfall",
            "member_id",
            postgresql_where=text("points_shortfall > 0"),
            sqlite_where=text("points_shortfall > 0"),
        ),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        # Refunds need the order's total; until it is known nothing is refunded.
        CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= COALESCE(amount_minor, 0)",
            name="refunded_within_amount",
        ),
        CheckConstraint(
            "points_earned >= 0 AND points_redeemed >= 0 AND points_taken_back >= 0"
            " AND points_given_back >= 0 AND points_shortfall >= 0",
            name="points_not_negative",
        ),
        # Refunds take back (or record as shortfall) at most what the order earned, and give back at most what
        # it redeemed.
        CheckConstraint(
            "points_taken_back + points_shortfall <= points_earned", name="taken_back_within_earned"
        ),
        CheckConstraint("points_given_back <= points_redeemed", name="given_back_within_redeemed"),
    )

    order_ref: Mapped[str] = mapped_column(String(ORDER_REF_LENGTH), primary_key=True)
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
    # A partner's purchase: the partner's reference of the customer it was made under, by which it is refunded
    # once the customer has unlinked (coalition.purchases). None for our own orders, for a partner's purchase
    # made before revision 0051 whose customer was not linked then, and once the member is erased (a
    # partner may make its references of phone numbers).
    partner_customer_ref: Mapped[str | None] = mapped_column(String(64))
    redeemed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def refunded(self) -> bool:
        """Whether a refund moved anything on the order (money, or points without a known total)."""
        return bool(
            self.refunded_minor or self.points_taken_back or self.points_given_back or self.points_shortfall
        )


# The orders with an open shortfall, as a statement must name them to use their partial index
# (db/constant.py).
ORDER_OWES_POINTS = Order.points_shortfall > constant(0)
