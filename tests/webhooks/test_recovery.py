"""Webhooks recover in seconds: a dead worker's deliveries go out again once its short lease runs out, a
failing endpoint is probed one request at a time and everything held for it goes out the moment it answers,
a PostgreSQL worker wakes on commit, and one member's events keep their commit order whatever the clocks of
the hosts that wrote them."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from loyalty_api.clock import FrozenClock, SystemClock
from loyalty_api.db import ids
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.settings import Settings
from loyalty_api.webhooks import endpoints
from loyalty_api.webhooks.delivery import (
    _KEPT_FOR_IDLE,
    _PER_ENDPOINT,
    _SENDERS,
    LEASE,
    PROBE_CAP_LATER,
    PROBE_MIN,
    RETRY_AFTER_CAP,
    dispatch_events,
    send_due,
)
from loyalty_api.webhooks.delivery_repository import DeliveryRepository
from loyalty_api.worker.runner import Worker
from tests.builders import enrol
from tests.conftest import bearer
from tests.databases import is_postgres, side_engine, until_waiting_for_a_lock
from tests.inspect_db import events, rows
from tests.points.helpers import earn, set_program
from tests.webhooks.endpoint_helpers import PUBLIC_URL, add_endpoint, set_delivery, set_endpoint
from tests.webhooks.receiver import Receiver, running_receiver
from tests.webhooks.test_delivery_flow import pump, with_settings


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
def units(app: FastAPI) -> UnitsOfWork:
    return with_settings(app.state.units, webhook_allow_private_targets=True)


@pytest.fixture(autouse=True)
def _wall_time(clock: FrozenClock) -> None:
    # Receivers check the signature's timestamp against their clock: start the frozen clock at real time.
    clock.set(datetime.now(UTC).replace(microsecond=0))  # noqa: TID251 - a test lining up with the receiver


@pytest.fixture
async def members(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> list[str]:
    await set_program(client, admin_key)
    return [str((await enrol(client, pos_key))["id"]) for _ in range(6)]


def on_real_time(units: UnitsOfWork) -> UnitsOfWork:
    """The same database and settings on the system clock, as a worker process runs."""
    running = UnitsOfWork(units.database, SystemClock(), units.vault, units.settings)
    running.cache = units.cache
    return running


@asynccontextmanager
async def worker_running(units: UnitsOfWork, **options: Any) -> AsyncIterator[Worker]:
    worker = Worker(units, jobs=(), **options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await task


async def until(condition: Callable[[], Awaitable[bool]], *, seconds: float) -> bool:
    """Whether `condition` came true within `seconds` (checked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.05)
    return await condition()


def orders_by_member(receiver: Receiver, secret: str) -> dict[str, list[str]]:
    """Each member's order references in the order their events first arrived, every one verified."""
    seen: set[str] = set()
    found: dict[str, list[str]] = {}
    for message in receiver.received:
        body = Webhook(secret).verify(message.body, message.headers)
        if message.headers["webhook-id"] in seen:
            continue
        seen.add(message.headers["webhook-id"])
        found.setdefault(body["data"]["member_id"], []).append(body["data"]["order_ref"])
    return found


@pytest.fixture
async def failing_endpoint(
    units: UnitsOfWork, receiver: Receiver, client: httpx.AsyncClient, pos_key: str, members: list[str]
) -> None:
    """An endpoint for points.earned that refused the first member's first event, and will refuse the next
    request too: failing from now on."""
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    receiver.fail_next(503, 503)
    await earn(client, pos_key, members[0], 10_000, order_ref="FIRST")
    assert await pump(units) == 1


@pytest.mark.usefixtures("failing_endpoint")
async def test_a_failing_endpoint_gets_one_probe_at_a_time_and_its_answer_releases_everything(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
) -> None:
    for n, member in enumerate(members):
        await earn(client, pos_key, member, 10_000, order_ref=f"HELD-{n}")
    assert await pump(units) == 0  # nothing goes to a failing endpoint before its probe
    clock.advance(PROBE_MIN)
    assert await pump(units) == 1  # one probe, refused
    assert await pump(units) == 0
    clock.advance(PROBE_MIN)
    # The next probe is answered: everything held goes out in the same run, long before the refused
    # delivery's own retry (5 s after its failure) would have come.
    assert await pump(units) == 1 + len(members)
    assert len(receiver.received) == 3 + len(members)  # two refused, then every event once
    pending = await rows(app, "SELECT id FROM webhook_deliveries WHERE status <> 'succeeded'")
    assert pending == []
    [endpoint] = await rows(app, "SELECT failing_since, next_probe_at FROM webhook_endpoints")
    assert endpoint == {"failing_since": None, "next_probe_at": None}


