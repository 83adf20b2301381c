from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Plan(IdMixin, Base):
    """A paid membership on sale: its price per period, its trial and grace, and what it gives. Its benefits
    are `benefit_grants` rows with source_type "plan"; `coupons` are the recurring coupons it issues."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("price_amount_minor >= 0", name="price_not_negative"),
        CheckConstraint("interval_count > 0", name="interval_count_positive"),
        CheckConstraint("trial_days >= 0 AND grace_days >= 0", name="days_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(32), unique=True)
    # A member holds at most one live subscription per family: upgrades and downgrades stay inside one.
    family: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    price_amount_minor: Mapped[int] = mapped_column(BigInteger)
    price_currency: Mapped[str] = mapped_column(String(3))
    interval_unit: Mapped[str] = mapped_column(String(8))  # month | year
    interval_count: Mapped[int]
    trial_days: Mapped[int]
    grace_days: Mapped[int]
    coupons: Mapped[list[Any]]
    # The partners' perks it includes (PartnerPerkOffer, by partner code), granted each paid period.
    partner_perks: Mapped[list[Any]] = mapped_column(server_default=text("'[]'"))
    active: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
