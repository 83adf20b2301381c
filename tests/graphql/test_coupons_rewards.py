"""Coupons and rewards over GraphQL give REST's answers under REST's rules: the same lists and cursors, the
same redemption and coupon use, the same refusals (as userErrors), idempotency included."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.offers import PercentDiscount
from tests.conftest import bearer
from tests.coupons.helpers import coupon_code, coupons_of, use
from tests.graphql.helpers import graphql, mutate
from tests.points.helpers import points, set_program
from tests.rewards.helpers import add_reward, member_with_points, read_reward, redeem

OFFER = """kind properties {
  __typename
  ... on FixedDiscountProperties { amount { amount currency } }
  ... on PercentDiscountProperties { percent minSubtotal { amount } }
}"""
COUPON = (
    "code memberId name status currency validFrom validUntil usedAt usedOrderRef source { type id } " + OFFER
)
COUPONS = f"""query($id: ID!, $first: Int, $after: String, $status: CouponStatus) {{
  loyaltyMember(id: $id) {{
    coupons(first: $first, after: $after, status: $status) {{
      edges {{ cursor node {{ {COUPON} }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}"""
REWARDS = """query($first: Int, $after: String) {
  loyaltyRewards(first: $first, after: $after) {
    edges { node { id name costPoints stockLeft available currency
      coupon { __typename ... on FixedDiscountProperties { amount { amount currency } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
REDEMPTION = f"redemption {{ id rewardId memberId pointsSpent balance available coupon {{ {COUPON} }} }}"
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Coupon { code memberId status } } }"


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)


def _as_rest(coupon: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL coupon in the shape of REST's, to compare the two answers whole."""
    offer = coupon["properties"]
    properties = (
        {"amount": offer["amount"]["amount"]}
        if offer["__typename"] == "FixedDiscountProperties"
        else {"percent": offer["percent"]}
    )
    return {
        "code": coupon["code"],
        "member_id": coupon["memberId"],
        "name": coupon["name"],
        "kind": coupon["kind"].lower(),
        "status": coupon["status"].lower(),
        "currency": coupon["currency"],
        "valid_from": coupon["validFrom"],
        "valid_until": coupon["validUntil"],
        "used_at": coupon["usedAt"],
        "used_order_ref": coupon["usedOrderRef"],
        "source": coupon["source"],
        "properties": properties,
    }


def _rest_view(coupon: dict[str, Any]) -> dict[str, Any]:
    """REST's coupon with the fields `_as_rest` compares; `properties` without the empty conditions."""
    shown = {
        key: coupon[key]
        for key in (
            "code",
            "member_id",
            "name",
            "kind",
            "status",
            "currency",
            "valid_from",
            "valid_until",
            "used_at",
            "used_order_ref",
            "source",
        )
    }
    shown["properties"] = {k: v for k, v in coupon["properties"].items() if k in ("amount", "percent")}
    return shown


async def _member_coupons(
    client: httpx.AsyncClient, key: str, member_id: str, **variables: Any
) -> dict[str, Any]:
    body = await graphql(client, key, COUPONS, id=member_id, **variables)
    assert "errors" not in body, body["errors"]
    coupons: dict[str, Any] = body["data"]["loyaltyMember"]["coupons"]
    return coupons


class TestMemberCoupons:
    async def test_pages_and_filters_as_rest_does_with_rests_cursors(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str
    ) -> None:
        member_id = await member_with_points(client, pos_key, 0)
        used = await coupon_code(app, member_id)
        await coupon_code(app, member_id, offer=PercentDiscount(percent=Decimal("12.5"), min_subtotal=5000))
        await coupon_code(app, member_id)
        assert (await use(client, pos_key, used, order_ref="POS-1")).status_code == 200

        first = await _member_coupons(client, ecommerce_key, member_id, first=2)
        rest = await client.get(
            f"/v1/members/{member_id}/coupons", params={"limit": 2}, headers=bearer(ecommerce_key)
        )
        assert [_as_rest(e["node"]) for e in first["edges"]] == [_rest_view(c) for c in rest.json()["items"]]
        assert first["pageInfo"] == {"hasNextPage": True, "endCursor": rest.json()["next_cursor"]}
        assert first["edges"][-1]["cursor"] == rest.json()["next_cursor"]
        percent = first["edges"][1]["node"]["properties"]
        assert percent == {
            "__typename": "PercentDiscountProperties",
            "percent": "12.5",
            "minSubtotal": {"amount": 5000},
        }

        rest_cursor = rest.json()["next_cursor"]
        second = await _member_coupons(client, ecommerce_key, member_id, first=2, after=rest_cursor)
        assert [e["node"]["code"] for e in second["edges"]] == [used]
        assert second["pageInfo"] == {"hasNextPage": False, "endCursor": second["edges"][-1]["cursor"]}

        only_used = await _member_coupons(client, pos_key, member_id, status="used")
        assert [(e["node"]["code"], e["node"]["usedOrderRef"]) for e in only_used["edges"]] == [
            (used, "POS-1")
        ]
        active = await _member_coupons(client, pos_key, member_id, status="active")
        assert [e["node"]["code"] for e in active["edges"]] == [
            c["code"] for c in await coupons_of(client, pos_key, member_id, status="active")
        ]
        assert len(active["edges"]) == 2


class TestCouponEntity:
    async def test_resolves_by_code_for_a_till_and_unknown_codes_are_null(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member_id = await member_with_points(client, pos_key, 0)
        code = await coupon_code(app, member_id)
        body = await graphql(
            client,
            pos_key,
            ENTITIES,
            r=[
                {"__typename": "Coupon", "code": code},
                {"__typename": "Coupon", "code": "2222-3333-4444-5555"},
            ],
        )
        assert "errors" not in body, body
        assert body["data"]["_entities"] == [{"code": code, "memberId": member_id, "status": "active"}, None]

    async def test_a_shop_key_does_not_learn_whose_a_code_is(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str
    ) -> None:
        """REST lets an ecommerce key reach a coupon only by naming its member; a code alone gives null."""
        member_id = await member_with_points(client, pos_key, 0)
        code = await coupon_code(app, member_id)
        body = await graphql(client, ecommerce_key, ENTITIES, r=[{"__typename": "Coupon", "code": code}])
        assert "errors" not in body, body
        assert body["data"]["_entities"] == [None]

    async def test_a_key_without_a_reading_scope_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, billing_key: str
    ) -> None:
        member_id = await member_with_points(client, pos_key, 0)
        code = await coupon_code(app, member_id)
        body = await graphql(client, billing_key, ENTITIES, r=[{"__typename": "Coupon", "code": code}])
        assert body["errors"][0]["extensions"]["code"] == "scope_not_allowed"


class TestRewardsCatalogue:
    async def test_lists_what_rest_lists_for_each_key(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        offered = await add_reward(client, admin_key, name="A", stock=3)
        withdrawn = await add_reward(client, admin_key, name="B", active=False)
        last = await add_reward(client, admin_key, name="C", cost_points=250)

        for key, expected in ((pos_key, [offered, last]), (admin_key, [offered, withdrawn, last])):
            body = await graphql(client, key, REWARDS, first=50)
            assert "errors" not in body, body
            rest = await client.get("/v1/rewards", headers=bearer(key))
            nodes = [e["node"] for e in body["data"]["loyaltyRewards"]["edges"]]
            assert [n["id"] for n in nodes] == [r["id"] for r in rest.json()["items"]]
            assert [n["id"] for n in nodes] == [r["id"] for r in expected]
            assert [(n["costPoints"], n["stockLeft"], n["available"]) for n in nodes] == [
                (r["cost_points"], r["stock_left"], r["available"]) for r in rest.json()["items"]
            ]
            assert nodes[0]["coupon"] == {
                "__typename": "FixedDiscountProperties",
                "amount": {"amount": 1000, "currency": "CNY"},
            }

    async def test_a_reward_by_id_reads_as_rest_reads_it(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        offered = await add_reward(client, admin_key, name="By id", cost_points=300)
        withdrawn = await add_reward(client, admin_key, name="Withdrawn", active=False)
        query = "query($id: ID!) { loyaltyReward(id: $id) { id name costPoints available } }"
        found = (await graphql(client, pos_key, query, id=offered["id"]))["data"]["loyaltyReward"]
        rest = (await client.get(f"/v1/rewards/{offered['id']}", headers=bearer(pos_key))).json()
        assert found == {
            "id": rest["id"],
            "name": rest["name"],
            "costPoints": rest["cost_points"],
            "available": rest["available"],
        }
        hidden = await graphql(client, pos_key, query, id=withdrawn["id"])
        assert hidden["data"]["loyaltyReward"] is None  # REST: 404 for a till, as for no reward at all
        assert (
            await client.get(f"/v1/rewards/{withdrawn['id']}", headers=bearer(pos_key))
        ).status_code == 404
        seen = await graphql(client, admin_key, query, id=withdrawn["id"])
        assert seen["data"]["loyaltyReward"]["name"] == "Withdrawn"
        malformed = await graphql(client, pos_key, query, id="not-an-id")
        assert malformed["errors"][0]["extensions"]["code"] == "validation_error"

    async def test_pages_with_rests_cursors(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        ids = [(await add_reward(client, admin_key, name=f"R{i}"))["id"] for i in range(3)]
        first = await graphql(client, pos_key, REWARDS, first=2)
        page = first["data"]["loyaltyRewards"]
        rest = await client.get("/v1/rewards", params={"limit": 2}, headers=bearer(pos_key))
        assert page["pageInfo"] == {"hasNextPage": True, "endCursor": rest.json()["next_cursor"]}
        second = await graphql(client, pos_key, REWARDS, first=2, after=page["pageInfo"]["endCursor"])
        found = [e["node"]["id"] for e in page["edges"] + second["data"]["loyaltyRewards"]["edges"]]
        assert found == ids

    async def test_a_key_without_a_reading_scope_is_refused(
        self, client: httpx.AsyncClient, billing_key: str
    ) -> None:
        body = await graphql(client, billing_key, REWARDS)
        assert body["errors"][0]["extensions"]["code"] == "scope_not_allowed"


class TestRedeemReward:
    async def test_redeems_as_rest_does(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, stock=10, coupon_valid_days=30)
        one = await member_with_points(client, pos_key, 500)
        two = await member_with_points(client, pos_key, 500)

        payload = await mutate(
            client,
            pos_key,
            "loyaltyRedeemReward",
            REDEMPTION,
            input={"memberId": one, "rewardId": reward["id"]},
        )
        rest = (await redeem(client, pos_key, two, reward["id"])).json()

        assert payload["userErrors"] == [] and payload["replayed"] is False
        got = payload["redemption"]
        assert (got["rewardId"], got["memberId"]) == (reward["id"], one)
        assert (
            (got["pointsSpent"], got["balance"], got["available"])
            == (
                rest["points_spent"],
                rest["balance"],
                rest["available"],
            )
            == (100, 400, 400)
        )
        coupon = _as_rest(got["coupon"])
        assert coupon["code"] != rest["coupon"]["code"]
        assert {**coupon, "code": None, "member_id": None} == {
            **_rest_view(rest["coupon"]),
            "code": None,
            "member_id": None,
        }
        assert (await points(client, pos_key, one))["balance"] == 400
        assert [c["code"] for c in await coupons_of(client, pos_key, one)] == [got["coupon"]["code"]]
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 8

    async def test_the_same_key_replays_without_buying_twice(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, stock=10)
        member_id = await member_with_points(client, pos_key, 500)
        given = {"memberId": member_id, "rewardId": reward["id"]}

        first = await mutate(
            client, ecommerce_key, "loyaltyRedeemReward", REDEMPTION, input=given, idempotency_key="web/9001"
        )
        again = await mutate(
            client, ecommerce_key, "loyaltyRedeemReward", REDEMPTION, input=given, idempotency_key="web/9001"
        )

        assert first["replayed"] is False and again["replayed"] is True
        assert again["redemption"] == first["redemption"]
        assert (await points(client, pos_key, member_id))["balance"] == 400
        assert len(await coupons_of(client, pos_key, member_id)) == 1
        assert (await read_reward(client, admin_key, reward["id"]))["stock_left"] == 9

    async def test_refusals_are_user_errors_with_the_rest_code(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        reward = await add_reward(client, admin_key, cost_points=300, per_member_limit=1)
        poor = await member_with_points(client, pos_key, 100)
        rich = await member_with_points(client, pos_key, 1000)
        cases = [
            (poor, reward["id"], "insufficient_points"),
            (rich, "00000000-0000-7000-8000-000000000000", "reward_not_found"),
            (rich, "not-a-uuid", "validation_error"),
        ]
        for member_id, reward_id, code in cases:
            payload = await mutate(
                client,
                pos_key,
                "loyaltyRedeemReward",
                REDEMPTION,
                input={"memberId": member_id, "rewardId": reward_id},
            )
            assert payload["redemption"] is None
            assert [e["code"] for e in payload["userErrors"]] == [code], payload
        rest = await redeem(client, pos_key, poor, reward["id"])
        assert (rest.status_code, rest.json()["code"]) == (422, "insufficient_points")
        assert (await points(client, pos_key, poor))["balance"] == 100

        ok = {"memberId": rich, "rewardId": reward["id"]}
        assert (await mutate(client, pos_key, "loyaltyRedeemReward", REDEMPTION, input=ok))[
            "userErrors"
        ] == []
        limited = await mutate(client, pos_key, "loyaltyRedeemReward", REDEMPTION, input=ok)
        assert [e["code"] for e in limited["userErrors"]] == ["reward_limit_reached"]
        assert (await points(client, pos_key, rich))["balance"] == 700

    async def test_a_key_without_the_scope_is_refused(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, billing_key: str
    ) -> None:
        reward = await add_reward(client, admin_key)
        member_id = await member_with_points(client, pos_key, 500)
        query = "mutation($input: RedeemRewardInput!) { loyaltyRedeemReward(input: $input) { replayed } }"
        body = await graphql(
            client, billing_key, query, input={"memberId": member_id, "rewardId": reward["id"]}
        )
        assert body["errors"][0]["extensions"]["code"] == "scope_not_allowed"
        assert (await points(client, pos_key, member_id))["balance"] == 500


class TestUseCoupon:
    FIELDS = f"coupon {{ {COUPON} }}"

    async def test_uses_once_as_rest_does(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member_id = await member_with_points(client, pos_key, 0)
        code, rest_code = await coupon_code(app, member_id), await coupon_code(app, member_id)

        payload = await mutate(
            client, pos_key, "loyaltyUseCoupon", self.FIELDS, input={"code": code, "orderRef": "POS-77"}
        )
        rest = await use(client, pos_key, rest_code, order_ref="POS-77")

        assert payload["userErrors"] == []
        used = _as_rest(payload["coupon"])
        assert (used["status"], used["used_order_ref"]) == ("used", "POS-77")
        assert {**used, "code": None} == {**_rest_view(rest.json()), "code": None}
        again = await mutate(
            client, pos_key, "loyaltyUseCoupon", self.FIELDS, input={"code": code, "orderRef": "POS-78"}
        )
        rest_again = await use(client, pos_key, rest_code, order_ref="POS-78")
        assert again["coupon"] is None
        assert (
            [e["code"] for e in again["userErrors"]] == [rest_again.json()["code"]] == ["coupon_already_used"]
        )
        [listed] = await coupons_of(client, pos_key, member_id, status="used", limit=1)
        assert listed["used_order_ref"] == "POS-77"
        retried = await mutate(
            client, pos_key, "loyaltyUseCoupon", self.FIELDS, input={"code": code, "orderRef": "POS-77"}
        )
        rest_retried = await use(client, pos_key, rest_code, order_ref="POS-77")
        assert (
            [e["code"] for e in retried["userErrors"]]
            == [rest_retried.json()["code"]]
            == ["coupon_used_on_this_order"]
        )

    async def test_a_shop_key_must_name_the_member_and_cannot_use_anothers_coupon(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str
    ) -> None:
        owner = await member_with_points(client, pos_key, 0)
        other = await member_with_points(client, pos_key, 0)
        code = await coupon_code(app, owner)

        unnamed = await mutate(
            client, ecommerce_key, "loyaltyUseCoupon", self.FIELDS, input={"code": code, "orderRef": "W-1"}
        )
        assert [(e["field"], e["code"]) for e in unnamed["userErrors"]] == [("memberId", "validation_error")]
        wrong = await mutate(
            client,
            ecommerce_key,
            "loyaltyUseCoupon",
            self.FIELDS,
            input={"code": code, "orderRef": "W-1", "memberId": other},
        )
        assert [e["code"] for e in wrong["userErrors"]] == ["coupon_not_found"]
        right = await mutate(
            client,
            ecommerce_key,
            "loyaltyUseCoupon",
            self.FIELDS,
            input={"code": code, "orderRef": "W-1", "memberId": owner},
        )
        assert right["userErrors"] == [] and right["coupon"]["status"] == "used"

    async def test_a_retry_with_the_same_key_replays_the_use(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member_id = await member_with_points(client, pos_key, 0)
        code = await coupon_code(app, member_id)
        given = {"code": code, "orderRef": "POS-9"}
        first = await mutate(
            client, pos_key, "loyaltyUseCoupon", self.FIELDS, input=given, idempotency_key="u-9"
        )
        again = await mutate(
            client, pos_key, "loyaltyUseCoupon", self.FIELDS, input=given, idempotency_key="u-9"
        )
        assert (first["replayed"], again["replayed"]) == (False, True)
        assert again["userErrors"] == [] and again["coupon"] == first["coupon"]

    async def test_a_retry_that_types_the_code_otherwise_replays_the_use(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """The code may be typed in any case, with or without hyphens, as REST's path takes it: the same
        coupon, so the same call, replayed rather than refused as another one with the key."""
        member_id = await member_with_points(client, pos_key, 0)
        code = await coupon_code(app, member_id)
        first = await mutate(
            client,
            pos_key,
            "loyaltyUseCoupon",
            self.FIELDS,
            input={"code": code, "orderRef": "POS-10"},
            idempotency_key="u-10",
        )
        again = await mutate(
            client,
            pos_key,
            "loyaltyUseCoupon",
            self.FIELDS,
            input={"code": code.lower().replace("-", ""), "orderRef": "POS-10"},
            idempotency_key="u-10",
        )
        assert (first["replayed"], again["replayed"]) == (False, True)
        assert again["userErrors"] == [] and again["coupon"] == first["coupon"]
