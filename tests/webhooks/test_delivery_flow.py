"""Events reach a real receiver on loopback, signed per Standard Webhooks (checked with the
`standardwebhooks` library), retried with back-off, in order per member, once per endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, select, text, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from loyalty_api.clock import FrozenClock, format_instant
from loyalty_api.db.engine import Database, create_engine
from loyalty_api.db.outage import database_out_of_reach
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.settings import Settings
from loyalty_api.webhooks import delivery
from loyalty_api.webhooks.delivery import LEASE, dispatch_events, send_due
from loyalty_api.webhooks.delivery_repository import DISPATCH_LOCK, DeliveryRepository
from loyalty_api.webhooks.models import WebhookDelivery, WebhookEndpoint
from loyalty_api.webhooks.secrets import new_secret
from loyalty_api.worker.runner import Worker
from tests.builders import enrol
from tests.conftest import bearer
from tests.databases import is_postgres, lock_waiters, side_engine, until_waiting_for_a_lock
from tests.inspect_db import events, rows
from tests.points.helpers import cny, earn, set_program
from tests.relay import Relay
from tests.subscriptions.helpers import (
    add_plan,
    at,
    next_payment_ref,
    pay,
    post_action,
    read,
    run_job,
    subscribe_paid,
)
from tests.webhooks.endpoint_helpers import add_endpoint
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


def with_settings(units: UnitsOfWork, **changes: Any) -> UnitsOfWork:
    """Units of work on the same database, clock, vault and cache, with some settings changed."""
    changed = UnitsOfWork(units.database, units.clock, units.vault, units.settings.model_copy(update=changes))
    changed.cache = units.cache
    return changed


@pytest.fixture
def units(app: FastAPI) -> UnitsOfWork:
    """The app's units of work, with loopback targets allowed (the receiver runs on 127.0.0.1)."""
    return with_settings(app.state.units, webhook_allow_private_targets=True)


async def pump(units: UnitsOfWork) -> int:
    """What the worker does each tick: fan out new events, then send what is due."""
    await dispatch_events(units)
    return await send_due(units, rng=random.Random(7))


async def arrivals(units: UnitsOfWork, receiver: Receiver) -> list[dict[str, Any]]:
    """Every event the worker sends the receiver, in the order they arrived (pumped until nothing more goes
    out: one member's events go one at a time)."""
    for _ in range(10):  # bounded: the clock is frozen, so a failed send is not tried again here
        if not await pump(units):
            break
    return [json.loads(m.body) for m in receiver.received]


def verified(secret: str, message: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(message.body, message.headers)
    return payload


@pytest.fixture(autouse=True)
def _wall_time(clock: FrozenClock) -> None:
    # Receivers check the signature's timestamp against their clock: start the frozen clock at real time.
    clock.set(datetime.now(UTC).replace(microsecond=0))  # noqa: TID251 - a test lining up with the receiver


@pytest.fixture
async def member(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> str:
    await set_program(client, admin_key)
    return str((await enrol(client, pos_key))["id"])


@pytest.fixture
async def earned_event(
    units: UnitsOfWork, receiver: Receiver, client: httpx.AsyncClient, pos_key: str, member: str
) -> None:
    """An endpoint at the receiver for "points.earned", and one such event for `member` in the outbox, not
    yet fanned out."""
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)


async def test_an_event_arrives_signed_and_verifies(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver, client: httpx.AsyncClient, pos_key: str, member: str
) -> None:
    _, secret = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 12_990)
    assert await pump(units) == 1

    [message] = receiver.received
    body = verified(secret, message)
    [event] = await events(app, "points.earned")
    assert uuid.UUID(message.headers["webhook-id"]) == uuid.UUID(str(event["id"]))
    assert body["type"] == "points.earned"
    assert body["data"]["member_id"] == member and body["data"]["points"] == 129
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(message.body, message.headers)  # another secret does not verify
    [delivery] = await rows(app, "SELECT status, attempts, last_status_code FROM webhook_deliveries")
    assert delivery == {"status": "succeeded", "attempts": 1, "last_status_code": 204}
    assert await pump(units) == 0  # nothing sent twice


async def test_a_receiver_that_is_down_gets_the_event_once_it_is_up(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    _, secret = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)
    receiver.fail_next(503, 500)
    assert await pump(units) == 1
    [pending] = await rows(app, "SELECT status, attempts, next_attempt_at FROM webhook_deliveries")
    assert (pending["status"], pending["attempts"]) == ("pending", 1)
    assert await pump(units) == 0  # not due before its back-off

    clock.advance(timedelta(seconds=6))  # 5 s ± 10 %
    assert await pump(units) == 1
    assert await pump(units) == 0
    clock.advance(timedelta(minutes=6))  # 5 min ± 10 %
    assert await pump(units) == 1

    assert len(receiver.received) == 3
    assert len({m.headers["webhook-id"] for m in receiver.received}) == 1  # the same message each time
    verified(secret, receiver.received[-1])
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery == {"status": "succeeded", "attempts": 3}
    attempts = await rows(app, "SELECT status_code, error FROM webhook_attempts ORDER BY id")
    assert [a["status_code"] for a in attempts] == [503, 500, 204]
    assert attempts[0]["error"] == "HTTP 503"


