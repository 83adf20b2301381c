"""The outbox: domain events, written in the transaction of the change they record."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, FetchedValue, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class OutboxEvent(IdMixin, Base):
    """A domain event, written in the same transaction as the change it records."""

    __tablename__ = "outbox_events"
    # The worker's claim reads only what is not dispatched yet, in sequence order: the index holds just those.
    __table_args__ = (
        Index(
            "ix_outbox_events__undispatched",
            "sequence",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
    )

    type: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime]
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64), index=True)
    member_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # The partner the event is about (a link, an earn there, an exchange): its endpoints receive it.
    partner_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]]
    dispatched_at: Mapped[datetime | None]
    # The order events are sent in, given by the database as the row goes in (PostgreSQL: a sequence; SQLite,
    # whose writers take turns: the row id), never by a host's clock. Everything that writes a member's
    # event has that member's rows locked by then (their account, their row), so one member's events take
    # numbers in the order their transactions commit.
    sequence: Mapped[int | None] = mapped_column(BigInteger, FetchedValue())
