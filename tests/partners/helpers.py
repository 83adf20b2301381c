"""What partner tests share."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from loyalty_api.db.uow import UnitOfWork
from loyalty_api.partners import service as partners
from loyalty_api.privacy import erasure
from tests.builders import make_partner_key
from tests.conftest import UNLIMITED, bearer, units_of

# The joint view a partner reads of a member linked to it, key for key: no personal data among them.
JOINT_VIEW = {
    "partner_customer_ref",
    "member_id",
    "status",
    "tier",
    "paid_plans",
    "joint_benefits",
    "points",
    "grants",
    "linked_at",
}


# --- Purchases at partners, exchanges and settlement (tests/coalition/test_purchases.py, test_exchanges.py,
# test_settlement.py) --------------------------------------------------------------------------------------

# The one code this API gives input it refuses field by field (the partner spec writes `validation_failed`;
# every other route, the catalogue and the clients already written know `validation_error`).
VALIDATION = "validation_error"
# Personal data a partner must never see of a member it reaches no further than a 404.
PERSONAL_KEYS = ("id", "member_number", "phone", "name")


async def register_partner(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, code: str, **settings: Any
) -> str:
    """A partner registered over the admin API with its settings (earn_rate, exchange rates, limits, timeout),
    and an unlimited key bound to it."""
    made = await client.post(
        "/v1/partners", json={"code": code, "name": code.title(), **settings}, headers=bearer(admin_key)
    )
    assert made.status_code == 201, made.text
    return await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)


async def link(
    client: httpx.AsyncClient,
    desk_key: str,
    partner_key: str,
    member_id: str,
    partner: str,
    ref: str,
    *grants: str,
) -> dict[str, Any]:
    """The member consents at our till (a link code), and the partner links its customer `ref` with it."""
    body: dict[str, Any] = {"partner": partner} | ({"grants": list(grants)} if grants else {})
    path = f"/v1/members/{member_id}/partner-link-codes"
    issued = await client.post(path, json=body, headers=bearer(desk_key))
    assert issued.status_code == 201, issued.text
    linked = await client.post(
        "/v1/partner/links",
        json={"code": issued.json()["code"], "partner_customer_ref": ref},
        headers=bearer(partner_key),
    )
    assert linked.status_code == 201, linked.text
    view: dict[str, Any] = linked.json()
    return view


async def ending_the_link(app: FastAPI, member_id: str, partner: str, ending: str) -> UnitOfWork:
    """The member's unlink from `partner` (`ending="unlink"`) or their erasure (`"erasure"`), done and not
    committed: it holds the member's row until the caller commits and closes the unit it returns."""
    uow = await units_of(app).start()
    if ending == "unlink":
        await partners.unlink_by_member(uow, uuid.UUID(member_id), partner)
    else:
        await erasure.erase_member(uow, uuid.UUID(member_id))
    return uow


async def sent_while_the_link_ends(
    app: FastAPI, member_id: str, partner: str, ending: str, send: Coroutine[Any, Any, httpx.Response]
) -> httpx.Response:
    """`send`'s answer, sent while the member's unlink from `partner` (or erasure, `ending`) holds their row,
    committed meanwhile: the call reads the link, waits for the member's row, and goes on after the commit
    (that it waited is checked)."""
    ending_it = await ending_the_link(app, member_id, partner, ending)
    sent = asyncio.create_task(send)
    try:
        await asyncio.sleep(0.3)  # the call has read the link, and waits for the member's row
        waited = not sent.done()
    finally:
        await ending_it.commit()
        await ending_it.close()
    answered = await sent
    assert waited, answered.text
    return answered


async def partner_earn(
    client: httpx.AsyncClient,
    partner_key: str,
    ref: str,
    order_ref: str,
    amount: int,
    currency: str = "CNY",
) -> httpx.Response:
    body = {"order_ref": order_ref, "amount": {"amount": amount, "currency": currency}}
    return await client.post(f"/v1/partner/members/{ref}/earn", json=body, headers=bearer(partner_key))


async def partner_refund(
    client: httpx.AsyncClient, partner_key: str, ref: str, order_ref: str, **body: Any
) -> httpx.Response:
    """`amount={...}` or `full=True`."""
    path = f"/v1/partner/members/{ref}/refunds"
    return await client.post(path, json={"order_ref": order_ref, **body}, headers=bearer(partner_key))


async def exchange_out(
    client: httpx.AsyncClient, key: str, member_id: str, partner: str, points: int
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{member_id}/exchanges", json={"partner": partner, "points": points}, headers=bearer(key)
    )


async def exchange_in(
    client: httpx.AsyncClient, partner_key: str, ref: str, partner_ref: str, partner_points: int
) -> httpx.Response:
    return await client.post(
        f"/v1/partner/members/{ref}/exchanges-in",
        json={"partner_ref": partner_ref, "partner_points": partner_points},
        headers=bearer(partner_key),
    )


async def resolve(client: httpx.AsyncClient, partner_key: str, exchange_id: str, how: str) -> httpx.Response:
    """The partner's answer to an exchange out: `how` is "confirm" or "fail"."""
    return await client.post(f"/v1/partner/exchanges/{exchange_id}/{how}", headers=bearer(partner_key))


async def run_exchange_expiry(app: FastAPI) -> int:
    """The worker's job that expires exchanges out their partner did not answer in time."""
    # Imported here so the other partner tests still load while the module is being written.
    from loyalty_api.coalition.exchanges import expire_exchanges

    expired: int = await expire_exchanges(units_of(app))
    return expired


async def balance(client: httpx.AsyncClient, key: str, member_id: str) -> int:
    response = await client.get(f"/v1/members/{member_id}/points", headers=bearer(key))
    assert response.status_code == 200, response.text
    found: int = response.json()["balance"]
    return found


async def ledger(client: httpx.AsyncClient, admin_key: str, member_id: str) -> list[dict[str, Any]]:
    """Every ledger entry of the member, newest first, all pages."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = await client.get(f"/v1/members/{member_id}/ledger", params=params, headers=bearer(admin_key))
        assert page.status_code == 200, page.text
        entries.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return entries


def problem(response: httpx.Response) -> tuple[int, str | None]:
    """Status and problem code of a refusal (code None when the body is no problem document)."""
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    return response.status_code, code


def value_minor(points: int, point_value_minor: str) -> int:
    """What `points` are worth in minor units at the programme's point value, rounded down (the spec)."""
    return int((Decimal(point_value_minor) * points).to_integral_value(rounding=ROUND_DOWN))


def instant(written: str) -> datetime:
    """An instant as the API writes it (`…Z`), for comparing moments rather than spellings."""
    return datetime.fromisoformat(written)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def add_partner(app: FastAPI, client: httpx.AsyncClient, admin_key: str, code: str) -> str:
    """A partner registered by the operator; a key bound to it."""
    made = await client.post("/v1/partners", json={"code": code, "name": code}, headers=bearer(admin_key))
    assert made.status_code == 201, made.text
    return await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)


async def perks_of(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/members/{member_id}/partner-perks", headers=bearer(key))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found