async def test_a_worker_that_died_mid_send_leaves_nothing_lost(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    await add_endpoint(units, receiver.url)
    await earn(client, pos_key, member, 10_000)
    await dispatch_events(units)
    async with units.begin() as uow:  # a worker leases the deliveries, then dies before sending
        now = uow.clock.now()
        leased = await DeliveryRepository(uow.session).lease_due(
            now, until=now + LEASE, token=uuid.uuid4(), limit=100, per_endpoint=100, busy={}
        )
    assert leased
    assert await send_due(units) == 0  # another worker leaves them alone while the lease runs
    clock.advance(LEASE + timedelta(seconds=1))
    # Those it held, and behind them the member's later events, in one run.
    everything = len(await rows(app, "SELECT id FROM webhook_deliveries"))
    assert everything > len(leased)
    assert await send_due(units) == everything
    assert len(receiver.received) == everything


async def test_one_members_events_arrive_in_order_while_others_flow(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    other = str((await enrol(client, pos_key))["id"])
    await add_endpoint(units, receiver.url, event_types=["points.earned", "points.redeemed"])
    await earn(client, pos_key, member, 10_000, order_ref="FIRST")
    redeem = await client.post(
        f"/v1/members/{member}/redeem", json={"points": 50, "order_ref": "SECOND"}, headers=bearer(pos_key)
    )
    assert redeem.status_code == 200
    await earn(client, pos_key, other, 10_000, order_ref="OTHER")
    receiver.fail_next(503)  # the first member's first event fails once

    await pump(units)
    kinds = [(json.loads(m.body)["data"]["member_id"], json.loads(m.body)["type"]) for m in receiver.received]
    assert (member, "points.redeemed") not in kinds  # waits behind the earn that is retrying
    assert (other, "points.earned") in kinds  # another member is not held up

    clock.advance(timedelta(seconds=6))
    await pump(units)
    await pump(units)
    mine = [
        json.loads(m.body)["type"]
        for m in receiver.received
        if json.loads(m.body)["data"]["member_id"] == member
    ]
    assert mine == [
        "points.earned",
        "points.earned",
        "points.redeemed",
    ]  # the failed try, its retry, then the next


async def test_a_paid_subscription_is_announced_before_the_coupon_its_plan_gives(
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    ecommerce_key: str,
    member: str,
) -> None:
    await add_endpoint(units, receiver.url, event_types=["subscription.created", "coupon.issued"])
    welcome = {"name": "Welcome", "coupon": {"kind": "fixed_discount", "amount": 500}, "valid_days": 30}
    plan = await add_plan(client, admin_key, "plus", price=1_500, unit="month", coupons=[welcome])
    subscription = await subscribe_paid(client, ecommerce_key, member, "plus")

    arrived = await arrivals(units, receiver)
    # A receiver first hears of the subscription, then of the coupon it gave: not of a coupon from a
    # subscription it does not know yet.
    assert [(a["type"], a["data"]["member_id"]) for a in arrived] == [
        ("subscription.created", member),
        ("coupon.issued", member),
    ]
    assert arrived[0]["data"]["subscription_id"] == subscription["id"]
    assert (arrived[1]["data"]["source_type"], arrived[1]["data"]["source_id"]) == ("plan", plan["id"])


async def test_a_renewal_is_announced_before_the_coupon_its_new_period_gives(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    ecommerce_key: str,
    billing_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    await add_endpoint(units, receiver.url, event_types=["subscription.renewed", "coupon.issued"])
    welcome = {"name": "Welcome", "coupon": {"kind": "fixed_discount", "amount": 500}, "valid_days": 30}
    await add_plan(client, admin_key, "plus", price=1_500, unit="month", coupons=[welcome])
    subscription = await subscribe_paid(client, ecommerce_key, member, "plus")
    first_coupon = await arrivals(units, receiver)
    assert [a["type"] for a in first_coupon] == ["coupon.issued"]
    receiver.received.clear()
    await pay(client, billing_key, subscription["id"], period=2, amount=1_500)
    clock.set(at(subscription["period_end"]))

    await run_job(app)  # the paid period 2 begins
    arrived = await arrivals(units, receiver)
    renewed = await read(client, ecommerce_key, subscription["id"])
    # The receiver hears the subscription renewed, for the new period, and then of the coupon that period
    # gave: not of a coupon for a period it has not heard of yet.
    assert [a["type"] for a in arrived] == ["subscription.renewed", "coupon.issued"]
    assert (arrived[0]["data"]["period"], arrived[0]["data"]["period_end"]) == (2, renewed["period_end"])
    assert arrived[0]["data"]["price"] == cny(1_500)
    assert arrived[1]["data"]["valid_from"] == renewed["period_start"] == subscription["period_end"]


async def test_an_expiry_says_when_the_subscription_ended_not_when_the_job_came(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    ecommerce_key: str,
    billing_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    """A receiver told a subscription expired learns when it ended (`ended_at`, as the subscription shows
    it): for one whose grace ran out, the end of the grace, however late the worker came; for one canceled
    now, that moment."""
    _, secret = await add_endpoint(units, receiver.url, event_types=["subscription.expired"])
    await add_plan(client, admin_key, "plus", price=1_500, unit="month", grace_days=3)
    lapsing = await subscribe_paid(client, ecommerce_key, member, "plus")
    await pay(client, billing_key, lapsing["id"], period=2, amount=1_500, status="failed")
    clock.set(at(lapsing["period_end"]))
    await run_job(app)  # past due: grace until three days on
    grace_until = at((await read(client, ecommerce_key, lapsing["id"]))["grace_until"])
    clock.set(grace_until + timedelta(hours=7))  # the worker was down when grace ran out
    await run_job(app)
    [unpaid] = await arrivals(units, receiver)
    ended = await read(client, ecommerce_key, lapsing["id"])
    assert (unpaid["data"]["reason"], ended["state"]) == ("unpaid", "expired")
    assert unpaid["data"]["ended_at"] == ended["ended_at"] == format_instant(grace_until)
    verified(secret, receiver.received[-1])

    other = str((await enrol(client, ecommerce_key))["id"])
    canceling = await subscribe_paid(client, ecommerce_key, other, "plus")
    clock.advance(timedelta(days=2))
    canceled = await post_action(client, ecommerce_key, canceling["id"], "cancel", {"at_period_end": False})
    assert canceled.status_code == 200, canceled.text
    [_, now] = await arrivals(units, receiver)
    assert (now["data"]["reason"], now["data"]["subscription_id"]) == ("canceled", canceling["id"])
    assert now["data"]["ended_at"] == canceled.json()["ended_at"] == format_instant(clock.now())


async def test_an_upgrade_is_announced_before_the_coupon_its_new_plan_gives(
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    ecommerce_key: str,
    member: str,
) -> None:
    await add_endpoint(units, receiver.url, event_types=["subscription.plan_changed", "coupon.issued"])
    await add_plan(client, admin_key, "plus", price=1_500, unit="month", family="plus")
    welcome = {"name": "Upgrade gift", "coupon": {"kind": "fixed_discount", "amount": 900}, "valid_days": 30}
    premium = await add_plan(
        client, admin_key, "premium", price=3_000, unit="month", family="plus", coupons=[welcome]
    )
    subscription = await subscribe_paid(client, ecommerce_key, member, "plus")

    changed = await post_action(
        client,
        ecommerce_key,
        subscription["id"],
        "change-plan",
        {"plan": "premium", "payment_ref": next_payment_ref()},
    )
    assert changed.status_code == 200, changed.text
    upgraded = changed.json()
    arrived = await arrivals(units, receiver)
    # The receiver hears of the upgrade, with the new period it began, and then of the coupon the new plan
    # gave with it.
    assert [a["type"] for a in arrived] == ["subscription.plan_changed", "coupon.issued"]
    assert (arrived[0]["data"]["plan"], arrived[0]["data"]["to_plan"]) == ("premium", "premium")
    assert (arrived[0]["data"]["period"], arrived[0]["data"]["period_end"]) == (2, upgraded["period_end"])
    assert (arrived[1]["data"]["source_type"], arrived[1]["data"]["source_id"]) == ("plan", premium["id"])


async def test_two_workers_deliver_each_event_once(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver, client: httpx.AsyncClient, pos_key: str, member: str
) -> None:
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    members = [member] + [str((await enrol(client, pos_key))["id"]) for _ in range(9)]
    for n, someone in enumerate(members * 3):
        await earn(client, pos_key, someone, 1_000, order_ref=f"W-{n}")
    await dispatch_events(units)
    while sum(await asyncio.gather(send_due(units, batch=4), send_due(units, batch=4))):
        pass
    ids = [m.headers["webhook-id"] for m in receiver.received]
    assert len(ids) == 30
    assert len(set(ids)) == 30


async def test_an_endpoint_failing_for_too_long_is_disabled(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    endpoint_id, _ = await add_endpoint(units, receiver.url)
    await earn(client, pos_key, member, 10_000)
    # Tried, and failing, all along: the receiver asks each time to be tried again in a day (Retry-After),
    # so a try a day is every try it was to be given.
    receiver.fail_next(*[503] * 20)
    receiver.extra_headers.append((b"retry-after", b"86400"))
    hours = units.settings.webhook_disable_after_hours
    await pump(units)
    failed = timedelta(0)
    while failed < timedelta(hours=hours):
        clock.advance(timedelta(days=1))
        failed += timedelta(days=1)
        [endpoint] = await rows(app, "SELECT enabled FROM webhook_endpoints")
        assert endpoint["enabled"], failed
        assert await pump(units) == 1  # fails again; past the limit at last
    [endpoint] = await rows(app, "SELECT enabled, disabled_reason FROM webhook_endpoints")
    assert not endpoint["enabled"] and endpoint["disabled_reason"].startswith("failed every attempt")
    [disabled] = await events(app, "webhook_endpoint.disabled")
    assert disabled["payload"]["endpoint_id"] == endpoint_id
    sent = len(receiver.received)
    clock.advance(timedelta(days=2))
    await pump(units)
    assert len(receiver.received) == sent  # nothing goes to a disabled endpoint


async def test_time_nobody_tried_a_failing_endpoint_does_not_count_towards_disabling_it(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    """The receiver fails once just before our worker stops, and once more at the first try when the worker
    is back six days later (the catch-up's first send times out, say): two failures a few days apart, with
    nobody trying in between, are not an endpoint that failed every attempt for 120 hours."""
    endpoint_id, secret = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)
    receiver.fail_next(500, 503)
    assert await pump(units) == 1  # fails: the endpoint is failing
    clock.advance(timedelta(hours=units.settings.webhook_disable_after_hours + 24))  # the worker is down
    assert await pump(units) == 1  # the first try after it fails too

    read = await client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=bearer(admin_key))
    assert (read.json()["enabled"], read.json()["disabled_reason"]) == (True, None)
    assert await events(app, "webhook_endpoint.disabled") == []
    clock.advance(timedelta(minutes=5))
    assert await pump(units) == 1  # the next probe: the receiver answers, and gets the event
    assert verified(secret, receiver.received[-1])["type"] == "points.earned"
    [delivered] = await rows(app, "SELECT status FROM webhook_deliveries")
    assert delivered == {"status": "succeeded"}


async def test_an_endpoint_answering_410_gone_is_disabled_at_once(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    # 410 Gone: the receiver has removed this URL for good (Standard Webhooks: stop sending). It was retried
    # like any failure, for the 120 h until the endpoint was disabled.
    endpoint_id, secret = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)
    receiver.fail_next(410)
    assert await pump(units) == 1
    verified(secret, receiver.received[0])  # a genuine, signed send is what the receiver turned away

    read = await client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=bearer(admin_key))
    endpoint = read.json()
    assert endpoint["enabled"] is False
    assert "410" in endpoint["disabled_reason"]
    [disabled] = await events(app, "webhook_endpoint.disabled")
    assert disabled["payload"]["endpoint_id"] == endpoint_id
    assert disabled["payload"]["reason"] == endpoint["disabled_reason"]
    [held] = await rows(app, "SELECT status, attempts, last_status_code FROM webhook_deliveries")
    assert held == {"status": "pending", "attempts": 1, "last_status_code": 410}  # kept for a re-enable
    await earn(client, pos_key, member, 10_000, order_ref="AFTER-GONE")
    clock.advance(timedelta(days=2))
    await pump(units)
    assert len(receiver.received) == 1  # nothing more goes to it, neither the retry nor a new event

    # Enabled again by an operator (the receiver is back there): what waited goes out, as after any disabling.
    enabled = await client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", json={"enabled": True}, headers=bearer(admin_key)
    )
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["disabled_reason"] is None
    assert await pump(units) == 1
    assert verified(secret, receiver.received[-1])["type"] == "points.earned"
    [delivered] = await rows(app, "SELECT status FROM webhook_deliveries")
    assert delivered == {"status": "succeeded"}


async def test_during_a_rotation_both_secrets_verify(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    old, new = new_secret(), new_secret()
    endpoint_id, _ = await add_endpoint(units, receiver.url, secret=new)
    async with units.begin() as uow:
        endpoint = await DeliveryRepository(uow.session).lock_endpoint(uuid.UUID(endpoint_id))
        assert endpoint is not None
        endpoint.previous_secret_encrypted = uow.vault.encrypt(old)
        endpoint.previous_secret_until = uow.clock.now() + timedelta(hours=1)
    await earn(client, pos_key, member, 10_000, order_ref="ROT-1")
    await pump(units)
    verified(old, receiver.received[-1])
    verified(new, receiver.received[-1])

    clock.advance(timedelta(hours=2))  # the overlap is over
    await earn(client, pos_key, member, 10_000, order_ref="ROT-2")
    await pump(units)
    verified(new, receiver.received[-1])
    with pytest.raises(WebhookVerificationError):
        verified(old, receiver.received[-1])


@pytest.mark.skipif(not is_postgres(), reason="holds the endpoint's row from a second PostgreSQL connection")
async def test_two_rotations_at_once_leave_both_secrets_they_showed_signing(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    settings: Settings,
) -> None:
    """Two operators (or a client's retry without an Idempotency-Key) rotate one endpoint's secret at once:
    the second rotation keeps the first one's secret signing for its overlap, as one after the other does. A
    secret an operator was shown must never be one that signs nothing."""
    endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    path = f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret"
    engine = side_engine(settings)
    try:
        async with engine.connect() as gate, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            lock = text("SELECT 1 FROM webhook_endpoints WHERE id = :id FOR UPDATE")
            await gate.execute(lock, {"id": uuid.UUID(endpoint_id)})  # a change to the endpoint under way
            rotations = [
                asyncio.create_task(client.post(path, json={"overlap_hours": 24}, headers=bearer(admin_key)))
                for _ in range(2)
            ]
            for _ in range(500):  # until both wait for the endpoint's row
                if await lock_waiters(watcher) >= 2:
                    break
                await asyncio.sleep(0.01)
            await gate.rollback()
            answers = await asyncio.gather(*rotations)
    finally:
        await engine.dispose()
    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]
    shown = [answer.json()["secret"] for answer in answers]

    await earn(client, pos_key, member, 10_000)
    assert await pump(units) == 1
    [message] = receiver.received
    for secret in shown:
        verified(secret, message)


@pytest.mark.skipif(not is_postgres(), reason="holds the endpoint's row from a second PostgreSQL connection")
async def test_a_replay_under_way_as_the_types_are_narrowed_sends_only_the_types_kept(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    """An operator replays an endpoint while another narrows its event types: the replay must not queue the
    types the endpoint no longer takes once the narrowing has committed (read unlocked, it replayed them)."""
    since = format_instant(clock.now())
    update_member = await client.patch(
        f"/v1/members/{member}", json={"marketing_consent": True}, headers=bearer(admin_key)
    )
    assert update_member.status_code == 200
    await earn(client, pos_key, member, 10_000)
    endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["member.updated", "points.earned"])
    engine = side_engine(settings)
    try:
        async with engine.connect() as narrowing, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            await narrowing.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == uuid.UUID(endpoint_id))
                .values(event_types=["points.earned"])
            )
            replay = asyncio.ensure_future(
                client.post(
                    f"/v1/webhook-endpoints/{endpoint_id}/replay",
                    json={"since": since},
                    headers=bearer(admin_key),
                )
            )
            await until_waiting_for_a_lock(watcher, replay)
            await narrowing.commit()
            answer = await replay
    finally:
        await engine.dispose()
    assert answer.status_code == 200, answer.text
    queued = await rows(app, "SELECT event_type FROM webhook_deliveries")
    assert {row["event_type"] for row in queued} == {"points.earned"}


