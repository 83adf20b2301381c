"""The rewards catalogue: admin CRUD, validation, and what other keys may see."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.conftest import START, bearer
from tests.inspect_db import count, events
from tests.points.helpers import set_program
from tests.rewards.helpers import add_reward, member_with_points, read_reward, redeem, reward_body


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)


def _iso(delta: timedelta) -> str:
    return (START + delta).isoformat()


class TestCatalogue:
    async def test_create_read_list_replace(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await add_reward(
            client,
            admin_key,
            description="整单满 100 元可用",
            stock=50,
            per_member_limit=2,
            coupon={"kind": "fixed_discount", "amount": 1000, "min_subtotal": 10_000},
        )
        assert created["cost_points"] == 100
        assert created["stock_left"] == 50
        assert created["per_member_limit"] == 2
        assert created["coupon"] == {
            "kind": "fixed_discount",
            "amount": 1000,
            "min_subtotal": 10_000,
            "categories": [],
            "channels": [],
        }
        assert created["coupon_valid_days"] == 30
        assert created["currency"] == "CNY"
        assert created["active"] is True
        assert created["available"] is True
        assert await read_reward(client, admin_key, created["id"]) == created
        listed = (await client.get("/v1/rewards", headers=bearer(admin_key))).json()
        assert listed == {"items": [created], "next_cursor": None}

        replaced = await client.put(
            f"/v1/rewards/{created['id']}",
            json=reward_body(
                name="9 折券", cost_points=800, coupon={"kind": "percent_discount", "percent": "10"}
            ),
            headers=bearer(admin_key),
        )
        assert replaced.status_code == 200, replaced.text
        body = replaced.json()
        assert (body["name"], body["cost_points"], body["coupon"]["kind"], body["coupon"]["percent"]) == (
            "9 折券",
            800,
            "percent_discount",
            "10",
        )
        assert body["stock_left"] == 50, "a PUT without `stock` keeps the stock left"
        assert body["per_member_limit"] is None, "a PUT replaces the rest"
        assert body["created_at"] == created["created_at"]
        changes = [e["payload"]["change"] for e in await events(app, "reward.changed")]
        assert changes == ["created", "replaced"]

    async def test_the_same_reward_put_again_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        """PUT takes no Idempotency-Key (a repeat sets the same values): the reward sent again, stock
        included, keeps its `updated_at` and receivers hear of one change."""
        reward = await add_reward(client, admin_key, stock=5)
        body = reward_body(name="9 折券", cost_points=800, stock=20, valid_until=_iso(timedelta(days=30)))
        clock.advance(timedelta(minutes=1))
        first = await client.put(f"/v1/rewards/{reward['id']}", json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=5))
        again = await client.put(f"/v1/rewards/{reward['id']}", json=body, headers=bearer(admin_key))
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        changes = [e["payload"]["change"] for e in await events(app, "reward.changed")]
        assert changes == ["created", "replaced"]

    async def test_put_with_stock_sets_what_is_left(self, client: httpx.AsyncClient, admin_key: str) -> None:
        reward = await add_reward(client, admin_key, stock=5)
        for stock, expected in ((12, 12), (0, 0), (None, None)):
            response = await client.put(
                f"/v1/rewards/{reward['id']}", json=reward_body(stock=stock), headers=bearer(admin_key)
            )
            assert response.status_code == 200, response.text
            assert response.json()["stock_left"] == expected
            assert response.json()["available"] is (expected != 0)

    async def test_put_without_stock_keeps_the_count_after_redemptions(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, stock=5)
        member_id = await member_with_points(client, pos_key, 300)
        for _ in range(2):
            assert (await redeem(client, pos_key, member_id, reward["id"])).status_code == 201
        response = await client.put(
            f"/v1/rewards/{reward['id']}", json=reward_body(name="改名"), headers=bearer(admin_key)
        )
        assert response.json()["stock_left"] == 3

    async def test_deactivated_reward_is_kept_and_shown_as_unavailable(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        response = await client.put(
            f"/v1/rewards/{reward['id']}", json=reward_body(active=False), headers=bearer(admin_key)
        )
        assert (response.json()["active"], response.json()["available"]) == (False, False)
        assert (
            await client.delete(f"/v1/rewards/{reward['id']}", headers=bearer(admin_key))
        ).status_code == 405

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"cost_points": 100.5}, "cost_points"),
            ({"cost_points": "100"}, "cost_points"),
            ({"cost_points": 0}, "cost_points"),
            ({"name": ""}, "name"),
            ({"stock": -1}, "stock"),
            ({"stock": 1.5}, "stock"),
            ({"per_member_limit": 0}, "per_member_limit"),
            ({"coupon_valid_days": 0}, "coupon_valid_days"),
            ({"coupon": {"kind": "fixed_discount", "amount": 1000.5}}, "coupon.fixed_discount.amount"),
            ({"coupon": {"kind": "fixed_discount", "amount": 0}}, "coupon.fixed_discount.amount"),
            ({"coupon": {"kind": "percent_discount", "percent": "1_0"}}, "coupon.percent_discount.percent"),
            ({"coupon": {"kind": "percent_discount", "percent": "0"}}, "coupon.percent_discount.percent"),
            ({"coupon": {"kind": "percent_discount", "percent": "120"}}, "coupon.percent_discount.percent"),
            ({"coupon": {"kind": "free_item"}}, "coupon.free_item.sku"),
            ({"coupon": {"kind": "points_multiplier", "multiplier": "2"}}, "coupon.kind"),
            ({"coupon": {"kind": "member_day_price", "weekday": 3, "percent": "20"}}, "coupon.kind"),
            (
                {"coupon": {"kind": "fixed_discount", "amount": 100, "surprise": 1}},
                "coupon.fixed_discount.surprise",
            ),
            ({"surprise": True}, "surprise"),
            ({"valid_from": "2026-04-01T00:00:00"}, "valid_from"),
            ({"valid_from": "2026-05-01T00:00:00Z", "valid_until": "2026-04-01T00:00:00Z"}, "valid_until"),
        ],
    )
    async def test_invalid_reward_is_422_and_writes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, change: dict[str, Any], field: str
    ) -> None:
        response = await client.post("/v1/rewards", json=reward_body(**change), headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in problem["errors"]], problem["errors"]
        assert await count(app, "rewards") == 0

    async def test_missing_coupon_is_422(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.post(
            "/v1/rewards", json={"name": "x", "cost_points": 10}, headers=bearer(admin_key)
        )
        assert response.status_code == 422
        assert "coupon" in [e["field"] for e in response.json()["errors"]]

    async def test_invalid_put_changes_nothing(self, client: httpx.AsyncClient, admin_key: str) -> None:
        reward = await add_reward(client, admin_key, stock=7)
        response = await client.put(
            f"/v1/rewards/{reward['id']}",
            json=reward_body(cost_points=-5, stock=1),
            headers=bearer(admin_key),
        )
        assert response.status_code == 422
        assert await read_reward(client, admin_key, reward["id"]) == reward

    async def test_unknown_reward_is_404(self, client: httpx.AsyncClient, admin_key: str) -> None:
        missing = "01890a5d-ac96-774b-bcce-b302099a8057"
        read = await client.get(f"/v1/rewards/{missing}", headers=bearer(admin_key))
        put = await client.put(f"/v1/rewards/{missing}", json=reward_body(), headers=bearer(admin_key))
        assert [(r.status_code, r.json()["code"]) for r in (read, put)] == [(404, "reward_not_found")] * 2

    async def test_only_admin_changes_the_catalogue(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str, billing_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        for key in (pos_key, ecommerce_key):
            assert (
                await client.post("/v1/rewards", json=reward_body(), headers=bearer(key))
            ).status_code == 403
            put = await client.put(
                f"/v1/rewards/{reward['id']}", json=reward_body(name="x"), headers=bearer(key)
            )
            assert put.status_code == 403
            assert put.json()["code"] == "scope_not_allowed"
        assert (await client.get("/v1/rewards", headers=bearer(billing_key))).status_code == 403
        assert (await client.get("/v1/rewards")).status_code == 401
        assert (await read_reward(client, admin_key, reward["id"]))["name"] == reward["name"]


class TestWhoSeesWhat:
    async def test_other_keys_see_only_rewards_on_offer_now(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        on_offer = await add_reward(client, admin_key, name="on offer", stock=0)  # sold out still shows
        inactive = await add_reward(client, admin_key, name="inactive", active=False)
        future = await add_reward(client, admin_key, name="future", valid_from=_iso(timedelta(days=2)))
        ended = await add_reward(client, admin_key, name="ended", valid_until=_iso(timedelta(seconds=1)))
        clock.advance(timedelta(seconds=1))

        every = (await client.get("/v1/rewards", headers=bearer(admin_key))).json()["items"]
        assert [r["name"] for r in every] == ["on offer", "inactive", "future", "ended"]
        for key in (pos_key, ecommerce_key):
            shown = (await client.get("/v1/rewards", headers=bearer(key))).json()["items"]
            assert [r["name"] for r in shown] == ["on offer"]
            assert shown[0]["available"] is False  # out of stock
            for hidden in (inactive, future, ended):
                response = await client.get(f"/v1/rewards/{hidden['id']}", headers=bearer(key))
                assert (response.status_code, response.json()["code"]) == (404, "reward_not_found")
            assert (await client.get(f"/v1/rewards/{on_offer['id']}", headers=bearer(key))).status_code == 200

        clock.advance(timedelta(days=2))
        shown = (await client.get("/v1/rewards", headers=bearer(pos_key))).json()["items"]
        assert [r["name"] for r in shown] == ["on offer", "future"]

    async def test_pages_follow_creation_order(self, client: httpx.AsyncClient, admin_key: str) -> None:
        created = [(await add_reward(client, admin_key, name=f"reward {n}"))["id"] for n in range(5)]
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/rewards", params=params, headers=bearer(admin_key))).json()
            seen += [r["id"] for r in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert (seen, pages) == (created, 3)

    async def test_bad_cursor_is_422(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.get("/v1/rewards", params={"cursor": "!!"}, headers=bearer(admin_key))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "cursor"
