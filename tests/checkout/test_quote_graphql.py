"""`loyaltyCheckoutQuote` gives the REST quote's answer, field for field, under the same rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import enrol
from tests.checkout.helpers import (
    QUOTE_QUERY,
    add_benefit,
    add_tier,
    buy_coupon,
    cart,
    give_points,
    graphql_quote,
    item,
    quote_reply,
    snake,
)
from tests.conftest import bearer
from tests.points.helpers import cny, set_program


@pytest.fixture
async def shopper(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> dict[str, Any]:
    """A member of a tier with every kind of benefit, with points and two coupons."""
    await set_program(client, admin_key, min_redeem_points=50, max_redeem_share="0.8", point_value_minor="2")
    benefits = [
        await add_benefit(client, admin_key, "九五折", "percent_discount", percent="5"),
        await add_benefit(
            client, admin_key, "满200减20", "fixed_discount", amount=2_000, min_subtotal=20_000
        ),
        await add_benefit(client, admin_key, "线上包邮", "free_shipping", channels=["online"]),
        await add_benefit(client, admin_key, "送袜子", "free_item", sku="SOCK", categories=["apparel"]),
        await add_benefit(
            client, admin_key, "周一鲜食", "member_day_price", weekday=1, percent="12.5", categories=["fresh"]
        ),
        await add_benefit(client, admin_key, "优先服务", "priority_service", description="专线"),
    ]
    await add_tier(client, admin_key, "silver", benefit_ids=benefits)
    member_id = str((await enrol(client, pos_key))["id"])
    await give_points(client, admin_key, member_id, 30_000)
    codes = [
        await buy_coupon(client, admin_key, member_id, {"kind": "percent_discount", "percent": "7.5"}),
        await buy_coupon(client, admin_key, member_id, {"kind": "fixed_discount", "amount": 333}),
    ]
    return {"id": member_id, "codes": codes}


CARTS: dict[str, dict[str, Any]] = {
    "ten items": cart(
        *(item(f"SKU{i}", 1_001 + 37 * i, 1 + i % 3, ["fresh", "apparel", "tools"][i % 3]) for i in range(9)),
        item("SOCK", 499, 2, "apparel"),
        subtotal=40_000,
        shipping=1_000,
    ),
    "empty": cart(subtotal=0),
    "only unitemized": cart(subtotal=19_999, shipping=500),
    "big amounts": cart(item("TV", 3_000_000_000, 2, "tools"), subtotal=7_000_000_000, shipping=5_000),
}


class TestAgreement:
    @pytest.mark.parametrize("name", list(CARTS))
    @pytest.mark.parametrize(
        "extra",
        [{}, {"points_to_use": 100_000, "channel": "online"}, {"points_to_use": 10, "channel": "store"}],
        ids=["plain", "online with points", "too few points"],
    )
    async def test_rest_and_graphql_agree(
        self,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        shopper: dict[str, Any],
        name: str,
        extra: dict[str, Any],
    ) -> None:
        body = {
            "member_id": shopper["id"],
            "cart": CARTS[name],
            "coupon_codes": [*shopper["codes"], "ZZZZ-ZZZZ-ZZZZ-ZZZZ"],
            **extra,
        }
        rest = await quote_reply(client, ecommerce_key, body)
        assert rest.status_code == 200, rest.text
        graph = await graphql_quote(client, ecommerce_key, body)
        assert "errors" not in graph, graph
        assert snake(graph["data"]["loyaltyCheckoutQuote"]) == rest.json()

    async def test_the_ten_item_cart_uses_every_kind(
        self, client: httpx.AsyncClient, ecommerce_key: str, shopper: dict[str, Any]
    ) -> None:
        body = {
            "member_id": shopper["id"],
            "cart": CARTS["ten items"],
            "coupon_codes": shopper["codes"],
            "channel": "online",
        }
        result = (await quote_reply(client, ecommerce_key, body)).json()
        # Items 21,902 + unitemized 18,098. A sock free (499); Monday: 12.5 % of the fresh 3,336 (417);
        # 5 % of 39,084 (1,954); the coupon's 7.5 % of 37,130 (2,784.75 → 2,784); 20 yuan; 3.33 yuan.
        assert [(d["kind"], d["source"], d["amount"]["amount"]) for d in result["discounts"]] == [
            ("free_item", "tier", 499),
            ("member_day_price", "tier", 417),
            ("percent_discount", "tier", 1_954),
            ("percent_discount", "coupon", 2_784),
            ("fixed_discount", "tier", 2_000),
            ("fixed_discount", "coupon", 333),
            ("free_shipping", "tier", 1_000),
        ]
        assert result["coupons_applied"] == shopper["codes"]
        assert (result["goods_total"], result["shipping_total"]) == (cny(32_013), cny(0))
        # 0.8 of 32,013 fen at 2 fen a point: 12,805.2 points
        assert (result["points"]["max_usable"], result["points"]["max_value"]) == (12_805, cny(25_610))
        assert [p["name"] for p in result["perks"]] == ["优先服务"]


class TestGraphQLRefusals:
    async def _errors(
        self, client: httpx.AsyncClient, key: str | None, variables: dict[str, Any]
    ) -> list[Any]:
        headers = bearer(key) if key else {}
        response = await client.post(
            "/graphql", json={"query": QUOTE_QUERY, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("data") is None
        errors: list[Any] = body["errors"]
        return errors

    async def test_same_codes_as_rest(
        self, client: httpx.AsyncClient, pos_key: str, billing_key: str, shopper: dict[str, Any]
    ) -> None:
        def variables(**changes: Any) -> dict[str, Any]:
            return {"input": {"memberId": shopper["id"], "cart": {"subtotal": cny(1_000)}} | changes}

        cases = [
            (pos_key, variables(memberId="01a20000-0000-7000-8000-000000000000"), "member_not_found"),
            (pos_key, variables(couponCodes=["A", "A"]), "validation_error"),
            (pos_key, variables(channel="phone"), "validation_error"),
            (pos_key, variables(pointsToUse=-5), "validation_error"),
            (
                pos_key,
                variables(cart={"subtotal": {"amount": 1_000, "currency": "USD"}}),
                "currency_mismatch",
            ),
            (
                pos_key,
                variables(
                    cart={"subtotal": cny(100), "items": [{"sku": "A", "quantity": 2, "unitPrice": cny(60)}]}
                ),
                "cart_items_exceed_subtotal",
            ),
            (billing_key, variables(), "scope_not_allowed"),
            (pos_key, variables(couponCodes=["TAB\tCODE"]), "validation_error"),  # a control character
        ]
        for key, given, code in cases:
            [error] = await self._errors(client, key, given)
            assert error["extensions"]["code"] == code, (given, error)
            for field_error in error["extensions"].get("errors", []):
                assert not field_error["message"].startswith("Value error"), field_error

    async def test_a_float_amount_is_refused_by_the_schema(
        self, client: httpx.AsyncClient, pos_key: str, shopper: dict[str, Any]
    ) -> None:
        given = {
            "input": {"memberId": shopper["id"], "cart": {"subtotal": {"amount": 10.5, "currency": "CNY"}}}
        }
        [error] = await self._errors(client, pos_key, given)
        assert "Long" in error["message"]

    async def test_validation_error_names_the_field(
        self, client: httpx.AsyncClient, pos_key: str, shopper: dict[str, Any]
    ) -> None:
        given = {
            "input": {"memberId": shopper["id"], "cart": {"subtotal": cny(1_000)}, "couponCodes": ["", "B"]}
        }
        [error] = await self._errors(client, pos_key, given)
        assert error["extensions"]["code"] == "validation_error"
        # As the GraphQL input names it, as a mutation's user errors do: not REST's coupon_codes.0.
        assert [e["field"] for e in error["extensions"]["errors"]] == ["couponCodes.0"]
        [error] = await self._errors(
            client, pos_key, {"input": {**given["input"], "couponCodes": [], "memberId": "zzz"}}
        )
        assert [e["field"] for e in error["extensions"]["errors"]] == ["memberId"]
        assert "memberId" in error["message"]

    async def test_one_coupon_named_twice_names_the_input_field(
        self, client: httpx.AsyncClient, pos_key: str, shopper: dict[str, Any]
    ) -> None:
        """The member's coupon named as printed and as typed in lower case: the service refuses the two as one
        coupon, and the answer named REST's `coupon_codes`, a field the GraphQL input does not have."""
        code = shopper["codes"][0]
        given = {
            "input": {
                "memberId": shopper["id"],
                "cart": {"subtotal": cny(1_000)},
                "couponCodes": [code, code.lower()],
            }
        }
        [error] = await self._errors(client, pos_key, given)
        assert error["extensions"]["code"] == "validation_error"
        assert [e["field"] for e in error["extensions"]["errors"]] == ["couponCodes"]
        assert error["message"].startswith("couponCodes: ")

    async def test_schema_says_how_money_is_sent(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.post(
            "/graphql", json={"query": "{ _service { sdl } }"}, headers=bearer(pos_key)
        )
        sdl = response.json()["data"]["_service"]["sdl"]
        assert "scalar Long" in sdl
        assert "amount: Long!" in sdl