@pytest.mark.skipif(not is_postgres(), reason="holds a delivery's row from a second PostgreSQL connection")
async def test_events_made_while_a_replay_is_under_way_go_out_meanwhile(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    """An operator replays an endpoint, which takes a while for many events: meanwhile a till's event for
    another member is fanned out and delivered, to that endpoint too. The replay locked its endpoint's row
    in the mode that the fan-out's listing of endpoints waits for, so every worker's fan-out, and with it
    its sends, stood still until the replay ended (up to the request's 30 s)."""
    since = format_instant(clock.now())
    endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000, order_ref="BEFORE")
    assert await pump(units) == 1
    other = str((await enrol(client, pos_key))["id"])
    engine = side_engine(settings)
    try:
        async with engine.connect() as holder, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            # Holds the replay midway, its endpoint locked: as a long replay is, making deliveries due.
            await holder.execute(text("SELECT id FROM webhook_deliveries FOR UPDATE"))
            replay = asyncio.ensure_future(
                client.post(
                    f"/v1/webhook-endpoints/{endpoint_id}/replay",
                    json={"since": since},
                    headers=bearer(admin_key),
                )
            )
            await until_waiting_for_a_lock(watcher, replay)
            await earn(client, pos_key, other, 10_000, order_ref="MEANWHILE")
            sending = asyncio.ensure_future(pump(units))
            await asyncio.wait([sending], timeout=10)
            assert sending.done(), "the fan-out waits for the replay"
            await holder.rollback()
            answer = await replay
    finally:
        await engine.dispose()
    assert answer.status_code == 200, answer.text
    assert [json.loads(m.body)["data"]["order_ref"] for m in receiver.received] == ["BEFORE", "MEANWHILE"]


