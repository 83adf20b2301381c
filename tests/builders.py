"""Builders go through the services, so no test can create a state the rules forbid."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Scope
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.partners import service as partners


def _units(app: FastAPI) -> UnitsOfWork:
    units: UnitsOfWork = app.state.units
    return units


async def make_key(
    app: FastAPI, *scopes: Scope, partner_id: uuid.UUID | None = None, rate_limit: str | None = None
) -> str:
    async with _units(app).begin() as uow:
        if partner_id is None:
            issued = await auth_service.create_key(
                uow, name="test key", scopes=list(scopes), rate_limit=rate_limit
            )
        else:
            issued = await partners.create_partner_key(
                uow, partner_id, name="test key", scopes=list(scopes), rate_limit=rate_limit
            )
    return issued.token


_partner_counter = iter(range(10_000_000))


async def add_partner(
    app: FastAPI, code: str | None = None, terms: partners.Terms | None = None
) -> uuid.UUID:
    """A partner brand, through the service; its id."""
    async with _units(app).begin() as uow:
        partner = await partners.create_partner(
            uow,
            code=code or f"partner-{next(_partner_counter)}-{uuid.uuid4().hex[:6]}",
            name="Test partner",
            terms=terms or partners.Terms(),
        )
    return partner.id


async def make_partner_key(
    app: FastAPI, partner_id: uuid.UUID | None = None, rate_limit: str | None = None
) -> str:
    """A `partner` key bound to `partner_id`, or to a new partner."""
    bound = partner_id if partner_id is not None else await add_partner(app)
    return await make_key(app, Scope.partner, partner_id=bound, rate_limit=rate_limit)


_phone_counter = iter(range(10_000_000))


def full_width(digits: str) -> str:
    """Digits as a Chinese or Japanese input method types them (U+FF10 to U+FF19)."""
    return "".join(chr(0xFF10 + int(d)) for d in digits)


def unique_phone() -> str:
    """A valid CN mobile number no other test member has."""
    return f"+86139{next(_phone_counter):08d}"


async def enrol(client: httpx.AsyncClient, key: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"phone": unique_phone(), "name": "测试会员"}
    body.update(fields)
    response = await client.post("/v1/members", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201, response.text
    member: dict[str, Any] = response.json()
    return member


async def add_tier(
    client: httpx.AsyncClient, admin_key: str, code: str, *, rank: int, **fields: Any
) -> dict[str, Any]:
    """A tier through the API: by default qualified for by yearly spend, threshold 0, no multiplier."""
    body: dict[str, Any] = {
        "code": code,
        "name": code.title(),
        "rank": rank,
        "metric": "spend",
        "window": "calendar_year",
        "threshold": 0,
        "points_multiplier": "1",
        "grace_days": 0,
        "benefit_ids": [],
    }
    body.update(fields)
    response = await client.post("/v1/tiers", json=body, headers={"Authorization": f"Bearer {admin_key}"})
    assert response.status_code == 201, response.text
    tier: dict[str, Any] = response.json()
    return tier
