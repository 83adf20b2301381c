"""Buying a reward with points: one transaction that spends the points, takes the stock and issues the coupon,
or changes nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.conftest import START, bearer
from tests.coupons.helpers import coupons_of
from tests.inspect_db import count, events, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import earn, points, set_program
from tests.rewards.helpers import add_reward, member_with_points, read_reward, redeem, reward_body

WRITES = ("ledger_entries", "point_lots", "coupons", "reward_redemptions", "outbox_events")
CODE = re.compile(r"^[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}$")


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)


class TestRedeem:
    async def test_points_buy_a_coupon(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, stock=10, coupon_valid_days=30)
        member_id = await member_with_points(client, pos_key, 500)

        response = await redeem(client, pos_key, member_id, reward["id"])

        assert response.status_code == 201, response.text
        result = response.json()
        assert (result["points_spent"], result["balance"], result["available"]) == (100, 400, 400)
        assert (result["reward_id"], result["member_id"]) == (reward["id"], member_id)
        coupon = result["coupon"]
        assert CODE.match(coupon["code"]), coupon["code"]
        assert coupon["name"] == reward["name"]
        assert (coupon["kind"], coupon["properties"]["amount"], coupon["currency"]) == (
            "fixed_discount",
            1000,
            "CNY",
        )
        assert coupon["status"] == "active"
        assert datetime.fromisoformat(coupon["valid_from"]) == START
        assert datetime.fromisoformat(coupon["valid_until"]) == START + timedelta(days=30)
        assert coupon["source"] == {"type": "reward", "id": reward["id"]}
        assert coupon["member_id"] == member_id

        assert (await points(client, pos_key, member_id))["balance"] == 400
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 9
        assert [c["code"] for c in await coupons_of(client, pos_key, member_id)] == [coupon["code"]]
        ledger = await client.get(
            f"/v1/members/{member_id}/ledger", params={"type": "reward"}, headers=bearer(pos_key)
        )
        [entry] = ledger.json()["items"]
        assert (entry["type"], entry["amount"], entry["balance_after"]) == ("reward", -100, 400)
        assert entry["details"]["reward_id"] == reward["id"]
        assert entry["details"]["coupon_id"] == coupon["id"]
        assert coupon["code"] not in str(entry)

        [redeemed] = await events(app, "reward.redeemed")
        assert redeemed["payload"] == {
            "redemption_id": result["id"],
            "reward_id": reward["id"],
            "member_id": member_id,
            "coupon_id": coupon["id"],
            "points": 100,
            "balance": 400,
            "stock_left": 9,
        }
        [issued] = await events(app, "coupon.issued")
        assert (issued["payload"]["coupon_id"], issued["payload"]["source_type"]) == (coupon["id"], "reward")
        assert "phone" not in str(redeemed["payload"]) + str(issued["payload"])
        assert coupon["code"] not in str(redeemed["payload"]) + str(
            issued["payload"]
        )  # a code is a bearer secret
        await assert_ledger_invariant(app, member_id)

    async def test_points_are_spent_from_the_oldest_lot(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        reward = await add_reward(client, admin_key, cost_points=150)
        member_id = await member_with_points(client, pos_key, 100)
        clock.advance(timedelta(days=40))
        await earn(client, pos_key, member_id, 10_000)
        assert (await redeem(client, pos_key, member_id, reward["id"])).status_code == 201
        expiring = (await points(client, pos_key, member_id))["expiring"]
        assert [e["points"] for e in expiring] == [50], "the first lot is gone, 50 of the second remain"
        await assert_ledger_invariant(app, member_id)

    async def test_insufficient_points_change_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, stock=3)
        member_id = await member_with_points(client, pos_key, 99)
        before = await table_counts(app, *WRITES)

        response = await redeem(client, pos_key, member_id, reward["id"])

        assert response.status_code == 422
        assert response.json()["code"] == "insufficient_points"
        assert await table_counts(app, *WRITES) == before
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 3
        assert (await points(client, pos_key, member_id))["balance"] == 99
        assert await coupons_of(client, pos_key, member_id) == []
        await assert_ledger_invariant(app, member_id)

    async def test_per_member_limit(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, per_member_limit=2, stock=10)
        member_id = await member_with_points(client, pos_key, 1000)
        other_id = await member_with_points(client, pos_key, 1000)
        assert [(await redeem(client, pos_key, member_id, reward["id"])).status_code for _ in range(2)] == [
            201,
            201,
        ]
        before = await table_counts(app, *WRITES)

        third = await redeem(client, pos_key, member_id, reward["id"])

        assert third.status_code == 409
        assert third.json()["code"] == "reward_limit_reached"
        assert await table_counts(app, *WRITES) == before
        assert (await points(client, pos_key, member_id))["balance"] == 800
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 8
        assert (await redeem(client, pos_key, other_id, reward["id"])).status_code == 201
        await assert_ledger_invariant(app)

    async def test_out_of_stock(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, stock=1)
        first = await member_with_points(client, pos_key, 500)
        second = await member_with_points(client, pos_key, 500)
        assert (await redeem(client, pos_key, first, reward["id"])).status_code == 201
        before = await table_counts(app, *WRITES)

        response = await redeem(client, pos_key, second, reward["id"])

        assert response.status_code == 409
        assert response.json()["code"] == "reward_out_of_stock"
        assert await table_counts(app, *WRITES) == before
        assert (await points(client, pos_key, second))["balance"] == 500
        assert await coupons_of(client, pos_key, second) == []
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 0
        await assert_ledger_invariant(app)

    async def test_restocked_reward_can_be_redeemed_again(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, stock=0)
        member_id = await member_with_points(client, pos_key, 500)
        assert (await redeem(client, pos_key, member_id, reward["id"])).json()[
            "code"
        ] == "reward_out_of_stock"
        await client.put(f"/v1/rewards/{reward['id']}", json=reward_body(stock=1), headers=bearer(admin_key))
        assert (await redeem(client, pos_key, member_id, reward["id"])).status_code == 201

    @pytest.mark.parametrize(
        "window",
        [
            {"active": False},
            {"valid_from": (START + timedelta(hours=1)).isoformat()},
            {"valid_until": START.isoformat(), "valid_from": (START - timedelta(days=1)).isoformat()},
        ],
    )
    async def test_reward_not_on_offer_is_409_and_changes_nothing(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        window: dict[str, object],
    ) -> None:
        reward = await add_reward(client, admin_key, stock=5, **window)
        member_id = await member_with_points(client, pos_key, 500)
        before = await table_counts(app, *WRITES)

        response = await redeem(client, pos_key, member_id, reward["id"])

        assert response.status_code == 409
        assert response.json()["code"] == "reward_not_available"
        assert await table_counts(app, *WRITES) == before
        assert (await points(client, pos_key, member_id))["balance"] == 500
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 5

    async def test_reward_becomes_redeemable_when_its_window_opens(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        reward = await add_reward(client, admin_key, valid_from=(START + timedelta(days=1)).isoformat())
        member_id = await member_with_points(client, pos_key, 500)
        assert (await redeem(client, pos_key, member_id, reward["id"])).status_code == 409
        clock.advance(timedelta(days=1))
        assert (await redeem(client, pos_key, member_id, reward["id"])).status_code == 201

    async def test_unknown_reward_or_member_is_404(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        member_id = await member_with_points(client, pos_key, 500)
        missing = "01890a5d-ac96-774b-bcce-b302099a8057"
        no_reward = await redeem(client, pos_key, member_id, missing)
        no_member = await redeem(client, pos_key, missing, reward["id"])
        assert (no_reward.status_code, no_reward.json()["code"]) == (404, "reward_not_found")
        assert (no_member.status_code, no_member.json()["code"]) == (404, "member_not_found")
        assert await count(app, "coupons") == 0
        assert (await points(client, pos_key, member_id))["balance"] == 500

    async def test_suspended_member_cannot_redeem(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        member_id = await member_with_points(client, pos_key, 500)
        patched = await client.patch(
            f"/v1/members/{member_id}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert patched.status_code == 200
        response = await redeem(client, pos_key, member_id, reward["id"])
        assert (response.status_code, response.json()["code"]) == (409, "member_not_active")
        assert (await points(client, pos_key, member_id))["balance"] == 500

    async def test_retry_with_the_same_idempotency_key_redeems_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        member_id = await member_with_points(client, pos_key, 500)
        responses = [
            await redeem(client, ecommerce_key, member_id, reward["id"], **{"Idempotency-Key": "app-42"})
            for _ in range(3)
        ]
        assert {r.status_code for r in responses} == {201}
        assert len({r.content for r in responses}) == 1
        assert responses[1].headers["Idempotent-Replayed"] == "true"
        assert (await points(client, pos_key, member_id))["balance"] == 400
        assert await count(app, "coupons") == 1

    async def test_billing_key_may_not_redeem(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, billing_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        member_id = await member_with_points(client, pos_key, 500)
        response = await redeem(client, billing_key, member_id, reward["id"])
        assert response.status_code == 403
        assert (await points(client, pos_key, member_id))["balance"] == 500
