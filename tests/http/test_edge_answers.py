"""Answers at the edges: computed figures beyond what one request may carry, and stray slashes."""

from __future__ import annotations

import httpx

from tests.builders import enrol
from tests.conftest import bearer
from tests.points.helpers import cny, set_program


async def test_a_quote_whose_total_passes_the_largest_amount(
    client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    member = await enrol(client, pos_key)
    body = {"member_id": member["id"], "cart": {"subtotal": cny(10**12), "shipping": cny(10**12)}}
    response = await client.post("/v1/checkout/quote", json=body, headers=bearer(pos_key))
    assert response.status_code == 200, response.text
    assert response.json()["total"] == cny(2 * 10**12)


async def test_points_worth_more_than_the_largest_amount(
    client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key, point_value_minor="1000000")
    member = await enrol(client, pos_key)
    adjusted = await client.post(
        f"/v1/members/{member['id']}/adjustments",
        json={"points": 1_000_000_000, "reason": "a very good customer"},
        headers=bearer(admin_key),
    )
    assert adjusted.status_code == 201
    summary = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
    assert summary.status_code == 200
    assert summary.json()["available_value"] == cny(10**15)
    redeemed = await client.post(
        f"/v1/members/{member['id']}/redeem",
        json={"points": 2_000_000, "order_ref": "BIG"},
        headers=bearer(pos_key),
    )
    assert redeemed.status_code == 200
    assert redeemed.json()["value"] == cny(2 * 10**12)


async def test_an_earn_beyond_the_points_one_purchase_may_earn_is_refused(
    client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key, earn_rate="100000")
    member = await enrol(client, pos_key)
    response = await client.post(
        f"/v1/members/{member['id']}/earn",
        json={"order_ref": "HUGE", "amount": cny(10**12)},
        headers=bearer(pos_key),
    )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert response.json()["errors"][0]["field"] == "amount"
    points = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
    assert points.json()["balance"] == 0


async def test_a_stray_trailing_slash_is_a_problem_not_a_redirect(
    client: httpx.AsyncClient, pos_key: str
) -> None:
    response = await client.get("/v1/tiers/", headers=bearer(pos_key))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
