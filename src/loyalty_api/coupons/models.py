from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Coupon(IdMixin, Base):
    """A single-use offer owned by one member, named at checkout by its unguessable code."""

    __tablename__ = "coupons"
    __table_args__ = (Index(None, "member_id", "id"),)

    code: Mapped[str] = mapped_column(String(32), unique=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    source_type: Mapped[str] = mapped_column(String(16))  # reward | birthday_gift
    source_id: Mapped[uuid.UUID | None]
    # Makes issuing idempotent where a job may run twice: e.g. one birthday gift per benefit, member and year.
    issue_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))  # an offer kind: percent/fixed discount, free shipping/item
    properties: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))  # active | used
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_order_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
