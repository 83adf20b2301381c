from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Tier(IdMixin, Base):
    __tablename__ = "tiers"

    rank: Mapped[int] = mapped_column(unique=True)  # 0 is the entry tier; higher is better
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
