"""Rewards and coupons under simultaneous requests: stock never oversold, points never lost or double spent,
a coupon used once. Each request runs in its own transaction on its own pooled connection; on PostgreSQL
they really race for the reward, account and coupon rows."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import enrol
from tests.conftest import bearer
from tests.coupons.helpers import coupon_code, coupons_of
from tests.inspect_db import count, events, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import points, set_program
from tests.rewards.helpers import add_reward, member_with_points, read_reward, redeem, reward_body


def outcomes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    """(status, problem code) of each response; the code is None for a success."""
    return Counter((r.status_code, r.json()["code"] if r.is_error else None) for r in responses)


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)


class TestConcurrentRedemptions:
    async def test_twenty_members_race_for_five_in_stock(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, cost_points=300, stock=5)
        members = [await member_with_points(client, pos_key, 1000) for _ in range(20)]

        responses = await asyncio.gather(*(redeem(client, pos_key, m, reward["id"]) for m in members))

        assert outcomes(responses) == {(201, None): 5, (409, "reward_out_of_stock"): 15}
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 0
        winners = {r.json()["member_id"] for r in responses if r.status_code == 201}
        for member_id in members:
            balance = (await points(client, pos_key, member_id))["balance"]
            coupons = await coupons_of(client, pos_key, member_id)
            if member_id in winners:
                assert (balance, len(coupons)) == (700, 1), member_id
            else:
                assert (balance, coupons) == (1000, []), member_id
        assert await count(app, "reward_redemptions") == 5
        assert await count(app, "coupons") == 5
        assert len(await events(app, "reward.redeemed")) == 5
        await assert_ledger_invariant(app)

    async def test_one_member_fires_ten_redeems_with_points_for_three(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, cost_points=100)  # unlimited stock
        member_id = await member_with_points(client, pos_key, 350)

        responses = await asyncio.gather(
            *(redeem(client, pos_key, member_id, reward["id"]) for _ in range(10))
        )

        assert outcomes(responses) == {(201, None): 3, (422, "insufficient_points"): 7}
        assert (await points(client, pos_key, member_id))["balance"] == 50
        assert len(await coupons_of(client, pos_key, member_id)) == 3
        balances_after = sorted(r.json()["balance"] for r in responses if r.status_code == 201)
        assert balances_after == [50, 150, 250]
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] is None
        await assert_ledger_invariant(app, member_id)

    async def test_one_member_cannot_beat_the_per_member_limit_by_racing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, cost_points=100, per_member_limit=2, stock=100)
        member_id = await member_with_points(client, pos_key, 5000)

        responses = await asyncio.gather(
            *(redeem(client, pos_key, member_id, reward["id"]) for _ in range(10))
        )

        assert outcomes(responses) == {(201, None): 2, (409, "reward_limit_reached"): 8}
        assert (await points(client, pos_key, member_id))["balance"] == 4800
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 98
        await assert_ledger_invariant(app, member_id)


async def changes_announced(app: FastAPI, reward_id: str) -> list[tuple[str, str]]:
    """The reward's reward.changed events in the order they were written: (change, name)."""
    found = await rows(
        app,
        "SELECT payload FROM outbox_events WHERE type = 'reward.changed' ORDER BY sequence",
    )
    payloads = [json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in found]
    return [(p["change"], p["name"]) for p in payloads if p["reward_id"] == reward_id]


