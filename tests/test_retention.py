"""Retention: no table grows without bound. Events dispatched longer ago than `event_retention_days` go
once no delivery of them is left; audit entries go after `audit_retention_days`; partner link codes a day
after they ended. (Deliveries: tests/webhooks/test_retention.py; Idempotency-Key records:
tests/http/test_idempotency.py.) Rows are aged by their ids, which carry the instant they were made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.audit.service import purge_audit_events
from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.partners.service import purge_link_codes
from loyalty_api.webhooks.retention import purge_deliveries, purge_events
from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import count, rows
from tests.partners.helpers import link, register_partner
from tests.points.helpers import earn, set_program
from tests.webhooks.endpoint_helpers import add_endpoint
from tests.webhooks.receiver import Receiver, running_receiver
from tests.webhooks.test_delivery_flow import pump, with_settings


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
def units(app: FastAPI, clock: FrozenClock) -> UnitsOfWork:
    # Ids carry the host's real time, and receivers check the signature's timestamp: start the frozen clock
    # at real time.
    clock.set(datetime.now(UTC).replace(microsecond=0))  # noqa: TID251 - a test lining up with real time
    return with_settings(app.state.units, webhook_allow_private_targets=True)


async def test_old_events_go_once_their_deliveries_are_gone_and_pending_ones_keep_theirs(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
) -> None:
    await set_program(client, admin_key)
    await add_endpoint(units, receiver.url, event_types=["points.earned"])
    delivered, waiting = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
    await earn(client, pos_key, delivered, 10_000)
    await pump(units)
    receiver.fail_next(503)
    await earn(client, pos_key, waiting, 10_000)
    await pump(units)  # refused: pending, retried later
    made = await count(app, "outbox_events")

    clock.advance(timedelta(days=89))
    assert await purge_deliveries(units) == 1  # the delivered one (30 days)
    assert await purge_events(units) == 0  # 90 days: not yet
    clock.advance(timedelta(days=2))
    purged = await purge_events(units)
    left = await rows(app, "SELECT type, member_id FROM outbox_events")
    # Only the event whose delivery is still pending is left (with its member, for the queue's order).
    assert [(row["type"], str(row["member_id"]).replace("-", "")) for row in left] == [
        ("points.earned", waiting.replace("-", ""))
    ]
    assert purged == made - 1
    assert await purge_events(units) == 0
    # The pending delivery still goes out when the receiver answers.
    await pump(units)
    assert await count(app, "webhook_deliveries") == 1
    assert [r["status"] for r in await rows(app, "SELECT status FROM webhook_deliveries")] == ["succeeded"]


async def test_audit_entries_go_after_their_retention(
    app: FastAPI, units: UnitsOfWork, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
) -> None:
    await set_program(client, admin_key)  # audited writes
    await set_program(client, admin_key, earn_rate="2")
    written = await count(app, "audit_events")
    assert written >= 2
    clock.advance(timedelta(days=729))
    assert await purge_audit_events(units) == 0
    clock.advance(timedelta(days=2))
    assert await purge_audit_events(units) == written
    listed = await client.get("/v1/audit-events", headers=bearer(admin_key))
    assert listed.status_code == 200
    assert listed.json()["items"] == []


async def test_link_codes_go_a_day_after_they_ended(
    app: FastAPI,
    units: UnitsOfWork,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
) -> None:
    partner_key = await register_partner(app, client, admin_key, "bookshop")
    member = await enrol(client, pos_key)
    await link(client, pos_key, partner_key, member["id"], "bookshop", "C-1")  # a code used
    unused = await client.post(
        f"/v1/members/{member['id']}/partner-link-codes",
        json={"partner": "bookshop"},
        headers=bearer(pos_key),
    )
    assert unused.status_code == 201  # a code never used
    assert await count(app, "partner_link_codes") == 2
    clock.advance(timedelta(hours=23))
    assert await purge_link_codes(units) == 0
    clock.advance(timedelta(hours=2))
    assert await purge_link_codes(units) == 2
    assert await count(app, "partner_link_codes") == 0
    # The link made with it stays.
    view = await client.get("/v1/partner/members/C-1", headers=bearer(partner_key))
    assert view.status_code == 200
