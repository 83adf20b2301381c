from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from loyalty_api.clock import FrozenClock
from loyalty_api.points.expiry import expire_points
from loyalty_api.points.holds import expire_holds
from loyalty_api.points.models import LedgerEntry
from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import events, rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, earn, hold_points, points, set_program


@pytest.fixture
async def member_id(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> str:
    await set_program(client, admin_key)
    return str((await enrol(client, pos_key))["id"])


async def refund(client: httpx.AsyncClient, key: str, order_ref: str, amount: int) -> httpx.Response:
    return await client.post(
        f"/v1/orders/{order_ref}/refund", json={"amount": cny(amount)}, headers=bearer(key)
    )


async def refund_by(client: httpx.AsyncClient, key: str, order_ref: str, **body: Any) -> dict[str, Any]:
    """A refund that must succeed: `points=…`, `full=True` or `amount=cny(…)`."""
    response = await client.post(f"/v1/orders/{order_ref}/refund", json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def redeem(
    client: httpx.AsyncClient, key: str, member_id: str, pts: int, order_ref: str, **extra: Any
) -> None:
    response = await client.post(
        f"/v1/members/{member_id}/redeem",
        json={"points": pts, "order_ref": order_ref, **extra},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text


def moved(body: dict[str, Any]) -> tuple[int, int, int]:
    return body["points_given_back"], body["points_taken_back"], body["shortfall"]


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
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["lifetime_earned"]) == (
            0,
            0,
        )  # a purchase returned earned nothing
        over = await refund(client, pos_key, "R1", 1)
        assert over.status_code == 422
        assert over.json()["code"] == "refund_exceeds_order"
        # The amount left says its unit, as the amount sent does: minor units of the order's currency.
        assert over.json()["detail"] == "Only 0 of the order's 9990 CNY (minor units) is left to refund"
        assert over.json()["refundable"] == 0
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

    @pytest.mark.parametrize("first", ["EARNED", "SPENT"])
    async def test_returning_an_order_and_the_one_its_points_paid_leaves_nothing_either_way(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, first: str
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="EARNED")  # 100 points
        await earn(client, pos_key, member_id, 5_000, order_ref="OTHER")  # 50 points, kept
        await redeem(client, pos_key, member_id, 150, "SPENT")  # every point, on another order
        second = "SPENT" if first == "EARNED" else "EARNED"
        results = {ref: await refund_by(client, pos_key, ref, full=True) for ref in (first, second)}
        assert results["SPENT"]["points_given_back"] == 150
        # Whichever came first, the 100 points EARNED gave are taken back: by its own refund, or settled out
        # of the points SPENT's refund gave back once EARNED's could not take them.
        assert (await points(client, pos_key, member_id))["balance"] == 50
        if first == "EARNED":
            assert moved(results["EARNED"]) == (0, 0, 100)
            assert results["SPENT"]["shortfall_settled"] == 100
        else:
            assert moved(results["EARNED"]) == (0, 100, 0)
            assert results["SPENT"]["shortfall_settled"] == 0
        [earned] = await rows(
            app, "SELECT points_taken_back, points_shortfall FROM orders WHERE order_ref = 'EARNED'"
        )
        assert earned == {"points_taken_back": 100, "points_shortfall": 0}
        [*_, settled_by] = await events(app, "points.refunded")
        assert settled_by["payload"]["shortfall_settled"] == (100 if first == "EARNED" else 0)
        await assert_ledger_invariant(app, member_id)
        # EARNED's ledger shows the 100 points taken back, by its own refund or by the settlement.
        ledger = await client.get(
            f"/v1/members/{member_id}/ledger", params={"type": "refund"}, headers=bearer(pos_key)
        )
        taken = [e for e in ledger.json()["items"] if e["order_ref"] == "EARNED" and e["amount"] < 0]
        assert sum(e["amount"] for e in taken) == -100
        assert sum(e["details"]["taken_back"] for e in ledger.json()["items"]) == 100

    @pytest.mark.parametrize("ending", ["released", "expired", "captured in part"])
    async def test_points_a_hold_shielded_from_a_refund_are_taken_back_once_it_lets_them_go(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        member_id: str,
        clock: FrozenClock,
        ending: str,
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="SHIELDED")  # 100 points
        hold_id = await hold_points(client, ecommerce_key, member_id, 100, "WEB-10", ttl=60)
        # Every point is on hold: the refund cannot take them back now.
        assert moved(await refund_by(client, pos_key, "SHIELDED", full=True)) == (0, 0, 100)
        if ending == "released":
            let_go = await client.post(f"/v1/holds/{hold_id}/release", headers=bearer(ecommerce_key))
            assert let_go.status_code == 200, let_go.text
        elif ending == "expired":
            clock.advance(timedelta(minutes=5))
            assert await expire_holds(app.state.units) == 1
        else:
            let_go = await client.post(
                f"/v1/holds/{hold_id}/capture", json={"points": 40}, headers=bearer(ecommerce_key)
            )
            assert let_go.status_code == 200, let_go.text
        freed = 60 if ending == "captured in part" else 100
        # The points the hold let go are the ones the refund was owed: the member does not keep them.
        assert (await points(client, pos_key, member_id))["balance"] == 0
        [order] = await rows(
            app, "SELECT points_taken_back, points_shortfall FROM orders WHERE order_ref = 'SHIELDED'"
        )
        assert order == {"points_taken_back": freed, "points_shortfall": 100 - freed}
        event = "points.hold_captured" if ending == "captured in part" else "points.hold_released"
        [ended] = await events(app, event)
        assert ended["payload"]["shortfall_settled"] == freed
        ledger = await client.get(
            f"/v1/members/{member_id}/ledger", params={"type": "refund"}, headers=bearer(pos_key)
        )
        [settlement] = [e for e in ledger.json()["items"] if e["details"].get("settled_by_hold")]
        assert (settlement["order_ref"], settlement["amount"]) == ("SHIELDED", -freed)
        assert settlement["details"]["settled_by_hold"] == hold_id
        await assert_ledger_invariant(app, member_id)

    async def test_reads_before_the_jobs_show_a_run_out_hold_s_points_going_to_the_shortfall(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="OWED")  # 100 points
        await hold_points(client, ecommerce_key, member_id, 100, "WEB-11", ttl=60)
        assert moved(await refund_by(client, pos_key, "OWED", full=True)) == (0, 0, 100)
        clock.advance(timedelta(minutes=5))  # the hold has run out; no job has released it
        # Its points will settle the shortfall the moment anything releases it: no read offers them.
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["held"], summary["available"]) == (0, 0, 0)
        cart = {"subtotal": cny(10_000), "items": []}
        quote = await client.post(
            "/v1/checkout/quote",
            json={"member_id": member_id, "cart": cart, "points_to_use": 100},
            headers=bearer(ecommerce_key),
        )
        assert quote.json()["points"]["available"] == 0, quote.text
        again = await client.post(
            f"/v1/members/{member_id}/holds",
            json={"points": 1, "order_ref": "WEB-12", "ttl_seconds": 60},
            headers=bearer(ecommerce_key),
        )
        assert (again.status_code, again.json()["code"]) == (422, "insufficient_points")
        assert (await points(client, pos_key, member_id))["balance"] == 0  # the hold's release settled it
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
        await hold_points(client, ecommerce_key, member_id, 100, "WEB-9", ttl=60)
        clock.advance(timedelta(minutes=5))  # the hold has run out; no job has released it yet
        body = (await refund(client, pos_key, "RH", 10_000)).json()
        assert (body["points_taken_back"], body["shortfall"]) == (100, 0)
        assert (await points(client, pos_key, member_id))["balance"] == 0
        await assert_ledger_invariant(app, member_id)

    @pytest.mark.parametrize("job", ["expiry job ran", "no job yet"])
    @pytest.mark.parametrize("in_halves", [False, True], ids=["full", "in halves"])
    async def test_points_the_order_earned_that_expired_are_not_taken_back_again(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
        job: str,
        in_halves: bool,
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="LAPSED")  # 100, ending in 12 months
        await redeem(client, pos_key, member_id, 30, "SPENT-SOME")  # 30 of them spent
        clock.advance(timedelta(days=200))
        await earn(client, pos_key, member_id, 5_000, order_ref="FRESH")  # 50, good for a year yet
        clock.advance(timedelta(days=200))  # LAPSED's other 70 have ended
        if job == "expiry job ran":
            assert (await expire_points(app.state.units)).points == 70
        if in_halves:
            results = [await refund(client, pos_key, "LAPSED", 5_000) for _ in range(2)]
            bodies = [r.json() for r in results]
        else:
            bodies = [await refund_by(client, pos_key, "LAPSED", full=True)]
        # The 70 expired are gone already; the 30 the member spent are taken back, out of FRESH's points.
        assert sum(b["already_expired"] for b in bodies) == 70
        assert sum(b["points_taken_back"] for b in bodies) == 30
        assert sum(b["shortfall"] for b in bodies) == 0
        assert (await points(client, pos_key, member_id))["balance"] == 20
        [order] = await rows(
            app, "SELECT points_taken_back, points_shortfall FROM orders WHERE order_ref = 'LAPSED'"
        )
        assert order == {"points_taken_back": 100, "points_shortfall": 0}
        refunded = await events(app, "points.refunded")
        assert sum(e["payload"]["already_expired"] for e in refunded) == 70
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


class TestARefundedOrderTakesNoNewPoints:
    """Refunds move points in proportion to what the order earned and redeemed; points added to the order
    after a refund were counted as refunded with it (a hold captured after a half refund, then a refund of 100
    of 10 000, gave back 510 points), so an order with a refund is closed to new points."""

    async def test_no_hold_capture_redeem_or_earn_after_a_refund(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 100_000, order_ref="SPARE")  # 1000 points
        await earn(client, pos_key, member_id, 10_000, order_ref="WEB-1")  # 100 points
        await refund_by(client, pos_key, "WEB-1", amount=cny(5_000))  # takes back 50
        # And the mirror: an order paid partly with points, refunded by half.
        await redeem(client, pos_key, member_id, 100, "WEB-2", order_total=cny(10_000))
        await refund_by(client, pos_key, "WEB-2", amount=cny(5_000))  # gives back 50
        # An order held, then refunded (by its earn) before the capture.
        hold_id = await hold_points(client, pos_key, member_id, 100, "WEB-3", ttl=900)
        await earn(client, pos_key, member_id, 10_000, order_ref="WEB-3")
        await refund_by(client, pos_key, "WEB-3", amount=cny(1_000))
        before = await table_counts(app, "ledger_entries", "point_lots", "holds", "outbox_events")
        refused = [
            await client.post(
                f"/v1/members/{member_id}/holds",
                json={"points": 10, "order_ref": "WEB-1", "ttl_seconds": 900},
                headers=bearer(pos_key),
            ),
            await client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": 10, "order_ref": "WEB-1"},
                headers=bearer(pos_key),
            ),
            await client.post(
                f"/v1/members/{member_id}/earn",
                json={"order_ref": "WEB-2", "amount": cny(8_000)},
                headers=bearer(pos_key),
            ),
            await client.post(f"/v1/holds/{hold_id}/capture", headers=bearer(pos_key)),
        ]
        assert [(r.status_code, r.json()["code"]) for r in refused] == [(409, "order_refunded")] * 4
        assert await table_counts(app, "ledger_entries", "point_lots", "holds", "outbox_events") == before
        # What is left of each order still refunds in proportion to what it earned or redeemed.
        rest = await refund_by(client, pos_key, "WEB-1", amount=cny(100))
        assert moved(rest) == (0, 1, 0)
        rest = await refund_by(client, pos_key, "WEB-2", amount=cny(100))
        assert moved(rest) == (1, 0, 0)
        # The hold refused is still there to release.
        released = await client.post(f"/v1/holds/{hold_id}/release", headers=bearer(pos_key))
        assert released.status_code == 200, released.text
        await assert_ledger_invariant(app, member_id)

    async def test_an_earn_sent_again_with_its_key_still_replays_after_a_refund(
        self, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        body = {"order_ref": "KEYED", "amount": cny(10_000)}
        headers = bearer(pos_key, idempotency_key="earn-keyed-1")
        first = await client.post(f"/v1/members/{member_id}/earn", json=body, headers=headers)
        assert first.status_code == 200, first.text
        await refund_by(client, pos_key, "KEYED", amount=cny(5_000))
        again = await client.post(f"/v1/members/{member_id}/earn", json=body, headers=headers)
        assert (again.status_code, again.json()) == (200, first.json())
        unkeyed = await client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))
        assert (unkeyed.status_code, unkeyed.json()["code"]) == (409, "order_already_earned")


