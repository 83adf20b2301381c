from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.points.holds import expire_holds
from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import events, rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, earn, points, set_program


@pytest.fixture
async def member_id(client: httpx.AsyncClient, admin_key: str, ecommerce_key: str) -> str:
    await set_program(client, admin_key)
    member = await enrol(client, ecommerce_key)
    await earn(client, ecommerce_key, str(member["id"]), 100_000)  # 1000 points
    return str(member["id"])


async def hold(
    client: httpx.AsyncClient, key: str, member_id: str, pts: int, order_ref: str, ttl: int = 900
) -> httpx.Response:
    return await client.post(
        f"/v1/members/{member_id}/holds",
        json={"points": pts, "order_ref": order_ref, "ttl_seconds": ttl},
        headers=bearer(key),
    )


async def capture(client: httpx.AsyncClient, key: str, hold_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/holds/{hold_id}/capture", json=body or None, headers=bearer(key))


async def refund(client: httpx.AsyncClient, key: str, order_ref: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/orders/{order_ref}/refund", json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def moved(body: dict[str, Any]) -> tuple[int, int, int]:
    return body["points_given_back"], body["points_taken_back"], body["shortfall"]


class TestHolds:
    async def test_hold_then_capture(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        created = await hold(client, ecommerce_key, member_id, 400, "WEB-1")
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "active"
        summary = await points(client, ecommerce_key, member_id)
        assert (summary["balance"], summary["held"], summary["available"]) == (1000, 400, 600)

        captured = await client.post(
            f"/v1/holds/{created.json()['id']}/capture", headers=bearer(ecommerce_key)
        )
        assert captured.status_code == 200, captured.text
        assert captured.json()["status"] == "captured"
        assert captured.json()["balance"] == 600
        summary = await points(client, ecommerce_key, member_id)
        assert (summary["balance"], summary["held"], summary["available"]) == (600, 0, 600)
        assert len(await events(app, "points.held")) == len(await events(app, "points.hold_captured")) == 1
        await assert_ledger_invariant(app, member_id)

    async def test_partial_capture_frees_the_rest(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-2")).json()
        captured = await client.post(
            f"/v1/holds/{created['id']}/capture", json={"points": 250}, headers=bearer(ecommerce_key)
        )
        assert captured.json()["captured_points"] == 250
        summary = await points(client, ecommerce_key, member_id)
        assert (summary["balance"], summary["held"]) == (750, 0)
        too_much = (await hold(client, ecommerce_key, member_id, 10, "WEB-3")).json()
        over = await client.post(
            f"/v1/holds/{too_much['id']}/capture", json={"points": 11}, headers=bearer(ecommerce_key)
        )
        assert over.status_code == 422
        assert over.json()["code"] == "capture_exceeds_hold"
        await assert_ledger_invariant(app, member_id)

    async def test_release_gives_the_points_back(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-4")).json()
        released = await client.post(f"/v1/holds/{created['id']}/release", headers=bearer(ecommerce_key))
        assert released.json()["status"] == "released"
        assert (await points(client, ecommerce_key, member_id))["available"] == 1000
        again = await client.post(f"/v1/holds/{created['id']}/capture", headers=bearer(ecommerce_key))
        assert again.status_code == 409
        assert again.json()["code"] == "hold_not_active"
        await assert_ledger_invariant(app, member_id)

    async def test_held_points_cannot_be_spent_twice(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        await hold(client, ecommerce_key, member_id, 800, "WEB-5")
        before = await table_counts(app, "ledger_entries", "holds")
        redeem = await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 300, "order_ref": "POS-5"},
            headers=bearer(ecommerce_key),
        )
        assert redeem.json()["code"] == "insufficient_points"
        second = await hold(client, ecommerce_key, member_id, 300, "WEB-6")
        assert second.status_code == 422
        assert await table_counts(app, "ledger_entries", "holds") == before

    async def test_one_active_hold_per_order(
        self, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        await hold(client, ecommerce_key, member_id, 10, "WEB-7")
        again = await hold(client, ecommerce_key, member_id, 10, "WEB-7")
        assert again.status_code == 409
        assert again.json()["code"] == "hold_exists"

    async def test_hold_exists_names_the_hold_to_capture_or_release(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member_id: str
    ) -> None:
        """Every hold_exists carries `hold_id`, the active hold of the order, which the checkout then
        captures or releases: a second hold for the order, the repeat of one that held every point, a redeem
        of a held order, and a repeat after the member was suspended."""
        first = (await hold(client, ecommerce_key, member_id, 400, "WEB-ID-1")).json()
        whole = (await hold(client, ecommerce_key, member_id, 600, "WEB-ID-2")).json()  # every point left
        refusals = [
            await hold(client, ecommerce_key, member_id, 10, "WEB-ID-1"),
            await hold(client, ecommerce_key, member_id, 600, "WEB-ID-2"),
            await client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": 10, "order_ref": "WEB-ID-1"},
                headers=bearer(ecommerce_key),
            ),
        ]
        suspended = await client.patch(
            f"/v1/members/{member_id}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text
        refusals.append(await hold(client, ecommerce_key, member_id, 400, "WEB-ID-1"))
        answered = [(r.status_code, r.json()["code"], r.json().get("hold_id")) for r in refusals]
        assert answered == [
            (409, "hold_exists", first["id"]),
            (409, "hold_exists", whole["id"]),
            (409, "hold_exists", first["id"]),
            (409, "hold_exists", first["id"]),
        ]
        await assert_ledger_invariant(app, member_id)

    async def test_a_hold_sent_again_without_a_key_after_it_held_every_point_is_answered_hold_exists(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        """A checkout whose reply was lost sends the hold again, without a key: the first reserved all the
        member's points. 422 insufficient_points would read as "not enough points" for an order whose points
        are held; 409 hold_exists says the hold is there to capture or release."""
        assert (await hold(client, ecommerce_key, member_id, 1000, "WEB-ALL")).status_code == 201
        again = await hold(client, ecommerce_key, member_id, 1000, "WEB-ALL")
        assert (again.status_code, again.json()["code"]) == (409, "hold_exists"), again.text
        summary = await points(client, ecommerce_key, member_id)
        assert (summary["balance"], summary["held"], summary["available"]) == (1000, 1000, 0)
        await assert_ledger_invariant(app)

    async def test_a_hold_sent_again_after_the_minimum_rose_is_answered_as_the_repeat_it_is(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member_id: str
    ) -> None:
        """A checkout whose reply was lost sends the hold again without a key, after an operator raised the
        minimum redemption: the points are held, and its repeat is 409 hold_exists, not
        422 below_minimum_redeem, which reads as no points held for the order. Once the hold is captured its
        repeat is order_already_redeemed, as with the old minimum. A new hold under the minimum is refused."""
        first = await hold(client, ecommerce_key, member_id, 50, "WEB-RULE-1")
        assert first.status_code == 201, first.text
        await set_program(client, admin_key, min_redeem_points=100)
        before = await table_counts(app, "ledger_entries", "holds", "orders", "outbox_events")
        again = await hold(client, ecommerce_key, member_id, 50, "WEB-RULE-1")
        assert (again.status_code, again.json()["code"]) == (409, "hold_exists"), again.text
        new = await hold(client, ecommerce_key, member_id, 50, "WEB-RULE-2")
        assert (new.status_code, new.json()["code"]) == (422, "below_minimum_redeem"), new.text
        assert await table_counts(app, "ledger_entries", "holds", "orders", "outbox_events") == before
        assert (await capture(client, ecommerce_key, first.json()["id"])).status_code == 200
        after_capture = await hold(client, ecommerce_key, member_id, 50, "WEB-RULE-1")
        assert (after_capture.status_code, after_capture.json()["code"]) == (409, "order_already_redeemed")
        await assert_ledger_invariant(app, member_id)

    async def test_a_hold_and_a_part_captured_spend_at_least_the_programmes_minimum(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member_id: str
    ) -> None:
        await set_program(client, admin_key, min_redeem_points=100)
        small = await hold(client, ecommerce_key, member_id, 99, "WEB-MIN-1")
        assert (small.status_code, small.json()["code"]) == (422, "below_minimum_redeem")
        created = (await hold(client, ecommerce_key, member_id, 300, "WEB-MIN-2")).json()
        part = await capture(client, ecommerce_key, created["id"], points=50)
        assert (part.status_code, part.json()["code"]) == (422, "below_minimum_redeem")
        summary = await points(client, ecommerce_key, member_id)
        assert (summary["balance"], summary["held"]) == (1000, 300)
        enough = await capture(client, ecommerce_key, created["id"], points=100)
        assert (enough.status_code, enough.json()["balance"]) == (200, 900)
        await assert_ledger_invariant(app, member_id)

    async def test_a_whole_hold_made_before_the_minimum_rose_is_still_captured(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member_id: str
    ) -> None:
        for ref, body in (("WEB-MIN-3", {}), ("WEB-MIN-4", {"points": 50})):  # all of it, named or not
            created = (await hold(client, ecommerce_key, member_id, 50, ref)).json()
            await set_program(client, admin_key, min_redeem_points=100)
            whole = await capture(client, ecommerce_key, created["id"], **body)
            assert (whole.status_code, whole.json()["captured_points"]) == (200, 50), whole.text
            await set_program(client, admin_key, min_redeem_points=1)

    async def test_a_suspended_member_cannot_capture_a_hold(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, member_id: str
    ) -> None:
        """A redeem of a suspended member is refused; a capture, which pays with points too, spent them."""
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-SUSP")).json()
        suspend = await client.patch(
            f"/v1/members/{member_id}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspend.status_code == 200, suspend.text
        before = await table_counts(app, "ledger_entries", "point_lots", "outbox_events")
        captured = await capture(client, ecommerce_key, created["id"])
        assert (captured.status_code, captured.json()["code"]) == (409, "member_not_active"), captured.text
        assert await table_counts(app, "ledger_entries", "point_lots", "outbox_events") == before
        summary = await points(client, ecommerce_key, member_id)
        assert (summary["balance"], summary["held"]) == (1000, 400)
        read = await client.get(f"/v1/holds/{created['id']}", headers=bearer(ecommerce_key))
        assert read.json()["status"] == "active"
        # Releasing it still frees the points.
        released = await client.post(f"/v1/holds/{created['id']}/release", headers=bearer(ecommerce_key))
        assert released.status_code == 200, released.text
        assert (await points(client, ecommerce_key, member_id))["available"] == 1000
        await assert_ledger_invariant(app, member_id)

    async def test_unknown_hold_is_404(
        self, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        response = await client.post(
            "/v1/holds/01a20000-0000-7000-8000-000000000000/capture", headers=bearer(ecommerce_key)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "hold_not_found"


class TestHoldExpiry:
    async def test_the_job_releases_expired_holds(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-8", ttl=60)).json()
        clock.advance(timedelta(seconds=61))
        capture = await client.post(f"/v1/holds/{created['id']}/capture", headers=bearer(ecommerce_key))
        assert capture.status_code == 409
        assert (capture.json()["code"], capture.json()["hold_status"]) == ("hold_not_active", "expired")
        assert await expire_holds(app.state.units) == 1
        assert await expire_holds(app.state.units) == 0
        read = await client.get(f"/v1/holds/{created['id']}", headers=bearer(ecommerce_key))
        assert read.json()["status"] == "expired"
        assert (await points(client, ecommerce_key, member_id))["available"] == 1000
        [event] = await events(app, "points.hold_released")
        assert event["payload"]["reason"] == "expired"
        await assert_ledger_invariant(app, member_id)

    async def test_one_run_of_the_job_releases_every_expired_hold_however_many(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """A sale's abandoned checkouts: more holds ran out than the job reads at once (200; 2 here). One run
        released the first batch only, and the rest waited for later runs, 15 s apart, their
        `points.hold_released` and their orders' numbers with them: 10,000 abandoned holds took 12 minutes."""
        members = [member_id]
        for _ in range(4):
            other = str((await enrol(client, ecommerce_key))["id"])
            await earn(client, ecommerce_key, other, 10_000)
            members.append(other)
        for n, member in enumerate(members):
            assert (await hold(client, ecommerce_key, member, 50, f"SALE-{n}", ttl=60)).status_code == 201
        clock.advance(timedelta(seconds=61))
        assert await expire_holds(app.state.units, batch=2) == 5
        assert await rows(app, "SELECT id FROM holds WHERE status = 'active'") == []
        assert len(await events(app, "points.hold_released")) == 5
        await assert_ledger_invariant(app)

    async def test_a_hold_past_its_time_reads_as_expired_before_the_job_runs(
        self, client: httpx.AsyncClient, ecommerce_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-10", ttl=60)).json()
        clock.advance(timedelta(seconds=59))
        read = await client.get(f"/v1/holds/{created['id']}", headers=bearer(ecommerce_key))
        assert read.json()["status"] == "active"
        clock.advance(timedelta(seconds=1))
        read = await client.get(f"/v1/holds/{created['id']}", headers=bearer(ecommerce_key))
        assert read.json()["status"] == "expired"
        release = await client.post(f"/v1/holds/{created['id']}/release", headers=bearer(ecommerce_key))
        assert (release.status_code, release.json()["hold_status"]) == (409, "expired")

    async def test_an_expired_hold_ended_at_its_time_whenever_the_job_came(
        self, client: httpx.AsyncClient, ecommerce_key: str, member_id: str, clock: FrozenClock, app: FastAPI
    ) -> None:
        """Read before the job, or after a job late by days (the worker was down), an expired hold ended at
        its `expires_at`, not when the job (or the member's next spend) got to it."""
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-11", ttl=60)).json()
        clock.advance(timedelta(days=3))
        read = await client.get(f"/v1/holds/{created['id']}", headers=bearer(ecommerce_key))
        assert (read.json()["status"], read.json()["resolved_at"]) == ("expired", created["expires_at"])
        assert await expire_holds(app.state.units) == 1
        read = await client.get(f"/v1/holds/{created['id']}", headers=bearer(ecommerce_key))
        assert (read.json()["status"], read.json()["resolved_at"]) == ("expired", created["expires_at"])

    async def test_an_expired_hold_frees_its_points_for_the_next_spend_without_the_job(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await hold(client, ecommerce_key, member_id, 900, "WEB-9", ttl=60)
        clock.advance(timedelta(minutes=2))
        redeem = await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 500, "order_ref": "POS-9"},
            headers=bearer(ecommerce_key),
        )
        assert redeem.status_code == 200, redeem.text
        assert redeem.json()["balance"] == 500
        await assert_ledger_invariant(app, member_id)


class TestHoldsAndOrders:
    async def test_a_held_order_is_the_members_own(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        other = await enrol(client, ecommerce_key)
        created = (await hold(client, ecommerce_key, member_id, 300, "SHARED")).json()
        earn_on_it = await client.post(
            f"/v1/members/{other['id']}/earn",
            json={"order_ref": "SHARED", "amount": {"amount": 10_000, "currency": "CNY"}},
            headers=bearer(ecommerce_key),
        )
        assert earn_on_it.status_code == 409
        assert earn_on_it.json()["code"] == "order_belongs_to_another_member"
        their_hold = await hold(client, ecommerce_key, str(other["id"]), 1, "SHARED")
        assert their_hold.json()["code"] in {"order_belongs_to_another_member", "insufficient_points"}
        captured = await client.post(f"/v1/holds/{created['id']}/capture", headers=bearer(ecommerce_key))
        assert captured.status_code == 200
        await assert_ledger_invariant(app)

    async def test_a_hold_that_ends_uncaptured_leaves_the_order_free_for_another_member(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        """A checkout held points for WEB-77 and the customer cancelled: the order number was the member's
        forever, and another member's hold or earn on it was 409 order_belongs_to_another_member."""
        other = str((await enrol(client, ecommerce_key))["id"])
        await earn(client, ecommerce_key, other, 10_000)
        released = (await hold(client, ecommerce_key, member_id, 100, "WEB-77")).json()
        await client.post(f"/v1/holds/{released['id']}/release", headers=bearer(ecommerce_key))
        theirs = await hold(client, ecommerce_key, other, 10, "WEB-77")
        assert theirs.status_code == 201, theirs.text
        # One that ran out, once released (by the job, or by the member's next spend), frees it too.
        await hold(client, ecommerce_key, member_id, 100, "WEB-78", ttl=60)
        clock.advance(timedelta(minutes=2))
        assert await expire_holds(app.state.units) == 1
        await earn(client, ecommerce_key, other, 5_000, order_ref="WEB-78")
        # An order the member earned on stays theirs after a hold on it ends.
        await earn(client, ecommerce_key, member_id, 5_000, order_ref="WEB-79")
        kept = (await hold(client, ecommerce_key, member_id, 100, "WEB-79")).json()
        await client.post(f"/v1/holds/{kept['id']}/release", headers=bearer(ecommerce_key))
        refused = await client.post(
            f"/v1/members/{other}/earn",
            json={"order_ref": "WEB-79", "amount": cny(5_000)},
            headers=bearer(ecommerce_key),
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "order_belongs_to_another_member")
        await assert_ledger_invariant(app)

    async def test_an_expired_hold_does_not_block_a_new_one_for_the_order(
        self, client: httpx.AsyncClient, ecommerce_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await hold(client, ecommerce_key, member_id, 100, "AGAIN", ttl=60)
        clock.advance(timedelta(minutes=2))
        again = await hold(client, ecommerce_key, member_id, 100, "AGAIN")
        assert again.status_code == 201, again.text

    async def test_an_order_is_paid_with_points_once_by_a_hold_or_a_redeem(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, pos_key: str, member_id: str
    ) -> None:
        """A web checkout holds points for an order; a till redeeming on it too would have the capture pay a
        second time (both went through)."""
        created = (await hold(client, ecommerce_key, member_id, 300, "WEB-1")).json()
        before = await points(client, pos_key, member_id)
        redeemed = await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 200, "order_ref": "WEB-1"},
            headers=bearer(pos_key),
        )
        assert (redeemed.status_code, redeemed.json()["code"]) == (409, "hold_exists"), redeemed.text
        assert await points(client, pos_key, member_id) == before
        assert (await capture(client, ecommerce_key, created["id"])).status_code == 200
        # And the other way round: an order paid with points takes no hold.
        paid = await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 100, "order_ref": "TILL-2"},
            headers=bearer(pos_key),
        )
        assert paid.status_code == 200, paid.text
        refused = await hold(client, ecommerce_key, member_id, 100, "TILL-2")
        assert (refused.status_code, refused.json()["code"]) == (409, "order_already_redeemed"), refused.text
        assert (await points(client, pos_key, member_id))["balance"] == before["balance"] - 300 - 100
        await assert_ledger_invariant(app)


class TestRefundsOfCapturedHolds:
    async def test_captured_without_a_total_refunds_by_points_then_in_full(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-R1")).json()
        assert (await capture(client, ecommerce_key, created["id"], points=300)).status_code == 200
        by_amount = await client.post(
            "/v1/orders/WEB-R1/refund", json={"amount": cny(1_000)}, headers=bearer(ecommerce_key)
        )
        assert by_amount.status_code == 422
        assert (by_amount.json()["code"], by_amount.json()["refundable_points"]) == (
            "order_total_unknown",
            300,
        )
        part = await refund(client, ecommerce_key, "WEB-R1", points=100)
        assert moved(part) == (100, 0, 0)
        assert (part["balance"], part["points_refundable"], part["order_total"]) == (800, 200, None)
        await assert_ledger_invariant(app, member_id)
        rest = await refund(client, ecommerce_key, "WEB-R1", full=True)
        assert moved(rest) == (200, 0, 0)
        assert (rest["balance"], rest["points_refundable"]) == (1000, 0)
        assert (await points(client, ecommerce_key, member_id))["available"] == 1000
        await assert_ledger_invariant(app, member_id)

    async def test_captured_with_a_total_refunds_by_amount_then_in_full(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-R2")).json()
        captured = await capture(client, ecommerce_key, created["id"], order_total=cny(20_000))
        assert captured.status_code == 200, captured.text
        assert captured.json()["captured_points"] == 400
        quarter = await refund(client, ecommerce_key, "WEB-R2", amount=cny(5_000))
        assert moved(quarter) == (100, 0, 0)
        assert (quarter["order_total"], quarter["refunded_total"]) == (cny(20_000), cny(5_000))
        await assert_ledger_invariant(app, member_id)
        by_points = await refund(client, ecommerce_key, "WEB-R2", points=100)
        assert (moved(by_points), by_points["refunded_total"]) == ((100, 0, 0), cny(10_000))
        await assert_ledger_invariant(app, member_id)
        rest = await refund(client, ecommerce_key, "WEB-R2", full=True)
        assert moved(rest) == (200, 0, 0)
        assert (rest["refunded"], rest["refunded_total"], rest["balance"]) == (cny(10_000), cny(20_000), 1000)
        [*_, event] = await events(app, "points.refunded")
        assert (event["payload"]["refunded_by"], event["payload"]["order_total"]) == ("full", cny(20_000))
        await assert_ledger_invariant(app, member_id)

    @pytest.mark.parametrize("first", ["payment", "earn"])
    @pytest.mark.parametrize("paid_by", ["capture", "redeem"])
    async def test_the_total_a_payment_with_points_gives_is_the_orders_whichever_comes_first(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        member_id: str,
        first: str,
        paid_by: str,
    ) -> None:
        """An order of 10 000: 2000 paid with points, 8000 in cash (which earns 80). With the earn first, its
        cash amount was kept as the total and the capture's order_total dropped: a refund of 5000 gave back
        1250 and took 50, and the whole 10 000 could not be refunded."""
        await earn(client, ecommerce_key, member_id, 200_000)  # 2000 more points: 3000 in all

        async def pay() -> None:
            if paid_by == "capture":
                created = (await hold(client, ecommerce_key, member_id, 2_000, "WEB-T")).json()
                paid = await capture(client, ecommerce_key, created["id"], order_total=cny(10_000))
            else:
                paid = await client.post(
                    f"/v1/members/{member_id}/redeem",
                    json={"points": 2_000, "order_ref": "WEB-T", "order_total": cny(10_000)},
                    headers=bearer(ecommerce_key),
                )
            assert paid.status_code == 200, paid.text

        if first == "payment":
            await pay()
            await earn(client, ecommerce_key, member_id, 8_000, order_ref="WEB-T")
        else:
            await earn(client, ecommerce_key, member_id, 8_000, order_ref="WEB-T")
            await pay()
        half = await refund(client, ecommerce_key, "WEB-T", amount=cny(5_000))
        assert (moved(half), half["order_total"]) == ((1_000, 40, 0), cny(10_000))
        await assert_ledger_invariant(app, member_id)
        rest = await refund(client, ecommerce_key, "WEB-T", amount=cny(5_000))
        assert (moved(rest), rest["refunded_total"]) == ((1_000, 40, 0), cny(10_000))
        assert rest["balance"] == 3_000
        await assert_ledger_invariant(app, member_id)

    async def test_an_earn_alone_gives_its_amount_as_the_total(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        """A capture without order_total leaves the earn's cash amount as the base refunds measure against."""
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-R3")).json()
        await capture(client, ecommerce_key, created["id"])
        await earn(client, ecommerce_key, member_id, 15_000, order_ref="WEB-R3")  # the cash part: 150 points
        third = await refund(client, ecommerce_key, "WEB-R3", amount=cny(5_000))
        assert (moved(third), third["order_total"]) == ((133, 50, 0), cny(15_000))
        await assert_ledger_invariant(app, member_id)

    async def test_the_largest_order_total_is_kept_whole(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-BIG")).json()
        captured = await capture(client, ecommerce_key, created["id"], order_total=cny(10**12))
        assert captured.status_code == 200, captured.text
        half = await refund(client, ecommerce_key, "WEB-BIG", amount=cny(5 * 10**11))
        assert (moved(half), half["order_total"]) == ((200, 0, 0), cny(10**12))
        await assert_ledger_invariant(app, member_id)

    async def test_a_bad_order_total_leaves_the_hold_active(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_id: str
    ) -> None:
        created = (await hold(client, ecommerce_key, member_id, 400, "WEB-R5")).json()
        before = await table_counts(app, "ledger_entries", "point_lots", "outbox_events")
        usd = await capture(
            client, ecommerce_key, created["id"], order_total={"amount": 100, "currency": "USD"}
        )
        assert (usd.status_code, usd.json()["code"]) == (422, "currency_mismatch")
        zero = await capture(client, ecommerce_key, created["id"], order_total=cny(0))
        assert zero.status_code == 422
        assert zero.json()["errors"][0]["field"] == "order_total.amount"
        assert not zero.json()["errors"][0]["message"].startswith("Value error")
        # 400 points are worth 4 yuan: more than points may pay of a 1-yuan order, as on a redeem
        too_small = await capture(client, ecommerce_key, created["id"], order_total=cny(100))
        assert (too_small.status_code, too_small.json()["code"]) == (422, "redeem_share_exceeded")
        assert await table_counts(app, "ledger_entries", "point_lots", "outbox_events") == before
        read = await client.get(f"/v1/holds/{created['id']}", headers=bearer(ecommerce_key))
        assert read.json()["status"] == "active"
        await assert_ledger_invariant(app, member_id)