@pytest.mark.skipif(not is_postgres(), reason="SQLite's writers take turns: no fan-out runs beside a probe")
@pytest.mark.usefixtures("failing_endpoint")
async def test_a_probe_goes_out_while_a_fan_out_lists_the_endpoints(
    units: UnitsOfWork, receiver: Receiver, clock: FrozenClock
) -> None:
    """A fan-out lists the enabled endpoints FOR KEY SHARE until it commits (its deliveries refer to them).
    The probe's lease locked a failing endpoint FOR UPDATE SKIP LOCKED, so it passed over one a fan-out was
    listing: under a steady flow of events a failing endpoint could go unprobed look after look."""
    clock.advance(PROBE_MIN)
    side = side_engine(units.settings)
    try:
        async with side.connect() as fan_out:
            await fan_out.execute(text("SELECT id FROM webhook_endpoints WHERE enabled FOR KEY SHARE"))
            assert await send_due(units) == 1  # the probe, sent while the fan-out holds its share
            await fan_out.rollback()
    finally:
        await side.dispose()
    assert len(receiver.received) == 2  # the refused first send, then the probe


@pytest.mark.usefixtures("failing_endpoint")
async def test_a_failing_endpoints_reply_says_when_its_next_probe_goes_out(
    units: UnitsOfWork, receiver: Receiver, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
) -> None:
    async def read() -> dict[str, Any]:
        [endpoint] = (await client.get("/v1/webhook-endpoints", headers=bearer(admin_key))).json()["items"]
        shown: dict[str, Any] = endpoint
        return shown

    def at(value: str) -> datetime:
        return datetime.fromisoformat(value)

    failed_at = clock.now()
    refused = await read()
    assert at(refused["failing_since"]) == failed_at
    assert at(refused["next_probe_at"]) == failed_at + PROBE_MIN
    clock.advance(timedelta(minutes=2))
    assert await pump(units) == 1  # the probe, refused: two minutes in, the next one in 30 s
    assert at((await read())["next_probe_at"]) == clock.now() + timedelta(seconds=30)

    endpoint_id = (await read())["id"]
    off = {"enabled": False}
    response = await client.patch(f"/v1/webhook-endpoints/{endpoint_id}", json=off, headers=bearer(admin_key))
    assert response.json()["failing_since"] is not None
    assert response.json()["next_probe_at"] is None  # a disabled endpoint is not probed
    on = {"enabled": True}
    response = await client.patch(f"/v1/webhook-endpoints/{endpoint_id}", json=on, headers=bearer(admin_key))
    assert response.json()["next_probe_at"] is None  # not failing: its deliveries go out as they come
    assert await pump(units) == 1
    assert len(receiver.exchanges) == 3  # two refused, then the one answered


@pytest.mark.usefixtures("failing_endpoint")
@pytest.mark.parametrize("action", ["retry", "replay"])
async def test_a_retry_or_replay_by_hand_goes_out_at_once_though_the_endpoint_is_failing(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
    action: str,
) -> None:
    """The receiver has been down for hours, so its endpoint is probed every five minutes. The operator mends
    it and retries a delivery, or replays: it goes out at once, as the retry says, not at the next probe,
    and its answer releases everything held for the endpoint."""
    since = clock.now().isoformat()
    await earn(client, pos_key, members[1], 10_000, order_ref="HELD")
    [endpoint] = await rows(app, "SELECT id FROM webhook_endpoints")
    await set_endpoint(
        app, str(endpoint["id"]), failing_since=clock.now() - timedelta(hours=3), next_probe_at=None
    )
    assert await pump(units) == 1  # the probe, refused: the next one 5 min away
    receiver.answers.clear()  # mended
    if action == "retry":
        first = (await rows(app, "SELECT id FROM webhook_deliveries ORDER BY created_at, id"))[0]
        answer = await client.post(f"/v1/webhook-deliveries/{first['id']}/retry", headers=bearer(admin_key))
    else:
        answer = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay", json={"since": since}, headers=bearer(admin_key)
        )
    assert answer.status_code == 200, answer.text
    assert await pump(units) == 2, f"the {action} waits for the next probe"
    [after] = await rows(app, "SELECT failing_since FROM webhook_endpoints")
    assert after["failing_since"] is None
    assert await rows(app, "SELECT id FROM webhook_deliveries WHERE status <> 'succeeded'") == []


