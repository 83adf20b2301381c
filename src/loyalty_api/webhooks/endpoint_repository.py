"""All SQL of the webhook endpoints API: endpoints, and the delivery queries operators use (list, read,
retry, replay). The worker's claims and sends have their own repository (delivery_repository)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loyalty_api.outbox.models import OutboxEvent
from loyalty_api.webhooks.models import DELIVERY_PENDING, WebhookAttempt, WebhookDelivery, WebhookEndpoint

_DELIVERIES = cast(Table, WebhookDelivery.__table__)


@dataclass(frozen=True, slots=True)
class EventRef:
    """What a new delivery needs to know of its outbox event."""

    id: uuid.UUID
    type: str
    aggregate_type: str
    aggregate_id: str
    member_id: uuid.UUID | None
    sequence: int | None


class EndpointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _is_sqlite(self) -> bool:
        return self.session.get_bind().dialect.name == "sqlite"

    # Endpoints

    async def get_any_ciphertext(self) -> str | None:
        """One endpoint's encrypted signing secret (None: there is no endpoint)."""
        query = select(WebhookEndpoint.secret_encrypted).limit(1)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def insert_endpoint(self, endpoint: WebhookEndpoint) -> None:
        self.session.add(endpoint)
        await self.session.flush()

    async def save_endpoint(self) -> None:
        await self.session.flush()

    async def get_endpoint(
        self, endpoint_id: uuid.UUID, *, lock: bool = False, fan_out_passes: bool = False
    ) -> WebhookEndpoint | None:
        """The endpoint; with `lock`, as the database has it now, locked until commit (a worker recording a
        failure of it waits). With `fan_out_passes` too, for a transaction that does not change which events
        the endpoint takes and may take a while (a replay): the workers' fan-out, which lists the endpoints
        FOR KEY SHARE, does not wait for it (PostgreSQL: FOR NO KEY UPDATE); changes of the endpoint, its
        deletion and a worker's record of its failure still do."""
        if not lock:
            return await self.session.get(WebhookEndpoint, endpoint_id)
        return await self.session.get(
            WebhookEndpoint,
            endpoint_id,
            with_for_update={"key_share": True} if fan_out_passes else True,
            populate_existing=True,
        )

    async def exists_endpoint(self, endpoint_id: uuid.UUID) -> bool:
        result = await self.session.execute(select(exists().where(WebhookEndpoint.id == endpoint_id)))
        return bool(result.scalar())

    async def list_endpoints(self, *, before_id: uuid.UUID | None, limit: int) -> Sequence[WebhookEndpoint]:
        query = select(WebhookEndpoint)
        if before_id is not None:
            query = query.where(WebhookEndpoint.id < before_id)
        result = await self.session.execute(query.order_by(WebhookEndpoint.id.desc()).limit(limit))
        return result.scalars().all()

    async def delete_endpoint(self, endpoint_id: uuid.UUID) -> bool:
        """Delete the endpoint; its deliveries and their attempts go with it (ON DELETE CASCADE)."""
        result = await self.session.execute(
            delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).returning(WebhookEndpoint.id)
        )
        return result.scalar_one_or_none() is not None

    # Deliveries

    async def list_deliveries(
        self,
        endpoint_id: uuid.UUID,
        *,
        status: str | None,
        event_type: str | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[WebhookDelivery]:
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        if event_type is not None:
            query = query.where(WebhookDelivery.event_type == event_type)
        if before_id is not None:
            query = query.where(WebhookDelivery.id < before_id)
        result = await self.session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit))
        return result.scalars().all()

    async def get_delivery(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        return await self.session.get(WebhookDelivery, delivery_id)

    async def list_latest_attempts(self, delivery_id: uuid.UUID, *, limit: int) -> Sequence[WebhookAttempt]:
        """The delivery's last `limit` attempts, oldest first."""
        result = await self.session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id.desc())
            .limit(limit)
        )
        return list(reversed(result.scalars().all()))

    async def reset_delivery(self, delivery_id: uuid.UUID, *, now: datetime) -> WebhookDelivery | None:
        """Make a delivery due now, unless a worker holds its lease: one conditional UPDATE, so it cannot
        race a worker that claims it at the same moment. None when it does not exist or is leased. One that
        had left the queue (delivered, or given up) comes back out of its member's order: the later events
        went out after it already, and must not wait behind it now (through its back-off, should its
        receiver refuse it); one still pending keeps its place."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, _not_leased(now))
            .values(
                **_due_now(now),
                sequence=case((DELIVERY_PENDING, WebhookDelivery.sequence), else_=None),
            )
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        if result.scalar_one_or_none() is None:
            return None
        return await self.get_delivery_fresh(delivery_id)

    async def exists_send_out(self, endpoint_id: uuid.UUID, *, now: datetime) -> bool:
        """Whether a worker is sending one of the endpoint's deliveries (one it holds the lease of), read
        through the index of its pending deliveries."""
        out = exists().where(
            WebhookDelivery.endpoint_id == endpoint_id,
            DELIVERY_PENDING,
            WebhookDelivery.leased_until > now,
        )
        return bool(await self.session.scalar(select(out)))

    async def drop_pending_of_other_types(
        self, endpoint_id: uuid.UUID, *, keep: Sequence[str], now: datetime
    ) -> int:
        """End the endpoint's pending deliveries of event types not in `keep`: the endpoint no longer takes
        them. They stay listed, failed, with why; how many. One a worker is sending right now ends too: its
        lease goes with its token, so the send's outcome is kept as an attempt but decides nothing (a refusal
        would otherwise put it back on its back-off, sent again and holding up its member's later events)."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                DELIVERY_PENDING,
                WebhookDelivery.event_type.not_in(list(keep)),
            )
            .values(
                status="failed",
                next_attempt_at=now,
                scheduled_at=None,
                leased_until=None,
                lease_token=None,
                last_error="the endpoint no longer takes this event type",
            )
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())

    async def get_delivery_fresh(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        """The delivery as the database has it now, not as this session last saw it."""
        return await self.session.get(WebhookDelivery, delivery_id, populate_existing=True)

    async def reset_deliveries_for_events(
        self,
        endpoint_id: uuid.UUID,
        *,
        since: datetime,
        event_types: Sequence[str],
        partner_id: uuid.UUID | None,
        now: datetime,
    ) -> int:
        """Make due now every delivery of the endpoint for an event since `since` of the given types (all
        when empty), except those a worker is sending right now. Returns how many."""
        events = select(OutboxEvent.id).where(_events_matching(since, event_types, partner_id))
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.event_id.in_(events),
                _not_leased(now),
            )
            .values(**_due_now(now), sequence=_event_sequence())
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())

    async def list_events_since(
        self,
        *,
        since: datetime,
        event_types: Sequence[str],
        partner_id: uuid.UUID | None,
        after_id: uuid.UUID | None,
        limit: int,
    ) -> list[EventRef]:
        """A page of the outbox events since `since` of the given types (all when empty), by id after
        `after_id`. Whether an endpoint has a delivery of each is left to the insert (ON CONFLICT): asked
        here, PostgreSQL's planner (which takes the deliveries table to be as small as when it was last
        analyzed, while a replay fills it) read every delivery made so far, once for each page."""
        query = select(
            OutboxEvent.id,
            OutboxEvent.type,
            OutboxEvent.aggregate_type,
            OutboxEvent.aggregate_id,
            OutboxEvent.member_id,
            OutboxEvent.sequence,
        ).where(
            # SQLite's planner, without statistics, took the index of types for such a page and sorted every
            # event of the type to find it, once for each page; PostgreSQL's weighs the types by its
            # statistics (and misjudges an expression).
            _events_matching(since, event_types, partner_id, type_unindexed=self._is_sqlite)
        )
        if after_id is not None:
            query = query.where(OutboxEvent.id > after_id)
        result = await self.session.execute(query.order_by(OutboxEvent.id).limit(limit))
        return [EventRef(*row) for row in result.all()]


