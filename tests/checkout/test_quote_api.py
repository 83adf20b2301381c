"""POST /v1/checkout/quote over the real app: benefits from a tier, coupons, points, refusals, and that a
quote reads only."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.checkout import service
from loyalty_api.checkout.quote import Cart
from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.money import Money
from loyalty_api.points.repository import PointsAccountRepository
from loyalty_api.schema import metadata
from tests.builders import enrol
from tests.checkout.helpers import (
    add_benefit,
    add_tier,
    buy_coupon,
    cart,
    give_points,
    item,
    quote,
    quote_reply,
)
from tests.conftest import START, bearer
from tests.inspect_db import rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, set_program
from tests.subscriptions.helpers import add_plan, subscribe_paid

TUESDAY = START + timedelta(days=1)


@pytest.fixture
async def gold(client: httpx.AsyncClient, admin_key: str) -> dict[str, str]:
    """A one-rung ladder whose tier gives 10 % off, free shipping from 50 yuan and priority service."""
    await set_program(client, admin_key, min_redeem_points=100, max_redeem_share="0.5")
    ids = {
        "percent": await add_benefit(client, admin_key, "金卡九折", "percent_discount", percent="10"),
        "shipping": await add_benefit(client, admin_key, "满50包邮", "free_shipping", min_subtotal=5_000),
        "priority": await add_benefit(
            client, admin_key, "优先服务", "priority_service", description="专属客服"
        ),
        "multiplier": await add_benefit(client, admin_key, "双倍积分", "points_multiplier", multiplier="2"),
    }
    await add_tier(client, admin_key, "gold", benefit_ids=list(ids.values()))
    return ids


@pytest.fixture
async def member(client: httpx.AsyncClient, admin_key: str, pos_key: str, gold: dict[str, str]) -> str:
    member_id = str((await enrol(client, pos_key))["id"])
    await give_points(client, admin_key, member_id, 50_000)
    return member_id


SHOP_CART = cart(
    item("SHOE", 4_500, 2, "shoes"), item("SOCK", 500, 3, "apparel"), subtotal=11_000, shipping=1_200
)


class TestQuote:
    async def test_tier_benefits_coupons_and_points(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        gold: dict[str, str],
        member: str,
    ) -> None:
        ten_off = await buy_coupon(
            client, admin_key, member, {"kind": "fixed_discount", "amount": 1_000}, name="减10元"
        )
        shoes = await buy_coupon(
            client,
            admin_key,
            member,
            {"kind": "percent_discount", "percent": "5", "categories": ["shoes"]},
            name="鞋类95折",
            cost_points=200,
        )
        result = await quote(
            client,
            ecommerce_key,
            member,
            SHOP_CART,
            coupon_codes=[ten_off, "ZZZZ-ZZZZ-ZZZZ-ZZZZ", shoes],
            points_to_use=100_000,
            channel="online",
        )
        assert result["tier"] == {"code": "gold", "name": "Gold", "rank": 0}
        assert result["currency"] == "CNY"
        assert (result["subtotal"], result["shipping"]) == (cny(11_000), cny(1_200))
        assert result["discounts"] == [
            {
                "source": "tier",
                "source_ref": "gold",
                "source_name": "Gold",
                "benefit_id": gold["percent"],
                "kind": "percent_discount",
                "name": "金卡九折",
                "amount": cny(1_100),
                "applies_to": "goods",
            },
            {
                "source": "coupon",
                "source_ref": shoes,
                "source_name": "鞋类95折",
                "benefit_id": None,
                "kind": "percent_discount",
                "name": "鞋类95折",
                "amount": cny(405),  # 5 % of the shoes' 8100 left
                "applies_to": "goods",
            },
            {
                "source": "coupon",
                "source_ref": ten_off,
                "source_name": "减10元",
                "benefit_id": None,
                "kind": "fixed_discount",
                "name": "减10元",
                "amount": cny(1_000),
                "applies_to": "goods",
            },
            {
                "source": "tier",
                "source_ref": "gold",
                "source_name": "Gold",
                "benefit_id": gold["shipping"],
                "kind": "free_shipping",
                "name": "满50包邮",
                "amount": cny(1_200),
                "applies_to": "shipping",
            },
        ]
        assert result["coupons_applied"] == [shoes, ten_off]
        assert result["coupons_rejected"] == [
            {
                "code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ",
                "reason": "not_found",
                "detail": "The member has no coupon with this code",
            }
        ]
        assert result["perks"] == [
            {
                "name": "优先服务",
                "description": "专属客服",
                "source": "tier",
                "source_ref": "gold",
                "source_name": "Gold",
                "benefit_id": gold["priority"],
            }
        ]
        assert (result["goods_total"], result["shipping_total"]) == (cny(8_495), cny(0))
        # Half of 8495 fen at 1 fen a point; the member has 49,700 points left after buying the coupons.
        assert result["points"] == {
            "available": 49_700,
            "max_usable": 4_247,
            "max_value": cny(4_247),
            "applied": 4_247,
            "applied_value": cny(4_247),
            "capped_by": "share",
        }
        assert result["total"] == cny(4_248)

    async def test_member_day_price_on_its_weekday_only(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: Any
    ) -> None:
        await set_program(client, admin_key)
        monday = await add_benefit(
            client, admin_key, "周一会员日", "member_day_price", weekday=1, percent="20", categories=["fresh"]
        )
        await add_tier(client, admin_key, "member", benefit_ids=[monday])
        member_id = str((await enrol(client, pos_key))["id"])
        the_cart = cart(item("APPLE", 1_000, 3, "fresh"), item("KNIFE", 2_000, category="tools"))
        on_monday = await quote(client, pos_key, member_id, the_cart)
        clock.set(TUESDAY)
        on_tuesday = await quote(client, pos_key, member_id, the_cart)
        assert [(d["name"], d["amount"]) for d in on_monday["discounts"]] == [("周一会员日", cny(600))]
        assert on_monday["total"] == cny(4_400)
        assert on_tuesday["discounts"] == []
        assert on_tuesday["total"] == cny(5_000)

    async def test_free_item_and_fixed_larger_than_the_cart(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        cup = await add_benefit(client, admin_key, "送杯子", "free_item", sku="CUP")
        big = await add_benefit(client, admin_key, "立减500", "fixed_discount", amount=50_000)
        await add_tier(client, admin_key, "member", benefit_ids=[cup, big])
        member_id = str((await enrol(client, pos_key))["id"])
        result = await quote(
            client, pos_key, member_id, cart(item("CUP", 1_500, 2), item("TEA", 3_000), shipping=800)
        )
        assert [(d["name"], d["amount"]) for d in result["discounts"]] == [
            ("送杯子", cny(1_500)),
            ("立减500", cny(4_500)),
        ]
        assert (result["goods_total"], result["shipping_total"], result["total"]) == (
            cny(0),
            cny(800),
            cny(800),
        )
        assert result["points"]["max_usable"] == 0

    async def test_a_free_item_coupon_gives_a_unit_that_costs_something(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """A cart with a sample cup at 0 beside one at 15 yuan: the free-cup coupon gives the 15-yuan cup.
        It was refused as giving nothing ("every unit of CUP in the cart is already free"), so the member
        paid for the cup the coupon was bought for."""
        await set_program(client, admin_key)
        member_id = str((await enrol(client, pos_key))["id"])
        await give_points(client, admin_key, member_id, 100)
        code = await buy_coupon(client, admin_key, member_id, {"kind": "free_item", "sku": "CUP"})
        result = await quote(
            client,
            pos_key,
            member_id,
            cart(item("CUP", 0), item("CUP", 1_500), item("TEA", 500)),
            coupon_codes=[code],
        )
        assert (result["coupons_applied"], result["coupons_rejected"]) == ([code], [])
        assert [(d["kind"], d["amount"]) for d in result["discounts"]] == [("free_item", cny(1_500))]
        assert result["total"] == cny(500)

    async def test_the_order_of_the_lines_does_not_change_the_price(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member: str
    ) -> None:
        """The web shop lists the cart as items were added on the cart page and by category at checkout.
        The gold tier's 10 % of 99.98 yuan is 9.99, spread over the two lines with one fen to spare; it
        went to the line listed first, so the shoe coupon's 20 % took 8.99 or 9.00 yuan, and the total the
        member was shown moved by a fen between the two pages."""
        shoes = await buy_coupon(
            client,
            admin_key,
            member,
            {"kind": "percent_discount", "percent": "20", "categories": ["shoes"]},
            name="鞋类8折",
        )
        lines = [item("SHOE", 4_999, 1, "shoes"), item("SOCK", 4_999, 1, "apparel")]
        as_added = await quote(client, ecommerce_key, member, cart(*lines), coupon_codes=[shoes])
        by_category = await quote(client, ecommerce_key, member, cart(*reversed(lines)), coupon_codes=[shoes])
        assert by_category == as_added
        assert [(d["name"], d["amount"]) for d in as_added["discounts"]] == [
            ("金卡九折", cny(999)),
            ("鞋类8折", cny(899)),  # 20 % of the shoe's 44.99 yuan left
        ]
        assert as_added["total"] == cny(8_100)

    async def test_one_sku_listed_twice_costs_what_it_costs_listed_once(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member: str
    ) -> None:
        """A cup added to the cart twice comes as two lines, or as one with quantity 2. The gold tier's
        10 % (5.99 of 59.97 yuan) left two fen to place: two cup lines took one each, one cup line took
        none and the tea took one, so the tea coupon, capped by what was left of the tea, gave 27.00 or
        26.99 yuan and the member paid a fen more or less for the same goods."""
        tea = await buy_coupon(
            client,
            admin_key,
            member,
            {"kind": "fixed_discount", "amount": 5_000, "categories": ["tea"]},
            name="茶叶立减",
        )
        cup, tea_tin = item("CUP", 1_499, 1, "cups"), item("TEA", 2_999, 1, "tea")
        twice = await quote(client, ecommerce_key, member, cart(cup, cup, tea_tin), coupon_codes=[tea])
        once = await quote(
            client, ecommerce_key, member, cart(item("CUP", 1_499, 2, "cups"), tea_tin), coupon_codes=[tea]
        )
        assert twice == once
        assert [(d["name"], d["amount"]) for d in once["discounts"]] == [
            ("金卡九折", cny(599)),
            ("茶叶立减", cny(2_699)),  # the tea's 29.99 yuan less its share of the 10 %, 3.00
        ]
        assert once["total"] == cny(2_699)

    async def test_member_without_tier_or_points(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member_id = str((await enrol(client, pos_key))["id"])
        result = await quote(client, pos_key, member_id, cart(subtotal=0), points_to_use=10)
        assert result["tier"] is None
        assert result["discounts"] == [] and result["perks"] == []
        assert result["points"] == {
            "available": 0,
            "max_usable": 0,
            "max_value": cny(0),
            "applied": 0,
            "applied_value": cny(0),
            "capped_by": "balance",
        }
        assert (result["shipping"], result["total"]) == (cny(0), cny(0))

    async def test_channel_condition(self, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> None:
        await set_program(client, admin_key)
        online = await add_benefit(
            client, admin_key, "线上95折", "percent_discount", percent="5", channels=["online"]
        )
        await add_tier(client, admin_key, "member", benefit_ids=[online])
        member_id = str((await enrol(client, pos_key))["id"])
        the_cart = cart(subtotal=10_000)
        assert (await quote(client, pos_key, member_id, the_cart, channel="online"))["total"] == cny(9_500)
        assert (await quote(client, pos_key, member_id, the_cart, channel="store"))["total"] == cny(10_000)
        assert (await quote(client, pos_key, member_id, the_cart))["total"] == cny(10_000)

    async def test_unknown_member(self, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> None:
        await set_program(client, admin_key)
        reply = await quote_reply(
            client, pos_key, {"member_id": str(uuid.uuid4()), "cart": cart(subtotal=100)}
        )
        assert reply.status_code == 404
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["code"] == "member_not_found"

    async def test_suspended_member(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, member: str
    ) -> None:
        suspended = await client.patch(
            f"/v1/members/{member}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text
        reply = await quote_reply(client, pos_key, {"member_id": member, "cart": cart(subtotal=100)})
        assert (reply.status_code, reply.json()["code"]) == (409, "member_not_active")


class TestEverySourceThenTheHold:
    async def test_tier_plan_and_coupons_stack_in_order_and_a_hold_takes_the_points_offered(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        """A web shop's checkout with everything at once: the member's tier, their paid plan and four
        coupons; then a hold of the points the quote applied, captured with the order's total."""
        await set_program(client, admin_key, min_redeem_points=100, max_redeem_share="0.5")
        gold = [
            await add_benefit(client, admin_key, "送两双袜", "free_item", sku="SOCK", quantity=2),
            await add_benefit(client, admin_key, "金卡九折", "percent_discount", percent="10"),
            # Met by the subtotal before any discount, although the goods come to less after them.
            await add_benefit(
                client, admin_key, "满200减5", "fixed_discount", amount=500, min_subtotal=20_000
            ),
        ]
        await add_tier(client, admin_key, "gold", benefit_ids=gold)
        plus = [
            await add_benefit(
                client, admin_key, "鞋类85折", "percent_discount", percent="15", categories=["shoes"]
            ),
            await add_benefit(client, admin_key, "满100包邮", "free_shipping", min_subtotal=10_000),
        ]
        await add_plan(client, admin_key, "plus", benefit_ids=plus)
        member_id = str((await enrol(client, ecommerce_key))["id"])
        await subscribe_paid(client, ecommerce_key, member_id, "plus")
        await give_points(client, admin_key, member_id, 100_000)
        ten_yuan = {"kind": "fixed_discount", "amount": 1_000}
        fixed = sorted([await buy_coupon(client, admin_key, member_id, ten_yuan) for _ in range(2)])
        third = await buy_coupon(
            client, admin_key, member_id, {"kind": "percent_discount", "percent": "33.333"}
        )
        socks = await buy_coupon(
            client, admin_key, member_id, {"kind": "free_item", "sku": "SOCK", "quantity": 5}
        )
        the_cart = cart(
            item("SHOE", 9_999, 2, "shoes"),
            item("SOCK", 333, 3, "apparel"),
            item("SOCK", 111, 1, "apparel"),
            subtotal=25_000,  # with 38.92 yuan of other goods
            shipping=999,
        )
        result = await quote(
            client,
            ecommerce_key,
            member_id,
            the_cart,
            coupon_codes=[socks, fixed[1], third, fixed[0]],
            points_to_use=100_000,
        )
        assert [(d["source"], d["source_ref"], d["amount"]) for d in result["discounts"]] == [
            ("tier", "gold", cny(444)),  # the cheapest two socks
            ("coupon", socks, cny(666)),  # the two socks left of the five offered
            ("plan", "plus", cny(2_999)),  # 15 % of the shoes' 199.98
            ("tier", "gold", cny(2_089)),  # 10 % of the 208.91 left
            ("coupon", third, cny(6_267)),  # 33.333 % of the 188.02 left
            ("tier", "gold", cny(500)),
            ("coupon", fixed[0], cny(1_000)),  # equal terms: by code, whatever order they were named in
            ("coupon", fixed[1], cny(1_000)),
            ("plan", "plus", cny(999)),
        ]
        assert (result["coupons_applied"], result["coupons_rejected"]) == ([socks, third, *fixed], [])
        assert (result["goods_total"], result["shipping_total"]) == (cny(10_035), cny(0))
        assert result["points"] == {
            "available": 99_600,  # less the coupons' 400
            "max_usable": 5_017,  # half of 100.35 yuan
            "max_value": cny(5_017),
            "applied": 5_017,
            "applied_value": cny(5_017),
            "capped_by": "share",
        }
        assert result["total"] == cny(5_018)

        hold = await _hold(client, ecommerce_key, member_id, result["points"]["applied"], "WEB-ALL")
        assert hold.status_code == 201, hold.text
        order_total = result["goods_total"]["amount"] + result["shipping_total"]["amount"]
        captured = await client.post(
            f"/v1/holds/{hold.json()['id']}/capture",
            json={"order_total": cny(order_total)},
            headers=bearer(ecommerce_key),
        )
        assert (captured.status_code, captured.json()["balance"]) == (200, 99_600 - 5_017), captured.text
        await assert_ledger_invariant(app, member_id)


