from __future__ import annotations

import itertools
from typing import Any

import httpx

from tests.conftest import bearer

_orders = itertools.count(1)

DEMO_LIKE_PROGRAM: dict[str, Any] = {
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "earn_rate": "1",
    "point_value_minor": "1",
    "rounding": "down",
    "expiry_months": 12,
    "min_redeem_points": 1,
    "max_redeem_share": "1",
}


def next_order() -> str:
    return f"R-{next(_orders):06d}"


def cny(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "CNY"}


async def set_program(client: httpx.AsyncClient, admin_key: str, **overrides: Any) -> dict[str, Any]:
    response = await client.put("/v1/program", json=DEMO_LIKE_PROGRAM | overrides, headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    program: dict[str, Any] = response.json()
    return program


async def earn(
    client: httpx.AsyncClient,
    key: str,
    member_id: str,
    amount: int,
    *,
    order_ref: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {"order_ref": order_ref or next_order(), "amount": cny(amount), **extra}
    response = await client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def points(client: httpx.AsyncClient, key: str, member_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{member_id}/points", headers=bearer(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def add_rule(client: httpx.AsyncClient, admin_key: str, **rule: Any) -> dict[str, Any]:
    response = await client.post("/v1/earning-rules", json=rule, headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def hold_points(
    client: httpx.AsyncClient, key: str, member_id: str, points: int, order_ref: str, *, ttl: int
) -> str:
    """A hold made over the API; its id."""
    held = await client.post(
        f"/v1/members/{member_id}/holds",
        json={"points": points, "order_ref": order_ref, "ttl_seconds": ttl},
        headers=bearer(key),
    )
    assert held.status_code == 201, held.text
    hold_id: str = held.json()["id"]
    return hold_id
