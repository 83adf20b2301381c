from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.db.direct import DirectStatement
from loyalty_api.db.ids import new_id
from loyalty_api.outbox.events import Event
from loyalty_api.outbox.models import OutboxEvent

_EVENTS = cast(Table, OutboxEvent.__table__)
# Every column but those the database fills (the sequence).
INSERT_EVENT = DirectStatement(
    insert(_EVENTS).values(
        {
            column.key: bindparam(column.key, type_=column.type)
            for column in _EVENTS.columns
            if column.server_default is None
        }
    )
)


def event_row(
    *,
    event_type: str,
    occurred_at: datetime,
    aggregate_type: str,
    aggregate_id: str,
    member_id: uuid.UUID | None,
    payload: dict[str, Any],
    partner_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """An outbox row, column by column."""
    return {
        "id": new_id(),
        "type": event_type,
        "occurred_at": occurred_at,
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "member_id": member_id,
        "partner_id": partner_id,
        "payload": payload,
        "dispatched_at": None,
    }


def member_event_row(
    event: Event, member_id: uuid.UUID, *, at: datetime, partner_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """The outbox row of an event about one member (and one partner, whose endpoints receive it too)."""
    return event_row(
        event_type=event.event_type,
        occurred_at=at,
        aggregate_type="member",
        aggregate_id=str(member_id),
        member_id=member_id,
        partner_id=partner_id,
        payload=event.model_dump(mode="json"),
    )


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rewrite_member_payloads(
        self, member_id: uuid.UUID, rewrite: Callable[[str, dict[str, Any]], dict[str, Any]]
    ) -> int:
        """Replace each payload of the member's events by `rewrite(event type, payload)` where that differs
        (an erasure takes personal data out of events still stored); how many changed."""
        rows = await self.session.execute(
            select(_EVENTS.c.id, _EVENTS.c.type, _EVENTS.c.payload).where(_EVENTS.c.member_id == member_id)
        )
        changed = [
            {"event": event_id, "new_payload": new}
            for event_id, event_type, payload in rows.all()
            if (new := rewrite(event_type, payload)) != payload
        ]
        if changed:
            await self.session.execute(
                update(_EVENTS)
                .where(_EVENTS.c.id == bindparam("event"))
                .values(payload=bindparam("new_payload", type_=_EVENTS.c.payload.type)),
                changed,
            )
        return len(changed)

    async def partner_refs_of(self, member_id: uuid.UUID) -> list[str]:
        """The partners' customer refs the member's stored events name (`partner_customer_ref`): those of
        every link they had, ended or not, for an erasure to look for."""
        ref = _EVENTS.c.payload["partner_customer_ref"].as_string()
        rows = await self.session.scalars(
            select(ref).distinct().where(_EVENTS.c.member_id == member_id, ref.is_not(None))
        )
        return [value for value in rows.all() if value is not None]

    async def insert_event(self, row: dict[str, Any]) -> None:
        await INSERT_EVENT.execute(self.session, row)

    async def insert_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Many events in one statement, run for them all (a job's batch); one as insert_event writes it (an
        earn that finds points past their end: on the driver, not through SQLAlchemy's execution)."""
        if len(rows) == 1:
            await INSERT_EVENT.execute(self.session, rows[0])
        elif rows:
            await self.session.execute(INSERT_EVENT.statement, list(rows))

    async def events_of(
        self, member_id: uuid.UUID, *, after_id: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[uuid.UUID, str, datetime]]:
        """(id, type, occurred at) of the events about the member after `after_id`, oldest first; not their
        payloads."""
        query = select(_EVENTS.c.id, _EVENTS.c.type, _EVENTS.c.occurred_at).where(
            _EVENTS.c.member_id == member_id
        )
        if after_id is not None:
            query = query.where(_EVENTS.c.id > after_id)
        rows = await self.session.execute(query.order_by(_EVENTS.c.id).limit(limit))
        return [(event_id, event_type, at) for event_id, event_type, at in rows.all()]