class TestConcurrentReplaces:
    """Operators saving one reward at once: each replace reads the reward under lock, so it compares what it
    sends with what the replace before it left, and announces only a real change."""

    async def test_the_same_replacement_sent_at_once_is_one_change(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        path, body = f"/v1/rewards/{reward['id']}", reward_body(name="200 积分兑 20 元券", cost_points=200)

        replies = await asyncio.gather(
            *(client.put(path, json=body, headers=bearer(admin_key)) for _ in range(8))
        )

        assert [r.status_code for r in replies] == [200] * 8, [r.text for r in replies if r.is_error]
        assert await changes_announced(app, reward["id"]) == [
            ("created", reward["name"]),
            ("replaced", "200 积分兑 20 元券"),
        ]

    async def test_replacements_racing_each_other_announce_each_change_once_and_the_last_one_stands(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        path = f"/v1/rewards/{reward['id']}"
        names = ["Gold voucher", "Silver voucher"] * 4

        replies = await asyncio.gather(
            *(client.put(path, json=reward_body(name=name), headers=bearer(admin_key)) for name in names)
        )

        assert [r.status_code for r in replies] == [200] * 8, [r.text for r in replies if r.is_error]
        announced = [name for _, name in await changes_announced(app, reward["id"])]
        # Every event is a change from the one before it (never the same name twice in a row), and the
        # last announced is what the reward holds.
        assert all(before != after for before, after in itertools.pairwise(announced)), announced
        assert announced[-1] == (await read_reward(client, admin_key, reward["id"]))["name"]


class TestConcurrentCouponUse:
    async def test_twenty_tills_use_one_coupon(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str
    ) -> None:
        member_id = str((await enrol(client, pos_key))["id"])
        code = await coupon_code(app, member_id)

        async def use(n: int) -> httpx.Response:
            key, body = (
                (pos_key, {"order_ref": f"ORD-{n}"})
                if n % 2
                else (ecommerce_key, {"order_ref": f"ORD-{n}", "member_id": member_id})
            )
            return await client.post(f"/v1/coupons/{code}/use", json=body, headers=bearer(key))

        responses = await asyncio.gather(*(use(n) for n in range(20)))

        assert outcomes(responses) == {(200, None): 1, (409, "coupon_already_used"): 19}
        [winner] = [r.json() for r in responses if r.status_code == 200]
        [listed] = await coupons_of(client, pos_key, member_id)
        assert (listed["status"], listed["used_order_ref"]) == ("used", winner["used_order_ref"])
        assert len(await events(app, "coupon.used")) == 1


class TestRedemptionsBesideAReplace:
    """A redemption racing an operator's change to the reward pays the price, and gets the coupon, of the
    reward as the change left it: terms read before a change that commits while the redemption is under way
    are stale."""

    async def test_a_restock_at_a_new_price_is_bought_only_at_the_new_price(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        # Sold out at 100 points; the operator restocks it at 500 points with a bigger coupon while members
        # keep trying. Nothing could be bought before the restock, so every purchase is on its terms. Three
        # rounds, as the race is one of timing.
        restocked = reward_body(cost_points=500, stock=30, coupon={"kind": "fixed_discount", "amount": 6000})

        async def restock(reward_id: str) -> httpx.Response:
            await asyncio.sleep(0.02)  # while the redemptions are under way
            return await client.put(f"/v1/rewards/{reward_id}", json=restocked, headers=bearer(admin_key))

        async def attempt(n: int, member_id: str, reward_id: str) -> httpx.Response:
            await asyncio.sleep(n * 0.003)  # one after another: before the restock, beside it, after it
            return await redeem(client, pos_key, member_id, reward_id)

        for _ in range(3):
            reward = await add_reward(client, admin_key, cost_points=100, stock=0)
            members = [await member_with_points(client, pos_key, 1000) for _ in range(25)]

            *responses, replaced = await asyncio.gather(
                *(attempt(n, m, reward["id"]) for n, m in enumerate(members[:-1])), restock(reward["id"])
            )

            assert replaced.status_code == 200, replaced.text
            responses.append(await redeem(client, pos_key, members[-1], reward["id"]))  # once it is restocked
            assert outcomes(responses).keys() <= {(201, None), (409, "reward_out_of_stock")}
            bought = [r.json() for r in responses if r.status_code == 201]
            assert [(b["points_spent"], b["coupon"]["properties"]["amount"]) for b in bought] == [
                (500, 6000)
            ] * len(bought)
            assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 30 - len(bought)
            for member_id in members:
                assert (await points(client, pos_key, member_id))["balance"] in (1000, 500), member_id
        await assert_ledger_invariant(app)
