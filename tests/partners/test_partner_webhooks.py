"""A partner's webhook endpoint receives the events about that partner (its links and exchanges), signed per
Standard Webhooks, and nothing else of the programme: no other partner's, no member's points or profile
events. Our own endpoints receive everything, these included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.partners import service as partners
from loyalty_api.webhooks.endpoints import replay
from tests.builders import add_partner, enrol, make_partner_key
from tests.conftest import UNLIMITED, bearer
from tests.partners.helpers import link
from tests.points.helpers import earn, set_program
from tests.webhooks.endpoint_helpers import PUBLIC_URL, add_endpoint
from tests.webhooks.receiver import Receiver, running_receiver
from tests.webhooks.test_delivery_flow import pump, with_settings

EXCHANGES = partners.Terms(exchange_out_rate=Decimal(1))


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


def _received_by(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """The messages that verify with this endpoint's secret: the ones sent to it."""
    found = []
    for message in receiver.received:
        try:
            found.append(Webhook(secret).verify(message.body, message.headers))
        except WebhookVerificationError:
            continue
    return found


async def test_a_partners_endpoint_gets_only_the_events_about_that_partner(
    app: FastAPI,
    units: UnitsOfWork,
    receiver: Receiver,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
) -> None:
    await set_program(client, admin_key)
    a_id = await add_partner(app, code="cafe", terms=EXCHANGES)
    b_id = await add_partner(app, code="books", terms=EXCHANGES)
    a_key = await make_partner_key(app, a_id, rate_limit=UNLIMITED)
    b_key = await make_partner_key(app, b_id, rate_limit=UNLIMITED)
    _, ours = await add_endpoint(units, receiver.url)
    a_endpoint, a_secret = await add_endpoint(units, receiver.url, partner_id=a_id)
    _, b_secret = await add_endpoint(units, receiver.url, partner_id=b_id)

    at_a = str((await enrol(client, pos_key))["id"])
    at_b = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, at_a, 10_000)
    await link(client, pos_key, a_key, at_a, "cafe", "C-1")
    await link(client, pos_key, b_key, at_b, "books", "K-1")
    sent = await client.post(
        f"/v1/members/{at_a}/exchanges", json={"partner": "cafe", "points": 30}, headers=bearer(pos_key)
    )
    assert sent.status_code == 201, sent.text
    while await pump(units):  # one member's events go one after another
        pass

    to_a = _received_by(receiver, a_secret)
    assert [(m["type"], m["data"]["partner_customer_ref"]) for m in to_a] == [
        ("partner.linked", "C-1"),
        ("partner.exchange_requested", "C-1"),
    ]
    assert to_a[1]["data"]["exchange_id"] == sent.json()["id"]
    assert [m["type"] for m in _received_by(receiver, b_secret)] == ["partner.linked"]
    # ours hear all of it: enrolments, the earn, both partners' links, the exchange
    ours_got = [m["type"] for m in _received_by(receiver, ours)]
    assert ours_got.count("partner.linked") == 2
    assert {"member.enrolled", "points.earned", "partner.exchange_requested"} <= set(ours_got)

    # a replay to A's endpoint sends again A's events only
    async with units.begin() as uow:
        assert await replay(uow, uuid.UUID(a_endpoint), since=uow.clock.now() - timedelta(hours=1)) == 2


async def test_an_operator_makes_a_partners_endpoint_by_its_id(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    partner_id = await add_partner(app, code="hotel")
    made = await client.post(
        "/v1/webhook-endpoints",
        json={"url": PUBLIC_URL, "partner_id": str(partner_id)},
        headers=bearer(admin_key),
    )
    assert made.status_code == 201, made.text
    assert made.json()["partner_id"] == str(partner_id)
    read = await client.get(f"/v1/webhook-endpoints/{made.json()['id']}", headers=bearer(admin_key))
    assert read.json()["partner_id"] == str(partner_id)

    unknown = await client.post(
        "/v1/webhook-endpoints",
        json={"url": PUBLIC_URL, "partner_id": str(uuid.uuid4())},
        headers=bearer(admin_key),
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "partner_not_found")
