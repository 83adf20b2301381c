from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class EarningRule(IdMixin, Base):
    """A rule that adds points to an earn: `kind` names the evaluator, `properties` its settings."""

    __tablename__ = "earning_rules"

    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    properties: Mapped[dict[str, Any]]
    priority: Mapped[int]
    stackable: Mapped[bool]
    active: Mapped[bool]
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
