from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.crypto import CIPHERTEXT_PREFIX
from loyalty_api.db.dialect import insert_or_ignore
from loyalty_api.db.ids import new_id
from loyalty_api.idempotency.models import IdempotencyRecord

_TABLE = cast(Table, IdempotencyRecord.__table__)


def _held(record_id: uuid.UUID, lease: datetime) -> tuple[ColumnElement[bool], ...]:
    """The claim's row, while that claim holds it: a retry that took the key over set another lease."""
    return (
        IdempotencyRecord.id == record_id,
        IdempotencyRecord.state == "in_flight",
        IdempotencyRecord.locked_until == lease,
    )


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_claim(
        self, *, owner: str, key: str, fingerprint: str, locked_until: datetime, expires_at: datetime
    ) -> uuid.UUID | None:
        """Claim the key; None when a record for it already exists."""
        statement = (
            insert_or_ignore(self.session, _TABLE, ["owner", "key"])
            .values(
                id=new_id(),
                owner=owner,
                key=key,
                fingerprint=fingerprint,
                state="in_flight",
                locked_until=locked_until,
                expires_at=expires_at,
            )
            .returning(_TABLE.c.id)
        )
        result = await self.session.execute(statement)
        return result.scalar_one_or_none()

    async def lock_record(self, *, owner: str, key: str) -> IdempotencyRecord | None:
        result = await self.session.execute(
            select(IdempotencyRecord)
            .where(IdempotencyRecord.owner == owner, IdempotencyRecord.key == key)
            .with_for_update()
        )
        return result.scalar_one_or_none()

    async def take_over(
        self, record_id: uuid.UUID, *, fingerprint: str, locked_until: datetime, expires_at: datetime
    ) -> None:
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id)
            .values(
                fingerprint=fingerprint,
                state="in_flight",
                locked_until=locked_until,
                expires_at=expires_at,
                response_status=None,
                response_body=None,
                response_content_type=None,
            )
        )

    async def complete(
        self, record_id: uuid.UUID, lease: datetime, *, status: int, body: str, content_type: str
    ) -> bool:
        """Record the response, if the claim with this lease still holds the key."""
        result = await self.session.execute(
            update(IdempotencyRecord)
            .where(*_held(record_id, lease))
            .values(
                state="completed",
                response_status=status,
                response_body=body,
                response_content_type=content_type,
            )
            .returning(IdempotencyRecord.id)
        )
        return result.scalar_one_or_none() is not None

    async def delete_claim(self, record_id: uuid.UUID, lease: datetime) -> None:
        await self.session.execute(delete(IdempotencyRecord).where(*_held(record_id, lease)))

    async def get_any_ciphertext(self) -> str | None:
        """One recorded reply, encrypted, of any key (None: none is). Replies recorded before every reply was
        encrypted are left out: plain JSON, or an older form."""
        body = IdempotencyRecord.response_body
        query = select(body).where(body.startswith(CIPHERTEXT_PREFIX)).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def replies(self, *, after_id: uuid.UUID | None, limit: int) -> list[tuple[uuid.UUID, str, str]]:
        """(id, stored reply, fingerprint) of completed records, in id order after `after_id`."""
        query = select(
            IdempotencyRecord.id, IdempotencyRecord.response_body, IdempotencyRecord.fingerprint
        ).where(IdempotencyRecord.response_body.is_not(None))
        if after_id is not None:
            query = query.where(IdempotencyRecord.id > after_id)
        rows = await self.session.execute(query.order_by(IdempotencyRecord.id).limit(limit))
        return [(record_id, body, fp) for record_id, body, fp in rows.all() if body is not None]

    async def replace_replies(self, replies: Sequence[tuple[uuid.UUID, str, str]]) -> None:
        """Put (id, reply, fingerprint) in place of what these records kept, in one statement."""
        if replies:
            await self.session.execute(
                update(_TABLE)
                .where(_TABLE.c.id == bindparam("record"))
                .values(response_body=bindparam("reply"), fingerprint=bindparam("keyed")),
                [{"record": record, "reply": reply, "keyed": keyed} for record, reply, keyed in replies],
            )

    async def delete_records(self, record_ids: Sequence[uuid.UUID]) -> None:
        if record_ids:
            await self.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(record_ids)))

    async def delete_expired(self, now: datetime, *, limit: int) -> int:
        """Delete up to `limit` records expired by `now`; how many."""
        expired = select(IdempotencyRecord.id).where(IdempotencyRecord.expires_at <= now).limit(limit)
        doomed = delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(expired))
        result = await self.session.execute(doomed)
        return int(getattr(result, "rowcount", 0) or 0)
