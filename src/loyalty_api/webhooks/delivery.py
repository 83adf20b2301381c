"""Webhook delivery: fan outbox events out to the endpoints that take them, then send each delivery, signed
per Standard Webhooks, retrying with growing back-off for about a day.

At least once: a delivery is leased before it is sent and settled after, each in its own transaction, so a
worker that dies mid-send leaves a lease that runs out and another worker sends again. Receivers dedupe on
`webhook-id` (the event's id, the same on every attempt). One endpoint gets one member's events in order: a
later event waits while an earlier one is still pending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from loyalty_api.clock import format_instant
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import LoyaltyError
from loyalty_api.settings import Settings
from loyalty_api.webhooks.delivery_repository import DeliveryRepository, Outgoing
from loyalty_api.webhooks.endpoints import new_delivery
from loyalty_api.webhooks.events import WebhookEndpointDisabled
from loyalty_api.webhooks.outbox import emit
from loyalty_api.webhooks.signing import signature_header
from loyalty_api.webhooks.targets import RESOLVE_TIMEOUT_SECONDS, check_target

logger = logging.getLogger("loyalty_api.webhooks")

# After the first attempt fails: wait this long before each next one (±10 % jitter), then give up.
BACKOFF = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
LEASE = timedelta(seconds=60)  # the margin of a lease beyond the longest its batch of sends can take
RESPONSE_KEPT = 2000  # characters of a response body kept with the attempt
_RESPONSE_READ = 4 * RESPONSE_KEPT  # bytes of a response body read at most (UTF-8: up to 4 per character)
_SENDERS = 16  # sends in flight at once per worker
# A run stops after this many batches even with more to do, so a stopping worker finishes soon; the worker
# (or `loyalty-api jobs`) simply runs it again.
_BATCHES_PER_RUN = 20


def lease_length(settings: Settings, batch: int) -> timedelta:
    """How long a batch of deliveries is leased: long enough for its last send to start and finish (the
    batch goes out _SENDERS at a time, each send bounded by the DNS check and the timeout), so another worker
    never takes over a delivery that is still waiting its turn here."""
    waves = -(-batch // _SENDERS)
    per_send = timedelta(seconds=RESOLVE_TIMEOUT_SECONDS + settings.webhook_timeout_seconds)
    return LEASE + waves * per_send


def retry_delay(failed_attempts: int, rng: random.Random) -> timedelta | None:
    """How long after the `failed_attempts`-th failure to try again, or None to give up."""
    if failed_attempts > len(BACKOFF):
        return None
    base = BACKOFF[failed_attempts - 1]
    return base * (0.9 + 0.2 * rng.random())


async def dispatch_events(units: UnitsOfWork, *, batch: int = 500) -> int:
    """Turn outbox events into deliveries, one per endpoint that takes the event (enabled endpoints only: a
    disabled one gets what it missed by a replay). Returns how many events were dispatched."""
    dispatched = 0
    for _ in range(_BATCHES_PER_RUN):
        async with units.begin() as uow:
            repo = DeliveryRepository(uow.session)
            if not await repo.take_dispatch_turn():
                break  # another worker is fanning out; it will take these events too
            events = await repo.claim_undispatched(batch)
            if not events:
                return dispatched
            endpoints = await repo.list_enabled_endpoints()
            now = uow.clock.now()
            await repo.insert_deliveries(
                [
                    new_delivery(endpoint.id, event, now)
                    for event in events
                    for endpoint in endpoints
                    if endpoint.takes(event)
                ]
            )
            await repo.mark_dispatched([event.id for event in events], now)
            dispatched += len(events)
        if len(events) < batch:
            break
    return dispatched


async def deliver_webhooks(units: UnitsOfWork) -> int:
    """The worker's webhook job: fan new events out, then send what is due. Returns the attempts made."""
    await dispatch_events(units)
    return await send_due(units)


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    # Trying again cannot help (the event is too large to send): given up at once, not the endpoint's fault.
    hopeless: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def message_body(outgoing: Outgoing) -> bytes:
    return json.dumps(
        {
            "type": outgoing.event_type,
            "timestamp": format_instant(outgoing.occurred_at),
            "data": outgoing.payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


async def send_due(
    units: UnitsOfWork,
    *,
    batch: int = 100,
    client: httpx.AsyncClient | None = None,
    rng: random.Random | None = None,
) -> int:
    """Send the deliveries that are due, a batch at a time (up to _BATCHES_PER_RUN); returns the attempts."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    own_client = client is None
    http = client or httpx.AsyncClient(
        timeout=units.settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
    )
    gate = asyncio.Semaphore(_SENDERS)
    attempted = 0
    try:
        for _ in range(_BATCHES_PER_RUN):
            async with units.begin() as uow:
                now = uow.clock.now()
                repo = DeliveryRepository(uow.session)
                leased = await repo.lease_due(
                    now, until=now + lease_length(units.settings, batch), limit=batch
                )
                outgoing = await repo.list_outgoing(leased) if leased else []
            if not outgoing:
                return attempted
            await asyncio.gather(*(_send_one(units, http, item, gate, rng) for item in outgoing))
            attempted += len(outgoing)
            if len(outgoing) < batch:
                break
        return attempted
    finally:
        if own_client:
            await http.aclose()


async def _send_one(
    units: UnitsOfWork, http: httpx.AsyncClient, item: Outgoing, gate: asyncio.Semaphore, rng: random.Random
) -> None:
    """One delivery: whatever goes wrong with it stays with it, and the rest of the batch goes on."""
    async with gate:
        try:
            outcome = await _attempt(units, http, item)
        except Exception as exc:
            logger.exception("webhook send failed", extra={"delivery_id": str(item.delivery_id)})
            outcome = Outcome(None, f"internal error: {type(exc).__name__}", None, 0)
    try:
        async with units.begin() as uow:
            await _settle(uow, item, outcome, rng)
    except Exception:
        # Its lease runs out and it is sent again: at least once.
        logger.exception("webhook attempt not recorded", extra={"delivery_id": str(item.delivery_id)})


def _secrets(units: UnitsOfWork, item: Outgoing, now: datetime) -> list[str]:
    secrets = [units.vault.decrypt(item.secret_encrypted)]
    if item.previous_secret_encrypted is not None and (
        item.previous_secret_until is not None and item.previous_secret_until > now
    ):
        secrets.append(units.vault.decrypt(item.previous_secret_encrypted))
    return secrets


async def _attempt(units: UnitsOfWork, http: httpx.AsyncClient, item: Outgoing) -> Outcome:
    started = time.monotonic()

    def done(
        status_code: int | None, error: str | None, body: str | None = None, hopeless: bool = False
    ) -> Outcome:
        return Outcome(status_code, error, body, int((time.monotonic() - started) * 1000), hopeless)

    body = message_body(item)
    if len(body) > units.settings.webhook_max_payload_bytes:
        return done(None, f"payload of {len(body)} bytes is over the limit", hopeless=True)
    try:
        await check_target(item.url, allow_private=units.settings.webhook_allow_private_targets)
    except LoyaltyError as exc:
        return done(None, exc.detail[:500])
    # The signature's timestamp is the moment of sending on the wall clock, which receivers check against
    # theirs (a transport fact, like a Date header, not a domain time).
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": "loyalty-api-webhooks",
        "webhook-id": str(item.event_id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            _secrets(units, item, units.clock.now()), str(item.event_id), timestamp, body
        ),
    }
    timeout = units.settings.webhook_timeout_seconds
    try:
        # httpx's timeout bounds each connect and read, not the exchange: a receiver answering a byte at a
        # time would hold the send (and the lease) for ever.
        async with asyncio.timeout(timeout):
            async with http.stream("POST", item.url, content=body, headers=headers) as response:
                return done(response.status_code, None, await _start_of_body(response))
    except TimeoutError:
        return done(None, f"timed out after {timeout:g} s")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return done(None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)


async def _start_of_body(response: httpx.Response) -> str:
    """The first RESPONSE_KEPT characters of the body, reading no more than that needs, without NUL
    (PostgreSQL text cannot hold it)."""
    start = bytearray()
    async for chunk in response.aiter_bytes():
        start += chunk
        if len(start) >= _RESPONSE_READ:
            break
    text = bytes(start[:_RESPONSE_READ]).decode(response.encoding or "utf-8", errors="replace")
    return text[:RESPONSE_KEPT].replace("\x00", "\ufffd")


async def _settle(uow: UnitOfWork, item: Outgoing, outcome: Outcome, rng: random.Random) -> None:
    """Record the attempt and, if this worker still holds the lease it sent under, what becomes of the
    delivery. A lease that ran out and was taken over (or reset by a retry) belongs to another send: this
    late outcome is kept as an attempt but decides nothing. A delivery deleted meanwhile (its endpoint was
    deleted) leaves nothing to record."""
    now = uow.clock.now()
    repo = DeliveryRepository(uow.session)
    error = outcome.error or (None if outcome.succeeded else f"HTTP {outcome.status_code}")
    if outcome.succeeded:
        status, next_at = "succeeded", now
    elif outcome.hopeless:
        status, next_at = "failed", now
    else:
        delay = retry_delay(item.attempts + 1, rng)
        status, next_at = ("failed", now) if delay is None else ("pending", now + delay)
    owned = await repo.finish_attempt(
        item.delivery_id,
        lease=item.leased_until,
        status=status,
        at=now,
        next_attempt_at=next_at,
        status_code=outcome.status_code,
        error=error,
    )
    if not owned and not await repo.lock_delivery_key(item.delivery_id):
        return
    await repo.insert_attempt(
        item.delivery_id,
        at=now,
        status_code=outcome.status_code,
        error=error,
        duration_ms=outcome.duration_ms,
        response_body=outcome.response_body,
    )
    if not outcome.hopeless:
        await _track_endpoint(uow, item.endpoint_id, succeeded=outcome.succeeded, now=now)


async def _track_endpoint(uow: UnitOfWork, endpoint_id: uuid.UUID, *, succeeded: bool, now: datetime) -> None:
    """Remember since when an endpoint fails every attempt; past the setting's limit, disable it."""
    repo = DeliveryRepository(uow.session)
    if succeeded:
        # One conditional UPDATE that matches (and locks) nothing while the endpoint is healthy: successful
        # deliveries to one endpoint do not queue behind each other's transactions.
        await repo.clear_failing(endpoint_id)
        return
    endpoint = await repo.lock_endpoint(endpoint_id)
    if endpoint is None:
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    elif endpoint.enabled and now - endpoint.failing_since >= timedelta(
        hours=uow.settings.webhook_disable_after_hours
    ):
        endpoint.enabled = False
        endpoint.disabled_reason = "failed every attempt since " + format_instant(endpoint.failing_since)
        endpoint.updated_at = now
        await emit(
            uow,
            WebhookEndpointDisabled(
                endpoint_id=endpoint.id, failing_since=endpoint.failing_since, reason=endpoint.disabled_reason
            ),
            aggregate_type="webhook_endpoint",
            aggregate_id=str(endpoint.id),
            member_id=None,
        )
    await repo.save_endpoint()


@dataclass(frozen=True, slots=True)
class Backlog:
    by_status: dict[str, int]  # deliveries: pending (the queue), succeeded, failed (given up)
    retrying: int  # pending after at least one failed attempt
    oldest_pending_since: datetime | None


async def backlog(units: UnitsOfWork) -> Backlog:
    async with units.read() as uow:
        repo = DeliveryRepository(uow.session)
        return Backlog(
            by_status=await repo.count_by_status(),
            retrying=await repo.count_retrying(),
            oldest_pending_since=await repo.oldest_pending_since(),
        )