@pytest.mark.skipif(not is_postgres(), reason="holds a replay open from a second PostgreSQL connection")
async def test_a_replay_under_way_holds_up_no_members_order_at_the_other_endpoints(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    """An operator replays one endpoint since a moment ago, as a member's earn has just committed and is not
    fanned out yet: the replay makes that event a delivery of its endpoint, which holds the event's row until
    the replay commits. The fan-out passed over the row held (SKIP LOCKED) and fanned out the member's next
    earn, so the other endpoint got the second earn before the first; it must wait for the first, while
    another member's event goes out meanwhile."""
    since = format_instant(clock.now())
    other = str((await enrol(client, pos_key))["id"])
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    async with running_receiver() as replayed_receiver:
        replayed, _ = await add_endpoint(units, replayed_receiver.url, event_types=["points.earned"])
        await earn(client, pos_key, member, 10_000, order_ref="FIRST")
        engine = side_engine(settings)
        try:
            async with engine.connect() as holder, engine.connect() as watcher:
                await watcher.execution_options(isolation_level="AUTOCOMMIT")
                # Holds the replay at its end, its deliveries made: its audit entry waits for the table.
                await holder.execute(text("LOCK TABLE audit_events IN SHARE MODE"))
                replay = asyncio.ensure_future(
                    client.post(
                        f"/v1/webhook-endpoints/{replayed}/replay",
                        json={"since": since},
                        headers=bearer(admin_key),
                    )
                )
                await until_waiting_for_a_lock(watcher, replay)
                assert not replay.done()
                await earn(client, pos_key, member, 10_000, order_ref="SECOND")
                await earn(client, pos_key, other, 10_000, order_ref="OTHER")
                sending = asyncio.ensure_future(pump(units))
                await asyncio.wait([sending], timeout=10)
                assert sending.done(), "the fan-out waits for the replay"
                meanwhile = [json.loads(m.body)["data"]["order_ref"] for m in receiver.received]
                await holder.rollback()
                answer = await replay
        finally:
            await engine.dispose()
        assert answer.status_code == 200, answer.text
        assert meanwhile == ["OTHER"]
        everything = await arrivals(units, receiver)
        assert [body["data"]["order_ref"] for body in everything] == ["OTHER", "FIRST", "SECOND"]
        replayed_got = [json.loads(m.body)["data"]["order_ref"] for m in replayed_receiver.received]
        assert replayed_got == ["OTHER", "FIRST", "SECOND"]


@pytest.mark.skipif(not is_postgres(), reason="holds an erasure open from a second PostgreSQL connection")
async def test_an_erasure_under_way_keeps_the_members_events_in_order(
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    settings: Settings,
) -> None:
    """A member enrols, earns and is erased before the worker fanned their events out (a backlog): the
    erasure rewrites `member.enrolled` (its card number), holding its row until it commits. The fan-out
    passed over that row and sent the earn first; it must wait for the enrolment."""
    await set_program(client, admin_key)
    await add_endpoint(units, receiver.url, event_types=["member.enrolled", "points.earned", "member.erased"])
    erased = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, erased, 10_000)
    engine = side_engine(settings)
    try:
        async with engine.connect() as holder, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            # Holds the erasure at its end, the events rewritten: its audit entry waits for the table.
            await holder.execute(text("LOCK TABLE audit_events IN SHARE MODE"))
            erasure = asyncio.ensure_future(
                client.post(f"/v1/members/{erased}/erase", headers=bearer(admin_key))
            )
            await until_waiting_for_a_lock(watcher, erasure)
            assert not erasure.done()
            # A send out meanwhile records its outcome once the erasure is done (of_erased_members).
            sending = asyncio.ensure_future(pump(units))
            await asyncio.wait([sending], timeout=2)
            await holder.rollback()
            answer = await erasure
            await sending
    finally:
        await engine.dispose()
    assert answer.status_code == 200, answer.text
    got = [body["type"] for body in await arrivals(units, receiver)]
    assert got == ["member.enrolled", "points.earned", "member.erased"]


