"""Builders for paid-membership tests: plans, subscriptions and billing's payments through the API, and the
renewal job as the worker runs it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.subscriptions.jobs import run_subscriptions
from loyalty_api.subscriptions.models import Subscription
from tests.builders import enrol
from tests.conftest import bearer
from tests.points.helpers import cny

NOTICE = timedelta(hours=72)  # the default subscription_notice_hours

_refs = itertools.count(1)


def at(value: str) -> datetime:
    """A timestamp from a response body, as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def next_payment_ref() -> str:
    return f"pay-{next(_refs):06d}"


async def add_plan(
    client: httpx.AsyncClient,
    admin_key: str,
    code: str,
    *,
    price: int = 19_800,
    unit: str = "year",
    count: int = 1,
    trial_days: int = 0,
    grace_days: int = 7,
    benefit_ids: Sequence[str] = (),
    coupons: Sequence[dict[str, Any]] = (),
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "code": code,
        "name": code.title(),
        "price": cny(price),
        "interval": {"unit": unit, "count": count},
        "trial_days": trial_days,
        "grace_days": grace_days,
        "benefit_ids": list(benefit_ids),
        "coupons": list(coupons),
        **extra,
    }
    response = await client.post("/v1/plans", json=body, headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    plan: dict[str, Any] = response.json()
    return plan


async def add_plus_family(
    client: httpx.AsyncClient,
    admin_key: str,
    *,
    trial_days: int = 0,
    grace_days: int = 7,
    benefit_ids: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Two monthly plans of one family "plus": "plus" at 15 yuan (with the given trial, grace and benefits)
    and a dearer "premium" at 30 yuan with the defaults."""
    plus = await add_plan(
        client,
        admin_key,
        "plus",
        price=1_500,
        unit="month",
        trial_days=trial_days,
        grace_days=grace_days,
        family="plus",
        benefit_ids=benefit_ids,
    )
    premium = await add_plan(client, admin_key, "premium", price=3_000, unit="month", family="plus")
    return {"plus": plus, "premium": premium}


async def subscribe_reply(
    client: httpx.AsyncClient, key: str, member_id: str, plan: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{member_id}/subscriptions", json={"plan": plan, **extra}, headers=bearer(key)
    )


async def subscribe(
    client: httpx.AsyncClient, key: str, member_id: str, plan: str, **extra: Any
) -> dict[str, Any]:
    response = await subscribe_reply(client, key, member_id, plan, **extra)
    assert response.status_code == 201, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


async def subscribe_paid(client: httpx.AsyncClient, key: str, member_id: str, plan: str) -> dict[str, Any]:
    """A subscription without a trial: billing has taken the first period's fee."""
    return await subscribe(client, key, member_id, plan, trial=False, payment_ref=next_payment_ref())


async def new_subscriber(
    client: httpx.AsyncClient, key: str, plan: str, **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A newly enrolled member and their subscription to `plan`, subscribed with `extra` (by default a trial
    where the plan has one)."""
    member = await enrol(client, key)
    return member, await subscribe(client, key, member["id"], plan, **extra)


async def new_paid_subscriber(
    client: httpx.AsyncClient, key: str, plan: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A newly enrolled member in the first paid period of `plan` (no trial; billing took the first fee)."""
    return await new_subscriber(client, key, plan, trial=False, payment_ref=next_payment_ref())


async def pay_reply(
    client: httpx.AsyncClient,
    billing_key: str,
    subscription_id: str,
    *,
    period: int,
    amount: int,
    status: str = "succeeded",
    payment_ref: str | None = None,
) -> httpx.Response:
    body = {
        "status": status,
        "payment_ref": payment_ref or next_payment_ref(),
        "amount": cny(amount),
        "period": period,
    }
    return await client.post(
        f"/v1/subscriptions/{subscription_id}/payments", json=body, headers=bearer(billing_key)
    )


async def pay(
    client: httpx.AsyncClient,
    billing_key: str,
    subscription_id: str,
    *,
    period: int,
    amount: int,
    status: str = "succeeded",
    payment_ref: str | None = None,
) -> dict[str, Any]:
    response = await pay_reply(
        client,
        billing_key,
        subscription_id,
        period=period,
        amount=amount,
        status=status,
        payment_ref=payment_ref,
    )
    assert response.status_code == 201, response.text
    outcome: dict[str, Any] = response.json()
    return outcome


async def replace_plan(
    client: httpx.AsyncClient, admin_key: str, code: str, **changes: Any
) -> dict[str, Any]:
    """Replace a plan (PUT) with its current definition and `changes` on top; by default it keeps its
    benefits."""
    current = await client.get(f"/v1/plans/{code}", headers=bearer(admin_key))
    assert current.status_code == 200, current.text
    plan = current.json()
    body = {
        k: plan[k] for k in ("name", "price", "interval", "trial_days", "grace_days", "coupons", "active")
    }
    body["benefit_ids"] = [b["id"] for b in plan["benefits"]]
    response = await client.put(f"/v1/plans/{code}", json=body | changes, headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    replaced: dict[str, Any] = response.json()
    return replaced


async def read(client: httpx.AsyncClient, key: str, subscription_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/subscriptions/{subscription_id}", headers=bearer(key))
    assert response.status_code == 200, response.text
    subscription: dict[str, Any] = response.json()
    return subscription


async def post_action(
    client: httpx.AsyncClient, key: str, subscription_id: str, action: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(
        f"/v1/subscriptions/{subscription_id}/{action}", json=body or {}, headers=bearer(key)
    )


async def run_job(app: FastAPI) -> int:
    units: UnitsOfWork = app.state.units
    return await run_subscriptions(units)


async def store_as_older_code_did(app: FastAPI, subscription_id: str, **columns: Any) -> None:
    """Overwrite a subscription's stored columns directly, as a release before this one left them (rows
    written before months turned in the programme's time zone, for one)."""
    units: UnitsOfWork = app.state.units
    table = Subscription.__table__
    async with units.database.engine.begin() as connection:
        await connection.execute(
            update(table).where(table.c.id == uuid.UUID(subscription_id)).values(**columns)
        )


async def member_benefits(client: httpx.AsyncClient, key: str, member_id: str) -> dict[str, Any]:
    """A member's benefits list as the API answers it (tier, plans, benefits with their sources)."""
    response = await client.get(f"/v1/members/{member_id}/benefits", headers=bearer(key))
    assert response.status_code == 200, response.text
    listed: dict[str, Any] = response.json()
    return listed


async def benefit_names(client: httpx.AsyncClient, key: str, member_id: str) -> list[str]:
    return sorted(b["name"] for b in (await member_benefits(client, key, member_id))["benefits"])
