from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class Benefit(IdMixin, Base):
    """What a member gets: a discount, a multiplier, a gift, a service. `kind` picks the shape of
    `properties` (see offers.py)."""

    __tablename__ = "benefits"

    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    properties: Mapped[dict[str, Any]]
    active: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BenefitGrant(Base):
    """A benefit given to everyone who holds a source: a tier or a paid plan."""

    __tablename__ = "benefit_grants"

    source_type: Mapped[str] = mapped_column(String(16), primary_key=True)  # tier | plan | partner
    source_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    benefit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("benefits.id", ondelete="CASCADE"), primary_key=True, index=True
    )
