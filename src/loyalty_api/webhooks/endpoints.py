"""Webhook endpoints and the operator's view of their deliveries: register, change, rotate the secret,
list and read deliveries, retry one by hand, replay events since a time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final, Literal, Protocol

from loyalty_api.db.changes import column_values
from loyalty_api.db.ids import new_id
from loyalty_api.db.pagination import Page, decode_cursor, page_of, scope_of
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.outbox.service import emit
from loyalty_api.partners.service import active_partner
from loyalty_api.webhooks.catalogue import is_known
from loyalty_api.webhooks.delivery_repository import DeliveryRepository
from loyalty_api.webhooks.endpoint_repository import EndpointRepository
from loyalty_api.webhooks.errors import (
    DeliveryInFlight,
    EndpointDisabled,
    EventTypeNotTaken,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from loyalty_api.webhooks.events import WebhookEndpointChanged
from loyalty_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from loyalty_api.webhooks.secrets import new_secret
from loyalty_api.webhooks.targets import TargetCheck, check_target

ENDPOINTS = scope_of("webhook_endpoints")  # the endpoint list's cursors carry it

MAX_EVENT_TYPES = 100
MAX_OVERLAP_HOURS = 168
ATTEMPTS_SHOWN = 100
_REPLAY_BATCH = 200
_ORDERING_KEY_LENGTH = 64


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint as operators see it: never its secrets."""

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    partner_id: uuid.UUID | None
    enabled: bool
    previous_secret_until: datetime | None
    failing_since: datetime | None
    # While it fails and is enabled: the next probe not before this; None when nothing waits to probe with.
    next_probe_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """An endpoint with its new signing secret: returned once, when it is made, never read back."""

    endpoint: Endpoint
    secret: str


@dataclass(frozen=True, slots=True)
class DeliveryDetail:
    delivery: WebhookDelivery
    attempts: Sequence[WebhookAttempt]


