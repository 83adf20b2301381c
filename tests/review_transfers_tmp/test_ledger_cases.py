from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.points.expiry import expire_points
from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.graphql.helpers import mutate
from tests.inspect_db import rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, earn, hold_points, points, set_program


async def send(client: httpx.AsyncClient, key: str, a: str, b: str, n: int, **h: str) -> httpx.Response:
    return await client.post(
        f"/v1/members/{a}/transfers", json={"to_member_id": b, "points": n}, headers=bearer(key, **h)
    )


async def ledger(client: httpx.AsyncClient, key: str, member: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/members/{member}/ledger", headers=bearer(key))
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["items"]))


@pytest.fixture
async def pair(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> tuple[str, str]:
    await set_program(client, admin_key, expiry_months=12, transfers_enabled=True)
    a = str((await enrol(client, pos_key))["id"])
    b = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, a, 100_000, order_ref="ORD-A1")
    return a, b


async def test_refund_after_sending(
    app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, pair: tuple[str, str]
) -> None:
    a, b = pair
    assert (await send(client, ecommerce_key, a, b, 1_000)).status_code == 201
    r = await client.post("/v1/orders/ORD-A1/refund", json={"full": True}, headers=bearer(pos_key))
    print("REFUND", r.status_code, r.json())
    print("A", await points(client, pos_key, a))
    print("B", await points(client, pos_key, b))
    await assert_ledger_invariant(app, a)
    await assert_ledger_invariant(app, b)


async def test_recipient_with_spared_due_lot(
    app: FastAPI,
    client: httpx.AsyncClient,
    pos_key: str,
    ecommerce_key: str,
    pair: tuple[str, str],
    clock: FrozenClock,
) -> None:
    a, b = pair
    await earn(client, pos_key, b, 50_000)  # 500, ends in 12 months
    clock.advance(timedelta(days=200))
    await earn(client, pos_key, a, 10_000)  # a's second lot
    clock.advance(timedelta(days=164))
    await hold_points(client, ecommerce_key, b, 500, "WEB-B1", ttl=86_400 * 7)
    clock.advance(timedelta(days=3))  # b's lot is past its end, spared by its hold
    print("B before", await points(client, pos_key, b))
    r = await send(client, ecommerce_key, a, b, 100)
    print("SEND", r.status_code, r.json())
    print("B after", await points(client, pos_key, b))
    for e in await ledger(client, pos_key, b):
        print("B ledger", e["type"], e["amount"], e["balance_after"], e.get("held_after"))
    await assert_ledger_invariant(app, a)
    await assert_ledger_invariant(app, b)


async def test_sender_hold_past_its_time(
    app: FastAPI,
    client: httpx.AsyncClient,
    pos_key: str,
    ecommerce_key: str,
    pair: tuple[str, str],
    clock: FrozenClock,
) -> None:
    a, b = pair
    await hold_points(client, ecommerce_key, a, 800, "WEB-A1", ttl=60)
    clock.advance(timedelta(minutes=5))
    r = await send(client, ecommerce_key, a, b, 1_000)
    print("SEND", r.status_code, r.json())
    assert r.status_code == 201
    await assert_ledger_invariant(app, a)
    await assert_ledger_invariant(app, b)


async def test_sender_lot_past_end_with_hold(
    app: FastAPI,
    client: httpx.AsyncClient,
    pos_key: str,
    ecommerce_key: str,
    pair: tuple[str, str],
    clock: FrozenClock,
) -> None:
    a, b = pair  # a: 1000 ending in 12 months
    clock.advance(timedelta(days=100))
    await earn(client, pos_key, a, 40_000)  # 400 more, later
    clock.advance(timedelta(days=264))
    await hold_points(client, ecommerce_key, a, 700, "WEB-A2", ttl=86_400 * 7)
    clock.advance(timedelta(days=3))  # first lot past its end, spared partly by the hold
    print("A before", await points(client, pos_key, a))
    r = await send(client, ecommerce_key, a, b, 100)
    print("SEND", r.status_code, r.json())
    print("A after", await points(client, pos_key, a))
    print("B after", await points(client, pos_key, b))
    await assert_ledger_invariant(app, a)
    await assert_ledger_invariant(app, b)