@pytest.mark.usefixtures("earned_event")
async def test_a_private_target_is_refused_at_send_time(
    app: FastAPI, receiver: Receiver, units: UnitsOfWork
) -> None:
    strict: UnitsOfWork = app.state.units  # the app's own settings refuse loopback targets
    await dispatch_events(strict)
    assert await send_due(strict) == 1
    assert receiver.received == []
    [attempt] = await rows(app, "SELECT status_code, error FROM webhook_attempts")
    assert attempt["status_code"] is None and attempt["error"]


@pytest.mark.usefixtures("earned_event")
async def test_after_the_last_back_off_the_delivery_is_given_up(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver, clock: FrozenClock
) -> None:
    receiver.fail_next(*[500] * 8)
    for _ in range(8):
        await pump(units)
        clock.advance(timedelta(hours=11))
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery == {"status": "failed", "attempts": 8}
    assert len(receiver.received) == 8


async def test_the_worker_delivers_on_its_own_and_metrics_show_the_queue(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    receiver.fail_next(500)  # the first try fails: a retry waits 5 s
    await earn(client, pos_key, member, 10_000, order_ref="WK-1")
    worker = Worker(units, tick_seconds=0.02)
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await running
    assert len(receiver.received) == 1
    metrics = (await client.get("/metrics")).text
    assert 'loyalty_webhook_deliveries{status="pending"} 1.0' in metrics
    assert "loyalty_webhook_deliveries_retrying 1.0" in metrics
    clock.advance(timedelta(minutes=1))
    later = (await client.get("/metrics")).text
    assert "loyalty_webhook_oldest_pending_seconds 60.0" in later


@pytest.mark.usefixtures("earned_event")
async def test_a_response_body_with_a_nul_byte_is_recorded(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver
) -> None:
    # PostgreSQL text cannot hold NUL: storing the receiver's body as it came failed the whole batch, and the
    # delivery was sent again at every lease, never recorded.
    receiver.answers.append(200)
    receiver.bodies.append(b"ok\x00done")
    assert await pump(units) == 1
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery == {"status": "succeeded", "attempts": 1}
    [attempt] = await rows(app, "SELECT status_code, response_body FROM webhook_attempts")
    assert attempt == {"status_code": 200, "response_body": "ok\ufffddone"}


async def test_an_endpoint_deleted_mid_send_does_not_break_the_batch(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
) -> None:
    doomed, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    kept, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)
    deleted: list[int] = []

    async def delete_doomed() -> None:  # at the first request of the two
        if not deleted:
            deleted.append(0)
            response = await client.delete(f"/v1/webhook-endpoints/{doomed}", headers=bearer(admin_key))
            deleted[0] = response.status_code

    receiver.on_request = delete_doomed
    await dispatch_events(units)
    assert await send_due(units, rng=random.Random(7)) == 2  # raised an IntegrityError for the whole batch
    assert deleted == [204]
    assert len(receiver.received) == 2
    [delivery] = await rows(app, "SELECT endpoint_id, status FROM webhook_deliveries")
    assert (str(uuid.UUID(str(delivery["endpoint_id"]))), delivery["status"]) == (kept, "succeeded")
    assert len(await rows(app, "SELECT id FROM webhook_attempts")) == 1


@pytest.mark.skipif(not is_postgres(), reason="SQLite's writers take turns: no deletion lands mid fan-out")
async def test_an_endpoint_deleted_while_events_fan_out_leaves_the_fan_out_whole(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver, client: httpx.AsyncClient, pos_key: str, member: str
) -> None:
    """The deletion waits for the fan-out that listed the endpoint and takes its new deliveries with it;
    before, the fan-out's insert failed on the endpoint gone, and the worker's whole run ended, cutting off
    the sends under way (they went out again: duplicates)."""
    doomed, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    kept, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)
    async with units.database.engine.connect() as operator, units.database.engine.connect() as watcher:
        await watcher.execution_options(isolation_level="AUTOCOMMIT")
        await operator.execute(text("DELETE FROM webhook_endpoints WHERE id = :e"), {"e": uuid.UUID(doomed)})
        fanning_out = asyncio.ensure_future(dispatch_events(units))
        await until_waiting_for_a_lock(watcher, fanning_out)  # the fan-out waits for the deletion
        await operator.commit()
    assert await fanning_out > 0  # the events, each to the endpoints that take it
    [delivery] = await rows(app, "SELECT endpoint_id FROM webhook_deliveries")
    assert str(uuid.UUID(str(delivery["endpoint_id"]))) == kept


@pytest.mark.skipif(not is_postgres(), reason="SQLite's writers take turns: a fan-out waits for any write")
async def test_a_worker_recording_an_endpoints_failure_holds_up_no_fan_out(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
) -> None:
    """Recording a failure locks the endpoint until the batch of outcomes commits. It locked it FOR UPDATE,
    which the fan-out's FOR KEY SHARE (its list of endpoints, its deliveries' foreign key) waits for: every
    worker's fan-out of every event stood still behind it, and with two failing endpoints listed out of id
    order, the two could deadlock."""
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)
    await dispatch_events(units)
    other = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, other, 10_000, order_ref="OTHER")  # an event to fan out meanwhile
    receiver.fail_next(503)
    side = side_engine(units.settings)
    try:
        async with side.connect() as gate, side.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            # The batch's settle, once it has recorded the endpoint's failure, waits here (the answer it keeps
            # is about this member): its transaction stays open, as it does for the milliseconds it takes.
            lock = text("SELECT 1 FROM members WHERE id = :m FOR UPDATE")
            await gate.execute(lock, {"m": uuid.UUID(member)})
            sending = asyncio.ensure_future(send_due(units))
            await until_waiting_for_a_lock(watcher, sending)
            assert not sending.done()
            fanning_out = asyncio.ensure_future(dispatch_events(units))
            for _ in range(500):
                if fanning_out.done() or await lock_waiters(watcher) > 1:
                    break
                await asyncio.sleep(0.01)
            fanned_out_meanwhile = fanning_out.done()
            await gate.rollback()
            assert await sending == 1
            await fanning_out
    finally:
        await side.dispose()
    assert fanned_out_meanwhile
    deliveries = await rows(app, "SELECT status FROM webhook_deliveries ORDER BY created_at")
    assert len(deliveries) == 2  # the other member's earn, fanned out while the failure was being recorded
    [endpoint] = await rows(app, "SELECT failing_since FROM webhook_endpoints")
    assert endpoint["failing_since"] is not None  # and the failure recorded


