from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import events, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, earn, points, set_program


@pytest.fixture
async def member_id(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> str:
    await set_program(client, admin_key)
    return str((await enrol(client, pos_key))["id"])


async def refund(client: httpx.AsyncClient, key: str, order_ref: str, amount: int) -> httpx.Response:
    return await client.post(
        f"/v1/orders/{order_ref}/refund", json={"amount": cny(amount)}, headers=bearer(key)
    )


class TestRefunds:
    async def test_partial_refunds_take_back_in_proportion_and_never_more(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 9_990, order_ref="R1")  # 99 points
        first = await refund(client, pos_key, "R1", 3_330)
        assert first.status_code == 200, first.text
        assert first.json()["points_taken_back"] == 33
        second = await refund(client, pos_key, "R1", 3_330)
        assert second.json()["points_taken_back"] == 33
        last = await refund(client, pos_key, "R1", 3_330)
        assert last.json()["points_taken_back"] == 33
        assert last.json()["refunded_total"] == cny(9_990)
        assert (await points(client, pos_key, member_id))["balance"] == 0
        over = await refund(client, pos_key, "R1", 1)
        assert over.status_code == 422
        assert over.json()["code"] == "refund_exceeds_order"
        assert len(await events(app, "points.refunded")) == 3
        await assert_ledger_invariant(app, member_id)

    async def test_refund_gives_back_redeemed_points(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 50_000, order_ref="EARLIER")  # 500 points
        await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 200, "order_ref": "R2", "order_total": cny(10_000)},
            headers=bearer(pos_key),
        )
        await earn(client, pos_key, member_id, 8_000, order_ref="R2")  # cash part earns 80
        half = await refund(client, pos_key, "R2", 5_000)
        body = half.json()
        assert (body["points_given_back"], body["points_taken_back"], body["shortfall"]) == (100, 40, 0)
        assert body["order_total"] == cny(10_000)
        assert body["balance"] == 500 - 200 + 80 + 100 - 40
        await assert_ledger_invariant(app, member_id)

    async def test_spent_points_become_a_shortfall_not_a_negative_balance(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="R3")
        await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 80, "order_ref": "R3-SPEND"},
            headers=bearer(pos_key),
        )
        result = (await refund(client, pos_key, "R3", 10_000)).json()
        assert (result["points_taken_back"], result["shortfall"], result["balance"]) == (20, 80, 0)
        await assert_ledger_invariant(app, member_id)

    async def test_a_hold_past_its_time_does_not_shield_points_from_a_refund(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="RH")  # 100 points
        held = await client.post(
            f"/v1/members/{member_id}/holds",
            json={"points": 100, "order_ref": "WEB-9", "ttl_seconds": 60},
            headers=bearer(ecommerce_key),
        )
        assert held.status_code == 201, held.text
        clock.advance(timedelta(minutes=5))  # the hold has run out; no job has released it yet
        body = (await refund(client, pos_key, "RH", 10_000)).json()
        assert (body["points_taken_back"], body["shortfall"]) == (100, 0)
        assert (await points(client, pos_key, member_id))["balance"] == 0
        await assert_ledger_invariant(app, member_id)

    async def test_unknown_order_and_bad_refunds_change_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="R4")
        before = await table_counts(app, "ledger_entries", "point_lots")
        assert (await refund(client, pos_key, "NOPE", 100)).json()["code"] == "order_not_found"
        usd = await client.post(
            "/v1/orders/R4/refund", json={"amount": {"amount": 1, "currency": "USD"}}, headers=bearer(pos_key)
        )
        assert usd.json()["code"] == "currency_mismatch"
        for amount in (0, 0.5, -1):
            bad = await client.post(
                "/v1/orders/R4/refund",
                json={"amount": {"amount": amount, "currency": "CNY"}},
                headers=bearer(pos_key),
            )
            assert bad.status_code == 422, (amount, bad.text)
            assert bad.json()["errors"][0]["field"].startswith("amount")
        assert await table_counts(app, "ledger_entries", "point_lots") == before


class TestAdjustmentsAndLedger:
    async def test_adjust_up_and_down_with_reason(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, member_id: str
    ) -> None:
        up = await client.post(
            f"/v1/members/{member_id}/adjustments",
            json={"points": 500, "reason": "opening balance"},
            headers=bearer(admin_key),
        )
        assert up.status_code == 201
        down = await client.post(
            f"/v1/members/{member_id}/adjustments",
            json={"points": -200, "reason": "goodwill reversed"},
            headers=bearer(admin_key),
        )
        assert down.json()["balance"] == 300
        too_much = await client.post(
            f"/v1/members/{member_id}/adjustments",
            json={"points": -301, "reason": "x"},
            headers=bearer(admin_key),
        )
        assert too_much.json()["code"] == "insufficient_points"
        for bad in ({"points": 5}, {"points": 0, "reason": "x"}, {"points": 5, "reason": ""}):
            response = await client.post(
                f"/v1/members/{member_id}/adjustments", json=bad, headers=bearer(admin_key)
            )
            assert response.status_code == 422
        pos = await client.post(
            f"/v1/members/{member_id}/adjustments", json={"points": 5, "reason": "x"}, headers=bearer(pos_key)
        )
        assert pos.status_code == 403
        [first, _] = await events(app, "points.adjusted")
        assert first["payload"]["reason"] == "opening balance"
        await assert_ledger_invariant(app, member_id)

    async def test_ledger_pages_newest_first_with_filters(
        self, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        for i in range(3):
            await earn(client, pos_key, member_id, 1_000 * (i + 1), order_ref=f"L{i}")
        await client.post(
            f"/v1/members/{member_id}/redeem", json={"points": 5, "order_ref": "L-R"}, headers=bearer(pos_key)
        )
        page = (
            await client.get(f"/v1/members/{member_id}/ledger", params={"limit": 3}, headers=bearer(pos_key))
        ).json()
        assert [e["type"] for e in page["items"]] == ["redeem", "earn", "earn"]
        assert [e["balance_after"] for e in page["items"]] == [55, 60, 30]
        rest = (
            await client.get(
                f"/v1/members/{member_id}/ledger",
                params={"limit": 3, "cursor": page["next_cursor"]},
                headers=bearer(pos_key),
            )
        ).json()
        assert [e["order_ref"] for e in rest["items"]] == ["L0"]
        assert rest["next_cursor"] is None
        earns = (
            await client.get(
                f"/v1/members/{member_id}/ledger", params={"type": "earn"}, headers=bearer(pos_key)
            )
        ).json()
        assert {e["type"] for e in earns["items"]} == {"earn"}
        assert earns["items"][0]["details"]["breakdown"] == [
            {"rule": "base", "kind": "base_rate", "points": 30}
        ]
        naive = await client.get(
            f"/v1/members/{member_id}/ledger",
            params={"since": "2026-01-01T00:00:00"},
            headers=bearer(pos_key),
        )
        assert naive.status_code == 422
        unknown_type = await client.get(
            f"/v1/members/{member_id}/ledger", params={"type": "gift"}, headers=bearer(pos_key)
        )
        assert unknown_type.status_code == 422
