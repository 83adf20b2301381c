"""A member's benefits over GraphQL carry their settings, one type per kind, as REST's `properties` does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import enrol
from tests.checkout.helpers import add_benefit, add_tier
from tests.conftest import bearer
from tests.graphql.helpers import graphql
from tests.points.helpers import set_program

CONDITIONS = "minSubtotal { amount currency } categories channels"
BENEFITS = f"""query($id: ID!) {{ loyaltyMember(id: $id) {{ benefits {{ name kind properties {{
  __typename
  ... on PercentDiscountProperties {{ percent {CONDITIONS} }}
  ... on FixedDiscountProperties {{ amount {{ amount currency }} {CONDITIONS} }}
  ... on FreeShippingProperties {{ {CONDITIONS} }}
  ... on FreeItemProperties {{ sku quantity }}
  ... on MemberDayPriceProperties {{ weekday percent }}
  ... on PointsMultiplierProperties {{ multiplier channels minSubtotal {{ amount }} }}
  ... on BirthdayGiftProperties {{ couponName validDays
        coupon {{ __typename ... on PercentDiscountProperties {{ percent }} }} }}
  ... on PriorityServiceProperties {{ description }}
}} }} }} }}"""

KINDS: dict[str, dict[str, Any]] = {
    "percent_discount": {"percent": "12.5", "min_subtotal": 10_000, "categories": ["shoes"]},
    "fixed_discount": {"amount": 2000, "channels": ["online"]},
    "free_shipping": {"min_subtotal": 9900},
    "free_item": {"sku": "SOCK-1", "quantity": 2},
    "member_day_price": {"weekday": 3, "percent": "20"},
    "points_multiplier": {"multiplier": "1.5", "channels": ["store"]},
    "birthday_gift": {"coupon_name": "生日券", "coupon": {"kind": "percent_discount", "percent": "10"}},
    "priority_service": {"description": "A lane of their own"},
}


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)


async def test_each_kind_shows_its_settings_as_rest_does(
    client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
) -> None:
    ids = [await add_benefit(client, admin_key, kind, kind, **props) for kind, props in KINDS.items()]
    await add_tier(client, admin_key, "member", benefit_ids=ids)
    member = await enrol(client, ecommerce_key)

    body = await graphql(client, ecommerce_key, BENEFITS, id=member["id"])
    assert "errors" not in body, body
    shown = {b["kind"]: b["properties"] for b in body["data"]["loyaltyMember"]["benefits"]}
    rest = await client.get(f"/v1/members/{member['id']}/benefits", headers=bearer(ecommerce_key))
    props = {b["kind"]: b["properties"] for b in rest.json()["benefits"]}
    assert set(shown) == set(props) == set(KINDS)

    def money(minor: int | None) -> dict[str, Any] | None:
        return None if minor is None else {"amount": minor, "currency": "CNY"}

    def conditions(p: dict[str, Any]) -> dict[str, Any]:
        return {
            "minSubtotal": money(p["min_subtotal"]),
            "categories": p["categories"],
            "channels": p["channels"],
        }

    percent = props["percent_discount"]
    assert shown["percent_discount"] == {
        "__typename": "PercentDiscountProperties",
        "percent": percent["percent"],
        **conditions(percent),
    }
    assert shown["percent_discount"]["percent"] == "12.5"
    assert shown["percent_discount"]["minSubtotal"] == {"amount": 10_000, "currency": "CNY"}
    fixed = props["fixed_discount"]
    assert shown["fixed_discount"] == {
        "__typename": "FixedDiscountProperties",
        "amount": money(fixed["amount"]),
        **conditions(fixed),
    }
    assert shown["free_shipping"] == {
        "__typename": "FreeShippingProperties",
        **conditions(props["free_shipping"]),
    }
    assert shown["free_item"] == {"__typename": "FreeItemProperties", "sku": "SOCK-1", "quantity": 2}
    day = props["member_day_price"]
    assert shown["member_day_price"] == {
        "__typename": "MemberDayPriceProperties",
        "weekday": day["weekday"],
        "percent": day["percent"],
    }
    multiplier = props["points_multiplier"]
    assert shown["points_multiplier"] == {
        "__typename": "PointsMultiplierProperties",
        "multiplier": multiplier["multiplier"],
        "channels": ["store"],
        "minSubtotal": None,
    }
    gift = props["birthday_gift"]
    assert shown["birthday_gift"] == {
        "__typename": "BirthdayGiftProperties",
        "couponName": "生日券",
        "validDays": gift["valid_days"],
        "coupon": {"__typename": "PercentDiscountProperties", "percent": gift["coupon"]["percent"]},
    }
    assert shown["priority_service"] == {
        "__typename": "PriorityServiceProperties",
        "description": "A lane of their own",
    }
