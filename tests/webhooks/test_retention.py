"""Retention: deliveries that are done (delivered or given up) are purged with their attempts once older than
`webhook_retention_days`; pending ones never are, however old; younger ones stay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.settings import Settings
from loyalty_api.webhooks.retention import purge_deliveries
from tests.builders import enrol
from tests.databases import is_postgres, side_engine, until_waiting_for_a_lock
from tests.inspect_db import rows, table_counts
from tests.points.helpers import earn, set_program
from tests.webhooks.endpoint_helpers import add_endpoint
from tests.webhooks.receiver import Receiver, running_receiver
from tests.webhooks.test_delivery_flow import pump, with_settings


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
def units(app: FastAPI) -> UnitsOfWork:
    return with_settings(app.state.units, webhook_allow_private_targets=True)


async def test_done_deliveries_past_retention_go_with_their_attempts_and_pending_ones_stay(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
) -> None:
    # Receivers check the signature's timestamp: start the frozen clock at real time.
    clock.set(datetime.now(UTC).replace(microsecond=0))  # noqa: TID251 - a test lining up with the receiver
    await set_program(client, admin_key)
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    delivered, given_up, waiting = [str((await enrol(client, pos_key))["id"]) for _ in range(3)]
    for member_id in (delivered, given_up):
        await earn(client, pos_key, member_id, 10_000)
    await pump(units)  # both delivered
    async with units.database.engine.begin() as connection:  # one given up, as after its last retry
        await connection.execute(
            text("UPDATE webhook_deliveries SET status = 'failed' WHERE ordering_key = :m"), {"m": given_up}
        )
    receiver.fail_next(503)
    await earn(client, pos_key, waiting, 10_000)
    await pump(units)  # refused: pending, to be retried
    assert await table_counts(app, "webhook_deliveries", "webhook_attempts") == {
        "webhook_deliveries": 3,
        "webhook_attempts": 3,
    }

    settled_before = await settled_metrics(client)
    assert settled_before == {"succeeded": 2.0, "failed": 0.0}  # the one given up by hand was not counted
    clock.advance(timedelta(days=29, hours=23))
    assert await purge_deliveries(units) == 0  # not old enough yet
    clock.advance(timedelta(hours=2))
    receiver.fail_next(503)
    await earn(client, pos_key, delivered, 10_000)
    # The endpoint is failing: one probe goes out, the old pending one (due), refused again; the delivery
    # made now waits for the endpoint to answer. Both pending.
    await pump(units)
    assert await purge_deliveries(units) == 2
    left = await rows(app, "SELECT ordering_key, status FROM webhook_deliveries")
    assert {r["status"] for r in left} == {"pending"}
    # the old pending one and the one made now stay, with their attempts
    assert sorted(r["ordering_key"] for r in left) == sorted([waiting, delivered])
    orphans = (
        "SELECT count(*) AS n FROM webhook_attempts"
        " WHERE delivery_id NOT IN (SELECT id FROM webhook_deliveries)"
    )
    assert await rows(app, orphans) == [{"n": 0}]
    assert await table_counts(app, "webhook_attempts") == {"webhook_attempts": 2}
    assert await settled_metrics(client) == settled_before  # the figures outlive the rows
    assert await purge_deliveries(units) == 0


async def settled_metrics(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    found = {}
    for status in ("succeeded", "failed"):
        prefix = f'loyalty_webhook_deliveries{{status="{status}"}}'
        [line] = [x for x in text.splitlines() if x.startswith(prefix)]
        found[status] = float(line.split()[-1])
    return found


@pytest.mark.skipif(not is_postgres(), reason="SQLite's writers take turns: no overlap")
async def test_a_retry_under_way_as_the_purge_runs_keeps_its_delivery(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
    settings: Settings,
) -> None:
    """An operator retries a delivery past retention while the purge runs: the retry's answer (pending) must
    hold, the delivery sent, not deleted unsent behind the purge's read of it as done."""
    clock.set(datetime.now(UTC).replace(microsecond=0))  # noqa: TID251 - a test lining up with the receiver
    await set_program(client, admin_key)
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    member_id = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, member_id, 10_000)
    await pump(units)
    [delivery] = await rows(app, "SELECT id FROM webhook_deliveries")
    clock.advance(timedelta(days=31))
    engine = side_engine(settings)
    try:
        async with engine.connect() as retry, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            reset = text("UPDATE webhook_deliveries SET status = 'pending' WHERE id = :id")
            await retry.execute(reset, {"id": delivery["id"]})  # the retry's reset, not committed yet
            purge = asyncio.ensure_future(purge_deliveries(units))
            await until_waiting_for_a_lock(watcher, purge)
            await retry.commit()
            await purge
    finally:
        await engine.dispose()
    assert await rows(app, "SELECT status FROM webhook_deliveries") == [{"status": "pending"}]