async def lots_of(app: FastAPI, member_id: str) -> list[tuple[int, int, str | None]]:
    """The member's lots as (points, remaining, order that earned them), oldest first."""
    found = await rows(
        app,
        "SELECT points, remaining, order_ref FROM point_lots WHERE member_id = :m ORDER BY created_at, id",
        m=uuid.UUID(member_id),
    )
    return [(lot["points"], lot["remaining"], lot["order_ref"]) for lot in found]


class TestRedeemedPointsComeBackWithTheTimeTheyHadLeft:
    """A refund gave redeemed points back as a fresh lot with a full expiry: redeemed the day before they
    ended, then refunded, they lived another year, and again after the next redeem and refund. They now keep
    the time they had left when spent: their clock stops while they are spent."""

    async def test_a_refund_keeps_the_points_end(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="EARNED")  # 100, ending in 12 months
        expiring = (await points(client, pos_key, member_id))["expiring"]
        clock.advance(timedelta(days=364))  # the day before they end
        await redeem(client, pos_key, member_id, 100, "SPENT")
        back = await refund_by(client, pos_key, "SPENT", full=True)
        assert (back["points_given_back"], back["balance"]) == (100, 100)
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["expiring"]) == (100, expiring)
        await assert_ledger_invariant(app, member_id)
        clock.advance(timedelta(days=2))  # they end when they would have
        assert (await points(client, pos_key, member_id))["balance"] == 0
        assert (await expire_points(app.state.units)).points == 100
        await assert_ledger_invariant(app, member_id)
        # They count as the earn's points that expired: a refund of it has nothing left to take back.
        earned_back = await refund_by(client, pos_key, "EARNED", full=True)
        assert (earned_back["already_expired"], earned_back["points_taken_back"]) == (100, 0)
        assert earned_back["shortfall"] == 0

    async def test_the_days_spent_do_not_count(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="EARNED")  # 100, ending in 12 months
        [ending] = (await points(client, pos_key, member_id))["expiring"]
        clock.advance(timedelta(days=364))  # a day left
        await redeem(client, pos_key, member_id, 100, "SPENT")
        clock.advance(timedelta(days=30))  # the goods come back a month later
        back = await refund_by(client, pos_key, "SPENT", full=True)
        assert (back["points_given_back"], back["balance"]) == (100, 100)
        [returned] = (await points(client, pos_key, member_id))["expiring"]
        ended, ends = (datetime.fromisoformat(e["expires_at"]) for e in (ending, returned))
        assert ends - ended == timedelta(days=30)
        clock.advance(timedelta(days=2))  # the day they had left is over
        assert (await points(client, pos_key, member_id))["balance"] == 0
        assert (await expire_points(app.state.units)).points == 100
        await assert_ledger_invariant(app, member_id)

    async def test_points_spent_after_their_end_come_back_ended(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """A hold spares points past their end until it ends, and a capture spends them last: had it spent
        fewer, those are the ones that would have expired."""
        await earn(client, pos_key, member_id, 10_000, order_ref="OLD")  # 100, ending in 12 months
        clock.advance(timedelta(days=300))
        await earn(client, pos_key, member_id, 10_000, order_ref="NEW")  # 100, good for a year
        clock.advance(timedelta(days=64))
        hold_id = await hold_points(client, pos_key, member_id, 150, "CAP", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))  # OLD's points have ended; the hold spares 50 of them
        captured = await client.post(f"/v1/holds/{hold_id}/capture", headers=bearer(pos_key))
        assert captured.status_code == 200, captured.text  # NEW's 100, then 50 of OLD's
        back = await refund_by(client, pos_key, "CAP", points=50)
        assert (back["points_given_back"], back["balance"]) == (50, 0)
        assert sum(e["payload"]["points"] for e in await events(app, "points.expired")) == 100
        await assert_ledger_invariant(app, member_id)
        rest = await refund_by(client, pos_key, "CAP", full=True)
        assert (rest["points_given_back"], rest["balance"]) == (100, 100)
        await assert_ledger_invariant(app, member_id)
        # OLD's points expired, unspent or given back ended: its refund takes nothing more.
        old_back = await refund_by(client, pos_key, "OLD", full=True)
        assert (old_back["already_expired"], old_back["points_taken_back"], old_back["shortfall"]) == (
            100,
            0,
            0,
        )

    async def test_points_given_back_ended_settle_what_their_own_order_owes(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """Had the capture not spent them, the hold's end would have let them settle the earn's shortfall:
        they do, rather than expire, and then the next order owing is settled from the rest."""
        await earn(client, pos_key, member_id, 10_000, order_ref="OLDER")  # 100, ending in 12 months
        clock.advance(timedelta(days=300))
        await earn(client, pos_key, member_id, 5_000, order_ref="NEWER")  # 50, good for a year
        clock.advance(timedelta(days=64))
        hold_id = await hold_points(client, pos_key, member_id, 150, "CAP", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))  # OLDER's points have ended, spared by the hold
        captured = await client.post(f"/v1/holds/{hold_id}/capture", headers=bearer(pos_key))
        assert captured.status_code == 200, captured.text  # NEWER's 50, then OLDER's 100
        for owing in ("OLDER", "NEWER"):
            assert (await refund_by(client, pos_key, owing, full=True))["shortfall"] > 0
        back = await refund_by(client, pos_key, "CAP", full=True)
        assert (back["points_given_back"], back["shortfall_settled"], back["balance"]) == (150, 150, 0)
        assert await events(app, "points.expired") == []
        owed = await rows(app, "SELECT order_ref FROM orders WHERE points_shortfall > 0")
        assert owed == []
        assert (await expire_points(app.state.units)).points == 0
        await assert_ledger_invariant(app, member_id)

    async def test_an_order_s_own_points_captured_after_their_end_leave_nothing_owed(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """A hold on the order that earned the points spared them past their end and its capture spent them:
        unspent, they would have expired as the order's, and its refund would owe nothing."""
        await earn(client, pos_key, member_id, 10_000, order_ref="X")  # 100, ending in 12 months
        clock.advance(timedelta(days=364))
        hold_id = await hold_points(client, pos_key, member_id, 100, "X", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))
        captured = await client.post(f"/v1/holds/{hold_id}/capture", headers=bearer(pos_key))
        assert captured.status_code == 200, captured.text
        back = await refund_by(client, pos_key, "X", full=True)
        assert (back["points_given_back"], back["shortfall"], back["balance"]) == (100, 0, 0)
        assert await rows(app, "SELECT order_ref FROM orders WHERE points_shortfall > 0") == []
        await earn(client, pos_key, member_id, 10_000, order_ref="LATER")  # nothing of it pays for X
        assert (await points(client, pos_key, member_id))["balance"] == 100
        await assert_ledger_invariant(app, member_id)

    async def test_live_points_beside_the_order_s_own_ended_ones_settle_another_order(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="P")
        await redeem(client, pos_key, member_id, 100, "Q")
        assert (await refund_by(client, pos_key, "P", full=True))["shortfall"] == 100
        await earn(client, pos_key, member_id, 10_000, order_ref="O")  # 100, ending in 12 months
        clock.advance(timedelta(days=300))
        await earn(client, pos_key, member_id, 10_000, order_ref="N")
        clock.advance(timedelta(days=64))
        hold_id = await hold_points(client, pos_key, member_id, 200, "O", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))  # O's points have ended, spared by the hold on O
        captured = await client.post(f"/v1/holds/{hold_id}/capture", headers=bearer(pos_key))
        assert captured.status_code == 200, captured.text  # N's 100, then O's ended 100
        back = await refund_by(client, pos_key, "O", full=True)
        assert (back["points_given_back"], back["points_taken_back"], back["shortfall"]) == (200, 100, 0)
        assert (back["shortfall_settled"], back["balance"]) == (100, 0)  # N's points pay what P owes
        assert await rows(app, "SELECT order_ref FROM orders WHERE points_shortfall > 0") == []
        await assert_ledger_invariant(app, member_id)

    async def test_a_refund_beside_a_hold_sparing_ended_points_answers_what_a_read_shows(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="OLD")  # 100, ending in 12 months
        clock.advance(timedelta(days=300))
        await earn(client, pos_key, member_id, 5_000, order_ref="NEW")
        await redeem(client, pos_key, member_id, 50, "PAID")
        clock.advance(timedelta(days=64))
        await hold_points(client, pos_key, member_id, 100, "CART", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))  # OLD's points have ended; the hold spares them
        back = await refund_by(client, pos_key, "PAID", full=True)
        read = await points(client, pos_key, member_id)
        assert (back["balance"], back["available"]) == (read["balance"], read["available"]) == (100, 0)
        await assert_ledger_invariant(app, member_id)

    async def test_part_refunds_give_back_the_last_spent_first(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="FIRST")  # 100, ending in 12 months
        clock.advance(timedelta(days=180))
        await earn(client, pos_key, member_id, 10_000, order_ref="SECOND")  # 100, ending 6 months later
        await redeem(client, pos_key, member_id, 150, "PAID")  # all of FIRST's points, then 50 of SECOND's
        assert (await refund_by(client, pos_key, "PAID", points=50))["balance"] == 100
        assert (await lots_of(app, member_id))[2:] == [(50, 50, "SECOND")]
        clock.advance(timedelta(days=190))  # FIRST's points would have ended by now, unspent
        rest = await refund_by(client, pos_key, "PAID", full=True)
        assert (rest["points_given_back"], rest["balance"]) == (100, 200)
        assert (await lots_of(app, member_id))[3:] == [(100, 100, "FIRST")]
        assert await events(app, "points.expired") == []
        await assert_ledger_invariant(app, member_id)

    async def test_an_order_refunded_before_the_one_its_points_paid_loses_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="EARNED")  # 100, ending in 12 months
        clock.advance(timedelta(days=30))
        await earn(client, pos_key, member_id, 10_000, order_ref="KEPT")  # 100
        await redeem(client, pos_key, member_id, 100, "SPENT")  # EARNED's points pay
        taken = await refund_by(client, pos_key, "EARNED", full=True)  # takes KEPT's points instead
        assert (taken["points_taken_back"], taken["shortfall"]) == (100, 0)
        clock.advance(timedelta(days=340))  # past EARNED's end
        back = await refund_by(client, pos_key, "SPENT", full=True)
        assert back["balance"] == 100
        assert await events(app, "points.expired") == []
        await assert_ledger_invariant(app, member_id)

    async def test_a_captured_hold_s_points_come_back_with_their_end(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="EARNED")
        expiring = (await points(client, pos_key, member_id))["expiring"]
        clock.advance(timedelta(days=300))
        hold_id = await hold_points(client, pos_key, member_id, 60, "WEB-CAP", ttl=900)
        captured = await client.post(f"/v1/holds/{hold_id}/capture", headers=bearer(pos_key))
        assert captured.status_code == 200, captured.text
        assert (await refund_by(client, pos_key, "WEB-CAP", points=40))["balance"] == 80
        assert (await refund_by(client, pos_key, "WEB-CAP", full=True))["balance"] == 100
        assert (await points(client, pos_key, member_id))["expiring"] == expiring
        await assert_ledger_invariant(app, member_id)

    async def test_points_paid_before_payments_named_their_lots_come_back_fresh(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="EARNED")
        await redeem(client, pos_key, member_id, 100, "OLD-SPEND")
        async with app.state.units.database.engine.begin() as connection:  # as a redeem of an older release
            await connection.execute(
                update(LedgerEntry).where(LedgerEntry.type == "redeem").values(details={"value": cny(100)})
            )
        clock.advance(timedelta(days=30))
        back = await refund_by(client, pos_key, "OLD-SPEND", full=True)
        assert (back["points_given_back"], back["balance"]) == (100, 100)
        assert await lots_of(app, member_id) == [(100, 0, "EARNED"), (100, 100, "OLD-SPEND")]
        await assert_ledger_invariant(app, member_id)


