"""Many earns at once for a member crossing a tier threshold: one upgrade, one event, the ledger intact."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.builders import add_tier, enrol
from tests.conftest import bearer
from tests.inspect_db import events, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, set_program


async def test_concurrent_earns_upgrade_once(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    await add_tier(client, admin_key, "member", rank=0)
    await add_tier(client, admin_key, "silver", rank=1, threshold=100_000, points_multiplier="2")
    member = await enrol(client, pos_key)

    async def buy(n: int) -> httpx.Response:
        return await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": f"T-{n}", "amount": cny(10_000)},
            headers=bearer(pos_key),
        )

    replies = await asyncio.gather(*(buy(n) for n in range(30)))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies if r.status_code != 200]
    # Earns are serialized by the account row: the 10th purchase qualifies, and only it says so.
    assert sum(r.json()["tier_changed"] for r in replies) == 1
    assert len(await events(app, "tier.upgraded")) == 1
    changes = await rows(app, "SELECT change, to_code FROM tier_changes")
    assert changes == [{"change": "upgrade", "to_code": "silver"}]
    # 10 purchases at 1×, 20 at silver's 2×: 100 points each at the base rate.
    points = sorted(r.json()["points_earned"] for r in replies)
    assert points == [100] * 10 + [200] * 20
    await assert_ledger_invariant(app, member["id"])