def _not_leased(now: datetime) -> ColumnElement[bool]:
    return or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until <= now)


def _due_now(now: datetime) -> dict[str, Any]:
    # A fresh run of back-off: earlier attempts stay in the attempt log but do not count towards giving up.
    # The lease's token goes too: a worker whose lease ran out settles nothing of this fresh run. Pending, it
    # is not delivered (whenever an earlier run delivered it).
    return {
        "status": "pending",
        "next_attempt_at": now,
        "scheduled_at": None,
        "leased_until": None,
        "lease_token": None,
        "attempts": 0,
        "delivered_at": None,
    }


def _event_sequence() -> ColumnElement[int | None]:
    """The delivery's event's place in its member's order (a retry by hand may have taken it out)."""
    return select(OutboxEvent.sequence).where(OutboxEvent.id == WebhookDelivery.event_id).scalar_subquery()


def _events_matching(
    since: datetime, event_types: Sequence[str], partner_id: uuid.UUID | None, *, type_unindexed: bool = False
) -> ColumnElement[bool]:
    """The events an endpoint takes since `since`: of its types, and, for a partner's, about that partner.
    `type_unindexed`: the type compared as an expression, which no index serves."""
    condition = OutboxEvent.occurred_at >= since
    if event_types:
        event_type = OutboxEvent.type.concat("") if type_unindexed else OutboxEvent.type
        condition = and_(condition, event_type.in_(list(event_types)))
    if partner_id is not None:
        condition = and_(condition, OutboxEvent.partner_id == partner_id)
    return condition
