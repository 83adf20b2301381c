"""The audit log: one row for every write an admin, billing or partner key (or the CLI) made, kept in the
transaction of the write itself. Rows are only ever inserted."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty_api.db.base import Base, IdMixin


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_events"
    # Filtered lists page by id (time-ordered): by subject, by key, by member, by action. A window of time
    # (`at`) is read through its own index, then its rows put in id order.
    __table_args__ = (
        Index(None, "subject_type", "subject_id", "id"),
        Index(None, "key_id", "id"),
        Index(None, "member_id", "id"),
        Index(None, "action", "id"),
        Index(None, "at"),
    )

    at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(16))  # rest | graphql | cli
    key_id: Mapped[uuid.UUID | None]  # None: the CLI, on the host itself
    key_prefix: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))  # the key's name, or "cli"
    action: Mapped[str] = mapped_column(String(64))  # the REST operation id or GraphQL mutation
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(String(300))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(100))
    member_id: Mapped[uuid.UUID | None]  # the member the write was about, if any
    status: Mapped[int | None] = mapped_column(SmallInteger)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    request_id: Mapped[str | None] = mapped_column(String(64))
