from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from loyalty_api.coupons import service as coupons
from loyalty_api.coupons.service import CouponView
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.offers import CartConditions, FixedDiscount
from tests.conftest import START, bearer


async def give_coupon(
    app: FastAPI,
    member_id: str,
    *,
    valid_from: datetime = START,
    valid_until: datetime = START + timedelta(days=30),
    offer: CartConditions | None = None,
    issue_key: str | None = None,
) -> CouponView | None:
    """A coupon issued the way the birthday job issues one (through the service)."""
    units: UnitsOfWork = app.state.units
    async with units.begin() as uow:
        return await coupons.issue_coupon(
            uow,
            member_id=uuid.UUID(member_id),
            name="生日快乐 20 元券",
            offer=offer or FixedDiscount(amount=2000),
            valid_from=valid_from,
            valid_until=valid_until,
            source_type="birthday_gift",
            source_id=None,
            issue_key=issue_key,
        )


async def coupon_code(app: FastAPI, member_id: str, **kwargs: Any) -> str:
    coupon = await give_coupon(app, member_id, **kwargs)
    assert coupon is not None
    return coupon.code


async def use(
    client: httpx.AsyncClient,
    key: str,
    code: str,
    *,
    order_ref: str = "ORDER-1",
    member_id: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"order_ref": order_ref}
    if member_id is not None:
        body["member_id"] = member_id
    return await client.post(f"/v1/coupons/{code}/use", json=body, headers=bearer(key))


async def coupons_of(
    client: httpx.AsyncClient, key: str, member_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/members/{member_id}/coupons", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
