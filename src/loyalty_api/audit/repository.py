from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.audit.models import AuditEvent


@dataclass(frozen=True, slots=True)
class AuditFilter:
    subject_type: str | None = None
    subject_id: str | None = None
    member_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, *events: AuditEvent) -> None:
        self.session.add_all(events)
        await self.session.flush()

    async def list_events(
        self,
        where: AuditFilter,
        *,
        subject_ids: Sequence[str] = (),
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[AuditEvent]:
        """A page of entries newest first; `subject_ids`: the texts an entry about `where.subject_id` may be
        filed under (the service's `subject_spellings`)."""
        query = select(AuditEvent)
        if where.subject_id is not None:
            query = query.where(AuditEvent.subject_id.in_(subject_ids or (where.subject_id,)))
        for column, value in (
            (AuditEvent.subject_type, where.subject_type),
            (AuditEvent.member_id, where.member_id),
            (AuditEvent.key_id, where.key_id),
            (AuditEvent.action, where.action),
        ):
            if value is not None:
                query = query.where(column == value)
        if where.since is not None:
            query = query.where(AuditEvent.at >= where.since)
        if where.until is not None:
            query = query.where(AuditEvent.at < where.until)
        if before_id is not None:
            query = query.where(AuditEvent.id < before_id)
        result = await self.session.execute(query.order_by(AuditEvent.id.desc()).limit(limit))
        return result.scalars().all()

    async def purge(self, made_before: uuid.UUID, *, limit: int) -> int:
        """Delete up to `limit` entries with ids below `made_before` (written before that instant)."""
        old = select(AuditEvent.id).where(AuditEvent.id < made_before).limit(limit)
        result = await self.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(old)))
        return int(getattr(result, "rowcount", 0) or 0)
