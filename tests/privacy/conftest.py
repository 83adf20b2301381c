"""The story both privacy tests tell: one member through every feature over the API, a referrer, and someone
else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.points.referrals import credit_referrers
from loyalty_api.segments.service import compute_segments
from tests.builders import add_tier, enrol
from tests.checkout.helpers import add_benefit
from tests.conftest import bearer, units_of
from tests.partners.helpers import exchange_out, link, partner_earn, register_partner
from tests.points.helpers import cny, earn, set_program
from tests.rewards.helpers import add_reward, redeem
from tests.subscriptions.helpers import add_plan, subscribe
from tests.webhooks.endpoint_helpers import create_endpoint

REFERRALS = {
    "referral_friend_points": 200,
    "referral_referrer_points": 500,
    "referral_min_purchase_minor": 5_000,
}


@dataclass
class Story:
    """The member whose data is exported, what the API answered them along the way, and a second member."""

    member: dict[str, Any]
    referrer: dict[str, Any]
    other: dict[str, Any]
    other_order: str
    coupon: dict[str, Any]
    subscription: dict[str, Any]
    endpoint_id: str
    hold_id: str
    benefit_id: str


async def post(client: httpx.AsyncClient, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=bearer(key))
    assert response.status_code in (200, 201), response.text
    answered: dict[str, Any] = response.json()
    return answered


@pytest.fixture
async def story(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    clock: FrozenClock,
) -> Story:
    await set_program(client, admin_key, **REFERRALS)
    await add_tier(client, admin_key, "basic", rank=0)
    await add_tier(client, admin_key, "gold", rank=1, threshold=100_000)  # 1,000 yuan a year
    lounge = await add_benefit(client, admin_key, "Reading room", "priority_service", description="quiet")
    partner_key = await register_partner(
        app, client, admin_key, "cafe", earn_rate="1.5", exchange_out_rate="0.1", benefit_ids=[lounge]
    )
    plan = await add_plan(
        client, admin_key, "plus", partner_perks=[{"partner": "cafe", "name": "A free coffee"}]
    )
    endpoint = await create_endpoint(client, admin_key)

    referrer = await enrol(client, pos_key, name="推荐人", email="referrer@example.cn")
    member = await enrol(
        client,
        pos_key,
        phone="138 1234 5678",
        email="Li.Na@Example.cn",
        name="李娜",
        birthday="1990-07-08",
        channel="online",
        external_ids={"pos": "C-1001", "webshop": "WEB-500087"},
        marketing_consent=True,
        referral_code=referrer["referral_code"],
    )
    other = await enrol(client, pos_key, name="王芳", email="wang.fang@example.cn")
    member_id = member["id"]

    # Earn: the first purchase brings the referral points, and reaches gold.
    first = await earn(client, pos_key, member_id, 150_000, order_ref="SH-1")
    assert first["tier_changed"] is True
    await earn(client, pos_key, member_id, 20_000, order_ref="SH-2")
    await post(client, pos_key, f"/v1/members/{member_id}/redeem", {"points": 300, "order_ref": "SH-3"})
    hold = await post(
        client, pos_key, f"/v1/members/{member_id}/holds", {"points": 200, "order_ref": "WEB-1"}
    )
    await post(client, pos_key, f"/v1/holds/{hold['id']}/capture", {"order_total": cny(10_000)})
    await post(client, pos_key, "/v1/orders/SH-2/refund", {"amount": cny(5_000)})
    await post(
        client, admin_key, f"/v1/members/{member_id}/adjustments", {"points": 50, "reason": "Goodwill"}
    )
    reward = await add_reward(client, admin_key)
    redeemed = await redeem(client, pos_key, member_id, reward["id"])
    assert redeemed.status_code == 201, redeemed.text
    subscription = await subscribe(
        client, admin_key, member_id, plan["code"], trial=False, payment_ref="PAY-1"
    )
    await link(client, pos_key, partner_key, member_id, "cafe", "CAFE-7", "basic", "points")
    assert (await partner_earn(client, partner_key, "CAFE-7", "C-ORDER-1", 2_000)).status_code == 201
    await post(
        client,
        partner_key,
        "/v1/partner/members/CAFE-7/benefit-uses",
        {"benefit_id": lounge, "use_ref": "USE-1"},
    )
    assert (await exchange_out(client, pos_key, member_id, "cafe", 100)).status_code == 201

    # Someone else's purchase, and the jobs that look at everyone.
    await earn(client, pos_key, other["id"], 7_700, order_ref="OTHER-ORDER-9")
    clock.advance(timedelta(minutes=5))
    await credit_referrers(units_of(app))
    await compute_segments(units_of(app))
    replayed = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/replay",
        json={"since": "2026-03-16T00:00:00Z"},
        headers=bearer(admin_key),
    )
    assert replayed.status_code == 200, replayed.text
    return Story(
        member=member,
        referrer=referrer,
        other=other,
        other_order="OTHER-ORDER-9",
        coupon=redeemed.json()["coupon"],
        subscription=subscription,
        endpoint_id=endpoint["id"],
        hold_id=hold["id"],
        benefit_id=lounge,
    )