class TestCoupons:
    async def test_coupons_that_cannot_be_applied_are_reported_in_the_order_named(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: Any,
        member: str,
    ) -> None:
        fixed = {"kind": "fixed_discount", "amount": 500}
        used = await buy_coupon(client, admin_key, member, fixed)
        spent = await client.post(
            f"/v1/coupons/{used}/use", json={"order_ref": "USED-1"}, headers=bearer(pos_key)
        )
        assert spent.status_code == 200, spent.text
        short_lived = await buy_coupon(client, admin_key, member, fixed, valid_days=1)
        needs_more = await buy_coupon(client, admin_key, member, fixed | {"min_subtotal": 1_000_000})
        other_member = str((await enrol(client, pos_key))["id"])
        await give_points(client, admin_key, other_member, 1_000)
        theirs = await buy_coupon(client, admin_key, other_member, fixed)
        good = await buy_coupon(client, admin_key, member, fixed)
        clock.advance(timedelta(days=2))

        result = await quote(
            client,
            pos_key,
            member,
            cart(subtotal=10_000),
            coupon_codes=[theirs, needs_more, good, used, short_lived],
        )
        assert result["coupons_applied"] == [good]
        assert [(r["code"], r["reason"]) for r in result["coupons_rejected"]] == [
            (theirs, "not_found"),
            (needs_more, "conditions_not_met"),
            (used, "used"),
            (short_lived, "expired"),
        ]

    async def test_codes_are_matched_as_typed_and_echoed_as_named(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, member: str
    ) -> None:
        code = await buy_coupon(client, admin_key, member, {"kind": "fixed_discount", "amount": 500})
        typed = code.lower().replace("-", "")
        result = await quote(client, pos_key, member, cart(subtotal=10_000), coupon_codes=[typed])
        assert result["coupons_applied"] == [typed]
        assert result["discounts"][-1]["source_ref"] == typed

    async def test_of_two_equal_coupons_the_same_one_applies_however_the_codes_are_typed(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member: str
    ) -> None:
        ten_off = {"kind": "fixed_discount", "amount": 1_000}
        codes = sorted([await buy_coupon(client, admin_key, member, ten_off) for _ in range(2)])
        while codes[0][0].isdigit():  # typed in lower case, the first code must sort after the second
            codes = sorted([codes[1], await buy_coupon(client, admin_key, member, ten_off)])
        small = cart(item("X", 1_000, 1), subtotal=1_000)  # room for one of them
        applied = []
        for typed in (codes, [codes[0].lower(), codes[1]], [codes[0], codes[1].lower()], codes[::-1]):
            result = await quote(client, ecommerce_key, member, small, coupon_codes=typed)
            [one] = result["coupons_applied"]
            assert one in typed  # echoed as named
            applied.append(one.upper())
        assert applied == [codes[0]] * 4

    async def test_one_coupon_named_twice_is_refused(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, member: str
    ) -> None:
        code = await buy_coupon(client, admin_key, member, {"kind": "fixed_discount", "amount": 500})
        reply = await quote_reply(
            client,
            pos_key,
            {"member_id": member, "cart": cart(subtotal=10_000), "coupon_codes": [code, code.lower()]},
        )
        assert (reply.status_code, reply.json()["code"]) == (422, "validation_error")
        assert reply.json()["errors"][0]["field"] == "coupon_codes"