async def test_an_endpoint_hanging_beside_another_on_its_host_leaves_it_a_connection(
    units: UnitsOfWork, receiver: Receiver
) -> None:
    """Two endpoints of one host (two paths of one receiver): with as many sends hanging at one as the
    sender puts out to an endpoint, the other's send is answered while they still hang. Before, the sender's
    client also limited connections per host, so the other's sends waited for one, out of their own time."""
    receiver.hanging_paths.add("/hooks/hang")
    http = delivery.webhook_client(units.settings)
    hanging = [
        asyncio.ensure_future(http.post(f"{receiver.url}/hang", data=b"x"))
        for _ in range(delivery._PER_ENDPOINT)
    ]
    try:
        for _ in range(1000):  # until every one of them has reached the receiver
            if len(receiver.received) == len(hanging):
                break
            await asyncio.sleep(0.01)
        async with http.post(f"{receiver.url}/ok", data=b"x") as answered:
            assert answered.status == 204
        assert not any(send.done() for send in hanging)
    finally:
        receiver.let_go.set()
        for answer in await asyncio.gather(*hanging, return_exceptions=True):
            if isinstance(answer, aiohttp.ClientResponse):
                answer.release()
        await http.close()


@pytest.mark.usefixtures("earned_event")
async def test_a_late_attempt_does_not_undo_the_send_that_took_over_its_lease(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver, clock: FrozenClock
) -> None:
    await dispatch_events(units)
    slow = asyncio.Event()
    receiver.holds.append(slow)  # the first send hangs at the receiver past its lease
    receiver.answers.extend([204, 500])  # the second send (taken over) succeeds, then the first fails
    first = asyncio.create_task(send_due(units, rng=random.Random(7)))
    for _ in range(3000):
        if receiver.received:
            break
        await asyncio.sleep(0.01)
    clock.advance(timedelta(hours=1))  # the first worker's lease has run out: another one sends
    assert await send_due(units, rng=random.Random(7)) == 1
    slow.set()
    assert await first == 1
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery["status"] == "succeeded"  # the late failure did not put it back in the queue
    assert len(await rows(app, "SELECT id FROM webhook_attempts")) == 2  # both attempts are kept
    clock.advance(timedelta(minutes=10))
    assert await pump(units) == 0
    assert len(receiver.received) == 2


@pytest.mark.usefixtures("earned_event")
async def test_a_late_attempt_does_not_undo_an_operators_retry(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    clock: FrozenClock,
) -> None:
    await dispatch_events(units)
    slow = asyncio.Event()
    receiver.holds.append(slow)  # the send hangs at the receiver past its lease
    receiver.answers.append(500)
    late = asyncio.create_task(send_due(units, rng=random.Random(7)))
    for _ in range(3000):
        if receiver.received:
            break
        await asyncio.sleep(0.01)
    clock.advance(timedelta(hours=1))  # its lease has run out: an operator retries the delivery by hand
    [delivery] = await rows(app, "SELECT id FROM webhook_deliveries")
    retried = await client.post(f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=bearer(admin_key))
    assert retried.status_code == 200, retried.text
    slow.set()
    assert await late == 1
    # The late failure is on record, but the retry's fresh run stands: due now, no attempt counted.
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery == {"status": "pending", "attempts": 0}
    assert len(await rows(app, "SELECT id FROM webhook_attempts")) == 1
    # Due now, not in the late failure's 5 s (the endpoint did answer that send 500: it is probed first).
    clock.advance(timedelta(seconds=1))
    assert await pump(units) == 1
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery == {"status": "succeeded", "attempts": 1}


@pytest.mark.usefixtures("earned_event")
async def test_a_receiver_that_answers_slowly_is_cut_off_at_the_timeout(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver, clock: FrozenClock
) -> None:
    # httpx's timeout bounds each read, not the request: a receiver dripping a byte at a time held the worker.
    impatient = with_settings(units, webhook_timeout_seconds=0.5)
    receiver.answers.append(503)
    receiver.drip_chunks = 40  # 4 s of body, 0.1 s between bytes
    assert await pump(impatient) == 1
    [attempt] = await rows(app, "SELECT status_code, error, response_body FROM webhook_attempts")
    assert attempt["status_code"] == 503 and attempt["error"] == "HTTP 503"
    assert len(attempt["response_body"]) < 40  # cut off, not read to its end
    [delivery] = await rows(app, "SELECT status FROM webhook_deliveries")
    assert delivery["status"] == "pending"


@pytest.mark.usefixtures("earned_event")
async def test_a_2xx_whose_body_comes_too_slowly_is_delivered(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver
) -> None:
    # Standard Webhooks: any 2xx is a success, whatever the body. The body of a 200 dripping past the timeout
    # made it a failure ("timed out"): sent again, and the endpoint counted as failing.
    impatient = with_settings(units, webhook_timeout_seconds=0.5)
    receiver.answers.append(200)
    receiver.drip_chunks = 40  # 4 s of body, 0.1 s between bytes
    assert await pump(impatient) == 1
    [attempt] = await rows(app, "SELECT status_code, error, response_body FROM webhook_attempts")
    assert attempt["status_code"] == 200 and attempt["error"] is None
    assert len(attempt["response_body"]) < 40  # cut off at the timeout all the same
    [delivery] = await rows(app, "SELECT status, last_status_code, last_error FROM webhook_deliveries")
    assert delivery == {"status": "succeeded", "last_status_code": 200, "last_error": None}
    [endpoint] = await rows(app, "SELECT failing_since FROM webhook_endpoints")
    assert endpoint["failing_since"] is None
    assert await pump(impatient) == 0  # not sent again


@pytest.mark.usefixtures("earned_event")
async def test_a_2xx_whose_body_cannot_be_decoded_is_delivered(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver
) -> None:
    # A body announced as gzip that is not: reading it failed, and the 200 was recorded as a failure.
    receiver.answers.append(200)
    receiver.bodies.append(b"thanks, not gzip")
    receiver.extra_headers.append((b"content-encoding", b"gzip"))
    assert await pump(units) == 1
    [attempt] = await rows(app, "SELECT status_code, error FROM webhook_attempts")
    assert attempt == {"status_code": 200, "error": None}
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery == {"status": "succeeded", "attempts": 1}
    assert await pump(units) == 0  # not sent again
    assert len(receiver.received) == 1


