"""Webhook delivery: fan outbox events out to the endpoints that take them, then send each delivery, signed
per Standard Webhooks, retrying with growing back-off for about a day.

At least once: a delivery is leased before it is sent and settled after, in transactions of their own, and
the lease is short and renewed while the send is out, so a worker that dies mid-send leaves a lease that
runs out within seconds and another worker sends again. Receivers dedupe on `webhook-id` (the event's id,
the same on every attempt). One endpoint gets one member's events in order: a later event waits while an
earlier one is still pending.

An endpoint that fails is not flooded: its deliveries wait, each on its back-off schedule, while one probe at
a time (a delivery of its own, sent ahead of schedule when none is due) tries it at a growing interval; the
first send it answers releases everything held for it at once. A receiver that answers 429 or 503 with
`Retry-After` is tried again no sooner than it asked (up to RETRY_AFTER_CAP). One whose receiver answers 410
Gone (the URL is removed for good) is disabled at once, as one failing for too long is.

A receiver that hangs holds up only its own sends: a worker has at most _PER_ENDPOINT sends out to one
endpoint, keeps the last quarter of its room for healthy endpoints with none out (so receivers hanging on
several endpoints, or failing endpoints' probes, cannot take it all, leaving the others' deliveries to wait
out their timeouts), records each outcome as its send finishes, and leases more as sends finish or new
events come.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import aiohttp

from loyalty_api.clock import format_instant
from loyalty_api.db.ids import new_id
from loyalty_api.db.outage import database_busy, database_out_of_reach
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import LoyaltyError
from loyalty_api.outbox.models import OutboxEvent
from loyalty_api.outbox.service import emit
from loyalty_api.settings import Settings
from loyalty_api.webhooks.delivery_repository import DeliveryRepository, EventKey, Outgoing
from loyalty_api.webhooks.endpoints import new_delivery, ordering_key
from loyalty_api.webhooks.events import WebhookEndpointDisabled
from loyalty_api.webhooks.signing import signature_header
from loyalty_api.webhooks.transport import TargetRefused, refuse_before_connecting, webhook_session

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
# A lease runs out this long after it was taken or last renewed; a worker renews its leases every HEARTBEAT
# while their sends are out. A worker that dies leaves its deliveries to another within LEASE (plus a tick).
LEASE = timedelta(seconds=6)
HEARTBEAT = timedelta(seconds=2)
# Between tries to record a batch's attempts while another process holds SQLite's write lock.
_BUSY_PAUSE = 0.1
# While an endpoint fails, a probe goes out at a growing interval: a quarter of the time it has been failing,
# at least PROBE_MIN, at most PROBE_CAP in its first hour, then at most PROBE_CAP_LATER.
PROBE_MIN = timedelta(seconds=1)
PROBE_CAP = timedelta(seconds=30)
PROBE_CAP_LATER = timedelta(minutes=5)
# A receiver's Retry-After is honoured up to this long: about as long as the whole back-off schedule.
RETRY_AFTER_CAP = timedelta(hours=24)
# How much later than planned a failing endpoint's next try may come and its failing still count as seen.
SEEN_SLACK = timedelta(minutes=5)
RESPONSE_KEPT = 2000  # characters of a response body kept with the attempt
_RESPONSE_READ = 4 * RESPONSE_KEPT  # bytes of a response body read at most (UTF-8: up to 4 per character)
_SENDERS = 32  # sends in flight at once per worker
_PER_ENDPOINT = 8  # of which to one endpoint (its connections kept alive between sends)
# Of a run's room (`batch`), this share goes only to healthy endpoints with no send out: four endpoints whose
# receivers hang, or 32 failing ones whose probes hang, would otherwise fill a worker's 32 sends for a whole
# timeout. It costs no room while fewer than four endpoints are busy (each takes at most _PER_ENDPOINT), and
# at most this share when more are.
_KEPT_FOR_IDLE = 4  # one in four
_COUNT_SHARDS = 8  # rows per outcome in webhook_delivery_counts
# A fan-out run stops after this many batches even with more to do, so a stopping worker finishes soon; the
# worker (or `loyalty-api jobs`) simply runs it again. A sending run not told when to stop leases at most
# _LEASED_PER_RUN deliveries.
_BATCHES_PER_RUN = 20
_LEASED_PER_RUN = 2000
# While sends are out, a run looks for new events and due deliveries this often (a worker: at its tick).
LOOK_EVERY_SECONDS = 0.25


def probe_interval(failing_for: timedelta) -> timedelta:
    """How long after a failed send to a failing endpoint its next probe goes out."""
    cap = PROBE_CAP if failing_for < timedelta(hours=1) else PROBE_CAP_LATER
    return min(cap, max(PROBE_MIN, failing_for / 4))


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
            claimed = await repo.claim_undispatched(batch)
            if not claimed:
                return dispatched
            events = _in_order(claimed, await repo.list_passed_over(claimed))
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
        if len(claimed) < batch:
            break
    return dispatched


def _in_order(claimed: Sequence[OutboxEvent], passed_over: Collection[EventKey]) -> list[OutboxEvent]:
    """The claimed events that may be fanned out now: not those numbered after an event of their member (or
    aggregate) that the claim passed over (another transaction holds it), whose deliveries would go out
    before its own. They wait, with it, for a later run; other members' events go on."""
    first: dict[str, int] = {}
    for held in passed_over:
        if held.sequence is not None:
            key = ordering_key(held)
            first[key] = min(first.get(key, held.sequence), held.sequence)
    if not first:
        return list(claimed)
    return [
        event
        for event in claimed
        if (before := first.get(ordering_key(event))) is None
        or (event.sequence is not None and event.sequence < before)
    ]