def _body(member: str, **changes: Any) -> dict[str, Any]:
    return {"member_id": member, "cart": cart(item("A", 1_000, 2), subtotal=3_000)} | changes


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("float amount", {"cart": {"subtotal": {"amount": 100.5, "currency": "CNY"}}}, "cart.subtotal.amount"),
    ("string amount", {"cart": {"subtotal": {"amount": "100", "currency": "CNY"}}}, "cart.subtotal.amount"),
    ("negative amount", {"cart": {"subtotal": cny(-1)}}, "cart.subtotal.amount"),
    ("huge amount", {"cart": {"subtotal": cny(10**13)}}, "cart.subtotal.amount"),
    ("bad currency", {"cart": {"subtotal": {"amount": 1, "currency": "yuan"}}}, "cart.subtotal.currency"),
    ("no subtotal", {"cart": {"items": []}}, "cart.subtotal"),
    ("zero quantity", {"cart": cart(item("A", 100, 0))}, "cart.items.0.quantity"),
    (
        "item without sku",
        {"cart": {"subtotal": cny(100), "items": [{"quantity": 1, "unit_price": cny(1)}]}},
        "cart.items.0.sku",
    ),
    ("negative points", {"points_to_use": -1}, "points_to_use"),
    ("float points", {"points_to_use": 10.5}, "points_to_use"),
    ("unknown channel", {"channel": "phone"}, "channel"),
    ("duplicate codes", {"coupon_codes": ["A", "A"]}, "coupon_codes"),
    ("eleven codes", {"coupon_codes": [f"C{i}" for i in range(11)]}, "coupon_codes"),
    ("empty code", {"coupon_codes": [""]}, "coupon_codes.0"),
    ("extra field", {"discount": 5}, "discount"),
    ("bad member id", {"member_id": "nope"}, "member_id"),
    ("NUL in a code", {"coupon_codes": ["A\x00"]}, "coupon_codes.0"),
]