async def test_a_send_longer_than_the_lease_keeps_it_by_its_heartbeat(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    earned_event: None,
) -> None:
    # Leases are short so a dead worker's deliveries go out again within seconds; a live worker whose send
    # outlasts one renews it, and no other worker sends the delivery meanwhile.
    monkeypatch.setattr(delivery, "HEARTBEAT", timedelta(milliseconds=50))
    released, arrived = asyncio.Event(), asyncio.Event()
    receiver.holds.append(released)

    async def note_arrival() -> None:
        arrived.set()

    receiver.on_request = note_arrival
    await dispatch_events(units)
    slow = asyncio.create_task(send_due(units))
    await asyncio.wait_for(arrived.wait(), timeout=10)
    clock.advance(LEASE * 3)  # the send is still out, three leases later
    renewed = clock.now() + LEASE
    for _ in range(100):
        async with units.read() as uow:
            held = await uow.session.scalar(select(WebhookDelivery.leased_until))
        if held == renewed:
            break
        await asyncio.sleep(0.02)
    assert held == renewed
    assert await send_due(units) == 0  # another worker leaves it alone
    released.set()
    assert await slow == 1
    assert len(receiver.received) == 1
    [settled] = await rows(app, "SELECT status, leased_until, lease_token FROM webhook_deliveries")
    assert settled == {"status": "succeeded", "leased_until": None, "lease_token": None}


@pytest.mark.skipif(not is_postgres(), reason="SQLite is a file of the process: it has no connection to lose")
async def test_a_database_lost_mid_send_is_a_warning_and_the_delivery_goes_out_again_once_it_is_back(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    earned_event: None,
) -> None:
    """A failover while a send is out: the lease's heartbeat and the attempt's record fail. Each says so in a
    warning, without the stack trace a bug gets, and the event reaches the receiver again later (at least
    once)."""
    monkeypatch.setattr(delivery, "HEARTBEAT", timedelta(milliseconds=50))
    caplog.set_level(logging.WARNING, logger="loyalty_api.webhooks")
    url = make_url(units.settings.database_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    relayed = url.set(host="127.0.0.1", port=await relay.start()).render_as_string(hide_password=False)
    away = UnitsOfWork(
        Database(create_engine(relayed, pooler=units.settings.database_pooler)),
        units.clock,
        units.vault,
        units.settings,
    )
    try:
        await dispatch_events(away)
        released = asyncio.Event()
        receiver.holds.append(released)

        async def lose_the_database() -> None:
            await relay.cut()
            asyncio.get_running_loop().call_later(0.3, released.set)  # a few beats, then the answer

        receiver.on_request = lose_the_database
        with pytest.raises(Exception) as ended:  # noqa: PT011 - what it is, is asked of it below
            await send_due(away, look_every=60)  # no look for new work before the send is settled
    finally:
        await relay.close()
        await away.database.dispose()
    # The run then ends, as it looks for more work, with the outage the worker's loop reports once.
    assert database_out_of_reach(ended.value)
    messages = [(r.getMessage(), r.levelno, r.exc_info, getattr(r, "error", None)) for r in caplog.records]
    assert ("webhook attempts not recorded", logging.WARNING, None, "ConnectionRefusedError") in messages
    assert ("webhook leases not renewed", logging.WARNING, None, "ConnectionRefusedError") in messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    [pending] = await rows(app, "SELECT status FROM webhook_deliveries")
    assert pending["status"] == "pending"
    assert not await rows(app, "SELECT id FROM webhook_attempts")
    clock.advance(LEASE)  # the lost send's lease runs out
    receiver.on_request = None
    assert await send_due(units) == 1
    assert len(receiver.received) == 2
    [settled] = await rows(app, "SELECT status FROM webhook_deliveries")
    assert settled["status"] == "succeeded"


@pytest.mark.usefixtures("earned_event")
async def test_events_are_fanned_out_by_one_worker_at_a_time(app: FastAPI, units: UnitsOfWork) -> None:
    # Two workers fanning out at once could put a member's later event in the queue before an earlier one
    # that the other worker still holds; so fan-out is one worker at a time.
    if is_postgres():
        async with units.database.engine.connect() as other_worker:
            await other_worker.execute(text("BEGIN"))
            await other_worker.execute(text(f"SELECT pg_advisory_xact_lock({DISPATCH_LOCK})"))
            assert await dispatch_events(units) == 0  # its turn is taken: nothing done, nothing waited for
            assert await rows(app, "SELECT id FROM webhook_deliveries") == []
            await other_worker.execute(text("ROLLBACK"))
    assert await dispatch_events(units) == len(await rows(app, "SELECT id FROM outbox_events")) > 0
    assert await dispatch_events(units) == 0
    assert len(await rows(app, "SELECT id FROM webhook_deliveries")) == 1


@pytest.mark.usefixtures("earned_event")
async def test_an_event_too_large_to_send_is_given_up_at_once_without_blaming_the_endpoint(
    app: FastAPI, units: UnitsOfWork, receiver: Receiver
) -> None:
    tight = with_settings(units, webhook_max_payload_bytes=10)
    await dispatch_events(tight)
    assert await send_due(tight) == 1
    assert receiver.received == []
    [delivery] = await rows(app, "SELECT status, attempts, last_error FROM webhook_deliveries")
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    assert "over the limit" in delivery["last_error"]
    [endpoint] = await rows(app, "SELECT enabled, failing_since FROM webhook_endpoints")
    assert endpoint == {"enabled": True, "failing_since": None}


async def test_the_oldest_pending_age_leaves_out_disabled_endpoints(
    app: FastAPI, units: UnitsOfWork, client: httpx.AsyncClient, pos_key: str, member: str, clock: FrozenClock
) -> None:
    endpoint_id, _ = await add_endpoint(units, "http://127.0.0.1:9/never", event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)
    await dispatch_events(units)
    clock.advance(timedelta(minutes=2))
    assert "loyalty_webhook_oldest_pending_seconds 120.0" in (await client.get("/metrics")).text
    async with units.begin() as uow:
        endpoint = await DeliveryRepository(uow.session).lock_endpoint(uuid.UUID(endpoint_id))
        assert endpoint is not None
        endpoint.enabled = False
    assert "loyalty_webhook_oldest_pending_seconds 0.0" in (await client.get("/metrics")).text


async def test_the_body_timestamp_is_written_as_every_instant_the_api_writes(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    clock.advance(timedelta(microseconds=250))
    _, secret = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 12_990)
    assert await pump(units) == 1

    [message] = receiver.received
    body = verified(secret, message)
    assert body["timestamp"] == format_instant(clock.now())  # UTC with Z, as REST writes it
    assert body["timestamp"].endswith(".000250Z")


async def test_a_retried_old_delivery_holds_up_none_of_the_members_later_events(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    """An operator sends an old, delivered event again and the receiver refuses it: the member's newer events
    go out all the same, not after the old one's day of back-off."""
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000, order_ref="OLD")
    assert await pump(units) == 1
    [old] = await rows(app, "SELECT id FROM webhook_deliveries")

    async def refuse_the_old_one() -> None:
        if json.loads(receiver.received[-1].body)["data"]["order_ref"] == "OLD":
            receiver.answers.appendleft(410)

    receiver.on_request = refuse_the_old_one
    retried = await client.post(f"/v1/webhook-deliveries/{old['id']}/retry", headers=bearer(admin_key))
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["delivered_at"]) == ("pending", None)
    await earn(client, pos_key, member, 10_000, order_ref="NEW")
    for _ in range(3):
        await pump(units)
        clock.advance(delivery.PROBE_MIN)
    sent = [json.loads(m.body)["data"]["order_ref"] for m in receiver.received]
    assert "NEW" in sent
    [new] = await rows(
        app, "SELECT status FROM webhook_deliveries WHERE id <> :old", old=uuid.UUID(str(old["id"]))
    )
    assert new["status"] == "succeeded"


