from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any, cast

import httpx
from fastapi import FastAPI
from sqlalchemy import Table, insert

from loyalty_api.campaigns.service import run_campaigns
from loyalty_api.db.ids import new_id
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.members.birthday_keys import month_key
from loyalty_api.members.models import Member, MemberRfm
from loyalty_api.points.models import PointsAccount
from tests.conftest import START, bearer, units_of

_numbers = itertools.count(1)


async def seed_members(
    app: FastAPI,
    count: int,
    *,
    tier_id: uuid.UUID | None = None,
    lifecycle: str = "active",
    segment: str | None = None,
    birthday_month: int | None = None,
    status: str = "active",
) -> list[str]:
    """`count` members with empty accounts, written straight to the tables in a few statements: enrolling
    10,000 through the API would take minutes, and a campaign reads only these columns. Their ids, in
    order. Builders that go through the services (tests.builders.enrol) make the members whose personal
    data or history matter."""
    units: UnitsOfWork = units_of(app)
    month = None if birthday_month is None else month_key(units.vault, birthday_month)
    now: datetime = units.clock.now()
    members: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    rfm: list[dict[str, Any]] = []
    for _ in range(count):
        n = next(_numbers)
        member_id = new_id()
        members.append(
            {
                "id": member_id,
                "member_number": f"7{n:09d}",
                "status": status,
                "tier_id": tier_id,
                "birthday_month_key": month,
                "channel": "store",
                "marketing_consent": False,
                "referral_code": f"C{n:09d}",
                "lifecycle_stage": lifecycle,
                "lifecycle_since": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        accounts.append(
            {"member_id": member_id, "balance": 0, "held": 0, "lifetime_earned": 0, "updated_at": now}
        )
        if segment is not None:
            rfm.append(
                {
                    "member_id": member_id,
                    "recency": 1,
                    "frequency": 1,
                    "monetary": 1,
                    "segment": segment,
                    "last_purchase_at": None,
                    "purchases": 0,
                    "spend_minor": 0,
                    "computed_at": now,
                }
            )
    async with units.database.engine.begin() as connection:
        await connection.execute(insert(cast(Table, Member.__table__)), members)
        await connection.execute(insert(cast(Table, PointsAccount.__table__)), accounts)
        if rfm:
            await connection.execute(insert(cast(Table, MemberRfm.__table__)), rfm)
    return [str(row["id"]) for row in members]


COUPON_ACTION: dict[str, Any] = {
    "type": "issue_coupon",
    "coupon_name": "We miss you: 20 off",
    "coupon": {"kind": "fixed_discount", "amount": 2_000},
    "valid_days": 14,
}
POINTS_ACTION: dict[str, Any] = {"type": "grant_points", "points": 150, "reason": "Spring welcome back"}


async def create_reply(
    client: httpx.AsyncClient, admin_key: str, *, audience: dict[str, Any] | None = None, **body: Any
) -> httpx.Response:
    sent = {"name": "Win-back", "action": COUPON_ACTION, **body}
    if audience is not None:
        sent["audience"] = audience
    return await client.post("/v1/campaigns", json=sent, headers=bearer(admin_key))


async def create(
    client: httpx.AsyncClient, admin_key: str, *, audience: dict[str, Any] | None = None, **body: Any
) -> dict[str, Any]:
    response = await create_reply(client, admin_key, audience=audience, **body)
    assert response.status_code == 201, response.text
    campaign: dict[str, Any] = response.json()
    return campaign


async def read(client: httpx.AsyncClient, admin_key: str, campaign_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/campaigns/{campaign_id}", headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    campaign: dict[str, Any] = response.json()
    return campaign


async def reached(client: httpx.AsyncClient, admin_key: str, campaign_id: str) -> list[dict[str, Any]]:
    """Every member the campaign reached, page by page."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        response = await client.get(
            f"/v1/campaigns/{campaign_id}/members", params=params, headers=bearer(admin_key)
        )
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def run(app: FastAPI, **options: Any) -> int:
    return await run_campaigns(units_of(app), **options)


__all__ = ["START"]