@pytest.mark.skipif(
    not is_postgres(), reason="holds a worker's lease open from a second PostgreSQL connection"
)
async def test_a_delivery_another_worker_is_leasing_is_not_leased_again_as_a_probe(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
) -> None:
    """A worker leases a healthy endpoint's due delivery; before its lease commits, another send to the
    endpoint fails and makes it failing, and a second worker looks for the endpoint's probe. It read the
    delivery as unleased (the lease was not committed yet), waited for the row, then leased it over the first
    worker's lease: both sent it."""
    endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, members[0], 10_000)
    await dispatch_events(units)
    [delivery] = await rows(app, "SELECT id FROM webhook_deliveries")
    first_worker = uuid.uuid4()
    side = side_engine(units.settings)
    try:
        async with side.connect() as leasing, side.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            now = units.clock.now()
            await leasing.execute(
                text(
                    "UPDATE webhook_deliveries SET leased_until = :until, lease_token = :token WHERE id = :id"
                ),
                {"until": now + LEASE, "token": first_worker, "id": delivery["id"]},
            )
            await set_endpoint(app, endpoint_id, failing_since=now, next_probe_at=None)

            async def look_for_probes() -> list[uuid.UUID]:
                async with units.begin() as uow:
                    return await DeliveryRepository(uow.session).lease_probes(
                        now, until=now + LEASE, token=uuid.uuid4(), limit=10
                    )

            probing = asyncio.ensure_future(look_for_probes())
            await until_waiting_for_a_lock(watcher, probing)
            await leasing.commit()
            probes = await probing
    finally:
        await side.dispose()
    assert probes == []
    [held] = await rows(app, "SELECT lease_token FROM webhook_deliveries")
    assert uuid.UUID(str(held["lease_token"])) == first_worker


@pytest.mark.usefixtures("failing_endpoint")
async def test_a_retry_by_hand_while_a_probe_is_out_sends_no_second_one(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
) -> None:
    """One probe at a time, whoever asks: while a worker's probe is out, a retry by hand waits for its
    outcome."""
    await earn(client, pos_key, members[1], 10_000, order_ref="HELD")
    await dispatch_events(units)
    first, held = await rows(app, "SELECT id FROM webhook_deliveries ORDER BY created_at, id")
    [endpoint] = await rows(app, "SELECT id FROM webhook_endpoints")
    out_until = clock.now() + LEASE
    await set_endpoint(app, str(endpoint["id"]), next_probe_at=out_until)
    await set_delivery(app, str(first["id"]), leased_until=out_until, lease_token=uuid.uuid4())  # the probe
    answer = await client.post(f"/v1/webhook-deliveries/{held['id']}/retry", headers=bearer(admin_key))
    assert answer.status_code == 200, answer.text
    assert await pump(units) == 0
    assert len(receiver.received) == 1  # the refusal that made it fail; the probe's own send is elsewhere


@pytest.mark.usefixtures("failing_endpoint")
async def test_a_probe_ahead_of_a_deliverys_schedule_leaves_its_back_off_as_it_was(
    app: FastAPI, units: UnitsOfWork, clock: FrozenClock
) -> None:
    clock.advance(PROBE_MIN)
    await pump(units)  # a probe 1 s in, ahead of the 5 s retry: refused, and it does not count
    [delivery] = await rows(app, "SELECT attempts, status FROM webhook_deliveries")
    assert delivery == {"attempts": 1, "status": "pending"}
    assert len(await rows(app, "SELECT id FROM webhook_attempts")) == 2  # both tries are on record


async def test_one_delivery_its_receiver_keeps_refusing_keeps_its_back_off_while_others_flow(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
) -> None:
    """The receiver refuses one member's event (its own sync lags) and takes the rest. Each answered send
    releases what waits, the refused one included, but its failures then do not count: it is not given up
    after seconds of other members' traffic, and other members' events go out as they come."""
    refused, others = members[0], members[1:]
    await add_endpoint(units, receiver.url, event_types=["points.earned"])

    async def refuse_the_first_member() -> None:
        if json.loads(receiver.received[-1].body)["data"]["member_id"] == refused:
            receiver.answers.appendleft(500)

    receiver.on_request = refuse_the_first_member
    await earn(client, pos_key, refused, 10_000, order_ref="REFUSED")
    assert await pump(units) == 1
    for n in range(10):
        await earn(client, pos_key, others[n % len(others)], 1_000, order_ref=f"OTHER-{n}")
        clock.advance(timedelta(seconds=2))
        await pump(units)
        await pump(units)
    [delivery] = await rows(
        app,
        "SELECT d.status, d.attempts FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id "
        "WHERE e.member_id = :member",
        member=uuid.UUID(refused),
    )
    # 20 s in: its first attempt and the 5 s retry count; the early sends in between do not.
    assert delivery == {"status": "pending", "attempts": 2}
    delivered = await rows(app, "SELECT id FROM webhook_deliveries WHERE status = 'succeeded'")
    assert len(delivered) == 10  # every other member's event, none held behind the refused one

    clock.advance(timedelta(hours=28))  # past the whole back-off (about 27 hours)
    for _ in range(8):
        await pump(units)
        clock.advance(timedelta(hours=11))
    [delivery] = await rows(
        app, "SELECT status, attempts FROM webhook_deliveries WHERE status <> 'succeeded'"
    )
    assert delivery == {"status": "failed", "attempts": 8}  # given up on its own schedule