async def test_a_replay_puts_a_retried_delivery_back_in_its_members_order(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000, order_ref="OLD")
    assert await pump(units) == 1
    [old] = await rows(app, "SELECT id FROM webhook_deliveries")
    retried = await client.post(f"/v1/webhook-deliveries/{old['id']}/retry", headers=bearer(admin_key))
    assert retried.status_code == 200, retried.text
    ordered = (
        "SELECT d.sequence AS mine, e.sequence AS its FROM webhook_deliveries d "
        "JOIN outbox_events e ON e.id = d.event_id"
    )
    [out_of_order] = await rows(app, ordered)
    assert out_of_order["mine"] is None  # sent again apart from the member's order
    replayed = await client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/replay",
        json={"since": format_instant(clock.now() - timedelta(minutes=1))},
        headers=bearer(admin_key),
    )
    assert replayed.status_code == 200, replayed.text
    [in_order] = await rows(app, ordered)
    assert in_order["mine"] == in_order["its"] is not None


async def test_a_delivery_out_while_its_type_is_dropped_is_not_sent_again(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    """An operator narrows an endpoint's event types while a send of a type it drops is out (its receiver slow
    to refuse it): that delivery ends with the others of its type, instead of being retried to a receiver
    that asked to stop getting it, and holding up the member's later events meanwhile."""
    endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["member.updated", "points.earned"])
    changed = await client.patch(f"/v1/members/{member}", json={"name": "李四"}, headers=bearer(pos_key))
    assert changed.status_code == 200, changed.text
    refused, arrived = asyncio.Event(), asyncio.Event()
    receiver.holds.append(refused)
    receiver.answers.append(503)

    async def note_arrival() -> None:
        arrived.set()

    receiver.on_request = note_arrival
    await dispatch_events(units)
    sending = asyncio.create_task(send_due(units, rng=random.Random(7)))
    await asyncio.wait_for(arrived.wait(), timeout=10)
    narrowed = await client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}",
        json={"event_types": ["points.earned"]},
        headers=bearer(admin_key),
    )
    assert narrowed.status_code == 200, narrowed.text
    refused.set()
    assert await sending == 1

    await earn(client, pos_key, member, 10_000)
    for _ in range(3):  # past the endpoint's next probe and the refused delivery's own retry
        clock.advance(timedelta(seconds=6))
        await pump(units)
    types = [json.loads(m.body)["type"] for m in receiver.received]
    assert types == ["member.updated", "points.earned"]  # the one refused, then only what it takes now
    listed = await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=bearer(admin_key))
    shown = {d["event_type"]: (d["status"], d["last_error"]) for d in listed.json()["items"]}
    assert shown == {
        "points.earned": ("succeeded", None),
        "member.updated": ("failed", "the endpoint no longer takes this event type"),
    }


async def test_a_retry_by_hand_of_a_type_the_endpoint_no_longer_takes_sends_nothing(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    member: str,
    clock: FrozenClock,
) -> None:
    """The receiver got a `member.updated`, then its operator took the type out of the endpoint: a retry of
    that delivery by hand is refused, and the receiver is sent nothing more of it, as a replay sends none."""
    endpoint_id, secret = await add_endpoint(
        units, receiver.url, event_types=["member.updated", "points.earned"]
    )
    changed = await client.patch(f"/v1/members/{member}", json={"name": "李四"}, headers=bearer(pos_key))
    assert changed.status_code == 200, changed.text
    assert [body["type"] for body in await arrivals(units, receiver)] == ["member.updated"]
    [sent] = await rows(app, "SELECT id FROM webhook_deliveries")
    narrowed = await client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}",
        json={"event_types": ["points.earned"]},
        headers=bearer(admin_key),
    )
    assert narrowed.status_code == 200, narrowed.text

    retried = await client.post(f"/v1/webhook-deliveries/{sent['id']}/retry", headers=bearer(admin_key))
    assert retried.status_code == 409, retried.text
    assert retried.json()["code"] == "webhook_event_type_not_taken"
    await earn(client, pos_key, member, 10_000)
    clock.advance(timedelta(seconds=6))
    types = [body["type"] for body in await arrivals(units, receiver)]
    assert types == ["member.updated", "points.earned"]  # nothing of the dropped type sent again
    verified(secret, receiver.received[-1])


@pytest.mark.skipif(is_postgres(), reason="SQLite's one write lock: PostgreSQL's writers lock rows")
async def test_a_send_whose_record_meets_a_write_lock_held_elsewhere_is_recorded_once_it_is_free(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    member: str,
    settings: Settings,
) -> None:
    """The worker waits for another process's hold on SQLite's write lock a second at most, so that requests
    get this process's writer turn (UnitsOfWork.for_jobs). A batch of sends whose attempts met such a hold
    went unrecorded: its leases ran out and every receiver in it got the event again. The record is tried
    again while the hold lasts (a second and a half here), and the delivery is recorded as it went, once."""
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, member, 10_000)
    await dispatch_events(units)
    database = make_url(settings.database_url).database
    assert database is not None

    async def hold_the_lock() -> None:  # while the send is out: its lease recorded, its outcome not yet
        other_process = sqlite3.connect(database, isolation_level=None)
        other_process.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(1.5, other_process.close)  # closing rolls it back

    receiver.on_request = hold_the_lock
    assert await send_due(units.for_jobs()) == 1
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery == {"status": "succeeded", "attempts": 1}
    assert len(receiver.received) == 1
