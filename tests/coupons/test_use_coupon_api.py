"""Using a coupon: once, within its validity, and only by its owner when the caller names one."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.coupons.helpers import coupon_code, coupons_of, use
from tests.inspect_db import events
from tests.points.helpers import set_program


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)


class TestUse:
    async def test_a_coupon_is_used_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        code = await coupon_code(app, member_id)

        first = await use(client, pos_key, code, order_ref="POS-77")
        again = await use(client, pos_key, code, order_ref="POS-78")

        assert first.status_code == 200, first.text
        used = first.json()
        assert (used["code"], used["status"], used["used_order_ref"]) == (code, "used", "POS-77")
        assert used["used_at"] is not None
        assert (again.status_code, again.json()["code"]) == (409, "coupon_already_used")
        [listed] = await coupons_of(client, pos_key, member_id)
        assert (listed["status"], listed["used_order_ref"]) == ("used", "POS-77")
        [event] = await events(app, "coupon.used")
        assert event["payload"]["order_ref"] == "POS-77"
        assert event["payload"]["member_id"] == member_id

    async def test_used_again_on_the_same_order_says_the_coupon_is_that_orders(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        # The till's first answer was lost; it tries again without an Idempotency-Key.
        code = await coupon_code(app, member_id)
        first = await use(client, pos_key, code, order_ref="POS-77")
        assert first.status_code == 200, first.text

        again = await use(client, pos_key, code, order_ref="POS-77")

        assert (again.status_code, again.json()["code"]) == (409, "coupon_used_on_this_order")
        [listed] = await coupons_of(client, pos_key, member_id)
        assert (listed["status"], listed["used_order_ref"], listed["used_at"]) == (
            "used",
            "POS-77",
            first.json()["used_at"],
        )
        assert len(await events(app, "coupon.used")) == 1

    async def test_a_suspended_members_coupon_is_refused_and_stays_unused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, member_id: str
    ) -> None:
        code = await coupon_code(app, member_id)
        suspended = await client.patch(
            f"/v1/members/{member_id}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text

        refused = await use(client, pos_key, code, order_ref="POS-90")

        assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")
        [listed] = await coupons_of(client, pos_key, member_id)
        assert (listed["status"], listed["used_at"]) == ("active", None)
        assert await events(app, "coupon.used") == []
        await client.patch(f"/v1/members/{member_id}", json={"status": "active"}, headers=bearer(admin_key))
        assert (await use(client, pos_key, code, order_ref="POS-90")).status_code == 200

    async def test_expired_coupon_is_410(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        code = await coupon_code(app, member_id, valid_until=START + timedelta(days=30))
        clock.advance(timedelta(days=30))  # valid until that instant, not at it

        response = await use(client, pos_key, code)

        assert (response.status_code, response.json()["code"]) == (410, "coupon_expired")
        [listed] = await coupons_of(client, pos_key, member_id)
        assert (listed["status"], listed["used_at"]) == ("expired", None)
        assert await events(app, "coupon.used") == []

    async def test_usable_until_the_last_moment(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        code = await coupon_code(app, member_id, valid_until=START + timedelta(days=30))
        clock.advance(timedelta(days=30) - timedelta(microseconds=1))
        assert (await use(client, pos_key, code)).status_code == 200

    async def test_coupon_not_valid_yet_is_422_until_it_is(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        code = await coupon_code(
            app, member_id, valid_from=START + timedelta(days=1), valid_until=START + timedelta(days=8)
        )
        early = await use(client, pos_key, code)
        assert (early.status_code, early.json()["code"]) == (422, "coupon_not_yet_valid")
        [listed] = await coupons_of(client, pos_key, member_id)
        assert listed["status"] == "active"
        clock.advance(timedelta(days=1))
        assert (await use(client, pos_key, code)).status_code == 200

    async def test_code_may_be_typed_in_lower_case_without_hyphens(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        code = await coupon_code(app, member_id)
        response = await use(client, pos_key, code.replace("-", "").lower())
        assert response.status_code == 200
        assert response.json()["code"] == code

    @pytest.mark.parametrize("code", ["2345-6789-ABCD-EFGH", "not-a-code", "0000-OOOO-1111-IIII", "X" * 64])
    async def test_unknown_code_is_404(self, client: httpx.AsyncClient, pos_key: str, code: str) -> None:
        response = await use(client, pos_key, code)
        assert (response.status_code, response.json()["code"]) == (404, "coupon_not_found")

    @pytest.mark.parametrize("body", [{}, {"order_ref": "bad ref/"}, {"order_ref": "A", "surprise": 1}])
    async def test_bad_body_is_422_and_leaves_the_coupon(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member_id: str,
        body: dict[str, object],
    ) -> None:
        code = await coupon_code(app, member_id)
        response = await client.post(
            f"/v1/coupons/{code}/use", json=body, headers={"Authorization": f"Bearer {pos_key}"}
        )
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")
        assert (await coupons_of(client, pos_key, member_id))[0]["status"] == "active"


class TestOwnership:
    async def test_ecommerce_key_must_name_the_member(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        code = await coupon_code(app, member_id)
        response = await use(client, ecommerce_key, code)
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")
        assert response.json()["errors"][0]["field"] == "member_id"
        assert (await coupons_of(client, ecommerce_key, member_id))[0]["status"] == "active"

    async def test_ecommerce_key_uses_its_members_coupon(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        code = await coupon_code(app, member_id)
        response = await use(client, ecommerce_key, code, member_id=member_id)
        assert response.status_code == 200
        assert response.json()["status"] == "used"

    async def test_another_members_coupon_is_not_found_whatever_its_state(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        stranger = str((await enrol(client, pos_key))["id"])
        active = await coupon_code(app, member_id)
        used = await coupon_code(app, member_id)
        expiring = await coupon_code(app, member_id, valid_until=START + timedelta(hours=1))
        assert (await use(client, pos_key, used)).status_code == 200
        clock.advance(timedelta(hours=2))

        for code in (active, used, expiring):
            response = await use(client, ecommerce_key, code, member_id=stranger)
            assert (response.status_code, response.json()["code"]) == (404, "coupon_not_found"), code
            assert response.json()["detail"] == "No such coupon"
        statuses = sorted(c["status"] for c in await coupons_of(client, pos_key, member_id))
        assert statuses == ["active", "expired", "used"]

    async def test_pos_key_naming_the_wrong_member_gets_404(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        stranger = str((await enrol(client, pos_key))["id"])
        code = await coupon_code(app, member_id)
        response = await use(client, pos_key, code, member_id=stranger)
        assert (response.status_code, response.json()["code"]) == (404, "coupon_not_found")
        assert (await use(client, pos_key, code, member_id=member_id)).status_code == 200

    async def test_billing_key_may_not_use_coupons(
        self, app: FastAPI, client: httpx.AsyncClient, billing_key: str, pos_key: str, member_id: str
    ) -> None:
        code = await coupon_code(app, member_id)
        assert (await use(client, billing_key, code, member_id=member_id)).status_code == 403
        assert (await coupons_of(client, pos_key, member_id))[0]["status"] == "active"
