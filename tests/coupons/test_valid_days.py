"""A coupon valid N days is valid to the same time on the programme's clock N days on, whatever issued it:
New York turns its clocks back on 1 November 2026, so 7 days from noon on 28 October end at noon on 4 November
there (17:00 UTC), not at 11:00 (7 times 24 hours)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.benefits.birthdays import issue_birthday_gifts
from loyalty_api.clock import FrozenClock
from tests.builders import add_tier, enrol
from tests.campaigns.helpers import COUPON_ACTION, create, run
from tests.conftest import bearer, units_of
from tests.coupons.helpers import coupons_of
from tests.points.helpers import set_program
from tests.rewards.helpers import add_reward, member_with_points, redeem
from tests.subscriptions.helpers import add_plan, new_paid_subscriber

NOON = datetime(2026, 10, 28, 16, tzinfo=UTC)  # in New York, summer time
NOON_7_DAYS_ON = datetime(2026, 11, 4, 17, tzinfo=UTC)  # winter time


@pytest.fixture(autouse=True)
async def _new_york(client: httpx.AsyncClient, admin_key: str, clock: FrozenClock) -> None:
    await set_program(client, admin_key, timezone="America/New_York")
    clock.set(NOON)


def validity(coupon: dict[str, Any]) -> tuple[str, str]:
    return coupon["valid_from"], coupon["valid_until"]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class TestValidDaysAreTheProgrammesCalendarDays:
    async def test_a_reward_s_coupon(self, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> None:
        reward = await add_reward(client, admin_key, coupon_valid_days=7)
        member_id = await member_with_points(client, pos_key, 100)
        response = await redeem(client, pos_key, member_id, reward["id"])
        assert response.status_code == 201, response.text
        assert validity(response.json()["coupon"]) == (iso(NOON), iso(NOON_7_DAYS_ON))

    async def test_a_campaign_s_coupon(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        await create(client, admin_key, action=COUPON_ACTION | {"valid_days": 7})
        await run(app)
        [coupon] = await coupons_of(client, pos_key, member["id"])
        assert validity(coupon) == (iso(NOON), iso(NOON_7_DAYS_ON))

    async def test_a_plan_s_coupon(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        gift = {"name": "Welcome", "coupon": {"kind": "fixed_discount", "amount": 500}, "valid_days": 7}
        await add_plan(client, admin_key, "plus", coupons=[gift | {"every": "period"}])
        member, _ = await new_paid_subscriber(client, ecommerce_key, "plus")
        [coupon] = await coupons_of(client, ecommerce_key, member["id"])
        assert validity(coupon) == (iso(NOON), iso(NOON_7_DAYS_ON))

    async def test_a_birthday_gift_from_midnight_to_midnight(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The gift is valid from the start of the birthday there: 7 days of it end at midnight on 4 November
        (05:00 UTC), not at 23:00 on the 3rd."""
        properties = {"coupon_name": "Happy birthday", "coupon": COUPON_ACTION["coupon"], "valid_days": 7}
        gift = await client.post(
            "/v1/benefits",
            json={"name": "Birthday", "kind": "birthday_gift", "properties": properties},
            headers=bearer(admin_key),
        )
        assert gift.status_code == 201, gift.text
        await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift.json()["id"]])
        member = await enrol(client, pos_key, birthday="1990-10-28")
        assert await issue_birthday_gifts(units_of(app)) == 1
        [coupon] = await coupons_of(client, pos_key, member["id"])
        assert validity(coupon) == ("2026-10-28T04:00:00Z", "2026-11-04T05:00:00Z")