class TestRefusals:
    @pytest.mark.parametrize(("case", "changes", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
    async def test_invalid_input_is_a_422_with_the_field(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member: str,
        case: str,
        changes: dict[str, Any],
        field: str,
    ) -> None:
        reply = await quote_reply(client, pos_key, _body(member, **changes))
        assert reply.status_code == 422, reply.text
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["code"] == "validation_error"
        assert field in [e["field"] for e in reply.json()["errors"]]

    async def test_items_beyond_the_subtotal(
        self, client: httpx.AsyncClient, pos_key: str, member: str
    ) -> None:
        reply = await quote_reply(
            client, pos_key, _body(member, cart=cart(item("A", 600, 2), subtotal=1_000))
        )
        assert reply.status_code == 422
        assert reply.json()["code"] == "cart_items_exceed_subtotal"
        assert (reply.json()["items_total"], reply.json()["subtotal"]) == (1_200, 1_000)

    @pytest.mark.parametrize("where", ["subtotal", "shipping", "item"])
    async def test_currency_other_than_the_programme_s(
        self, client: httpx.AsyncClient, pos_key: str, member: str, where: str
    ) -> None:
        usd = {"amount": 100, "currency": "USD"}
        the_cart = cart(item("A", 100), subtotal=1_000, shipping=0)
        if where == "item":
            the_cart["items"][0]["unit_price"] = usd
        else:
            the_cart[where] = usd
        reply = await quote_reply(client, pos_key, _body(member, cart=the_cart))
        assert (reply.status_code, reply.json()["code"]) == (422, "currency_mismatch")

    async def test_scopes(
        self, client: httpx.AsyncClient, admin_key: str, billing_key: str, member: str
    ) -> None:
        body = _body(member)
        assert (await quote_reply(client, admin_key, body)).status_code == 200
        refused = await quote_reply(client, billing_key, body)
        assert (refused.status_code, refused.json()["code"]) == (403, "scope_not_allowed")
        anonymous = await client.post("/v1/checkout/quote", json=body)
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "invalid_api_key")

    async def test_no_float_in_the_reply(self, client: httpx.AsyncClient, pos_key: str, member: str) -> None:
        def floats(value: object) -> list[float]:
            if isinstance(value, float):
                return [value]
            if isinstance(value, dict):
                return [f for v in value.values() for f in floats(v)]
            if isinstance(value, list):
                return [f for v in value for f in floats(v)]
            return []

        reply = await quote_reply(client, pos_key, _body(member, points_to_use=333))
        assert reply.status_code == 200
        assert floats(json.loads(reply.text)) == []


class TestPointsASpendWouldFind:
    """The quote offers the points the hold that follows it would find, whether or not the jobs have run."""

    async def test_points_past_their_end_are_not_offered(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member: str, clock: FrozenClock
    ) -> None:
        clock.advance(timedelta(days=400))  # the 50,000 points lived 12 months; no expiry job has run
        await give_points(client, admin_key, member, 3_000)  # still good
        result = await quote(client, ecommerce_key, member, SHOP_CART, points_to_use=4_000)
        assert (result["points"]["available"], result["points"]["applied"]) == (3_000, 3_000)
        over = await _hold(client, ecommerce_key, member, 3_001, "WEB-Q1")
        assert (over.status_code, over.json()["code"]) == (422, "insufficient_points")
        assert (await _hold(client, ecommerce_key, member, 3_000, "WEB-Q2")).status_code == 201

    async def test_points_of_a_hold_past_its_time_are_offered(
        self, client: httpx.AsyncClient, ecommerce_key: str, member: str, clock: FrozenClock
    ) -> None:
        assert (await _hold(client, ecommerce_key, member, 50_000, "WEB-Q3", ttl=60)).status_code == 201
        assert (await quote(client, ecommerce_key, member, SHOP_CART))["points"]["available"] == 0
        clock.advance(timedelta(minutes=5))  # the hold has run out; the release job has not run
        result = await quote(client, ecommerce_key, member, SHOP_CART, points_to_use=4_000)
        assert (result["points"]["available"], result["points"]["applied"]) == (50_000, 4_000)
        assert (await _hold(client, ecommerce_key, member, 50_000, "WEB-Q4")).status_code == 201


class TestQuoteAndSpendAgreeOnTheShare:
    """The most points a quote offers for a cart are what a redeem or a capture with that total accepts, and
    one more is refused, even when a point is worth a fraction of a minor unit."""

    @pytest.mark.parametrize(
        ("point_value", "share", "total"),
        [
            ("0.3", "0.5", 20),
            ("0.3", "0.5", 21),
            ("0.7", "0.33", 1_001),
            ("1.5", "0.25", 99),
            ("0.01", "1", 7),
        ],
    )
    async def test_the_quote_s_maximum_is_accepted_and_one_more_refused(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        point_value: str,
        share: str,
        total: int,
    ) -> None:
        await set_program(
            client, admin_key, point_value_minor=point_value, max_redeem_share=share, min_redeem_points=1
        )
        member_id = str((await enrol(client, pos_key))["id"])
        await give_points(client, admin_key, member_id, 100_000)
        most = (await quote(client, ecommerce_key, member_id, cart(subtotal=total)))["points"]["max_usable"]
        assert most > 0

        async def redeem(points: int, order_ref: str) -> httpx.Response:
            return await client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": points, "order_ref": order_ref, "order_total": cny(total)},
                headers=bearer(pos_key),
            )

        over = await redeem(most + 1, "POS-SHARE-1")
        assert (over.status_code, over.json()["code"]) == (422, "redeem_share_exceeded")
        assert (await redeem(most, "POS-SHARE-2")).status_code == 200

        hold = await _hold(client, ecommerce_key, member_id, most + 1, "WEB-SHARE-1")
        assert hold.status_code == 201, hold.text
        capture_url = f"/v1/holds/{hold.json()['id']}/capture"
        over = await client.post(
            capture_url, json={"points": most + 1, "order_total": cny(total)}, headers=bearer(ecommerce_key)
        )
        assert (over.status_code, over.json()["code"]) == (422, "redeem_share_exceeded")
        captured = await client.post(
            capture_url, json={"points": most, "order_total": cny(total)}, headers=bearer(ecommerce_key)
        )
        assert captured.status_code == 200, captured.text


