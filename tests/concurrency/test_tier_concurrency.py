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


async def test_operators_changing_the_ladder_at_once_get_a_clear_answer(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str
) -> None:
    async def add(n: int) -> httpx.Response:
        body = {
            "code": f"t{n}",
            "name": f"Tier {n}",
            "rank": n % 5,  # five ranks for ten tiers: half must be refused
            "metric": "spend",
            "window": "calendar_year",
            "threshold": n * 1000,
        }
        return await client.post("/v1/tiers", json=body, headers=bearer(admin_key))

    replies = await asyncio.gather(*(add(n) for n in range(10)))
    outcomes = {(r.status_code, None if r.status_code == 201 else r.json()["code"]) for r in replies}
    assert outcomes <= {
        (201, None),
        (409, "tier_rank_taken"),
        (409, "tier_ladder_changed_meanwhile"),
    }, [r.text for r in replies]
    created = [r.json()["code"] for r in replies if r.status_code == 201]
    ladder = (await client.get("/v1/tiers", headers=bearer(admin_key))).json()
    assert sorted(t["code"] for t in ladder["items"]) == sorted(created)
    assert len({t["rank"] for t in ladder["items"]}) == len(created)
    versions = await rows(app, "SELECT version FROM tier_ladder_versions ORDER BY version")
    assert [v["version"] for v in versions] == list(range(1, len(created) + 1))
