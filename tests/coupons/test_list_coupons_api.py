"""A member's coupons: newest first, filtered by status, page by page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.offers import FreeItem
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.coupons.helpers import coupon_code, coupons_of, use
from tests.points.helpers import set_program


@pytest.fixture(autouse=True)
async def _program(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)


class TestListCoupons:
    async def test_shows_what_the_member_needs_to_use_a_coupon(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        code = await coupon_code(app, member_id, offer=FreeItem(sku="THERMOS-01"))
        [coupon] = await coupons_of(client, ecommerce_key, member_id)
        assert coupon["code"] == code
        assert coupon["name"] == "生日快乐 20 元券"
        assert coupon["kind"] == "free_item"
        assert coupon["properties"] == {
            "sku": "THERMOS-01",
            "quantity": 1,
            "min_subtotal": None,
            "categories": [],
            "channels": [],
        }
        assert coupon["status"] == "active"
        assert coupon["source"] == {"type": "birthday_gift", "id": None}
        assert (coupon["used_at"], coupon["used_order_ref"]) == (None, None)

    async def test_status_filter(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        used = await coupon_code(app, member_id)
        expired = await coupon_code(app, member_id, valid_until=START + timedelta(days=1))
        active = await coupon_code(app, member_id)
        upcoming = await coupon_code(
            app, member_id, valid_from=START + timedelta(days=5), valid_until=START + timedelta(days=9)
        )
        assert (await use(client, pos_key, used)).status_code == 200
        clock.advance(timedelta(days=1))
        other = str((await enrol(client, pos_key))["id"])
        await coupon_code(app, other)

        def codes(items: list[dict[str, Any]]) -> list[str]:
            return [c["code"] for c in items]

        assert codes(await coupons_of(client, pos_key, member_id)) == [upcoming, active, expired, used]
        assert codes(await coupons_of(client, pos_key, member_id, status="active")) == [upcoming, active]
        assert codes(await coupons_of(client, pos_key, member_id, status="used")) == [used]
        assert codes(await coupons_of(client, pos_key, member_id, status="expired")) == [expired]
        statuses = {c["code"]: c["status"] for c in await coupons_of(client, pos_key, member_id)}
        assert statuses == {upcoming: "active", active: "active", expired: "expired", used: "used"}

    async def test_pages(self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str) -> None:
        issued = [await coupon_code(app, member_id) for _ in range(5)]
        seen: list[str] = []
        cursor: str | None = None
        for expected_size in (2, 2, 1):
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            response = await client.get(
                f"/v1/members/{member_id}/coupons", params=params, headers=bearer(pos_key)
            )
            page = response.json()
            assert len(page["items"]) == expected_size
            seen += [c["code"] for c in page["items"]]
            cursor = page["next_cursor"]
        assert cursor is None
        assert seen == list(reversed(issued))

    async def test_unknown_member_is_404(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.get(
            "/v1/members/01890a5d-ac96-774b-bcce-b302099a8057/coupons", headers=bearer(pos_key)
        )
        assert (response.status_code, response.json()["code"]) == (404, "member_not_found")

    @pytest.mark.parametrize("params", [{"status": "lost"}, {"limit": 0}, {"limit": 201}, {"cursor": "??"}])
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, pos_key: str, member_id: str, params: dict[str, object]
    ) -> None:
        response = await client.get(
            f"/v1/members/{member_id}/coupons", params=params, headers=bearer(pos_key)
        )
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")

    async def test_billing_key_may_not_list(
        self, client: httpx.AsyncClient, billing_key: str, member_id: str
    ) -> None:
        response = await client.get(f"/v1/members/{member_id}/coupons", headers=bearer(billing_key))
        assert response.status_code == 403
