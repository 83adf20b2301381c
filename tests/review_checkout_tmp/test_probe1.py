from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.checkout.helpers import cart, give_points, item, quote, buy_coupon
from tests.conftest import START, bearer
from tests.points.helpers import earn, set_program, points


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)


async def test_quote_offers_points_that_have_expired(
    client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, clock: FrozenClock
) -> None:
    member = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, member, 100_000)  # 1000 points, valid 12 months
    clock.advance(timedelta(days=400))  # expired; the expiry job has not run yet
    q = await quote(client, ecommerce_key, member, cart(item("A", 50_000)), points_to_use=1000)
    hold = await client.post(
        f"/v1/members/{member}/holds",
        json={"points": q["points"]["applied"], "order_ref": "W-1", "ttl_seconds": 600},
        headers=bearer(ecommerce_key),
    )
    print("quote points", q["points"], "hold", hold.status_code, hold.json().get("code"))
    assert q["points"]["applied"] == 0 or hold.status_code == 201


async def test_quote_hides_points_of_an_expired_hold(
    client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, clock: FrozenClock
) -> None:
    member = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, member, 100_000)  # 1000 points
    hold = await client.post(
        f"/v1/members/{member}/holds",
        json={"points": 1000, "order_ref": "W-2", "ttl_seconds": 60},
        headers=bearer(ecommerce_key),
    )
    assert hold.status_code == 201, hold.text
    clock.advance(timedelta(minutes=5))  # the hold is over; the release job has not run yet
    q = await quote(client, ecommerce_key, member, cart(item("A", 50_000)), points_to_use=1000)
    hold2 = await client.post(
        f"/v1/members/{member}/holds",
        json={"points": 1000, "order_ref": "W-3", "ttl_seconds": 600},
        headers=bearer(ecommerce_key),
    )
    print("quote points", q["points"], "hold2", hold2.status_code)
    assert hold2.status_code == 201
    assert q["points"]["applied"] == 1000