def _instant(value: Any) -> datetime:
    """A timestamp as `rows` gives it back (SQLite: text without a zone), as an aware datetime."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (503, "120", timedelta(seconds=120)),
        (429, "600", timedelta(minutes=10)),
        (503, "99999999999", RETRY_AFTER_CAP),
        (503, "in a while", None),  # no form the RFC knows
        (500, "120", None),  # Retry-After means something only with a 429 or a 503
    ],
)
async def test_a_receiver_asking_to_wait_is_tried_again_no_sooner(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
    status: int,
    retry_after: str,
    wait: timedelta | None,
) -> None:
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    receiver.fail_next(status)
    receiver.extra_headers.append((b"retry-after", retry_after.encode()))
    await earn(client, pos_key, members[0], 10_000, order_ref="FIRST")
    failed_at = clock.now()
    assert await pump(units) == 1

    [endpoint] = await rows(app, "SELECT next_probe_at FROM webhook_endpoints")
    [delivery] = await rows(app, "SELECT next_attempt_at FROM webhook_deliveries")
    next_try = wait or PROBE_MIN
    assert _instant(endpoint["next_probe_at"]) == failed_at + next_try
    if wait is not None:  # the delivery's own retry (5 s after its failure) waits as long
        assert _instant(delivery["next_attempt_at"]) == failed_at + wait
    clock.advance(next_try - timedelta(seconds=1))
    await earn(client, pos_key, members[1], 10_000, order_ref="LATER")
    assert await pump(units) == 0  # not a send before then, not even the new event
    clock.advance(timedelta(seconds=1))
    assert await pump(units) == 2  # the probe answered, then what was held
    assert len(receiver.received) == 3


async def test_a_receivers_retry_after_may_be_a_date(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
) -> None:
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    receiver.fail_next(503)
    # Ten minutes on the wall clock, which the test's clock started at.
    then = datetime.now(UTC) + timedelta(minutes=10)  # noqa: TID251 - the receiver's date is wall time
    receiver.extra_headers.append((b"retry-after", email.utils.format_datetime(then, usegmt=True).encode()))
    await earn(client, pos_key, members[0], 10_000, order_ref="FIRST")
    assert await pump(units) == 1
    [endpoint] = await rows(app, "SELECT next_probe_at FROM webhook_endpoints")
    waited = _instant(endpoint["next_probe_at"]) - clock.now()
    assert timedelta(minutes=9) < waited <= timedelta(minutes=10)


async def test_an_answer_to_a_send_already_out_does_not_cut_short_a_receivers_retry_after(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
) -> None:
    """A receiver shedding load answers one send 429 with Retry-After while another, which it took in just
    before, is still being handled: that one's 2xx, coming after, says nothing about the wait it asked for.
    Nothing more goes to it before then, the refused delivery included."""
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    await earn(client, pos_key, members[0], 10_000, order_ref="FIRST")
    await earn(client, pos_key, members[1], 10_000, order_ref="SECOND")
    await earn(client, pos_key, members[2], 10_000, order_ref="THIRD")
    await dispatch_events(units)
    taken_in = asyncio.Event()
    receiver.holds.append(taken_in)  # the first send to arrive is handled slowly, then answered 204
    receiver.fail_next(429)  # the next ones are refused at once
    receiver.extra_headers.append((b"retry-after", b"600"))
    asked_at = clock.now()
    sending = asyncio.create_task(send_due(units, batch=2))

    async def refusal_recorded() -> bool:
        return bool(await rows(app, "SELECT id FROM webhook_attempts WHERE status_code = 429"))

    assert await until(refusal_recorded, seconds=10)
    taken_in.set()
    await sending
    assert await pump(units) == 0  # nothing more before the wait it asked for, the third event included
    assert len(receiver.received) == 2
    [endpoint] = await rows(app, "SELECT failing_since, next_probe_at FROM webhook_endpoints")
    assert _instant(endpoint["next_probe_at"]) == asked_at + timedelta(seconds=600)
    clock.advance(timedelta(seconds=600))
    assert await pump(units) == 2  # then the probe, answered, and what was held
    assert len(receiver.received) == 4


async def test_a_released_delivery_sent_as_a_probe_counts_for_its_failing_endpoint(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
) -> None:
    """A delivery released by a recovery, still ahead of its own schedule, is the head of its endpoint's queue
    when the endpoint fails again: sent as a probe and refused, it keeps its schedule, and the endpoint's
    probes still back off (here, two hours into the failure, five minutes apart)."""
    endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    receiver.down = True
    await earn(client, pos_key, members[0], 10_000)
    assert await pump(units) == 1
    [delivery] = await rows(app, "SELECT id FROM webhook_deliveries")
    now = clock.now()
    await set_delivery(app, str(delivery["id"]), next_attempt_at=now, scheduled_at=now + timedelta(minutes=5))
    await set_endpoint(app, endpoint_id, failing_since=now - timedelta(hours=2), next_probe_at=now)
    assert await pump(units) == 1  # the probe, refused
    [after] = await rows(app, "SELECT attempts, next_attempt_at, scheduled_at FROM webhook_deliveries")
    assert after["attempts"] == 1 and after["scheduled_at"] is None
    assert _instant(after["next_attempt_at"]) == now + timedelta(minutes=5)  # its own schedule stands
    [endpoint] = await rows(app, "SELECT next_probe_at FROM webhook_endpoints")
    assert _instant(endpoint["next_probe_at"]) == now + PROBE_CAP_LATER


async def test_probes_for_many_failing_endpoints_are_leased_in_statements_that_do_not_grow_with_them(
    app: FastAPI,
    units: UnitsOfWork,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
) -> None:
    """Twelve failing endpoints due for a probe, in turn by when; every third has nothing to probe with. Five
    probes go out: the heads of the first five endpoints that have one. Those with nothing to send wait for a
    delivery (no next probe); the others after the fifth keep their turn. It took a look for each endpoint
    passed, one statement each, then a few statements that locked every due endpoint and wrote each one with
    nothing to send at every look; now a few statements that lock the five, and the idle ones until they are
    written as waiting."""
    await set_program(client, admin_key)
    now = clock.now()
    failing: list[uuid.UUID] = []
    for n in range(12):
        types = ["points.earned"] if n % 3 == 0 else ["member.enrolled"]
        endpoint_id, _ = await add_endpoint(units, f"{PUBLIC_URL}/{n}", event_types=types)
        due = now - timedelta(seconds=12 - n)
        await set_endpoint(app, endpoint_id, failing_since=now - timedelta(minutes=5), next_probe_at=due)
        failing.append(uuid.UUID(endpoint_id))
    await enrol(client, pos_key)  # member.enrolled: a delivery to probe each endpoint but every third with
    await dispatch_events(units)
    found = await rows(app, "SELECT id, endpoint_id FROM webhook_deliveries")
    head_of = {uuid.UUID(str(row["endpoint_id"])): uuid.UUID(str(row["id"])) for row in found}
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE, sent with the first statement
            statements.append(statement)

    until = now + timedelta(seconds=40)
    engine = units.database.engine.sync_engine
    async with units.begin() as uow:
        sqlalchemy_event.listen(engine, "before_cursor_execute", note)
        try:
            probes = await DeliveryRepository(uow.session).lease_probes(
                now, until=until, token=uuid.uuid4(), limit=5
            )
        finally:
            sqlalchemy_event.remove(engine, "before_cursor_execute", note)

    assert probes == [head_of[failing[n]] for n in (1, 2, 4, 5, 7)]
    endpoints = await rows(app, "SELECT id, next_probe_at FROM webhook_endpoints")
    next_probe = {
        uuid.UUID(str(row["id"])): None if row["next_probe_at"] is None else _instant(row["next_probe_at"])
        for row in endpoints
    }
    assert [next_probe[endpoint] for endpoint in failing] == [
        None if n % 3 == 0 else until if n <= 7 else now - timedelta(seconds=12 - n) for n in range(12)
    ]
    leased = await rows(app, "SELECT id FROM webhook_deliveries WHERE leased_until IS NOT NULL")
    assert sorted(uuid.UUID(str(row["id"])) for row in leased) == sorted(probes)
    # The idle marked, the endpoints to probe locked, their heads, their next probes, the leases.
    assert len(statements) == 5, statements
    # The next look leases the rest in turn.
    statements.clear()
    async with units.begin() as uow:
        sqlalchemy_event.listen(engine, "before_cursor_execute", note)
        try:
            again = await DeliveryRepository(uow.session).lease_probes(
                now, until=until, token=uuid.uuid4(), limit=5
            )
        finally:
            sqlalchemy_event.remove(engine, "before_cursor_execute", note)
    assert again == [head_of[failing[n]] for n in (8, 10, 11)]


@pytest.mark.parametrize("change", ["url", "re-enable"])
async def test_a_new_url_or_re_enabling_sends_what_waits_on_its_back_off_at_once(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
    clock: FrozenClock,
    change: str,
) -> None:
    endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    receiver.fail_next(503, 503)
    await earn(client, pos_key, members[0], 10_000)
    assert await pump(units) == 1
    clock.advance(timedelta(seconds=6))
    assert await pump(units) == 1  # refused again: the next try is 5 minutes out
    # Through the service with loopback targets allowed (the API's own settings refuse the receiver's URL).
    endpoint_uuid = uuid.UUID(str(endpoint_id))
    async with units.begin() as uow:
        if change == "url":
            await endpoints.update_endpoint(uow, endpoint_uuid, url=receiver.url + "/v2")
        else:
            await endpoints.update_endpoint(uow, endpoint_uuid, enabled=False)
            await endpoints.update_endpoint(uow, endpoint_uuid, enabled=True)
    assert await pump(units) == 1  # at once, not in 5 minutes
    [delivery] = await rows(app, "SELECT status, attempts FROM webhook_deliveries")
    assert delivery == {"status": "succeeded", "attempts": 3}
    [endpoint] = await rows(app, "SELECT failing_since, next_probe_at FROM webhook_endpoints")
    assert endpoint == {"failing_since": None, "next_probe_at": None}


async def test_two_hosts_with_skewed_clocks_keep_one_members_order(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, secret = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    member = members[0]
    await earn(client, pos_key, member, 10_000, order_ref="FIRST")
    # The second purchase goes through another API host whose clock runs ten seconds behind: the ids it
    # makes sort before the first host's.
    behind = time.time_ns() - 10 * 1_000_000_000
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: behind))
    monkeypatch.setattr(ids, "_last", 0)
    await earn(client, pos_key, member, 10_000, order_ref="SECOND")
    first, second = sorted(await events(app, "points.earned"), key=lambda e: str(e["payload"]["order_ref"]))
    assert uuid.UUID(str(second["id"])) < uuid.UUID(str(first["id"]))  # the ids alone would misorder them

    await pump(units)
    assert orders_by_member(receiver, secret) == {member: ["FIRST", "SECOND"]}


async def test_a_receiver_down_for_twenty_seconds_has_everything_within_seconds_of_its_return(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
) -> None:
    _, secret = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    receiver.down = True
    made: dict[str, list[str]] = {member: [] for member in members}

    async def purchase(member: str) -> None:
        order_ref = f"{member[-6:]}-{len(made[member])}"
        await earn(client, pos_key, member, 10_000, order_ref=order_ref)
        made[member].append(order_ref)

    async with worker_running(on_real_time(units)):
        outage_began = time.monotonic()
        await purchase(members[0])  # refused alone: from then on the endpoint is probed

        async def failing() -> bool:
            found = await rows(app, "SELECT failing_since FROM webhook_endpoints")
            return found[0]["failing_since"] is not None

        assert await until(failing, seconds=5)
        while time.monotonic() - outage_began < 20:
            for member in members:
                await purchase(member)
            await asyncio.sleep(2)
        receiver.down = False

        async def all_arrived() -> bool:
            return len({m.headers["webhook-id"] for m in receiver.received}) == sum(map(len, made.values()))

        # Its probe comes at most a quarter of the outage (5 s) after its return.
        assert await until(all_arrived, seconds=12), "not caught up 12 s after the receiver came back"

    assert orders_by_member(receiver, secret) == made  # every member's in order, each signature verified
    refused = [e for e in receiver.exchanges if e.status == 503]
    assert 5 <= len(refused) <= 25, len(refused)  # probed through the outage, never flooded
    for earlier, later in itertools.pairwise(refused):
        assert later.started >= earlier.answered  # one request at a time while it failed


async def test_a_killed_worker_leaves_its_deliveries_to_another_within_fifteen_seconds(
    app: FastAPI,
    settings: Settings,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
) -> None:
    _, secret = await add_endpoint(units, receiver.url, event_types=["points.earned"])
    made = {member: [f"{member[-6:]}-{n}" for n in range(3)] for member in members}
    for n in range(3):
        for member in members:
            await earn(client, pos_key, member, 10_000, order_ref=made[member][n])
    # The worker process gets its first sends held at the receiver, and is killed while they are out.
    held = [asyncio.Event() for _ in members]
    receiver.holds.extend(held)
    assert settings.encryption_key is not None
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LOYALTY_")}
    environment |= {
        "LOYALTY_DATABASE_URL": settings.database_url,
        "LOYALTY_ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
        "LOYALTY_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "LOYALTY_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - a worker process of its own, killed below
        [sys.executable, "-m", "loyalty_api.cli", "worker"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def sends_out() -> bool:
            return len(receiver.received) >= len(members)

        assert await until(sends_out, seconds=60), "the worker process sent nothing"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed = time.monotonic()
    for event in held:
        event.set()  # the killed worker's connections are gone; these answers go nowhere

    async def everything_delivered() -> bool:
        left = await rows(app, "SELECT id FROM webhook_deliveries WHERE status <> 'succeeded'")
        return not left

    async with worker_running(on_real_time(units)):
        assert await until(everything_delivered, seconds=20)
        taken_over = time.monotonic() - killed
    assert taken_over < LEASE.total_seconds() + 5  # the lease ran out, then the next tick took them
    assert orders_by_member(receiver, secret) == made


@pytest.mark.skipif(not is_postgres(), reason="SQLite has no notifications: its worker runs on its timer")
async def test_a_postgresql_worker_wakes_on_commit_not_on_its_timer(
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    pos_key: str,
    members: list[str],
) -> None:
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    async with worker_running(on_real_time(units), tick_seconds=600):
        await asyncio.sleep(0.5)  # it has looked once, found nothing, and waits (its timer: ten minutes)
        await earn(client, pos_key, members[0], 10_000)

        async def arrived() -> bool:
            return len(receiver.received) == 1

        assert await until(arrived, seconds=10)


async def test_a_receiver_that_hangs_holds_up_no_other_endpoint(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
) -> None:
    """One endpoint's receiver never answers while it has more events waiting than may be sent to it at once;
    another endpoint's event made meanwhile goes out while those sends still hang."""
    await set_program(client, admin_key)
    released = asyncio.Event()

    async def hang() -> None:
        await released.wait()

    receiver.on_request = hang
    await add_endpoint(units, receiver.url, event_types=["member.enrolled"])
    members = [str((await enrol(client, pos_key))["id"]) for _ in range(39)]
    patient = with_settings(units, webhook_timeout_seconds=60)  # the hung sends stay out for the whole test
    async with running_receiver() as other, worker_running(on_real_time(patient), tick_seconds=0.05):
        try:
            await add_endpoint(units, other.url, event_types=["points.earned"])

            async def hanging() -> bool:
                return len(receiver.received) >= 8

            assert await until(hanging, seconds=15)
            await earn(client, pos_key, members[0], 10_000)

            async def arrived() -> bool:
                return len(other.received) == 1

            assert await until(arrived, seconds=15), "held up behind the receiver that hangs"
            assert receiver.exchanges == []  # every send to it still hanging
            assert len(receiver.received) == 8  # no more than that at once to one endpoint
        finally:
            released.set()


