"""Builders for checkout tests: benefits and tiers, coupons bought with points, and the quote in both APIs."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import bearer
from tests.points.helpers import cny


async def add_benefit(
    client: httpx.AsyncClient, admin_key: str, name: str, kind: str, **properties: Any
) -> str:
    body = {"name": name, "kind": kind, "properties": properties}
    response = await client.post("/v1/benefits", json=body, headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def add_tier(
    client: httpx.AsyncClient, admin_key: str, code: str, *, rank: int = 0, benefit_ids: list[str]
) -> None:
    body = {
        "code": code,
        "name": code.title(),
        "rank": rank,
        "metric": "spend",
        "window": "calendar_year",
        "threshold": rank * 1_000_000,
        "benefit_ids": benefit_ids,
    }
    response = await client.post("/v1/tiers", json=body, headers=bearer(admin_key))
    assert response.status_code == 201, response.text


async def give_points(client: httpx.AsyncClient, admin_key: str, member_id: str, points: int) -> None:
    response = await client.post(
        f"/v1/members/{member_id}/adjustments",
        json={"points": points, "reason": "checkout test"},
        headers=bearer(admin_key),
    )
    assert response.status_code == 201, response.text


async def buy_coupon(
    client: httpx.AsyncClient,
    admin_key: str,
    member_id: str,
    coupon: dict[str, Any],
    *,
    name: str = "coupon",
    cost_points: int = 100,
    valid_days: int = 30,
) -> str:
    """Create a reward that issues `coupon` and redeem it for the member (who needs the points); its code."""
    reward = await client.post(
        "/v1/rewards",
        json={"name": name, "cost_points": cost_points, "coupon": coupon, "coupon_valid_days": valid_days},
        headers=bearer(admin_key),
    )
    assert reward.status_code == 201, reward.text
    redeemed = await client.post(
        f"/v1/members/{member_id}/rewards/{reward.json()['id']}/redeem", headers=bearer(admin_key)
    )
    assert redeemed.status_code == 201, redeemed.text
    return str(redeemed.json()["coupon"]["code"])


def item(sku: str, unit_price: int, quantity: int = 1, category: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"sku": sku, "quantity": quantity, "unit_price": cny(unit_price)}
    if category is not None:
        body["category"] = category
    return body


def cart(*items: dict[str, Any], subtotal: int | None = None, shipping: int | None = None) -> dict[str, Any]:
    listed = sum(i["quantity"] * i["unit_price"]["amount"] for i in items)
    body: dict[str, Any] = {"subtotal": cny(listed if subtotal is None else subtotal), "items": list(items)}
    if shipping is not None:
        body["shipping"] = cny(shipping)
    return body


async def quote_reply(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/checkout/quote", json=body, headers=bearer(key))


async def quote(
    client: httpx.AsyncClient, key: str, member_id: str, the_cart: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    response = await quote_reply(client, key, {"member_id": member_id, "cart": the_cart, **extra})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


MONEY = "{ amount currency }"
QUOTE_FIELDS = f"""
memberId tier {{ code name rank }} currency subtotal {MONEY} shipping {MONEY}
discounts {{ source sourceRef sourceName benefitId kind name amount {MONEY} appliesTo }}
couponsApplied couponsRejected {{ code reason detail }}
perks {{ name description source sourceRef sourceName benefitId }}
goodsTotal {MONEY} shippingTotal {MONEY}
points {{ available maxUsable maxValue {MONEY} applied appliedValue {MONEY} cappedBy }}
total {MONEY}
"""
QUOTE_QUERY = (
    f"query($input: CheckoutQuoteInput!) {{ loyaltyCheckoutQuote(input: $input) {{ {QUOTE_FIELDS} }} }}"
)


def camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def snake(value: Any) -> Any:
    if isinstance(value, dict):
        return {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


async def graphql_quote(client: httpx.AsyncClient, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """The GraphQL reply for the REST `body` (same fields, camelCase)."""
    response = await client.post(
        "/graphql", json={"query": QUOTE_QUERY, "variables": {"input": camel(body)}}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply
