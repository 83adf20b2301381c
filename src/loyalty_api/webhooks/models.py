from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class OutboxEvent(IdMixin, Base):
    """A domain event, written in the same transaction as the change it records."""

    __tablename__ = "outbox_events"

    type: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime]
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64), index=True)
    member_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    payload: Mapped[dict[str, Any]]
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)