async def test_a_name_server_that_never_answers_holds_up_no_other_endpoint(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name server of three endpoints' hosts stops answering while each has as many events due as may go
    to it at once: every send to them waits for a lookup that does not end. Another endpoint, named too, gets
    its event meanwhile: looking its name up waits for none of theirs (they ran on the event loop's few
    shared threads, so its lookup queued behind them until its send timed out), and each silent name is
    looked up once however many sends wait for it."""
    await set_program(client, admin_key)
    answered = threading.Event()  # the name server answers at last: the test's end
    asked: list[str] = []
    system_lookup = socket.getaddrinfo

    def name_server(host: str, *args: Any, **kwargs: Any) -> Any:
        if not host.endswith(".silent.example"):
            return system_lookup(host, *args, **kwargs)
        asked.append(host)
        answered.wait(timeout=60)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", name_server)
    silent = [f"pos{n}.silent.example" for n in range(3)]
    for host in silent:
        await add_endpoint(units, f"http://{host}/hooks", event_types=["member.enrolled"])
    members = [str((await enrol(client, pos_key))["id"]) for _ in range(_PER_ENDPOINT)]
    named = receiver.url.replace("127.0.0.1", "localhost")
    _, secret = await add_endpoint(units, named, event_types=["points.earned"])
    async with worker_running(on_real_time(units), tick_seconds=0.05):
        try:

            async def looking_up() -> bool:
                return set(asked) == set(silent)

            assert await until(looking_up, seconds=15)
            await earn(client, pos_key, members[0], 10_000)

            async def arrived() -> bool:
                return len(receiver.received) == 1

            assert await until(arrived, seconds=15), "held up behind the lookups that hang"
            body = Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)
            assert body["data"]["member_id"] == members[0]
            assert sorted(asked) == sorted(silent)  # one lookup of each, shared by all its sends
        finally:
            answered.set()


async def test_receivers_hanging_at_four_endpoints_leave_room_for_the_others(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
) -> None:
    """Four endpoints whose receivers never answer, each with more events due than may go to one endpoint at
    once: together they could take all of a worker's sends (four times _PER_ENDPOINT), so another endpoint's
    event would wait out their timeout. A quarter of the sends is kept for endpoints with none out: the
    other's event goes out while all theirs still hang."""
    await set_program(client, admin_key)
    hanging = [f"/hooks/hang{n}" for n in range(4)]
    receiver.hanging_paths.update(hanging)
    for path in hanging:
        await add_endpoint(units, receiver.url.removesuffix("/hooks") + path, event_types=["member.enrolled"])
    members = [str((await enrol(client, pos_key))["id"]) for _ in range(10)]
    await add_endpoint(units, f"{receiver.url}/ok", event_types=["points.earned"])
    patient = with_settings(units, webhook_timeout_seconds=60)  # the hung sends stay out for the whole test
    assert 4 * _PER_ENDPOINT >= _SENDERS  # without the room kept, they would fill it
    async with worker_running(on_real_time(patient), tick_seconds=0.05):
        try:

            async def stuck() -> bool:
                return len(receiver.received) >= 3 * _PER_ENDPOINT

            assert await until(stuck, seconds=15)
            await earn(client, pos_key, members[0], 10_000)

            async def delivered() -> bool:
                found = await rows(
                    app, "SELECT status FROM webhook_deliveries WHERE event_type = 'points.earned'"
                )
                return [row["status"] for row in found] == ["succeeded"]

            assert await until(delivered, seconds=15), "held up behind the receivers that hang"
            kept = _SENDERS // _KEPT_FOR_IDLE
            hung = [m for m in receiver.received if json.loads(m.body)["type"] == "member.enrolled"]
            assert len(hung) == _SENDERS - kept  # all four busy: what they share, no more
            assert [e.status for e in receiver.exchanges] == [204]  # the other's; theirs all still hang
        finally:
            receiver.let_go.set()


async def test_probes_that_hang_leave_the_kept_room_to_healthy_endpoints(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
) -> None:
    """More failing endpoints than a worker has sends, each with an event waiting for its probe, and every
    probe hangs: probes take room as sends do and never the quarter kept for endpoints with none out, so a
    healthy endpoint's event goes out, signed, while they all still hang."""
    await set_program(client, admin_key)
    failing = [f"/hooks/down{n}" for n in range(_SENDERS + 4)]
    receiver.hanging_paths.update(failing)
    base = receiver.url.removesuffix("/hooks")
    for path in failing:
        endpoint_id, _ = await add_endpoint(units, base + path, event_types=["member.enrolled"])
        await set_endpoint(
            app, endpoint_id, failing_since=clock.now() - timedelta(minutes=1), next_probe_at=None
        )
    member = str((await enrol(client, pos_key))["id"])  # an event for each failing endpoint to probe with
    _, secret = await add_endpoint(units, f"{receiver.url}/ok", event_types=["points.earned"])
    patient = with_settings(units, webhook_timeout_seconds=60)  # the hung probes stay out for the whole test
    kept = _SENDERS // _KEPT_FOR_IDLE
    async with worker_running(on_real_time(patient), tick_seconds=0.05):
        try:

            async def probing() -> bool:
                return len(receiver.received) >= _SENDERS - kept

            assert await until(probing, seconds=15)
            await earn(client, pos_key, member, 10_000)

            async def delivered() -> bool:
                found = await rows(
                    app, "SELECT status FROM webhook_deliveries WHERE event_type = 'points.earned'"
                )
                return [row["status"] for row in found] == ["succeeded"]

            assert await until(delivered, seconds=15), "held up behind the probes that hang"
            probes = [m for m in receiver.received if json.loads(m.body)["type"] == "member.enrolled"]
            assert len(probes) == _SENDERS - kept  # what sends to endpoints with some out share, no more
            [sent] = [m for m in receiver.received if json.loads(m.body)["type"] == "points.earned"]
            assert Webhook(secret).verify(sent.body, sent.headers)["data"]["member_id"] == member
            # The healthy endpoint's only: every probe still hangs.
            assert [e.status for e in receiver.exchanges] == [204]
        finally:
            receiver.let_go.set()
