"""The service functions other packages call: issue_coupon (rewards, the birthday job) and
coupons_for_checkout (the checkout quote)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.coupons import service as coupons
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.offers import FixedDiscount, MemberDayPrice, PercentDiscount
from tests.builders import enrol
from tests.conftest import START
from tests.coupons.helpers import coupon_code, give_coupon, use
from tests.inspect_db import count, events


class TestIssue:
    async def test_one_issue_key_issues_one_coupon(self, app: FastAPI, member_id: str) -> None:
        key = f"birthday:{member_id}:2026"
        first = await give_coupon(app, member_id, issue_key=key)
        second = await give_coupon(app, member_id, issue_key=key)
        assert first is not None
        assert second is None
        assert await count(app, "coupons") == 1
        [issued] = await events(app, "coupon.issued")
        assert issued["payload"]["coupon_id"] == str(first.id)
        assert issued["payload"]["source_type"] == "birthday_gift"

    async def test_other_issue_keys_and_no_key_issue_again(self, app: FastAPI, member_id: str) -> None:
        assert await give_coupon(app, member_id, issue_key="birthday:2026") is not None
        assert await give_coupon(app, member_id, issue_key="birthday:2027") is not None
        assert await give_coupon(app, member_id) is not None
        assert await give_coupon(app, member_id) is not None
        assert await count(app, "coupons") == 4
        assert len(await events(app, "coupon.issued")) == 4

    async def test_offer_round_trips(self, app: FastAPI, member_id: str) -> None:
        offer = PercentDiscount(percent=Decimal("12.5"), min_subtotal=5000, categories=["wine"])
        issued = await give_coupon(app, member_id, offer=offer)
        assert issued is not None
        units: UnitsOfWork = app.state.units
        async with units.read() as uow:
            [found] = await coupons.coupons_for_checkout(
                uow, member_id=uuid.UUID(member_id), codes=[issued.code]
            )
        assert found is not None
        assert found.offer == offer
        assert found.kind == "percent_discount"

    async def test_a_code_collision_draws_again(
        self, app: FastAPI, member_id: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        taken = await coupon_code(app, member_id)
        draws = iter([taken, taken, "ZZZZ-ZZZZ-ZZZZ-ZZZ2"])
        monkeypatch.setattr(coupons, "generate_code", lambda: next(draws))
        issued = await give_coupon(app, member_id, issue_key="after-collision")
        assert issued is not None
        assert issued.code == "ZZZZ-ZZZZ-ZZZZ-ZZZ2"
        assert await count(app, "coupons") == 2

    async def test_refuses_what_is_not_a_coupon(self, app: FastAPI, member_id: str) -> None:
        with pytest.raises(ValueError, match="not a coupon offer"):
            await give_coupon(app, member_id, offer=MemberDayPrice(weekday=3, percent=Decimal(20)))
        with pytest.raises(ValueError, match="valid_until"):
            await give_coupon(app, member_id, valid_from=START, valid_until=START)
        assert await count(app, "coupons") == 0


class TestCouponsForCheckout:
    async def test_one_answer_per_named_code(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        other = str((await enrol(client, pos_key))["id"])
        usable = await coupon_code(app, member_id, offer=FixedDiscount(amount=500))
        used = await coupon_code(app, member_id)
        expired = await coupon_code(app, member_id, valid_until=START + timedelta(hours=1))
        upcoming = await coupon_code(app, member_id, valid_from=START + timedelta(days=3))
        strangers = await coupon_code(app, other)
        assert (await use(client, pos_key, used)).status_code == 200
        clock.advance(timedelta(hours=1))
        named = [
            usable.lower().replace("-", ""),
            used,
            expired,
            upcoming,
            strangers,
            "2345-6789-ABCD-EFGH",
            "??",
        ]

        units: UnitsOfWork = app.state.units
        async with units.read() as uow:
            found = await coupons.coupons_for_checkout(uow, member_id=uuid.UUID(member_id), codes=named)
        now = clock.now()

        states = [None if c is None else coupons.coupon_state(c, now) for c in found]
        assert states == ["usable", "used", "expired", "not_yet_valid", None, None, None]
        assert found[0] is not None
        assert (found[0].code, found[0].offer) == (usable, FixedDiscount(amount=500))

    async def test_no_codes_no_answers(self, app: FastAPI, member_id: str) -> None:
        units: UnitsOfWork = app.state.units
        async with units.read() as uow:
            assert await coupons.coupons_for_checkout(uow, member_id=uuid.UUID(member_id), codes=[]) == []