async def test_recipient_redeems_and_refunds(
    app: FastAPI,
    client: httpx.AsyncClient,
    pos_key: str,
    ecommerce_key: str,
    pair: tuple[str, str],
    clock: FrozenClock,
) -> None:
    a, b = pair
    assert (await send(client, ecommerce_key, a, b, 600)).status_code == 201
    r = await client.post(
        f"/v1/members/{b}/redeem",
        json={"points": 500, "order_ref": "ORD-B-R", "order_total": cny(100_000)},
        headers=bearer(pos_key),
    )
    assert r.status_code == 200, r.text
    clock.advance(timedelta(days=30))
    r = await client.post("/v1/orders/ORD-B-R/refund", json={"full": True}, headers=bearer(pos_key))
    print("REFUND", r.status_code, r.json())
    print("B", await points(client, pos_key, b))
    await assert_ledger_invariant(app, b)


async def test_analytics(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pair: tuple[str, str]
) -> None:
    a, b = pair
    assert (await send(client, ecommerce_key, a, b, 300)).status_code == 201
    for q in ("", "&group_by=channel", "&group_by=store"):
        r = await client.get(
            f"/v1/analytics/points?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z{q}",
            headers=bearer(admin_key),
        )
        print("REPORT", q, r.status_code, r.json())
    r = await client.get(
        "/v1/analytics/overview?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z", headers=bearer(admin_key)
    )
    print("OVERVIEW", r.json()["points"])
    r = await client.get(
        "/v1/analytics/points?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z",
        headers=bearer(admin_key, Accept="text/csv"),
    )
    print("CSV", r.text)


async def test_error_precedence(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
) -> None:
    await set_program(client, admin_key, transfers_enabled=True)
    m = str((await enrol(client, pos_key))["id"])
    await earn(client, pos_key, m, 10_000)
    await client.patch(f"/v1/members/{m}", json={"status": "suspended"}, headers=bearer(admin_key))
    low = "00000000-0000-7000-8000-000000000000"
    high = "ffffffff-ffff-7fff-bfff-ffffffffffff"
    for other in (low, high):
        r = await send(client, ecommerce_key, m, other, 10)
        print("suspended sender -> missing", other[:4], r.status_code, r.json()["code"])
    # unknown sender, suspended recipient
    for other in (low, high):
        r = await send(client, ecommerce_key, other, m, 10)
        print("missing sender -> suspended", other[:4], r.status_code, r.json()["code"])


async def test_graphql_unknown_recipient(
    app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, pair: tuple[str, str]
) -> None:
    a, _ = pair
    for to in (str(uuid.uuid4()), a, "not-a-uuid"):
        payload = await mutate(
            client,
            ecommerce_key,
            "loyaltyTransferPoints",
            "transfer { transferId }",
            input={"memberId": a, "toMemberId": to, "points": 10},
        )
        print("GQL", to[:8], payload)


async def test_closed_and_erased_recipient(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str, pair: tuple[str, str]
) -> None:
    a, b = pair
    c = str((await enrol(client, pos_key))["id"])
    r = await client.patch(f"/v1/members/{b}", json={"status": "closed"}, headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    r = await client.post(f"/v1/members/{c}/erase", headers=bearer(admin_key))
    print("ERASE", r.status_code)
    for to in (b, c):
        r = await send(client, ecommerce_key, a, to, 10)
        print("to", r.status_code, r.json())


async def test_limit_refusal_replayed_next_day(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    ecommerce_key: str,
    pair: tuple[str, str],
    clock: FrozenClock,
) -> None:
    a, b = pair
    await set_program(client, admin_key, expiry_months=12, transfers_enabled=True, transfer_daily_limit=300)
    assert (await send(client, ecommerce_key, a, b, 300)).status_code == 201
    clock.advance(timedelta(hours=2))
    r1 = await send(client, ecommerce_key, a, b, 100, **{"Idempotency-Key": "gift-x"})
    clock.advance(timedelta(hours=12))  # the next programme day
    r2 = await send(client, ecommerce_key, a, b, 100, **{"Idempotency-Key": "gift-x"})
    r3 = await send(client, ecommerce_key, a, b, 100)
    print("LIMIT", r1.status_code, r2.status_code, r2.headers.get("idempotent-replayed"), r3.status_code)


async def test_export_and_ledger_show_counterparty(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pair: tuple[str, str]
) -> None:
    a, b = pair
    assert (await send(client, ecommerce_key, a, b, 10)).status_code == 201
    r = await client.get(f"/v1/members/{b}/export", headers=bearer(admin_key))
    print("EXPORT", r.status_code, [e["details"] for e in r.json()["points"]["ledger"]])