class TestQuoteOverABillion:
    """A hold or a redeem takes at most 10^9 points at once, so a quote never offers more, whatever the
    balance and the cart."""

    async def test_the_points_offered_past_a_billion_are_what_one_hold_takes(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
    ) -> None:
        await set_program(client, admin_key, point_value_minor="1", max_redeem_share="1", min_redeem_points=1)
        member_id = str((await enrol(client, pos_key))["id"])
        for _ in range(3):
            await give_points(client, admin_key, member_id, 1_000_000_000)
        big_cart = cart(subtotal=2_500_000_000)
        offered = (await quote(client, ecommerce_key, member_id, big_cart))["points"]
        assert (offered["available"], offered["max_usable"]) == (3_000_000_000, 1_000_000_000)
        assert offered["max_value"] == cny(1_000_000_000)
        asked = await quote(client, ecommerce_key, member_id, big_cart, points_to_use=1_000_000_000)
        assert (asked["points"]["applied"], asked["points"]["capped_by"]) == (1_000_000_000, "none")

        hold = await _hold(client, ecommerce_key, member_id, offered["max_usable"], "WEB-BILLION")
        assert hold.status_code == 201, hold.text
        after = (await quote(client, ecommerce_key, member_id, big_cart))["points"]
        assert (after["available"], after["max_usable"]) == (2_000_000_000, 1_000_000_000)


