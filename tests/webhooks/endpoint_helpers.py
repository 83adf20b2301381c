"""Builders for the webhook endpoint and delivery API tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert, update

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from loyalty_api.webhooks.secrets import new_secret
from tests.conftest import bearer

PUBLIC_URL = "https://93.184.216.34/hooks"  # a public literal: passes the SSRF guard without DNS


async def add_endpoint(
    units: UnitsOfWork,
    url: str,
    *,
    event_types: list[str] | None = None,
    secret: str | None = None,
    partner_id: uuid.UUID | None = None,
) -> tuple[str, str]:
    """An endpoint written straight to the table, so that a loopback receiver passes; (id, secret)."""
    secret = secret or new_secret()
    async with units.begin() as uow:
        now = uow.clock.now()
        endpoint = WebhookEndpoint(
            url=url,
            description=None,
            event_types=event_types or [],
            partner_id=partner_id,
            enabled=True,
            secret_encrypted=uow.vault.encrypt(secret),
            previous_secret_encrypted=None,
            previous_secret_until=None,
            failing_since=None,
            disabled_reason=None,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(endpoint)
        await uow.session.flush()
        return str(endpoint.id), secret


async def create_endpoint(client: httpx.AsyncClient, admin_key: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"url": PUBLIC_URL}
    body.update(fields)
    response = await client.post("/v1/webhook-endpoints", json=body, headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def set_endpoint(app: FastAPI, endpoint_id: str, **values: Any) -> None:
    """Test setup only: put an endpoint in a state the worker would (failing, disabled)."""
    units: UnitsOfWork = app.state.units
    async with units.database.engine.begin() as connection:
        await connection.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == uuid.UUID(endpoint_id)).values(**values)
        )


async def set_delivery(app: FastAPI, delivery_id: str, **values: Any) -> None:
    """Test setup only: put a delivery in a state the worker would (leased, failed, delivered)."""
    units: UnitsOfWork = app.state.units
    async with units.database.engine.begin() as connection:
        await connection.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == uuid.UUID(delivery_id)).values(**values)
        )


async def add_attempt(app: FastAPI, delivery_id: str, **values: Any) -> None:
    """Test setup only: record an attempt as the sender would."""
    units: UnitsOfWork = app.state.units
    row: dict[str, Any] = {"status_code": None, "error": None, "duration_ms": 12, "response_body": None}
    row.update(values)
    async with units.database.engine.begin() as connection:
        await connection.execute(insert(WebhookAttempt).values(delivery_id=uuid.UUID(delivery_id), **row))