class TestPointsAHoldSparedPastTheirEnd:
    """An order's refund is owed the points it earned that a hold spared past their end, as any of its points
    (points/refunds.py): taken in their place from the member's other points once a capture spent them, and
    given back when they come back. Refunding the earning order before the capture's took the member's own
    points in their place, and the capture's refund then gave them back ended, to expire: 200 of the member's
    own points lost, in that order only (and when the two refunds raced, as the lock fell)."""

    async def _captured_past_their_end(
        self, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> list[dict[str, Any]]:
        """E's 500 points end with 200 of them on hold for H, which captures those 200; the member then earns
        300 of their own. What expires when, as a read shows it."""
        await earn(client, pos_key, member_id, 50_000, order_ref="E")  # 500, ending in 12 months
        clock.advance(timedelta(days=364))
        hold_id = await hold_points(client, pos_key, member_id, 200, "H", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))  # E's points have ended; the hold spares 200 of them
        captured = await client.post(f"/v1/holds/{hold_id}/capture", headers=bearer(pos_key))
        assert captured.status_code == 200, captured.text
        await earn(client, pos_key, member_id, 30_000, order_ref="OWN")
        expiring: list[dict[str, Any]] = (await points(client, pos_key, member_id))["expiring"]
        return expiring

    @pytest.mark.parametrize("first", ["E", "H"])
    async def test_refunding_both_orders_either_way_leaves_the_member_their_own_points(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
        first: str,
    ) -> None:
        own = await self._captured_past_their_end(client, pos_key, member_id, clock)
        results = {
            ref: await refund_by(client, pos_key, ref, full=True) for ref in (first, "EH".replace(first, ""))
        }
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["expiring"]) == (300, own)  # with their own end
        assert await rows(app, "SELECT order_ref FROM orders WHERE points_shortfall > 0") == []
        if first == "E":  # owed the 200 H spent: the member's own stood in, and went back with H's refund
            assert (results["E"]["points_taken_back"], results["E"]["already_expired"]) == (200, 300)
        else:  # given back ended, they expired as E's: nothing of E is left to take back
            assert (results["E"]["points_taken_back"], results["E"]["already_expired"]) == (0, 500)
        await assert_ledger_invariant(app, member_id)

    async def test_the_earning_order_alone_refunded_is_owed_what_the_capture_spent(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await self._captured_past_their_end(client, pos_key, member_id, clock)
        back = await refund_by(client, pos_key, "E", full=True)
        assert moved(back) == (0, 200, 0)
        assert (back["already_expired"], back["balance"]) == (300, 100)
        [stood_in] = await rows(app, "SELECT order_ref, points, returned FROM point_stand_ins")
        assert stood_in == {"order_ref": "E", "points": 200, "returned": 0}
        await assert_ledger_invariant(app, member_id)

    @pytest.mark.parametrize("first", ["refund", "release"])
    async def test_a_release_pays_no_other_order_s_shortfall_with_points_past_their_end(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
        first: str,
    ) -> None:
        """X's points were spent; the hold spares E's points past their end, all the member has. Without the
        hold they would have expired, and X's refund could not have taken them: a release leaves X owing, in
        whichever order (the release paid X's shortfall with them, and only when it came second)."""
        await earn(client, pos_key, member_id, 10_000, order_ref="X")  # 100
        await redeem(client, pos_key, member_id, 100, "PAID")  # X's points
        await earn(client, pos_key, member_id, 50_000, order_ref="E")  # 500, ending in 12 months
        clock.advance(timedelta(days=364))
        hold_id = await hold_points(client, pos_key, member_id, 200, "H", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))
        for step in (first, "release" if first == "refund" else "refund"):
            if step == "refund":
                assert moved(await refund_by(client, pos_key, "X", full=True)) == (0, 0, 100)
            else:
                let_go = await client.post(f"/v1/holds/{hold_id}/release", headers=bearer(pos_key))
                assert let_go.status_code == 200, let_go.text
        assert (await points(client, pos_key, member_id))["balance"] == 0
        [owed] = await rows(app, "SELECT order_ref, points_shortfall FROM orders WHERE points_shortfall > 0")
        assert owed == {"order_ref": "X", "points_shortfall": 100}
        await assert_ledger_invariant(app, member_id)

    async def test_points_that_stood_in_for_spent_ones_go_back_with_their_own_end(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """The known limit of the refund before this rule: the order's own points came back with their own
        time left, in place of the points its refund had taken, which had a later end."""
        await earn(client, pos_key, member_id, 10_000, order_ref="EARNED")  # 100, ending in 12 months
        clock.advance(timedelta(days=60))
        await earn(client, pos_key, member_id, 10_000, order_ref="KEPT")  # 100, ending two months later
        kept_end = (await points(client, pos_key, member_id))["expiring"][-1]
        await redeem(client, pos_key, member_id, 100, "SPENT")  # EARNED's points pay
        assert moved(await refund_by(client, pos_key, "EARNED", full=True)) == (0, 100, 0)  # KEPT's stand in
        clock.advance(timedelta(days=30))
        back = await refund_by(client, pos_key, "SPENT", full=True)
        assert back["balance"] == 100
        assert (await points(client, pos_key, member_id))["expiring"] == [kept_end]
        await assert_ledger_invariant(app, member_id)

    async def test_a_stand_in_going_back_past_its_end_returns_that_order_s_own_stand_ins(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """E's points were spent, and Y's stood in for them at E's refund; W's then stood in for Y's at Y's.
        PAID's refund, once Y's end has passed, gives E's points back: Y's go back past their end, and they
        give W's back. The expiry that follows planned from the lots it read before the stand-ins went back
        and took Y's points a second time (a 500: a lot's remaining below zero)."""
        await earn(client, pos_key, member_id, 10_000, order_ref="E")  # 100, the soonest end
        clock.advance(timedelta(days=30))
        await earn(client, pos_key, member_id, 10_000, order_ref="Y")  # 100
        clock.advance(timedelta(days=30))
        await earn(client, pos_key, member_id, 10_000, order_ref="W")  # 100, the latest end
        await redeem(client, pos_key, member_id, 100, "PAID")  # E's points
        w_end = (await points(client, pos_key, member_id))["expiring"][-1]
        assert moved(await refund_by(client, pos_key, "E", full=True)) == (0, 100, 0)  # Y's stand in
        assert moved(await refund_by(client, pos_key, "Y", full=True)) == (0, 100, 0)  # W's stand in
        clock.advance(timedelta(days=350))  # Y's end has passed, W's not
        back = await refund_by(client, pos_key, "PAID", full=True)
        # As if PAID had been refunded first: E and Y take their own, W's 100 are left, with W's end.
        assert back["balance"] == 100
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["expiring"]) == (100, [w_end])
        assert await rows(app, "SELECT order_ref FROM orders WHERE points_shortfall > 0") == []
        await assert_ledger_invariant(app, member_id)


class TestRefundsOfErasedMembers:
    async def test_an_erased_members_order_is_not_found(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, member_id: str
    ) -> None:
        """Holds, subscriptions and coupons of an erased member are 404; a refund of their order answered 200
        with their id and balance, changed the anonymous account and emitted points.refunded."""
        await earn(client, pos_key, member_id, 10_000, order_ref="GONE-1")
        await redeem(client, pos_key, member_id, 50, "GONE-2", order_total=cny(1_000))
        erased = await client.post(f"/v1/members/{member_id}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        before = await table_counts(app, "ledger_entries", "point_lots", "outbox_events")
        for order_ref, body in (("GONE-1", {"full": True}), ("GONE-2", {"points": 10})):
            refused = await client.post(f"/v1/orders/{order_ref}/refund", json=body, headers=bearer(pos_key))
            assert (refused.status_code, refused.json()["code"]) == (404, "order_not_found"), refused.text
            assert member_id not in refused.text
        assert await table_counts(app, "ledger_entries", "point_lots", "outbox_events") == before
        assert not await events(app, "points.refunded")
        await assert_ledger_invariant(app)


class TestRefundsOfOrdersWithoutATotal:
    """The README quickstart: an order that only redeemed points, without `order_total`."""

    async def test_amount_is_refused_and_the_error_names_the_way_out(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 50_000, order_ref="EARLIER")  # 500 points
        await redeem(client, pos_key, member_id, 100, "T1-0002")
        before = await table_counts(app, "ledger_entries", "point_lots", "outbox_events")
        response = await refund(client, pos_key, "T1-0002", 1_000)
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "order_total_unknown"
        assert "points" in problem["detail"] and "full: true" in problem["detail"]
        assert "order_total" in problem["detail"]
        assert (problem["refund_with"], problem["refundable_points"]) == (["points", "full"], 100)
        assert await table_counts(app, "ledger_entries", "point_lots", "outbox_events") == before
        await assert_ledger_invariant(app, member_id)

    async def test_by_points_in_part_then_the_rest(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 50_000, order_ref="EARLIER")
        await redeem(client, pos_key, member_id, 100, "T1-0002")
        first = await refund_by(client, pos_key, "T1-0002", points=30)
        assert moved(first) == (30, 0, 0)
        assert (first["refunded_by"], first["points_refundable"], first["balance"]) == ("points", 70, 430)
        assert first["order_total"] is first["refunded"] is first["refunded_total"] is None
        await assert_ledger_invariant(app, member_id)

        over = await client.post("/v1/orders/T1-0002/refund", json={"points": 71}, headers=bearer(pos_key))
        assert over.status_code == 422
        assert (over.json()["code"], over.json()["refundable_points"]) == ("refund_exceeds_order", 70)

        rest = await refund_by(client, pos_key, "T1-0002", points=70)
        assert moved(rest) == (70, 0, 0)
        assert (rest["points_refundable"], rest["balance"]) == (0, 500)
        await assert_ledger_invariant(app, member_id)

        nothing_left = await client.post(
            "/v1/orders/T1-0002/refund", json={"full": True}, headers=bearer(pos_key)
        )
        assert nothing_left.status_code == 422
        assert nothing_left.json()["code"] == "refund_exceeds_order"
        refunded = await events(app, "points.refunded")
        assert [e["payload"]["given_back"] for e in refunded] == [30, 70]
        assert refunded[0]["payload"]["refunded"] == cny(0)
        assert refunded[0]["payload"]["refunded_by"] == "points"
        assert refunded[0]["payload"]["order_total"] is None
        await assert_ledger_invariant(app, member_id)

    async def test_in_full(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 50_000, order_ref="EARLIER")
        await redeem(client, pos_key, member_id, 100, "T1-0003")
        body = await refund_by(client, pos_key, "T1-0003", full=True)
        assert moved(body) == (100, 0, 0)
        assert (body["refunded_by"], body["points_refundable"], body["balance"]) == ("full", 0, 500)
        assert body["order_total"] is None
        [entry] = (
            await client.get(
                f"/v1/members/{member_id}/ledger", params={"type": "refund"}, headers=bearer(pos_key)
            )
        ).json()["items"]
        assert (entry["amount"], entry["details"]["refunded_by"]) == (100, "full")
        await assert_ledger_invariant(app, member_id)


class TestRefundsByPointsAndAmount:
    async def test_redeem_with_order_total_refunds_by_amount_by_points_and_in_full(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 50_000, order_ref="EARLIER")  # 500 points
        await redeem(client, pos_key, member_id, 200, "RT", order_total=cny(10_000))
        quarter = await refund_by(client, pos_key, "RT", amount=cny(2_500))
        assert moved(quarter) == (50, 0, 0)
        assert quarter["refunded_total"] == cny(2_500)
        # 50 more points are another quarter of what the order redeemed: the refunded amount follows.
        by_points = await refund_by(client, pos_key, "RT", points=50)
        assert moved(by_points) == (50, 0, 0)
        assert (by_points["refunded"], by_points["refunded_total"]) == (cny(2_500), cny(5_000))
        assert by_points["order_total"] == cny(10_000)
        await assert_ledger_invariant(app, member_id)
        rest = await refund_by(client, pos_key, "RT", full=True)
        assert moved(rest) == (100, 0, 0)
        assert (rest["refunded"], rest["refunded_total"], rest["points_refundable"]) == (
            cny(5_000),
            cny(10_000),
            0,
        )
        assert rest["balance"] == 500
        over = await refund(client, pos_key, "RT", 1)
        assert (over.status_code, over.json()["code"], over.json()["refundable"]) == (
            422,
            "refund_exceeds_order",
            0,
        )
        await assert_ledger_invariant(app, member_id)

    async def test_earned_and_redeemed_order_by_points_then_in_full(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 50_000, order_ref="EARLIER")  # 500 points
        await redeem(client, pos_key, member_id, 200, "MIX")  # no total: the earn gives it
        await earn(client, pos_key, member_id, 8_000, order_ref="MIX")  # 80 points; total 80.00
        # A quarter of the redeemed points: a quarter of the 80 earned is taken back.
        first = await refund_by(client, pos_key, "MIX", points=50)
        assert moved(first) == (50, 20, 0)
        assert (first["refunded"], first["order_total"]) == (cny(2_000), cny(8_000))
        await assert_ledger_invariant(app, member_id)
        # 75 of 200 given back in all: 80 × 75 / 200 = 30 taken back in all.
        second = await refund_by(client, pos_key, "MIX", points=25)
        assert moved(second) == (25, 10, 0)
        await assert_ledger_invariant(app, member_id)
        by_amount = await refund_by(client, pos_key, "MIX", amount=cny(1_000))
        assert moved(by_amount) == (25, 10, 0)
        assert by_amount["refunded_total"] == cny(4_000)
        rest = await refund_by(client, pos_key, "MIX", full=True)
        assert moved(rest) == (100, 40, 0)
        assert rest["refunded_total"] == cny(8_000)
        assert rest["balance"] == 500 - 200 + 80 + 200 - 80
        rows_ = await client.get(
            f"/v1/members/{member_id}/ledger", params={"type": "refund"}, headers=bearer(pos_key)
        )
        assert sum(e["amount"] for e in rows_.json()["items"]) == 200 - 80
        await assert_ledger_invariant(app, member_id)

    async def test_points_already_spent_become_a_shortfall_by_points_and_in_full(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 1_000, order_ref="EARLIER")  # 10 points
        await redeem(client, pos_key, member_id, 10, "SPENT")
        await earn(client, pos_key, member_id, 10_000, order_ref="SPENT")  # 100 points
        await redeem(client, pos_key, member_id, 100, "ELSEWHERE")  # all of them spent
        half = await refund_by(client, pos_key, "SPENT", points=5)
        assert moved(half) == (5, 5, 45)
        assert half["balance"] == 0
        await assert_ledger_invariant(app, member_id)
        rest = await refund_by(client, pos_key, "SPENT", full=True)
        assert moved(rest) == (5, 5, 45)
        assert rest["balance"] == 0
        await assert_ledger_invariant(app, member_id)
        nothing = await client.post("/v1/orders/SPENT/refund", json={"full": True}, headers=bearer(pos_key))
        assert nothing.json()["code"] == "refund_exceeds_order"

    async def test_an_order_that_only_earned_has_no_points_to_give_back(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="EARNED")
        response = await client.post("/v1/orders/EARNED/refund", json={"points": 1}, headers=bearer(pos_key))
        assert response.status_code == 422
        problem = response.json()
        assert (problem["code"], problem["refundable_points"]) == ("refund_exceeds_order", 0)
        assert "amount" in problem["detail"]
        body = await refund_by(client, pos_key, "EARNED", full=True)
        assert moved(body) == (0, 100, 0)
        assert body["refunded_total"] == cny(10_000)
        await assert_ledger_invariant(app, member_id)


ONE_OF = "give exactly one of amount, points or full"


class TestRefundRequestShape:
    """The body's `errors` point at the field; a rule across fields is the body's own (field "body")."""

    @pytest.mark.parametrize(
        ("body", "field", "message"),
        [
            ({}, "body", f"{ONE_OF}, not none"),
            ({"amount": None}, "amount", "cannot be null: leave it out"),
            ({"points": 5, "amount": None}, "amount", "cannot be null: leave it out"),
            ({"amount": cny(100), "points": 5}, "body", f"{ONE_OF}, not amount and points"),
            (
                {"amount": cny(100), "points": 5, "full": True},
                "body",
                f"{ONE_OF}, not amount, points and full",
            ),
            ({"points": 5, "full": True}, "body", f"{ONE_OF}, not points and full"),
            (
                {"full": False},
                "full",
                "must be true when given: leave it out to refund by amount or by points",
            ),
            ({"points": 0}, "points", None),
            ({"points": 2.5}, "points", None),
            ({"full": 1}, "full", None),
            ({"full": True, "reason": "x"}, "reason", None),
        ],
    )
    async def test_exactly_one_of_amount_points_or_full(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member_id: str,
        body: dict[str, Any],
        field: str,
        message: str | None,
    ) -> None:
        await earn(client, pos_key, member_id, 50_000, order_ref="EARLIER")
        await redeem(client, pos_key, member_id, 100, "SHAPE", order_total=cny(1_000))
        before = await table_counts(app, "ledger_entries", "point_lots", "outbox_events")
        response = await client.post("/v1/orders/SHAPE/refund", json=body, headers=bearer(pos_key))
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "validation_error"
        [error] = problem["errors"]
        assert error["field"] == field, error
        assert not error["message"].startswith("Value error")
        if message is not None:
            assert error["message"] == message
        assert await table_counts(app, "ledger_entries", "point_lots", "outbox_events") == before
        await assert_ledger_invariant(app, member_id)


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


class TestShortfallsAndPointsPastTheirEnd:
    """Points a hold frees settle a shortfall from points that are not past their end, so those that are still
    expire: what a read promises before the jobs is what the jobs leave, in whatever order things happen."""

    async def _owing_with_expiring_points(
        self, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock, *, ttl: int
    ) -> str:
        """100 points owed, 200 past their end, 100 still good, 150 of them on a hold; the hold's id."""
        await earn(client, pos_key, member_id, 10_000, order_ref="S1")
        await redeem(client, pos_key, member_id, 100, "RD1")
        assert moved(await refund_by(client, pos_key, "S1", full=True)) == (0, 0, 100)
        clock.advance(timedelta(days=1))
        await earn(client, pos_key, member_id, 20_000, order_ref="D1")
        clock.advance(timedelta(days=1))
        await earn(client, pos_key, member_id, 10_000, order_ref="N1")
        clock.advance(timedelta(days=363))
        hold_id = await hold_points(client, pos_key, member_id, 150, "WEB-DUE", ttl=ttl)
        clock.advance(timedelta(hours=36))  # D1's points are past their end; N1's are not
        return hold_id

    @pytest.mark.parametrize("first", ["expiry_job", "hold_job", "a_spend"])
    async def test_a_run_out_hold_settles_from_points_still_good(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
        first: str,
    ) -> None:
        await self._owing_with_expiring_points(client, pos_key, member_id, clock, ttl=60)
        assert (await points(client, pos_key, member_id))["balance"] == 0
        if first == "hold_job":
            assert await expire_holds(app.state.units) == 1
        elif first == "a_spend":
            spend = await client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": 1, "order_ref": "POS-AFTER"},
                headers=bearer(pos_key),
            )
            assert (spend.status_code, spend.json()["code"]) == (422, "insufficient_points")
        await expire_points(app.state.units)
        assert (await points(client, pos_key, member_id))["balance"] == 0
        [order] = await rows(app, "SELECT points_shortfall FROM orders WHERE order_ref = 'S1'")
        assert order == {"points_shortfall": 0}
        await assert_ledger_invariant(app, member_id)

    @pytest.mark.parametrize("expiry_first", [True, False])
    async def test_what_a_capture_releases_settles_from_points_still_good(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
        expiry_first: bool,
    ) -> None:
        hold_id = await self._owing_with_expiring_points(client, pos_key, member_id, clock, ttl=3 * 24 * 3600)
        if expiry_first:
            await expire_points(app.state.units)
        captured = await client.post(
            f"/v1/holds/{hold_id}/capture", json={"points": 50}, headers=bearer(pos_key)
        )
        assert captured.status_code == 200, captured.text
        await expire_points(app.state.units)
        assert (await points(client, pos_key, member_id))["balance"] == 0
        await assert_ledger_invariant(app, member_id)

    @pytest.mark.parametrize("expiry_first", [True, False])
    async def test_what_a_capture_spends_is_points_still_good(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
        expiry_first: bool,
    ) -> None:
        """A read counts a hold against points still good: a capture spends those, and the points past their
        end are left to expire, whichever runs first (the capture spent the expiring ones and the member kept
        100 points the read had shown as gone)."""
        await earn(client, pos_key, member_id, 10_000, order_ref="A1")
        clock.advance(timedelta(days=363))
        await earn(client, pos_key, member_id, 10_000, order_ref="B1")
        hold_id = await hold_points(client, pos_key, member_id, 100, "WEB-1", ttl=7 * 24 * 3600)
        clock.advance(timedelta(days=4))  # A1's points are past their end
        before = await points(client, pos_key, member_id)
        assert (before["balance"], before["held"]) == (100, 100)
        if expiry_first:
            await expire_points(app.state.units)
        captured = await client.post(f"/v1/holds/{hold_id}/capture", json={}, headers=bearer(pos_key))
        assert captured.status_code == 200, captured.text
        await expire_points(app.state.units)
        assert (await points(client, pos_key, member_id))["balance"] == 0
        await assert_ledger_invariant(app, member_id)