def _endpoint(row: WebhookEndpoint) -> Endpoint:
    return Endpoint(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        partner_id=row.partner_id,
        enabled=row.enabled,
        previous_secret_until=row.previous_secret_until,
        failing_since=row.failing_since,
        # A disabled endpoint keeps its failure record but is not probed; a healthy one keeps no time.
        next_probe_at=row.next_probe_at if row.enabled and row.failing_since is not None else None,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_event_type(field: str, event_type: str) -> None:
    if not is_known(event_type):
        raise InvalidField(field, "not an event type (see GET /v1/event-types)")


def _checked_event_types(event_types: Sequence[str]) -> list[str]:
    """Known event types, each once, in the order given. Empty means every type."""
    if len(event_types) > MAX_EVENT_TYPES:
        raise InvalidField("event_types", f"at most {MAX_EVENT_TYPES} event types")
    for index, event_type in enumerate(event_types):
        _check_event_type(f"event_types.{index}", event_type)
    return list(dict.fromkeys(event_types))


class Aggregated(Protocol):
    @property
    def member_id(self) -> uuid.UUID | None: ...
    @property
    def aggregate_type(self) -> str: ...
    @property
    def aggregate_id(self) -> str: ...


def ordering_key(event: Aggregated) -> str:
    """Deliveries of one endpoint with the same key go out in event order: the member's, else the
    aggregate's."""
    if event.member_id is not None:
        return str(event.member_id)
    return f"{event.aggregate_type}:{event.aggregate_id}"[:_ORDERING_KEY_LENGTH]


class DeliveredEvent(Aggregated, Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def sequence(self) -> int | None: ...


def new_delivery(endpoint_id: uuid.UUID, event: DeliveredEvent, now: datetime) -> dict[str, Any]:
    """The row of a delivery of `event` to the endpoint, due now."""
    return {
        "id": new_id(),
        "endpoint_id": endpoint_id,
        "event_id": event.id,
        "event_type": event.type,
        "ordering_key": ordering_key(event),
        "sequence": event.sequence,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "leased_until": None,
        "last_attempt_at": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "delivered_at": None,
    }


async def _changed(
    uow: UnitOfWork, row: WebhookEndpoint, change: Literal["created", "updated", "secret_rotated", "deleted"]
) -> None:
    # Neither the URL (it may carry a token) nor any secret goes into the event.
    await emit(
        uow,
        WebhookEndpointChanged(
            endpoint_id=row.id, change=change, enabled=row.enabled, event_types=list(row.event_types or [])
        ),
        aggregate_type="webhook_endpoint",
        aggregate_id=str(row.id),
        member_id=None,
    )


async def _check_target(uow: UnitOfWork, url: str, checked: TargetCheck | None) -> None:
    if checked is not None and checked.url == url:
        checked.confirm()
    else:
        await check_target(url, allow_private=uow.settings.webhook_allow_private_targets)


async def _get(
    uow: UnitOfWork, endpoint_id: uuid.UUID, *, lock: bool = False, fan_out_passes: bool = False
) -> WebhookEndpoint:
    row = await EndpointRepository(uow.session).get_endpoint(
        endpoint_id, lock=lock, fan_out_passes=fan_out_passes
    )
    if row is None:
        raise WebhookEndpointNotFound()
    return row


async def create_endpoint(
    uow: UnitOfWork,
    *,
    url: str,
    description: str | None,
    event_types: Sequence[str],
    enabled: bool,
    partner_id: uuid.UUID | None = None,
    target: TargetCheck | None = None,
) -> IssuedSecret:
    """A new endpoint with its secret. `target`: the URL's check, made before the unit of work opened
    (else it is made here)."""
    types = _checked_event_types(event_types)
    if partner_id is not None:
        await active_partner(uow, partner_id)
    await _check_target(uow, url, target)
    secret = new_secret()
    now = uow.clock.now()
    row = WebhookEndpoint(
        url=url,
        description=description,
        event_types=types,
        partner_id=partner_id,
        enabled=enabled,
        secret_encrypted=uow.vault.encrypt(secret),
        previous_secret_encrypted=None,
        previous_secret_until=None,
        failing_since=None,
        disabled_reason=None,
        created_at=now,
        updated_at=now,
    )
    await EndpointRepository(uow.session).insert_endpoint(row)
    await _changed(uow, row, "created")
    return IssuedSecret(endpoint=_endpoint(row), secret=secret)


async def get_endpoint(uow: UnitOfWork, endpoint_id: uuid.UUID) -> Endpoint:
    return _endpoint(await _get(uow, endpoint_id))


async def list_endpoints(uow: UnitOfWork, *, limit: int, cursor: str | None) -> Page[Endpoint]:
    rows = await EndpointRepository(uow.session).list_endpoints(
        before_id=decode_cursor(cursor, ENDPOINTS), limit=limit + 1
    )
    page = page_of(rows, limit, lambda row: row.id, ENDPOINTS)
    return page.with_items([_endpoint(row) for row in page.items])


async def update_endpoint(
    uow: UnitOfWork,
    endpoint_id: uuid.UUID,
    *,
    url: str | _Unset = UNSET,
    description: str | _Unset | None = UNSET,
    event_types: Sequence[str] | _Unset = UNSET,
    enabled: bool | _Unset = UNSET,
    target: TargetCheck | None = None,
) -> Endpoint:
    """Apply the given fields; fields not given are left alone, a description given as None is cleared.
    Enabling an endpoint forgets its failures, so it gets the full time again before it is disabled. A new
    URL, or enabling an endpoint that was off or failing, sends what waits on its back-off at once (as an
    endpoint that answers again does): the receiver is up again or somewhere else now. New event types end
    the pending deliveries of the types it no longer takes (failed, saying so). `target`: the new URL's
    check, made before the unit of work opened (else it is made here)."""
    if not isinstance(url, _Unset):  # before the lock: resolving the host may take a while
        await _check_target(uow, url, target)
    row = await _get(uow, endpoint_id, lock=True)
    before = column_values(row)
    moved = not isinstance(url, _Unset) and url != row.url
    enabling = enabled is True and (not row.enabled or row.failing_since is not None)
    fresh_start = (moved and enabled is not False and row.enabled) or enabling
    if not isinstance(event_types, _Unset):
        row.event_types = _checked_event_types(event_types)
    if not isinstance(url, _Unset):
        row.url = url
    if not isinstance(description, _Unset):
        row.description = description
    if not isinstance(enabled, _Unset):
        row.enabled = enabled
        if enabled:
            row.disabled_reason = None
    now = uow.clock.now()
    if fresh_start:
        row.failing_since = row.next_probe_at = row.failing_seen_until = row.retry_after_until = None
    if column_values(row) == before:
        # Sent again (db/changes.py): nothing to write, release or announce; nothing pending is of a type it
        # does not take, since its types did not change.
        return _endpoint(row)
    row.updated_at = now
    await EndpointRepository(uow.session).save_endpoint()
    if row.event_types and not isinstance(event_types, _Unset):
        # Narrowed: what is still waiting of the types it no longer takes is not sent either, and counts as
        # failed where /metrics counts deliveries as they settle.
        dropped = await EndpointRepository(uow.session).drop_pending_of_other_types(
            endpoint_id, keep=row.event_types, now=now
        )
        if dropped:
            await DeliveryRepository(uow.session).count_settled("failed", dropped, shard=0)
    if fresh_start:
        await DeliveryRepository(uow.session).release_held(endpoint_id, now)
    await _changed(uow, row, "updated")
    return _endpoint(row)


async def delete_endpoint(uow: UnitOfWork, endpoint_id: uuid.UUID) -> None:
    row = await _get(uow, endpoint_id)
    if not await EndpointRepository(uow.session).delete_endpoint(endpoint_id):
        raise WebhookEndpointNotFound()
    await _changed(uow, row, "deleted")


async def rotate_secret(uow: UnitOfWork, endpoint_id: uuid.UUID, *, overlap_hours: int) -> IssuedSecret:
    """A new signing secret. The one it replaces keeps signing beside it for `overlap_hours` (none when 0),
    so receivers can switch without missing a delivery; a secret replaced earlier stops at once."""
    if not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
        raise InvalidField("overlap_hours", f"must be between 0 and {MAX_OVERLAP_HOURS}")
    # Locked and read afresh: a rotation that commits meanwhile made the secret this one replaces, which must
    # keep signing for the overlap (read unlocked, both took the older one, and the first's secret, already
    # shown to its operator, signed nothing).
    row = await _get(uow, endpoint_id, lock=True)
    now = uow.clock.now()
    secret = new_secret()
    if overlap_hours > 0:
        row.previous_secret_encrypted = row.secret_encrypted
        row.previous_secret_until = now + timedelta(hours=overlap_hours)
    else:
        row.previous_secret_encrypted = None
        row.previous_secret_until = None
    row.secret_encrypted = uow.vault.encrypt(secret)
    row.updated_at = now
    await EndpointRepository(uow.session).save_endpoint()
    await _changed(uow, row, "secret_rotated")
    return IssuedSecret(endpoint=_endpoint(row), secret=secret)


async def list_deliveries(
    uow: UnitOfWork,
    endpoint_id: uuid.UUID,
    *,
    status: str | None,
    event_type: str | None,
    limit: int,
    cursor: str | None,
) -> Page[WebhookDelivery]:
    """The endpoint's deliveries, newest first. An `event_type` the catalogue does not have is refused, as an
    endpoint's `event_types` are (a misspelt filter would otherwise answer "none" for ever), unless the
    endpoint has deliveries of it: the history keeps the types a release has dropped since."""
    repo = EndpointRepository(uow.session)
    scope = scope_of("deliveries", endpoint_id)
    before_id = decode_cursor(cursor, scope)
    if not await repo.exists_endpoint(endpoint_id):
        raise WebhookEndpointNotFound()
    rows = await repo.list_deliveries(
        endpoint_id, status=status, event_type=event_type, before_id=before_id, limit=limit + 1
    )
    # Looked into only when the first page is empty (a later one may well be): whatever the status asked.
    if (
        event_type is not None
        and not rows
        and before_id is None
        and not is_known(event_type)
        and not await repo.list_deliveries(
            endpoint_id, status=None, event_type=event_type, before_id=None, limit=1
        )
    ):
        raise InvalidField(
            "event_type", "not an event type (see GET /v1/event-types), nor one delivered here"
        )
    return page_of(rows, limit, lambda row: row.id, scope)


async def get_delivery(uow: UnitOfWork, delivery_id: uuid.UUID) -> DeliveryDetail:
    """A delivery with its latest attempts (ATTEMPTS_SHOWN of them), oldest first."""
    repo = EndpointRepository(uow.session)
    delivery = await repo.get_delivery(delivery_id)
    if delivery is None:
        raise WebhookDeliveryNotFound()
    attempts = await repo.list_latest_attempts(delivery_id, limit=ATTEMPTS_SHOWN)
    return DeliveryDetail(delivery=delivery, attempts=attempts)


async def retry_delivery(uow: UnitOfWork, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a delivery again as soon as a worker is free: a failed one, a pending one now instead of at its
    next back-off, or a succeeded one once more (a failed or succeeded one apart from its member's order,
    holding none of the later events up); while its endpoint fails, as its probe. Refused while a worker
    is sending it, while its endpoint is disabled (nothing would be sent), or once its endpoint no longer
    takes its event type (as a replay passes such events over)."""
    repo = EndpointRepository(uow.session)
    found = await repo.get_delivery(delivery_id)
    if found is None:
        raise WebhookDeliveryNotFound()
    # Locked and read afresh (see _probe_now): a narrowing of its types committed meanwhile is seen, and one
    # that comes after this commits ends the delivery again, as it ends every pending one it drops.
    endpoint = await _get(uow, found.endpoint_id, lock=True, fan_out_passes=True)
    if not endpoint.enabled:
        raise EndpointDisabled()
    if endpoint.event_types and found.event_type not in endpoint.event_types:
        raise EventTypeNotTaken()
    now = uow.clock.now()
    delivery = await repo.reset_delivery(delivery_id, now=now)
    if delivery is None:
        raise DeliveryInFlight()
    await _probe_now(uow, endpoint, now)
    return delivery


async def _probe_now(uow: UnitOfWork, endpoint: WebhookEndpoint, now: datetime) -> None:
    """An operator sends a failing endpoint's deliveries again by hand (a retry, a replay): they go out now,
    as a probe, rather than at its next probe, which comes up to five minutes apart after its first hour of
    failing (the receiver has most likely just been mended). Still one probe at a time: not while a send to
    it is out, whose outcome decides first. The endpoint must be locked, so a probe leased meanwhile is
    seen."""
    if endpoint.failing_since is None or endpoint.next_probe_at is None or endpoint.next_probe_at <= now:
        return  # healthy (its deliveries go as they are due), or its probe is due already
    if await EndpointRepository(uow.session).exists_send_out(endpoint.id, now=now):
        return
    endpoint.next_probe_at = now
    await EndpointRepository(uow.session).save_endpoint()


REPLAY_MARGIN = timedelta(hours=1)


async def replay(uow: UnitOfWork, endpoint_id: uuid.UUID, *, since: datetime) -> int:
    """Send the endpoint every event since `since` of the types it takes, again: a delivery already made is
    made due now (unless a worker is sending it right now), a missing one is created; while the endpoint
    fails, its probe is due now. Returns how many. Refused while the endpoint is disabled."""
    repo = EndpointRepository(uow.session)
    # Locked and read afresh, as a change of the endpoint is: a narrowing of its types (or a disabling)
    # committing meanwhile must not have the replay queue what the endpoint no longer takes. The fan-out of
    # new events goes on meanwhile (a replay of many events takes seconds): they are not the replay's.
    endpoint = await _get(uow, endpoint_id, lock=True, fan_out_passes=True)
    if not endpoint.enabled:
        raise EndpointDisabled()
    now = uow.clock.now()
    # Events older than their retention are purged, and one about to be must not get a new delivery as the
    # purge deletes it: a replay reaches back to an hour short of the retention.
    earliest = now - timedelta(days=uow.settings.event_retention_days) + REPLAY_MARGIN
    if since < earliest:
        raise InvalidField("since", f"events are kept {uow.settings.event_retention_days} days: at most that")
    types = list(endpoint.event_types)
    partner = endpoint.partner_id
    count = await repo.reset_deliveries_for_events(
        endpoint_id, since=since, event_types=types, partner_id=partner, now=now
    )
    await _probe_now(uow, endpoint, now)
    # Then a delivery for each event without one; those made due above are left as they are.
    after: uuid.UUID | None = None
    while events := await repo.list_events_since(
        since=since, event_types=types, partner_id=partner, after_id=after, limit=_REPLAY_BATCH
    ):
        count += await DeliveryRepository(uow.session).insert_deliveries(
            [new_delivery(endpoint_id, event, now) for event in events]
        )
        after = events[-1].id
    return count