async def deliver_webhooks(
    units: UnitsOfWork,
    *,
    client: aiohttp.ClientSession | None = None,
    rng: random.Random | None = None,
    stop: asyncio.Event | None = None,
    woken: asyncio.Event | None = None,
    look_every: float = LOOK_EVERY_SECONDS,
) -> int:
    """The worker's webhook job: fan new events out and send what is due, again and again while sends are
    out (see `send_due`). Returns the attempts made."""
    return await send_due(
        units, client=client, rng=rng, fan_out=True, stop=stop, woken=woken, look_every=look_every
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    # Trying again cannot help (the event is too large to send): given up at once, not the endpoint's fault.
    hopeless: bool = False
    # How long the receiver asked us to wait (its 429 or 503's Retry-After), capped.
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def failure(self) -> str | None:
        """What went wrong, as the attempt and the delivery record it; None for a success."""
        return None if self.succeeded else (self.error or f"HTTP {self.status_code}")


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
    batch: int = _SENDERS,
    client: aiohttp.ClientSession | None = None,
    rng: random.Random | None = None,
    fan_out: bool = False,
    stop: asyncio.Event | None = None,
    woken: asyncio.Event | None = None,
    look_every: float = LOOK_EVERY_SECONDS,
) -> int:
    """Send the deliveries that are due, and a probe to each failing endpoint whose turn it is, at most
    `batch` at once (_PER_ENDPOINT to one endpoint, a quarter of `batch` kept for healthy endpoints with none
    out); returns the attempts made. Each outcome is recorded as its send finishes, and the room it frees is
    leased again at once; while sends are out, the run also looks for new work every `look_every` seconds or
    when `woken` is set (fanning new events out first, with `fan_out`).
    The run ends once nothing is out and nothing is due; with `stop`, it leases nothing more once that is set
    (else after _LEASED_PER_RUN deliveries) and ends when its sends are done. Its leases are renewed while
    their sends are out."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    own_client = client is None
    http = client or webhook_client(units.settings)
    token = new_id()
    loop = asyncio.get_running_loop()
    sending: dict[asyncio.Task[Outcome], Outgoing] = {}
    attempted = leased = 0
    next_fan_out = loop.time()
    try:
        async with _renewing_leases(units, token) as out:
            while True:
                leasing = not stop.is_set() if stop is not None else leased < _LEASED_PER_RUN
                wake = woken if fan_out and leasing else None
                if leasing:
                    if (wake is not None and wake.is_set()) or (fan_out and loop.time() >= next_fan_out):
                        if wake is not None:
                            wake.clear()
                        next_fan_out = loop.time() + look_every
                        await dispatch_events(units)
                    for item in await _lease(units, token, sending.values(), batch=batch):
                        sending[asyncio.create_task(_send_one(units, http, item))] = item
                        out.add(item.delivery_id)
                        leased += 1
                if not sending:
                    break
                finished = await _first_finished(sending, wake, stop if leasing else None, seconds=look_every)
                if finished:
                    await _settle_batch(units, token, finished, rng)
                    out.difference_update(item.delivery_id for item, _ in finished)
                    attempted += len(finished)
        return attempted
    finally:
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        if own_client:
            await http.close()


async def _first_finished(
    sending: dict[asyncio.Task[Outcome], Outgoing],
    woken: asyncio.Event | None,
    stop: asyncio.Event | None,
    *,
    seconds: float,
) -> list[tuple[Outgoing, Outcome]]:
    """Wait until a send finishes, `woken` or `stop` is set, or `seconds` pass; the sends that finished
    (taken out of `sending`), with their outcomes."""
    signals = [asyncio.ensure_future(event.wait()) for event in (woken, stop) if event is not None]
    try:
        await asyncio.wait([*sending, *signals], timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signal in signals:
            signal.cancel()
        await asyncio.gather(*signals, return_exceptions=True)
    done = [task for task in sending if task.done()]
    return [(sending.pop(task), task.result()) for task in done]


def webhook_client(settings: Settings) -> aiohttp.ClientSession:
    """The sender's client: connections go only to addresses that pass the target check (pinned, so a name
    cannot answer the check with one address and the connection with another), kept alive between sends."""
    return webhook_session(
        timeout=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private_targets,
        connections=_SENDERS,
    )


async def _lease(
    units: UnitsOfWork, token: uuid.UUID, sending: Collection[Outgoing], *, batch: int
) -> list[Outgoing]:
    """Deliveries to send besides those the run is `sending` (which it does not lease again), up to `batch`
    out in all, with at most _PER_ENDPOINT of one endpoint's out at once, and the last quarter of `batch` only
    for healthy endpoints with none out: receivers that hang cannot take the room of others. Probes take room
    as sends do, and never that last quarter: a failing endpoint is one whose receiver does not answer, the
    very kind the quarter is kept from, and many of them would otherwise take a whole worker."""
    room = batch - len(sending)
    if room <= 0:
        return []
    kept = batch // _KEPT_FOR_IDLE
    busy = Counter(item.endpoint_id for item in sending)
    async with units.begin() as uow:
        now = uow.clock.now()
        repo = DeliveryRepository(uow.session)
        out = [item.delivery_id for item in sending]
        # A probe's endpoint waits for its outcome at most as long as the send can take, so one whose worker
        # died is probed again soon after.
        probe_out = timedelta(seconds=units.settings.webhook_timeout_seconds) + LEASE
        probes = await repo.lease_probes(
            now,
            until=now + probe_out,
            token=token,
            limit=room - kept,
            full=[endpoint for endpoint, n in busy.items() if n >= _PER_ENDPOINT],
            besides=out,
        )
        leased = await repo.lease_due(
            now,
            until=now + LEASE,
            token=token,
            limit=room - len(probes),
            per_endpoint=_PER_ENDPOINT,
            kept=kept,
            busy=busy,
            besides=out,
        )
        return await repo.list_outgoing(probes + leased, now, probes=set(probes)) if probes or leased else []


@asynccontextmanager
async def _renewing_leases(units: UnitsOfWork, token: uuid.UUID) -> AsyncIterator[set[uuid.UUID]]:
    """Renew, every HEARTBEAT, the leases of the deliveries the block puts in the set it is given (those
    being sent), for as long as the block runs."""
    out: set[uuid.UUID] = set()

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT.total_seconds())
            if not out:
                continue
            try:
                async with units.begin() as uow:
                    until = uow.clock.now() + LEASE
                    await DeliveryRepository(uow.session).renew_leases(list(out), token=token, until=until)
            except Exception as exc:
                # The next beat tries again; a lease that runs out meanwhile is sent again (at least once).
                _log_failure("webhook leases not renewed", exc, deliveries=len(out))

    heart = asyncio.create_task(beat(), name="webhook-lease-heartbeat")
    try:
        yield out
    finally:
        heart.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heart


async def _send_one(units: UnitsOfWork, http: aiohttp.ClientSession, item: Outgoing) -> Outcome:
    """One delivery: whatever goes wrong with it stays with it, and the other sends go on."""
    try:
        return await _attempt(units, http, item)
    except Exception as exc:
        logger.exception("webhook send failed", extra={"delivery_id": str(item.delivery_id)})
        return Outcome(None, f"internal error: {type(exc).__name__}", None, 0)


def _secrets(units: UnitsOfWork, item: Outgoing, now: datetime) -> list[str]:
    secrets = [units.vault.decrypt(item.secret_encrypted)]
    if item.previous_secret_encrypted is not None and (
        item.previous_secret_until is not None and item.previous_secret_until > now
    ):
        secrets.append(units.vault.decrypt(item.previous_secret_encrypted))
    return secrets


async def _attempt(units: UnitsOfWork, http: aiohttp.ClientSession, item: Outgoing) -> Outcome:
    started = time.monotonic()

    def done(
        status_code: int | None,
        error: str | None,
        body: str | None = None,
        hopeless: bool = False,
        retry_after: timedelta | None = None,
    ) -> Outcome:
        took = int((time.monotonic() - started) * 1000)
        return Outcome(status_code, error, body, took, hopeless, retry_after)

    body = message_body(item)
    if len(body) > units.settings.webhook_max_payload_bytes:
        return done(None, f"payload of {len(body)} bytes is over the limit", hopeless=True)
    allow_private = units.settings.webhook_allow_private_targets
    try:
        # Its shape, and an IP literal; a name's addresses are checked as a connection to it opens.
        await refuse_before_connecting(item.url, allow_private=allow_private)
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
    # The receiver's status, once it came, decides the outcome (Standard Webhooks: any 2xx is a success); its
    # body is only kept for the record, as far as it could be read in the time left.
    answered: tuple[int, str | None, str | None] | None = None  # the status, the body's charset, Retry-After
    start = bytearray()
    failure: str | None = None  # what kept the status from coming
    try:
        # The session's timeout bounds the whole exchange too; this one also covers a slow TLS handshake.
        async with asyncio.timeout(timeout):
            async with http.post(item.url, data=body, headers=headers, allow_redirects=False) as response:
                answered = (response.status, response.charset, response.headers.get("Retry-After"))
                await _read_start_of_body(response, start)
    except TimeoutError:
        failure = f"timed out after {timeout:g} s"
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, TargetRefused):
            failure = f"TargetRefused: {exc.os_error}"
        else:
            failure = f"{type(exc).__name__}: {exc}"[:500]
    except (aiohttp.ClientError, ValueError) as exc:  # ValueError: a URL aiohttp cannot take apart
        failure = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    if answered is None:
        return done(None, failure)
    status, charset, retry_after = answered
    return done(status, None, _start_of_body(start, charset), retry_after=_asked_to_wait(status, retry_after))


def _asked_to_wait(status: int, retry_after: str | None) -> timedelta | None:
    """How long a receiver's 429 or 503 asks us to wait, in seconds or as a date (RFC 9110 §10.2.3), up to
    RETRY_AFTER_CAP; None when it does not say, or says it in no form the RFC knows."""
    if retry_after is None or status not in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
        return None
    value = retry_after.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value) if len(value) <= 9 else RETRY_AFTER_CAP.total_seconds()
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # `-0000`: a date in no zone, taken as GMT
            when = when.replace(tzinfo=UTC)
        # A date on the receiver's wall clock: a transport fact, like our signature's timestamp.
        seconds = when.timestamp() - time.time()
    return min(RETRY_AFTER_CAP, timedelta(seconds=max(0.0, seconds)))


async def _read_start_of_body(response: aiohttp.ClientResponse, start: bytearray) -> None:
    """Read into `start` as much of the body as RESPONSE_KEPT characters may need, no more; what came before
    an error stays there."""
    while len(start) < _RESPONSE_READ:
        chunk = await response.content.read(_RESPONSE_READ - len(start))
        if not chunk:
            break
        start += chunk


def _start_of_body(start: bytearray, charset: str | None) -> str:
    """The first RESPONSE_KEPT characters of the body read, without NUL (PostgreSQL text cannot hold it)."""
    try:
        text = bytes(start).decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = bytes(start).decode("utf-8", errors="replace")
    return text[:RESPONSE_KEPT].replace("\x00", "\ufffd")


async def _settle_batch(
    units: UnitsOfWork, token: uuid.UUID, sent: list[tuple[Outgoing, Outcome]], rng: random.Random
) -> None:
    # The worker waits for another process's hold on SQLite's write lock a second at most (for_jobs), so
    # that requests get the writer turn: the record is tried again, the turn given back between tries, for
    # as long as half a lease, rather than dropped and every send in it made again.
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + LEASE.total_seconds() / 2
    while True:
        try:
            async with units.begin() as uow:
                await _settle(uow, token, sent, rng)
            return
        except Exception as exc:
            if database_busy(exc) and loop.time() < give_up_at:
                await asyncio.sleep(_BUSY_PAUSE)
                continue
            # Their leases run out and they are sent again: at least once.
            _log_failure("webhook attempts not recorded", exc, deliveries=len(sent))
            return


def _log_failure(message: str, exc: Exception, *, deliveries: int) -> None:
    """A bug with its stack trace; the database out of reach (a restart, a failover: the worker's loop says
    so too) as a warning naming the error's class only, since the driver's message may name the host."""
    if database_out_of_reach(exc):
        logger.warning(message, extra={"deliveries": deliveries, "error": type(exc).__name__})
    else:
        logger.exception(message, extra={"deliveries": deliveries})


async def _settle(
    uow: UnitOfWork, token: uuid.UUID, sent: list[tuple[Outgoing, Outcome]], rng: random.Random
) -> None:
    """Record a batch's attempts and, for each delivery this run still holds the lease of, what becomes of
    it. A lease that ran out and was taken over (or reset by a retry) belongs to another send: this late
    outcome is kept as an attempt but decides nothing. A delivery deleted meanwhile (its endpoint was
    deleted) leaves nothing to record. Endpoints first, in id order, so two workers settling batches for one
    endpoint never wait on each other in a circle."""
    now = uow.clock.now()
    repo = DeliveryRepository(uow.session)
    answered = {item.endpoint_id for item, outcome in sent if outcome.succeeded}
    # A delivery sent early by its endpoint's recovery that fails does not make the endpoint failing again:
    # the endpoint answered the sends before it, and that one delivery (its receiver refusing it) keeps its
    # back-off. A probe's failure always counts: its endpoint is failing already. So does a receiver asking
    # us to wait (a 429 or 503 with Retry-After): that is about the endpoint, not one delivery.
    failed = {
        item.endpoint_id
        for item, outcome in sent
        if not outcome.succeeded
        and not outcome.hopeless
        and (item.due or item.probe or not item.released or outcome.retry_after is not None)
    }
    asked: dict[uuid.UUID, timedelta] = {}
    for item, outcome in sent:
        if outcome.retry_after is not None:
            asked[item.endpoint_id] = max(
                outcome.retry_after, asked.get(item.endpoint_id, outcome.retry_after)
            )
    # 410 Gone: the receiver has removed the URL for good (Standard Webhooks: stop sending to it), whatever
    # else it answered in the batch.
    gone = {item.endpoint_id for item, outcome in sent if outcome.status_code == HTTPStatus.GONE}
    # A receiver's answer to a send out beside the one it asked to wait on (in this batch, or in an earlier
    # one while the wait runs) was taken in before it asked: it does not end the wait (see recover_endpoint).
    probed = {item.endpoint_id for item, outcome in sent if outcome.succeeded and item.probe}
    for endpoint_id in sorted(answered | failed | gone):
        if endpoint_id in gone:
            await _endpoint_failed(uow, endpoint_id, now, gone=True)
        elif endpoint_id in answered and endpoint_id not in asked:
            await repo.recover_endpoint(endpoint_id, now, probed=endpoint_id in probed)
        else:
            await _endpoint_failed(uow, endpoint_id, now, asked=asked.get(endpoint_id))

    held: list[uuid.UUID] = []
    settled = {"succeeded": 0, "failed": 0}
    by_code: dict[int | None, list[uuid.UUID]] = {}
    for item, outcome in sent:
        if outcome.succeeded:
            by_code.setdefault(outcome.status_code, []).append(item.delivery_id)
    for code, ids in by_code.items():
        owned = await repo.finish_deliveries(
            ids, token=token, status="succeeded", at=now, next_attempt_at=now, status_code=code, error=None
        )
        held += owned
        settled["succeeded"] += len(owned)
    for item, outcome in sent:
        error = outcome.failure
        if error is None:
            continue
        if not item.due and not outcome.hopeless:
            # A probe, or a release, ahead of the delivery's own schedule: the schedule stands.
            if await repo.release_probe(
                item.delivery_id, token=token, at=now, status_code=outcome.status_code, error=error
            ):
                held.append(item.delivery_id)
            continue
        delay = None if outcome.hopeless else retry_delay(item.attempts + 1, rng)
        if delay is not None and outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        status, next_at = ("failed", now) if delay is None else ("pending", now + delay)
        owned = await repo.finish_deliveries(
            [item.delivery_id],
            token=token,
            status=status,
            at=now,
            next_attempt_at=next_at,
            status_code=outcome.status_code,
            error=error,
        )
        held += owned
        if owned and status == "failed":
            settled["failed"] += 1
    owned_now = set(held)
    others = [item.delivery_id for item, _ in sent if item.delivery_id not in owned_now]
    recorded = owned_now | await repo.lock_existing(others)
    # A receiver may echo what it was sent: its answer about a member erased while it was out is not kept.
    with_answers = [item.delivery_id for item, outcome in sent if outcome.response_body is not None]
    forgotten = await repo.of_erased_members(with_answers)
    await repo.insert_attempts(
        [
            {
                "delivery_id": item.delivery_id,
                "attempted_at": now,
                "status_code": outcome.status_code,
                "error": outcome.failure,
                "duration_ms": outcome.duration_ms,
                "response_body": None if item.delivery_id in forgotten else outcome.response_body,
            }
            for item, outcome in sent
            if item.delivery_id in recorded
        ]
    )
    shard = rng.randrange(_COUNT_SHARDS)
    for outcome_name, count in settled.items():  # always in this order: no two settles wait in a circle
        if count:
            await repo.count_settled(outcome_name, count, shard=shard)


async def _endpoint_failed(
    uow: UnitOfWork,
    endpoint_id: uuid.UUID,
    now: datetime,
    *,
    gone: bool = False,
    asked: timedelta | None = None,
) -> None:
    """Remember since when an endpoint fails every attempt and when to probe it next, no sooner than its
    receiver `asked`; past the setting's limit, or at once when its receiver answered 410 Gone (`gone`),
    disable it. Only time it was tried in counts: a stretch nobody tried it (the worker was stopped, or none
    of its deliveries was left to probe with) moves `failing_since` on by as much, so that one failure before
    an outage of ours and one after it do not disable a receiver that may have been well all along."""
    repo = DeliveryRepository(uow.session)
    endpoint = await repo.lock_endpoint(endpoint_id)
    if endpoint is None:
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    elif endpoint.failing_seen_until is not None and now > endpoint.failing_seen_until:
        endpoint.failing_since = min(now, endpoint.failing_since + (now - endpoint.failing_seen_until))
    if asked is not None and (endpoint.retry_after_until is None or now + asked > endpoint.retry_after_until):
        endpoint.retry_after_until = now + asked
    # The wait its receiver asked for, now or earlier and still running (an operator's early probe failed).
    asked_wait = endpoint.retry_after_until - now if endpoint.retry_after_until is not None else timedelta(0)
    wait = max(probe_interval(now - endpoint.failing_since), asked_wait)
    endpoint.next_probe_at = now + wait
    # The next probe goes then, or a delivery's own retry sooner; a worker's turns and a probe's lease make
    # it a little later: SEEN_SLACK of that is still time the endpoint was tried in.
    seen_until = now + wait + SEEN_SLACK
    if endpoint.failing_seen_until is None or seen_until > endpoint.failing_seen_until:
        endpoint.failing_seen_until = seen_until
    if endpoint.enabled and (
        gone or now - endpoint.failing_since >= timedelta(hours=uow.settings.webhook_disable_after_hours)
    ):
        endpoint.enabled = False
        endpoint.disabled_reason = (
            "answered 410 Gone: its receiver has removed this URL"
            if gone
            else "failed every attempt since " + format_instant(endpoint.failing_since)
        )
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
            by_status={"pending": await repo.count_pending(), **await repo.settled_counts()},
            retrying=await repo.count_retrying(),
            oldest_pending_since=await repo.oldest_pending_since(),
        )