async def _hold(
    client: httpx.AsyncClient, key: str, member_id: str, points: int, order_ref: str, ttl: int = 600
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{member_id}/holds",
        json={"points": points, "order_ref": order_ref, "ttl_seconds": ttl},
        headers=bearer(key),
    )


class TestReadOnly:
    async def test_a_quote_writes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, member: str
    ) -> None:
        code = await buy_coupon(client, admin_key, member, {"kind": "fixed_discount", "amount": 500})
        tables = [table.name for table in metadata.sorted_tables]
        before = await table_counts(app, *tables)
        snapshot = await _member_rows(app, member)
        for body in (
            _body(member, coupon_codes=[code], points_to_use=1_000),
            _body(member, coupon_codes=[code, "NOPE"]),
            _body(member, cart=cart(item("A", 600, 2), subtotal=1_000)),  # refused
            _body(member, points_to_use=-1),  # invalid
        ):
            await client.post(
                "/v1/checkout/quote", json=body, headers=bearer(pos_key, idempotency_key=str(uuid.uuid4()))
            )
        assert await table_counts(app, *tables) == before
        assert await _member_rows(app, member) == snapshot

    async def test_idempotency_key_is_ignored(
        self, client: httpx.AsyncClient, pos_key: str, member: str
    ) -> None:
        headers = bearer(pos_key, idempotency_key="same-key")
        first = await client.post("/v1/checkout/quote", json=_body(member), headers=headers)
        second = await client.post(
            "/v1/checkout/quote", json=_body(member, cart=cart(subtotal=5_000)), headers=headers
        )
        assert (first.status_code, second.status_code) == (200, 200)
        assert "idempotent-replayed" not in second.headers
        assert (first.json()["total"], second.json()["total"]) == (cny(2_700), cny(4_500))  # gold: 10 % off

    async def test_points_change_while_a_quote_is_open_and_a_quote_runs_while_points_are_locked(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member: str
    ) -> None:
        units: UnitsOfWork = app.state.units
        member_id = uuid.UUID(member)
        the_cart = Cart(subtotal=Money(3_000, "CNY"), shipping=Money(0, "CNY"))
        # A quote's transaction stays open while a redeem for the same member commits.
        async with units.read() as uow:
            await service.quote(uow, member_id=member_id, cart=the_cart)
            redeem = client.post(
                f"/v1/members/{member}/redeem",
                json={"points": 100, "order_ref": "Q-1"},
                headers=bearer(pos_key),
            )
            assert (await asyncio.wait_for(redeem, timeout=10)).status_code == 200
        # A points change holds the member's account row (on SQLite, the write lock): a quote still answers.
        async with units.begin() as uow:
            assert await PointsAccountRepository(uow.session).lock(member_id, uow.clock.now()) is not None
            reply = await asyncio.wait_for(quote_reply(client, pos_key, _body(member)), timeout=10)
            assert reply.status_code == 200, reply.text
            assert reply.json()["points"]["available"] == 49_900


async def _member_rows(app: FastAPI, member_id: str) -> list[dict[str, Any]]:
    account = await rows(
        app,
        "SELECT balance, held, updated_at FROM points_accounts WHERE member_id = :m",
        m=uuid.UUID(member_id),
    )
    coupons = await rows(
        app,
        "SELECT code, status, used_at FROM coupons WHERE member_id = :m ORDER BY code",
        m=uuid.UUID(member_id),
    )
    return account + coupons
