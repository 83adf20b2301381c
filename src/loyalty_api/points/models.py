from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base


class PointsAccount(Base):
    """A member's cached balance. Every change goes through one conditional UPDATE of this row first."""

    __tablename__ = "points_accounts"

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    held: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]
