"""The queries of webhook delivery: fanning outbox events out to endpoints, leasing due deliveries, and
recording what each attempt gave."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from loyalty_api.db.constant import constant
from loyalty_api.db.dialect import dialect_insert, insert_or_ignore
from loyalty_api.db.ids import new_id
from loyalty_api.members.models import ERASED, Member
from loyalty_api.outbox.models import OutboxEvent
from loyalty_api.webhooks.models import (
    DELIVERY_PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryCount,
    WebhookEndpoint,
)

_DELIVERIES = cast(Table, WebhookDelivery.__table__)
DISPATCH_LOCK = 0x10_7A_17_0B  # the advisory lock key of the fan-out turn
_ATTEMPTS = cast(Table, WebhookAttempt.__table__)
_COUNTS = cast(Table, WebhookDeliveryCount.__table__)


@dataclass(frozen=True, slots=True)
class EndpointTarget:
    id: uuid.UUID
    event_types: list[str]
    partner_id: uuid.UUID | None

    def takes(self, event: OutboxEvent) -> bool:
        """Of its types (all when none are named); a partner's endpoint, only events about that partner."""
        if self.event_types and event.type not in self.event_types:
            return False
        return self.partner_id is None or event.partner_id == self.partner_id


@dataclass(frozen=True, slots=True)
class EventKey:
    """Where an outbox event stands in its member's (or aggregate's) order."""

    member_id: uuid.UUID | None
    aggregate_type: str
    aggregate_id: str
    sequence: int | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Everything a send needs, read while the delivery is leased."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secret_encrypted: str
    previous_secret_encrypted: str | None
    previous_secret_until: datetime | None
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    payload: dict[str, Any]
    attempts: int
    # Its own next attempt has come: a failure counts towards its back-off. False for a probe, or a delivery
    # released by an endpoint's recovery, sent ahead of the delivery's schedule: a failure leaves the
    # schedule as it was.
    due: bool
    # Sent ahead of its schedule because its endpoint recovered (or was moved or enabled again).
    released: bool
    # Sent to find out whether its failing endpoint answers again: its failure always counts for the endpoint.
    probe: bool


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _skip_locked(self) -> bool:
        # SQLite has no row locks: its writing transactions already run one at a time.
        return self.session.get_bind().dialect.name == "postgresql"

    async def take_dispatch_turn(self) -> bool:
        """Whether this transaction may fan events out. One at a time keeps each member's events in order:
        with two at once, a later event could reach the deliveries table (and be sent) before an earlier one
        another worker still holds. PostgreSQL: a transaction-scoped advisory lock, not waited for. SQLite:
        writing transactions already run one at a time."""
        if not self._skip_locked:
            return True
        return bool(await self.session.scalar(select(func.pg_try_advisory_xact_lock(DISPATCH_LOCK))))

    async def claim_undispatched(self, limit: int) -> Sequence[OutboxEvent]:
        """Outbox events not fanned out yet, in sequence (PostgreSQL skips rows another transaction holds:
        see `list_passed_over`)."""
        query = (
            select(OutboxEvent)
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.sequence)
            .limit(limit)
        )
        if self._skip_locked:
            query = query.with_for_update(skip_locked=True)
        return (await self.session.execute(query)).scalars().all()

    async def list_passed_over(self, claimed: Sequence[OutboxEvent]) -> list[EventKey]:
        """The events not fanned out yet, numbered before the last of `claimed`, that the claim did not take:
        on PostgreSQL, those another transaction holds (a replay making one a delivery of its endpoint holds
        it FOR KEY SHARE, which the claim's FOR UPDATE skips; an erasure rewriting its payload), or committed
        since with an earlier number. None on SQLite, whose claim skips nothing and whose writers take
        turns."""
        numbered = [event.sequence for event in claimed if event.sequence is not None]
        if not self._skip_locked or not numbered:
            return []
        result = await self.session.execute(
            select(
                OutboxEvent.member_id,
                OutboxEvent.aggregate_type,
                OutboxEvent.aggregate_id,
                OutboxEvent.sequence,
            ).where(
                OutboxEvent.dispatched_at.is_(None),
                OutboxEvent.sequence <= max(numbered),
                OutboxEvent.id.not_in([event.id for event in claimed]),
            )
        )
        return [EventKey(*row) for row in result.all()]

    async def list_enabled_endpoints(self) -> Sequence[EndpointTarget]:
        """The enabled endpoints, locked FOR KEY SHARE until commit (PostgreSQL): an endpoint's deletion
        waits for the fan-out that listed it (and takes its new deliveries with it), where the fan-out's
        insert would otherwise fail on the endpoint gone and end the worker's run, cutting off the sends out;
        so does a change of the endpoint (FOR UPDATE), which may narrow its types. Nothing else waits, nor
        holds the fan-out up: a worker recording an endpoint's probe or recovery, a replay. (Without `read`,
        SQLAlchemy's `key_share` is FOR NO KEY UPDATE, which each of those waited for, or made wait.)"""
        result = await self.session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types, WebhookEndpoint.partner_id)
            .where(WebhookEndpoint.enabled.is_(True))
            .with_for_update(read=True, key_share=True)
        )
        return [
            EndpointTarget(id=i, event_types=list(types or []), partner_id=partner)
            for i, types, partner in result.all()
        ]

    async def insert_deliveries(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert deliveries, skipping any (endpoint, event) that already has one (fan-out and replay may
        meet). Returns how many were new. One statement run for many rows (SQLAlchemy sends them in batches
        of multi-row VALUES): a statement built with the rows' VALUES in it was compiled afresh each time,
        about 0.7 ms of CPU a row, most of a replay's time and much of the fan-out's."""
        if not rows:
            return 0
        insert = insert_or_ignore(self.session, _DELIVERIES, ["endpoint_id", "event_id"])
        result = await self.session.execute(insert.returning(_DELIVERIES.c.id), list(rows))
        return len(result.all())

    async def mark_dispatched(self, event_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self.session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(list(event_ids)))
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )

    async def lease_due(
        self,
        now: datetime,
        *,
        until: datetime,
        token: uuid.UUID,
        limit: int,
        per_endpoint: int,
        kept: int = 0,
        busy: Mapping[uuid.UUID, int],
        besides: Collection[uuid.UUID] = (),
    ) -> list[uuid.UUID]:
        """Lease the deliveries due now that head their queue: per endpoint and ordering key, a delivery waits
        while an earlier event's delivery is still pending (retrying, or leased by a worker). A failing
        endpoint's deliveries wait for its probe (`lease_probes`). At most `per_endpoint` of one endpoint's,
        counting the `busy` ones the caller has out already, and the last `kept` of the `limit` only for
        endpoints with none out; never one of those it is sending (`besides`)."""
        taken = Counter(busy)
        ids: list[uuid.UUID] = []
        shared = limit - kept  # how many may go to an endpoint with a send out already

        def fits(endpoint: uuid.UUID, leased: int) -> bool:
            return taken[endpoint] == 0 or (taken[endpoint] < per_endpoint and leased < shared)

        while len(ids) < limit:
            full = [endpoint for endpoint in taken if not fits(endpoint, len(ids))]
            query = (
                select(WebhookDelivery.id, WebhookDelivery.endpoint_id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    DELIVERY_PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                    _unleased(now),
                    WebhookEndpoint.enabled.is_(True),
                    WebhookEndpoint.failing_since.is_(None),
                    _heads_queue(),
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit - len(ids))
            )
            if full:
                query = query.where(WebhookDelivery.endpoint_id.not_in(full))
            if besides:
                query = query.where(WebhookDelivery.id.not_in(list(besides)))
            if self._skip_locked:
                query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
            found = (await self.session.execute(query)).all()
            # An endpoint with more due than it may take leaves the rest of its rows to the next look, and
            # the room they took goes to other endpoints' deliveries: look again without it. Each look that
            # leaves rows adds their endpoints to `full` (a count only grows), so the looks end.
            fitting: list[uuid.UUID] = []
            for delivery_id, endpoint_id in found:
                if fits(endpoint_id, len(ids) + len(fitting)):
                    taken[endpoint_id] += 1
                    fitting.append(delivery_id)
            ids += await self._lease(fitting, until=until, token=token, now=now)
            if len(fitting) == len(found):
                break
        return ids

    async def lease_probes(
        self,
        now: datetime,
        *,
        until: datetime,
        token: uuid.UUID,
        limit: int,
        full: Collection[uuid.UUID] = (),
        besides: Collection[uuid.UUID] = (),
    ) -> list[uuid.UUID]:
        """For up to `limit` failing endpoints whose probe is due and not out already (the longest due first,
        none of those the caller has as many sends out to as one endpoint may take: `full`), lease the one
        delivery that probes each (the head of a queue, the earliest due first, none the caller is sending:
        `besides`), and hold its next probe until `until`: one probe at a time per endpoint, whichever worker
        sends it. A due endpoint left over keeps its turn for the next look; one with nothing to send waits
        for a delivery to probe it (no next probe). Only the endpoints leased for are locked, and those
        found with nothing to send written once."""
        if limit <= 0:
            return []
        due = and_(
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.failing_since.is_not(None),
            (WebhookEndpoint.next_probe_at.is_(None)) | (WebhookEndpoint.next_probe_at <= now),
        )
        heads = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.endpoint_id == WebhookEndpoint.id,
                DELIVERY_PENDING,
                _unleased(now),
                WebhookDelivery.id.not_in(list(besides)),
                _heads_queue(),
            )
            .correlate(WebhookEndpoint)
        )
        # Its own look at the endpoints, not the UPDATE's rows: locked as the lookup's are.
        idle = (
            select(WebhookEndpoint.id)
            .where(due, WebhookEndpoint.next_probe_at.is_not(None), ~heads.exists())
            .correlate(None)
        )
        endpoints_due = (
            select(WebhookEndpoint.id)
            .where(due, heads.exists())
            .order_by(WebhookEndpoint.next_probe_at.nulls_first(), WebhookEndpoint.id)
            .limit(limit)
        )
        if full:
            endpoints_due = endpoints_due.where(WebhookEndpoint.id.not_in(list(full)))
        if self._skip_locked:
            # FOR NO KEY UPDATE (only next_probe_at changes): a fan-out listing the endpoints FOR KEY SHARE
            # does not hide them from the probe, which FOR UPDATE's SKIP LOCKED passed over look after look.
            idle = idle.with_for_update(skip_locked=True, key_share=True)
            endpoints_due = endpoints_due.with_for_update(skip_locked=True, key_share=True)
        await self.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(idle.scalar_subquery()))
            .values(next_probe_at=None)
            .execution_options(synchronize_session=False)
        )
        locked = (await self.session.scalars(endpoints_due)).all()
        if not locked:
            return []
        # Each locked endpoint's head looked up again once it is locked: the statement that locked it read
        # the heads as of its start, and another worker may have settled that probe (and unlocked the
        # endpoint) in between; an endpoint whose head went meanwhile keeps its turn.
        head = heads.order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(1).scalar_subquery()
        looked = await self.session.execute(
            select(WebhookEndpoint.id, head).where(WebhookEndpoint.id.in_(locked))
        )
        head_of = {endpoint_id: head_id for endpoint_id, head_id in looked if head_id is not None}
        # The heads were read without a lock: one that another worker's lease_due had taken, uncommitted, is
        # that worker's once the lease has waited for it to commit, and is not this probe (both sent it).
        ids = await self._lease(
            [head_of[endpoint_id] for endpoint_id in locked if endpoint_id in head_of],
            until=until,
            token=token,
            now=now,
        )
        probed = [endpoint_id for endpoint_id in locked if head_of.get(endpoint_id) in ids]
        if probed:
            await self.session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id.in_(probed))
                .values(next_probe_at=until)
                .execution_options(synchronize_session=False)
            )
        return ids

    async def _lease(
        self, ids: list[uuid.UUID], *, until: datetime, token: uuid.UUID, now: datetime
    ) -> list[uuid.UUID]:
        """Lease those of these deliveries that are still pending and unleased (as the database has them
        once any transaction that holds one has ended); those leased, in the order given."""
        if not ids:
            return []
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), DELIVERY_PENDING, _unleased(now))
            .values(leased_until=until, lease_token=token)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        leased = set(result.scalars().all())
        return [delivery_id for delivery_id in ids if delivery_id in leased]

    async def renew_leases(
        self, delivery_ids: Sequence[uuid.UUID], *, token: uuid.UUID, until: datetime
    ) -> int:
        """Extend the leases of these deliveries (sends in progress) that this worker run still holds; how
        many. By id, so the heartbeat reads only its own rows, however large the table."""
        if not delivery_ids:
            return 0
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(delivery_ids)), WebhookDelivery.lease_token == token)
            .values(leased_until=until)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())

    async def list_outgoing(
        self, delivery_ids: Sequence[uuid.UUID], now: datetime, *, probes: Collection[uuid.UUID] = ()
    ) -> list[Outgoing]:
        result = await self.session.execute(
            select(
                WebhookDelivery.id,
                WebhookEndpoint.id,
                WebhookEndpoint.url,
                WebhookEndpoint.secret_encrypted,
                WebhookEndpoint.previous_secret_encrypted,
                WebhookEndpoint.previous_secret_until,
                OutboxEvent.id,
                OutboxEvent.type,
                OutboxEvent.occurred_at,
                OutboxEvent.payload,
                WebhookDelivery.attempts,
                _own_attempt() <= now,
                WebhookDelivery.scheduled_at.is_not(None),
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id.in_(list(delivery_ids)))
            .order_by(WebhookDelivery.id)
        )
        return [
            Outgoing(
                delivery_id=row[0],
                endpoint_id=row[1],
                url=row[2],
                secret_encrypted=row[3],
                previous_secret_encrypted=row[4],
                previous_secret_until=row[5],
                event_id=row[6],
                event_type=row[7],
                occurred_at=row[8],
                payload=row[9],
                attempts=row[10],
                due=bool(row[11]),
                released=bool(row[12]),
                probe=row[0] in probes,
            )
            for row in result.all()
        ]

    async def insert_attempts(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(_ATTEMPTS.insert(), [{"id": new_id(), **row} for row in rows])

    async def finish_deliveries(
        self,
        delivery_ids: Sequence[uuid.UUID],
        *,
        token: uuid.UUID,
        status: str,
        at: datetime,
        next_attempt_at: datetime,
        status_code: int | None,
        error: str | None,
    ) -> list[uuid.UUID]:
        """Record one scheduled attempt of these deliveries, each that this worker run still holds (nobody
        took it over or reset it meanwhile), and release their leases. Returns those it held."""
        if not delivery_ids:
            return []
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(delivery_ids)), WebhookDelivery.lease_token == token)
            .values(
                status=status,
                attempts=WebhookDelivery.attempts + 1,
                next_attempt_at=next_attempt_at,
                leased_until=None,
                lease_token=None,
                last_attempt_at=at,
                last_status_code=status_code,
                last_error=error,
                delivered_at=at if status == "succeeded" else None,
                scheduled_at=None,
            )
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars().all())

    async def release_probe(
        self, delivery_id: uuid.UUID, *, token: uuid.UUID, at: datetime, status_code: int | None, error: str
    ) -> bool:
        """A delivery sent ahead of its schedule (a probe, or released by its endpoint's recovery) failed: its
        own schedule stands, only its lease ends."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.lease_token == token)
            .values(
                next_attempt_at=_own_attempt(),
                scheduled_at=None,
                leased_until=None,
                lease_token=None,
                last_attempt_at=at,
                last_status_code=status_code,
                last_error=error,
            )
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none() is not None

    async def lock_existing(self, delivery_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of the deliveries that exist, kept from being deleted until commit (PostgreSQL: FOR KEY
        SHARE)."""
        if not delivery_ids:
            return set()
        query = select(WebhookDelivery.id).where(WebhookDelivery.id.in_(list(delivery_ids)))
        if self._skip_locked:
            query = query.with_for_update(read=True, key_share=True)
        return set((await self.session.execute(query)).scalars().all())

    async def lock_endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        """The endpoint locked until commit, to record its failures (none of its keys change): an operator's
        change or deletion of it waits, and so does the record of its recovery; the fan-out, which lists the
        endpoints FOR KEY SHARE and inserts deliveries referring to them, does not (PostgreSQL: FOR NO KEY
        UPDATE; FOR UPDATE held every worker's fan-out up, and could deadlock with it)."""
        query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        if self._skip_locked:
            query = query.with_for_update(key_share=True)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def recover_endpoint(self, endpoint_id: uuid.UUID, now: datetime, *, probed: bool) -> int:
        """The endpoint answered: if it was failing, it is not any more, and every delivery held for it is
        due now (those a worker holds aside), keeping its own schedule should it fail again. How many were
        released. Not while its receiver's Retry-After still runs, unless the answer was to a probe (`probed`:
        sent when that wait was over, or by an operator's hand): the answer then came to a send it had taken
        in before it asked to wait. Matches (and locks) nothing while the endpoint is healthy, so successful
        sends to one endpoint do not queue behind each other."""
        waiting = and_(
            WebhookEndpoint.retry_after_until.is_not(None), WebhookEndpoint.retry_after_until > now
        )
        was_failing = await self.session.scalar(
            update(WebhookEndpoint)
            .where(
                WebhookEndpoint.id == endpoint_id,
                WebhookEndpoint.failing_since.is_not(None),
                *([] if probed else [~waiting]),
            )
            .values(failing_since=None, next_probe_at=None, failing_seen_until=None, retry_after_until=None)
            .returning(WebhookEndpoint.id)
            .execution_options(synchronize_session=False)
        )
        if was_failing is None:
            return 0
        return await self.release_held(endpoint_id, now)

    async def release_held(self, endpoint_id: uuid.UUID, now: datetime) -> int:
        """Make every pending delivery of the endpoint waiting on its back-off due now (those a worker holds
        aside), keeping its own schedule should it fail again; how many."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                DELIVERY_PENDING,
                WebhookDelivery.next_attempt_at > now,
                _unleased(now),
            )
            .values(scheduled_at=_own_attempt(), next_attempt_at=now)
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())

    async def save_endpoint(self) -> None:
        await self.session.flush()

    async def count_settled(self, outcome: str, deliveries: int, *, shard: int) -> None:
        """Add to an outcome's count (its row made if missing)."""
        add = dialect_insert(self.session, _COUNTS).values(
            outcome=outcome, shard=shard, deliveries=deliveries
        )
        await self.session.execute(
            add.on_conflict_do_update(
                index_elements=["outcome", "shard"],
                set_={"deliveries": _COUNTS.c.deliveries + add.excluded.deliveries},
            )
        )

    async def purge_done(self, made_before: datetime, *, limit: int) -> int:
        """Delete up to `limit` deliveries made before `made_before` that are no longer pending, with their
        attempts; how many deliveries. Locked as read, and those another transaction holds left: a retry by
        hand under way makes one pending again, and the delete (by id alone) would take it unsent."""
        ids = (
            await self.session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.created_at < made_before, WebhookDelivery.status != "pending")
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if ids:
            await self.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
            await self.session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        return len(ids)

    async def purge_events(self, made_before: uuid.UUID, *, limit: int) -> int:
        """Delete up to `limit` events with ids below `made_before` (made before its instant) that are
        dispatched and have no delivery left; how many."""
        undelivered = exists().where(WebhookDelivery.event_id == OutboxEvent.id)
        doomed = (
            select(OutboxEvent.id)
            .where(OutboxEvent.id < made_before, OutboxEvent.dispatched_at.is_not(None), ~undelivered)
            .limit(limit)
        )
        result = await self.session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(doomed)))
        return int(getattr(result, "rowcount", 0) or 0)

    async def settled_counts(self) -> dict[str, int]:
        """Deliveries settled for good since the start, by outcome (succeeded, failed)."""
        result = await self.session.execute(
            select(WebhookDeliveryCount.outcome, func.sum(WebhookDeliveryCount.deliveries)).group_by(
                WebhookDeliveryCount.outcome
            )
        )
        return {outcome: int(n or 0) for outcome, n in result.all()}

    async def count_pending(self) -> int:
        """The queue's length, read from the index of pending deliveries (its size is the backlog's)."""
        query = select(func.count()).where(DELIVERY_PENDING)
        return int(await self.session.scalar(query) or 0)

    async def count_retrying(self) -> int:
        query = select(func.count()).where(DELIVERY_PENDING, WebhookDelivery.attempts > 0)
        return int(await self.session.scalar(query) or 0)

    async def oldest_pending_since(self) -> datetime | None:
        """Of the deliveries that are waiting to be sent: those of a disabled endpoint wait for an operator,
        not for the worker, and would otherwise make the age grow for ever."""
        found: datetime | None = await self.session.scalar(
            select(func.min(WebhookDelivery.created_at))
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(DELIVERY_PENDING, WebhookEndpoint.enabled.is_(True))
        )
        return found

    async def of_erased_members(self, delivery_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of these deliveries whose event's member is erased. Their members' rows are shared until
        commit: an erasure under way finishes first, and one that begins later waits for what this records,
        then finds it (an erasure forgets the answers it finds)."""
        if not delivery_ids:
            return set()
        rows = await self.session.execute(
            select(_DELIVERIES.c.id, Member.status)
            .join(OutboxEvent, OutboxEvent.id == _DELIVERIES.c.event_id)
            .join(Member, Member.id == OutboxEvent.member_id)
            .where(_DELIVERIES.c.id.in_(delivery_ids))
            .order_by(Member.id)
            .with_for_update(read=True, of=Member)
        )
        return {delivery_id for delivery_id, status in rows.all() if status == ERASED}

    async def forget_answers_about(self, member_id: uuid.UUID) -> int:
        """For an erasure: the receivers' answers kept with the attempts to deliver the member's events are
        dropped (a receiver may echo what it was sent, or more); how many."""
        about_member = (
            select(_DELIVERIES.c.id)
            .join(OutboxEvent, OutboxEvent.id == _DELIVERIES.c.event_id)
            .where(OutboxEvent.member_id == member_id)
        )
        result = await self.session.execute(
            update(_ATTEMPTS)
            .where(_ATTEMPTS.c.delivery_id.in_(about_member), _ATTEMPTS.c.response_body.is_not(None))
            .values(response_body=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def list_of_events(self, event_ids: Sequence[uuid.UUID]) -> Sequence[WebhookDelivery]:
        """The deliveries (still kept: retention purges settled ones) of these events, in id order."""
        if not event_ids:
            return []
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.event_id.in_(list(event_ids)))
            .order_by(WebhookDelivery.id)
        )
        return (await self.session.scalars(query)).all()


def _unleased(now: datetime) -> ColumnElement[bool]:
    return (WebhookDelivery.leased_until.is_(None)) | (WebhookDelivery.leased_until <= now)


def _heads_queue() -> ColumnElement[bool]:
    """No earlier event's delivery to the same endpoint with the same ordering key is still pending."""
    earlier = aliased(WebhookDelivery)
    return ~exists().where(
        and_(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.ordering_key == WebhookDelivery.ordering_key,
            earlier.status == constant("pending"),
            earlier.sequence < WebhookDelivery.sequence,
        )
    )


def _own_attempt() -> ColumnElement[datetime]:
    """When a delivery's back-off schedule sends it next, whether or not something sends it earlier."""
    return func.coalesce(WebhookDelivery.scheduled_at, WebhookDelivery.next_attempt_at)
