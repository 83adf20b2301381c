from __future__ import annotations

from typing import Any

import httpx

from tests.builders import enrol
from tests.conftest import bearer
from tests.points.helpers import earn

TEN_YUAN_OFF: dict[str, Any] = {"kind": "fixed_discount", "amount": 1000}


def reward_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "100 积分兑 10 元券", "cost_points": 100, "coupon": TEN_YUAN_OFF}
    return body | overrides


async def add_reward(client: httpx.AsyncClient, admin_key: str, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/rewards", json=reward_body(**overrides), headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def redeem(
    client: httpx.AsyncClient, key: str, member_id: str, reward_id: str, **headers: str
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{member_id}/rewards/{reward_id}/redeem", headers=bearer(key) | headers
    )


async def member_with_points(client: httpx.AsyncClient, pos_key: str, points: int) -> str:
    """A new member holding `points` points (the programme must earn 1 point per yuan)."""
    member = await enrol(client, pos_key)
    if points:
        assert (await earn(client, pos_key, member["id"], points * 100))["balance"] == points
    return str(member["id"])


async def read_reward(client: httpx.AsyncClient, admin_key: str, reward_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/rewards/{reward_id}", headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    reward: dict[str, Any] = response.json()
    return reward
