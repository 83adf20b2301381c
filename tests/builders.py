"""Builders go through the services, so no test can create a state the rules forbid."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Scope
from loyalty_api.db.uow import UnitsOfWork


def _units(app: FastAPI) -> UnitsOfWork:
    units: UnitsOfWork = app.state.units
    return units


async def make_key(app: FastAPI, *scopes: Scope, partner_id: uuid.UUID | None = None) -> str:
    async with _units(app).begin() as uow:
        issued = await auth_service.create_key(
            uow, name="test key", scopes=list(scopes), partner_id=partner_id
        )
    return issued.token


_phone_counter = iter(range(10_000_000))


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
