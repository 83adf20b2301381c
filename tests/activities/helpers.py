from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer


async def add_activity_rule(client: httpx.AsyncClient, admin_key: str, **rule: Any) -> dict[str, Any]:
    body = {"type": "check_in", "name": "Daily check-in", "points": 10, **rule}
    response = await client.post("/v1/activity-rules", json=body, headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def record_reply(
    client: httpx.AsyncClient, key: str, member_id: str, ref: str, type: str = "check_in"
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{member_id}/activities", json={"type": type, "ref": ref}, headers=bearer(key)
    )


async def record(
    client: httpx.AsyncClient, key: str, member_id: str, ref: str, type: str = "check_in"
) -> dict[str, Any]:
    response = await record_reply(client, key, member_id, ref, type)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found
