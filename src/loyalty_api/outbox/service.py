"""Write domain events to the outbox, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.outbox.events import Event
from loyalty_api.outbox.repository import OutboxRepository, event_row, member_event_row


async def emit(
    uow: UnitOfWork, event: Event, *, aggregate_type: str, aggregate_id: str, member_id: uuid.UUID | None
) -> None:
    await OutboxRepository(uow.session).insert_event(
        event_row(
            event_type=event.event_type,
            occurred_at=uow.clock.now(),
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            member_id=member_id,
            payload=event.model_dump(mode="json"),
        )
    )


async def emit_for_member(
    uow: UnitOfWork, event: Event, member_id: uuid.UUID, partner_id: uuid.UUID | None = None
) -> None:
    """An event about one member (and one partner, whose endpoints receive it too, when given)."""
    await OutboxRepository(uow.session).insert_event(
        member_event_row(event, member_id, at=uow.clock.now(), partner_id=partner_id)
    )


async def emit_for_members(
    uow: UnitOfWork, events: Sequence[tuple[Event, uuid.UUID]], *, partner_id: uuid.UUID | None = None
) -> None:
    """Events each about one member (the member's id beside it), and each about `partner_id` too when given,
    written in one statement."""
    now = uow.clock.now()
    await OutboxRepository(uow.session).insert_events(
        [member_event_row(event, member_id, at=now, partner_id=partner_id) for event, member_id in events]
    )


async def emit_for_programme(uow: UnitOfWork, event: Event, aggregate_id: str) -> None:
    """An event about the programme's configuration rather than one member."""
    await emit(uow, event, aggregate_type="program", aggregate_id=aggregate_id, member_id=None)
