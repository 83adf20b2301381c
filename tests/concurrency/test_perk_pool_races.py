"""Paid periods beginning at once, for many members, each taking a code from one partner's pool: no code is
given twice, the pool runs out into owed perks, and on PostgreSQL a grant whose code another transaction holds
takes the next one instead of waiting for it."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.partners.perks import grant_period_perks
from loyalty_api.plan_catalogue.catalogue import CatalogPlan
from loyalty_api.plan_catalogue.service import get_catalogue
from tests.builders import enrol, make_partner_key
from tests.conftest import UNLIMITED, bearer, units_of
from tests.inspect_db import events, rows
from tests.points.helpers import set_program
from tests.subscriptions.helpers import add_plan, subscribe_paid

POOLED = {"partner": "race-meals", "name": "Meal pass", "source": "pool", "perk": "meal-pass"}


async def _world(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, members: int, codes: int
) -> tuple[CatalogPlan, list[tuple[uuid.UUID, uuid.UUID]]]:
    """The pooled plan, and `members` members each with a paid subscription (of a plan without perks), whose
    next periods the test begins itself; the pool holds `codes` codes."""
    await set_program(client, admin_key)
    made = await client.post(
        "/v1/partners", json={"code": "race-meals", "name": "Race"}, headers=bearer(admin_key)
    )
    key = await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)
    await add_plan(client, admin_key, "meals", partner_perks=[POOLED])
    await add_plan(client, admin_key, "plain")
    uploaded = await client.post(
        "/v1/partner/perk-codes",
        json={"perk": "meal-pass", "codes": [f"MEAL-{n}" for n in range(codes)]},
        headers=bearer(key),
    )
    assert uploaded.status_code == 200, uploaded.text
    subscribers = []
    for _ in range(members):
        member = (await enrol(client, pos_key))["id"]
        subscription = await subscribe_paid(client, admin_key, member, "plain")
        subscribers.append((uuid.UUID(subscription["id"]), uuid.UUID(member)))
    async with units_of(app).read() as uow:
        plan = (await get_catalogue(uow)).by_code("meals")
    assert plan is not None
    return plan, subscribers


async def test_simultaneous_grants_never_share_a_code(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    plan, subscribers = await _world(app, client, admin_key, pos_key, members=8, codes=5)
    units = units_of(app)

    async def begin_period(subscription_id: uuid.UUID, member_id: uuid.UUID) -> None:
        async with units.begin() as uow:
            await grant_period_perks(
                uow, subscription_id=subscription_id, member_id=member_id, period=2, plan=plan
            )

    await asyncio.gather(*(begin_period(s, m) for s, m in subscribers))

    perks = await rows(app, "SELECT id, status, granted_at FROM partner_perks")
    assert Counter(p["status"] for p in perks) == {"issued": 5, "owed": 3}
    taken = await rows(app, "SELECT perk_id FROM partner_perk_codes WHERE perk_id IS NOT NULL")
    assert len(taken) == len({t["perk_id"] for t in taken}) == 5
    assert {t["perk_id"] for t in taken} == {p["id"] for p in perks if p["status"] == "issued"}


async def test_a_grant_skips_the_code_another_holds_on_postgresql(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    units = units_of(app)
    if units.database.dialect != "postgresql":
        pytest.skip("SQLite writes one transaction at a time: there is no second grant while one is open")
    plan, [(s1, m1), (s2, m2)] = await _world(app, client, admin_key, pos_key, members=2, codes=2)
    held = await units.start()
    try:
        await grant_period_perks(held, subscription_id=s1, member_id=m1, period=2, plan=plan)

        async def other() -> None:
            async with units.begin() as uow:
                await grant_period_perks(uow, subscription_id=s2, member_id=m2, period=2, plan=plan)

        # it neither waits for the first grant's code nor goes without: it takes the other one
        await asyncio.wait_for(other(), timeout=10)
        await held.commit()
    finally:
        await held.close()
    given = await rows(
        app,
        "SELECT p.member_id, p.status, c.id AS code_id FROM partner_perks p "
        "JOIN partner_perk_codes c ON c.perk_id = p.id",
    )
    assert sorted(g["status"] for g in given) == ["issued", "issued"]
    assert len({g["code_id"] for g in given}) == 2


async def test_members_back_from_a_suspension_while_codes_come_all_get_one(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """Members reactivated while the partner uploads: each owed perk is granted once, by the return or by the
    upload, whichever commits second; none is left owed beside an unused code."""
    await set_program(client, admin_key)
    made = await client.post(
        "/v1/partners", json={"code": "race-meals", "name": "Race"}, headers=bearer(admin_key)
    )
    key = await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)
    await add_plan(client, admin_key, "meals", partner_perks=[POOLED])
    members = [str((await enrol(client, pos_key))["id"]) for _ in range(6)]
    for member in members:
        await subscribe_paid(client, admin_key, member, "meals")
        suspended = await client.patch(
            f"/v1/members/{member}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text

    replies = await asyncio.gather(
        *(
            client.patch(f"/v1/members/{member}", json={"status": "active"}, headers=bearer(admin_key))
            for member in members
        ),
        client.post(
            "/v1/partner/perk-codes",
            json={"perk": "meal-pass", "codes": [f"MEAL-{n}" for n in range(6)]},
            headers=bearer(key),
        ),
    )
    assert [r.status_code for r in replies] == [200] * 7, [r.text for r in replies if r.is_error]

    perks = await rows(app, "SELECT id, status FROM partner_perks")
    assert Counter(p["status"] for p in perks) == {"issued": 6}
    taken = await rows(app, "SELECT perk_id FROM partner_perk_codes WHERE perk_id IS NOT NULL")
    assert len(taken) == len({t["perk_id"] for t in taken}) == 6
    assert len(await events(app, "partner.perk_granted")) == 6
