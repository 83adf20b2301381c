"""Billing's payment reports (who may send them, replays, refusals that write nothing, the list), the plans
API, a plan's recurring coupons as the clock moves, and the paid-membership revenue figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from dateutil.relativedelta import relativedelta
from fastapi import FastAPI

from loyalty_api.app import create_app
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.settings import Settings
from tests.builders import enrol, make_key
from tests.checkout.helpers import add_benefit
from tests.conftest import START, bearer
from tests.coupons.helpers import coupons_of
from tests.inspect_db import count, events
from tests.points.helpers import cny, set_program
from tests.subscriptions.helpers import (
    add_plan,
    add_plus_family,
    at,
    new_paid_subscriber,
    new_subscriber,
    next_payment_ref,
    pay,
    pay_reply,
    post_action,
    read,
    replace_plan,
    run_job,
    store_as_older_code_did,
    subscribe,
    subscribe_reply,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the programme's time zone (set_program)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


@pytest.fixture
async def plus(client: httpx.AsyncClient, admin_key: str) -> dict[str, Any]:
    """A monthly "Plus" card at 15 yuan with a 7-day trial and 5 days' grace."""
    await set_program(client, admin_key)
    return await add_plan(client, admin_key, "plus", price=1_500, unit="month", trial_days=7, grace_days=5)


@pytest.fixture
async def active_sub(plus: dict[str, Any], client: httpx.AsyncClient, ecommerce_key: str) -> dict[str, Any]:
    """A member in paid period 1 of Plus (the first payment recorded at subscribe)."""
    _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
    return sub


def payment_body(
    period: int = 2, amount: int = 1_500, status: str = "succeeded", payment_ref: str = "bill-1", **extra: Any
) -> dict[str, Any]:
    return {"status": status, "payment_ref": payment_ref, "amount": cny(amount), "period": period, **extra}


async def post_payment(
    client: httpx.AsyncClient, key: str, subscription_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"/v1/subscriptions/{subscription_id}/payments", json=body, headers=bearer(key))


class TestWhoReportsPayments:
    async def test_the_billing_key_records_a_payment(
        self, app: FastAPI, client: httpx.AsyncClient, billing_key: str, active_sub: dict[str, Any]
    ) -> None:
        response = await post_payment(client, billing_key, active_sub["id"], payment_body())

        assert response.status_code == 201, response.text
        payment = response.json()["payment"]
        assert (payment["period"], payment["status"], payment["payment_ref"], payment["amount"]) == (
            2,
            "succeeded",
            "bill-1",
            cny(1_500),
        )
        assert response.json()["subscription"]["id"] == active_sub["id"]
        assert await count(app, "subscription_payments") == 2  # the first period's, and this one

    @pytest.mark.parametrize("scope", [Scope.admin, Scope.pos, Scope.ecommerce])
    async def test_other_keys_are_refused_and_nothing_is_recorded(
        self, app: FastAPI, client: httpx.AsyncClient, active_sub: dict[str, Any], scope: Scope
    ) -> None:
        key = await make_key(app, scope)

        response = await post_payment(client, key, active_sub["id"], payment_body())

        assert_problem(response, 403, "scope_not_allowed")
        assert await count(app, "subscription_payments") == 1
        assert len(await events(app, "subscription.renewed")) == 0

    async def test_no_key_is_401(
        self, app: FastAPI, client: httpx.AsyncClient, active_sub: dict[str, Any]
    ) -> None:
        response = await client.post(f"/v1/subscriptions/{active_sub['id']}/payments", json=payment_body())
        assert_problem(response, 401, "invalid_api_key")
        assert await count(app, "subscription_payments") == 1

    async def test_an_unknown_subscription_is_404(
        self, app: FastAPI, client: httpx.AsyncClient, billing_key: str, plus: dict[str, Any]
    ) -> None:
        response = await post_payment(
            client, billing_key, "01890a5d-ac96-774b-bcce-b302099a8057", payment_body()
        )
        assert_problem(response, 404, "subscription_not_found")
        assert await count(app, "subscription_payments") == 0


class TestReplays:
    async def test_the_same_report_again_answers_the_same_payment(
        self, app: FastAPI, client: httpx.AsyncClient, billing_key: str, active_sub: dict[str, Any]
    ) -> None:
        first = await post_payment(client, billing_key, active_sub["id"], payment_body())
        again = await post_payment(client, billing_key, active_sub["id"], payment_body())

        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json()["payment"] == first.json()["payment"]
        assert await count(app, "subscription_payments") == 2

    async def test_a_replay_after_the_renewal_still_answers_the_same(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        billing_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        active_sub: dict[str, Any],
    ) -> None:
        first = await post_payment(client, billing_key, active_sub["id"], payment_body())
        clock.set(at(active_sub["period_end"]))
        await run_job(app)
        assert (await read(client, ecommerce_key, active_sub["id"]))["period"] == 2

        again = await post_payment(client, billing_key, active_sub["id"], payment_body())

        assert again.status_code == 201, again.text
        assert again.json()["payment"]["id"] == first.json()["payment"]["id"]
        assert again.json()["subscription"]["period"] == 2
        assert await count(app, "subscription_payments") == 2

    @pytest.mark.parametrize(
        "changed",
        [{"amount": 1_600}, {"status": "failed"}, {"period": 3}],
        ids=["amount", "status", "period"],
    )
    async def test_the_same_reference_with_another_content_is_409(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        billing_key: str,
        active_sub: dict[str, Any],
        changed: dict[str, Any],
    ) -> None:
        first = await post_payment(client, billing_key, active_sub["id"], payment_body())
        assert first.status_code == 201, first.text
        rows_before = await count(app, "subscription_payments")

        response = await post_payment(client, billing_key, active_sub["id"], payment_body(**changed))

        assert_problem(response, 409, "payment_ref_reused")
        assert await count(app, "subscription_payments") == rows_before
        listed = await client.get(
            f"/v1/subscriptions/{active_sub['id']}/payments", headers=bearer(billing_key)
        )
        assert listed.json()["items"][0] == first.json()["payment"]


class TestRefusedPayments:
    async def test_a_payment_for_another_period_is_422_and_names_the_due_one(
        self, app: FastAPI, client: httpx.AsyncClient, billing_key: str, active_sub: dict[str, Any]
    ) -> None:
        response = await post_payment(
            client, billing_key, active_sub["id"], payment_body(period=3, payment_ref="p3")
        )
        body = assert_problem(response, 422, "payment_not_due")
        assert body["due_period"] == 2
        # A failure for a period gone by is not due either.
        failed = payment_body(period=1, payment_ref="p1-failed") | {"status": "failed"}
        assert_problem(
            await post_payment(client, billing_key, active_sub["id"], failed), 422, "payment_not_due"
        )
        assert await count(app, "subscription_payments") == 1

    async def test_a_second_charge_for_a_period_paid_already_is_409_before_and_after_it_begins(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        billing_key: str,
        active_sub: dict[str, Any],
        clock: FrozenClock,
    ) -> None:
        # The first period's fee, charged again: billing refunds it rather than charge period 2 early.
        again = await post_payment(
            client, billing_key, active_sub["id"], payment_body(period=1, payment_ref="p1-b")
        )
        assert_problem(again, 409, "period_already_paid")
        await post_payment(client, billing_key, active_sub["id"], payment_body(period=2, payment_ref="p2"))
        second = payment_body(period=2, payment_ref="p2-b")
        assert_problem(
            await post_payment(client, billing_key, active_sub["id"], second), 409, "period_already_paid"
        )
        clock.set(at(active_sub["period_end"]) + timedelta(minutes=1))
        await run_job(app)  # period 2 has begun
        assert_problem(
            await post_payment(client, billing_key, active_sub["id"], second), 409, "period_already_paid"
        )
        assert await count(app, "subscription_payments") == 2

    @pytest.mark.parametrize(
        "amount", [cny(1_400), cny(1_501), {"amount": 1_500, "currency": "USD"}], ids=["less", "more", "usd"]
    )
    async def test_the_wrong_amount_is_422_and_names_the_price(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        billing_key: str,
        active_sub: dict[str, Any],
        amount: dict[str, Any],
    ) -> None:
        response = await post_payment(
            client, billing_key, active_sub["id"], payment_body() | {"amount": amount}
        )

        body = assert_problem(response, 422, "payment_amount_mismatch")
        assert body["expected"] == cny(1_500)
        assert await count(app, "subscription_payments") == 1

    async def test_a_second_success_for_a_paid_period_is_409(
        self, app: FastAPI, client: httpx.AsyncClient, billing_key: str, active_sub: dict[str, Any]
    ) -> None:
        await pay(client, billing_key, active_sub["id"], period=2, amount=1_500)

        response = await pay_reply(
            client, billing_key, active_sub["id"], period=2, amount=1_500, payment_ref="another-ref"
        )

        assert_problem(response, 409, "period_already_paid")
        assert await count(app, "subscription_payments") == 2

    async def test_a_failure_then_a_success_for_one_period_are_both_recorded(
        self, app: FastAPI, client: httpx.AsyncClient, billing_key: str, active_sub: dict[str, Any]
    ) -> None:
        await pay(client, billing_key, active_sub["id"], period=2, amount=1_500, status="failed")
        await pay(client, billing_key, active_sub["id"], period=2, amount=1_500)
        assert await count(app, "subscription_payments") == 3


class TestBadPaymentBodies:
    @pytest.mark.parametrize(
        "changes",
        [
            {"amount": {"amount": 1500.5, "currency": "CNY"}},
            {"amount": {"amount": "1500", "currency": "CNY"}},
            {"amount": {"amount": -1, "currency": "CNY"}},
            {"period": 0},
            {"period": 2.5},
            {"period": "2"},
            {"status": "refunded"},
            {"payment_ref": "has space"},
            {"payment_ref": ""},
            {"payment_ref": "x" * 101},
            {"refunded": True},
        ],
        ids=lambda c: repr(c)[:40],
    )
    async def test_is_422_and_records_nothing(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        billing_key: str,
        active_sub: dict[str, Any],
        changes: dict[str, Any],
    ) -> None:
        response = await post_payment(client, billing_key, active_sub["id"], payment_body() | changes)

        assert_problem(response, 422, "validation_error")
        assert await count(app, "subscription_payments") == 1


class TestPaymentList:
    async def test_newest_first_and_paged(
        self,
        client: httpx.AsyncClient,
        billing_key: str,
        pos_key: str,
        ecommerce_key: str,
        plus: dict[str, Any],
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", trial=False, payment_ref="first")
        for ref, status in (("second", "failed"), ("third", "succeeded")):
            await pay(client, billing_key, sub["id"], period=2, amount=1_500, status=status, payment_ref=ref)

        url = f"/v1/subscriptions/{sub['id']}/payments"
        listed = await client.get(url, headers=bearer(pos_key))
        assert listed.status_code == 200, listed.text
        assert [(p["payment_ref"], p["period"], p["status"]) for p in listed.json()["items"]] == [
            ("third", 2, "succeeded"),
            ("second", 2, "failed"),
            ("first", 1, "succeeded"),
        ]
        assert listed.json()["next_cursor"] is None

        first_page = (await client.get(url, params={"limit": 2}, headers=bearer(billing_key))).json()
        second_page = (
            await client.get(
                url, params={"limit": 2, "cursor": first_page["next_cursor"]}, headers=bearer(billing_key)
            )
        ).json()
        assert [p["payment_ref"] for p in first_page["items"] + second_page["items"]] == [
            "third",
            "second",
            "first",
        ]
        assert second_page["next_cursor"] is None


def plan_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": "gold-card",
        "name": "Gold card",
        "price": cny(19_800),
        "interval": {"unit": "year", "count": 1},
        "trial_days": 30,
        "grace_days": 7,
        "benefit_ids": [],
        "coupons": [],
    }
    return body | changes


class TestPlansApi:
    @pytest.fixture(autouse=True)
    async def _program(self, client: httpx.AsyncClient, admin_key: str) -> None:
        await set_program(client, admin_key)

    async def test_create_read_list_replace_delete(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        benefit = await add_benefit(client, admin_key, "Gold 5% off", "percent_discount", percent="5")
        created = await client.post(
            "/v1/plans", json=plan_body(benefit_ids=[benefit]), headers=bearer(admin_key)
        )
        assert created.status_code == 201, created.text
        plan = created.json()
        assert (plan["code"], plan["family"], plan["price"], plan["interval"], plan["active"]) == (
            "gold-card",
            "gold-card",
            cny(19_800),
            {"unit": "year", "count": 1},
            True,
        )
        assert [(b["id"], b["name"], b["kind"]) for b in plan["benefits"]] == [
            (benefit, "Gold 5% off", "percent_discount")
        ]
        assert (await client.get("/v1/plans/gold-card", headers=bearer(pos_key))).json() == plan
        listed = (await client.get("/v1/plans", headers=bearer(pos_key))).json()
        assert listed["items"] == [plan]
        shown = (await client.get(f"/v1/benefits/{benefit}", headers=bearer(admin_key))).json()
        assert [(s["type"], s["ref"]) for s in shown["sources"]] == [("plan", "gold-card")]

        body = plan_body(name="Gold card 2027", price=cny(24_800), grace_days=3)
        del body["code"]
        replaced = await client.put("/v1/plans/gold-card", json=body, headers=bearer(admin_key))
        assert replaced.status_code == 200, replaced.text
        read_back = (await client.get("/v1/plans/gold-card", headers=bearer(pos_key))).json()
        assert read_back == replaced.json()
        assert (read_back["id"], read_back["name"], read_back["price"], read_back["grace_days"]) == (
            plan["id"],
            "Gold card 2027",
            cny(24_800),
            3,
        )
        assert read_back["benefits"] == []  # replaced: the benefit list is the body's
        shown = (await client.get(f"/v1/benefits/{benefit}", headers=bearer(admin_key))).json()
        assert shown["sources"] == []

        deleted = await client.delete("/v1/plans/gold-card", headers=bearer(admin_key))
        assert deleted.status_code == 204, deleted.text
        assert_problem(
            await client.get("/v1/plans/gold-card", headers=bearer(pos_key)), 404, "plan_not_found"
        )
        assert (await client.get("/v1/plans", headers=bearer(pos_key))).json()["items"] == []
        changes = [e["payload"]["change"] for e in await events(app, "plan.changed")]
        assert changes == ["created", "replaced", "deleted"]

    async def test_the_same_plan_put_again_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        """PUT takes no Idempotency-Key (a repeat sets the same values): the plan sent again, its benefits in
        another order, keeps its `updated_at` and receivers hear of one change."""
        first_benefit = await add_benefit(client, admin_key, "Gold 5% off", "percent_discount", percent="5")
        second_benefit = await add_benefit(client, admin_key, "Free shipping", "free_shipping")
        created = await client.post("/v1/plans", json=plan_body(), headers=bearer(admin_key))
        assert created.status_code == 201, created.text
        body = plan_body(
            price=cny(24_800),
            benefit_ids=[first_benefit, second_benefit],
            coupons=[{"name": "10 yuan off", "coupon": {"kind": "fixed_discount", "amount": 1_000}}],
        )
        del body["code"]
        clock.advance(timedelta(minutes=1))
        first = await client.put("/v1/plans/gold-card", json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=5))
        body["benefit_ids"].reverse()
        again = await client.put("/v1/plans/gold-card", json=body, headers=bearer(admin_key))
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        changes = [e["payload"]["change"] for e in await events(app, "plan.changed")]
        assert changes == ["created", "replaced"]

    async def test_only_the_admin_changes_plans(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, billing_key: str
    ) -> None:
        for key in (pos_key, ecommerce_key, billing_key):
            assert_problem(
                await client.post("/v1/plans", json=plan_body(), headers=bearer(key)),
                403,
                "scope_not_allowed",
            )
        assert await count(app, "plans") == 0

    async def test_a_price_in_another_currency_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        response = await client.post(
            "/v1/plans",
            json=plan_body(price={"amount": 19_800, "currency": "USD"}),
            headers=bearer(admin_key),
        )
        assert_problem(response, 422, "currency_mismatch")
        assert await count(app, "plans") == 0

    async def test_a_replacement_in_another_currency_is_422_and_changes_nothing(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        plan = await add_plan(client, admin_key, "plus", price=1_500, unit="month")
        body = plan_body(price={"amount": 1_500, "currency": "USD"})
        del body["code"]
        response = await client.put("/v1/plans/plus", json=body, headers=bearer(admin_key))
        assert_problem(response, 422, "currency_mismatch")
        assert (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json() == plan

    async def test_an_unknown_benefit_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        unknown = "01890a5d-ac96-774b-bcce-b302099a8057"
        response = await client.post(
            "/v1/plans", json=plan_body(benefit_ids=[unknown]), headers=bearer(admin_key)
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "benefit_ids"
        assert unknown in body["errors"][0]["message"]
        assert await count(app, "plans") == 0
        assert await count(app, "benefit_grants") == 0

    async def test_a_taken_code_is_409(self, app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> None:
        first = await client.post("/v1/plans", json=plan_body(), headers=bearer(admin_key))
        assert first.status_code == 201, first.text
        again = await client.post(
            "/v1/plans", json=plan_body(name="Another", price=cny(1)), headers=bearer(admin_key)
        )
        assert_problem(again, 409, "plan_exists")
        assert (await client.get("/v1/plans/gold-card", headers=bearer(admin_key))).json() == first.json()
        assert await count(app, "plans") == 1

    async def test_a_plan_with_a_subscription_cannot_be_deleted(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        plan = await add_plan(client, admin_key, "plus", price=1_500, unit="month")
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": False})

        response = await client.delete("/v1/plans/plus", headers=bearer(admin_key))

        assert_problem(response, 409, "plan_in_use")  # even an expired subscription refers to it
        assert (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json() == plan

    async def test_a_plan_a_downgrade_is_pending_to_cannot_be_deleted(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        await add_plus_family(client, admin_key)
        _, sub = await new_paid_subscriber(client, ecommerce_key, "premium")
        downgraded = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        assert downgraded.json()["pending_plan"]["code"] == "plus"

        assert_problem(await client.delete("/v1/plans/plus", headers=bearer(admin_key)), 409, "plan_in_use")

    async def test_an_inactive_plan_cannot_be_subscribed_to(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        await add_plan(client, admin_key, "plus", price=1_500, unit="month", active=False)
        member = await enrol(client, ecommerce_key)

        response = await subscribe_reply(
            client, ecommerce_key, member["id"], "plus", trial=False, payment_ref=next_payment_ref()
        )

        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "plan"
        assert await count(app, "subscriptions") == 0
        assert await count(app, "subscription_payments") == 0

    async def test_a_deactivated_plan_keeps_its_subscribers_but_takes_no_new_ones(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        await add_plan(client, admin_key, "plus", price=1_500, unit="month")
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await replace_plan(client, admin_key, "plus", benefit_ids=[], active=False)

        other = await enrol(client, ecommerce_key)
        refused = await subscribe_reply(
            client, ecommerce_key, other["id"], "plus", trial=False, payment_ref=next_payment_ref()
        )
        assert_problem(refused, 422, "validation_error")
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "active"

    async def test_a_plan_deleted_by_another_process_is_not_sold_from_its_cache(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        settings: Settings,
        clock: FrozenClock,
        admin_key: str,
        ecommerce_key: str,
    ) -> None:
        """Two API processes on one database: the second has the plan in its catalogue cache (a few seconds)
        when the first deletes it. Selling it must be refused as a plan not on sale, not fail with a 500."""
        await add_plan(client, admin_key, "pop-up", price=900, unit="month")
        member = await enrol(client, ecommerce_key)
        other = create_app(settings, clock=clock)
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as elsewhere:
                listed = await elsewhere.get("/v1/plans", headers=bearer(ecommerce_key))
                assert [p["code"] for p in listed.json()["items"]] == ["pop-up"]  # now in its cache
                deleted = await client.delete("/v1/plans/pop-up", headers=bearer(admin_key))
                assert deleted.status_code == 204, deleted.text

                response = await subscribe_reply(
                    elsewhere, ecommerce_key, member["id"], "pop-up", payment_ref=next_payment_ref()
                )

        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "plan"
        assert await count(app, "subscriptions") == 0

    async def test_another_process_serves_a_subscription_to_a_plan_newer_than_its_cache(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        clock: FrozenClock,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
    ) -> None:
        """The second process cached the catalogue before the plan existed; the first creates the plan and
        sells it. The second must still read, bill and cancel that subscription."""
        member = await enrol(client, ecommerce_key)
        other = create_app(settings, clock=clock)
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://other.test") as elsewhere:
                listed = await elsewhere.get("/v1/plans", headers=bearer(ecommerce_key))
                assert listed.json()["items"] == []  # its cache: no plans yet
                await add_plan(client, admin_key, "new-card", price=900, unit="month")
                sub = await subscribe(
                    client, ecommerce_key, member["id"], "new-card", payment_ref=next_payment_ref()
                )

                read_there = await elsewhere.get(
                    f"/v1/subscriptions/{sub['id']}", headers=bearer(ecommerce_key)
                )
                listed_there = await elsewhere.get(
                    f"/v1/members/{member['id']}/subscriptions", headers=bearer(ecommerce_key)
                )
                paid_there = await pay_reply(elsewhere, billing_key, sub["id"], period=2, amount=900)
                canceled_there = await post_action(
                    elsewhere, ecommerce_key, sub["id"], "cancel", {"at_period_end": True}
                )

        statuses = [r.status_code for r in (read_there, listed_there, paid_there, canceled_there)]
        assert statuses == [200, 200, 201, 200], [r.text for r in (read_there, listed_there, paid_there)]
        assert read_there.json()["plan"]["code"] == "new-card"
        assert canceled_there.json()["state"] == "canceled"

    async def test_a_new_interval_applies_from_the_next_period_which_starts_where_this_one_ends(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        await add_plan(client, admin_key, "plus", price=1_500, unit="month")
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        period_1_end = at(sub["period_end"])
        assert period_1_end == START + relativedelta(months=1)

        await replace_plan(
            client,
            admin_key,
            "plus",
            price=cny(15_000),
            interval={"unit": "year", "count": 1},
            benefit_ids=[],
        )
        await pay(client, billing_key, sub["id"], period=2, amount=15_000)
        clock.set(period_1_end)
        await run_job(app)

        renewed = await read(client, ecommerce_key, sub["id"])
        assert (renewed["state"], renewed["period"], renewed["price"]) == ("active", 2, cny(15_000))
        assert (at(renewed["period_start"]), at(renewed["period_end"])) == (
            period_1_end,
            period_1_end + relativedelta(years=1),
        )

    async def test_a_period_paid_before_an_interval_change_runs_as_long_as_it_was_paid_for(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        # Like a price change, a new interval reaches a subscription at the first period not yet paid for:
        # billing took 15 yuan for a month, so period 2 is a month at 15 yuan, and period 3 the new year.
        await add_plan(client, admin_key, "plus", price=1_500, unit="month")
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        period_1_end = at(sub["period_end"])
        await pay(client, billing_key, sub["id"], period=2, amount=1_500)
        await replace_plan(
            client,
            admin_key,
            "plus",
            price=cny(15_000),
            interval={"unit": "year", "count": 1},
            benefit_ids=[],
        )
        clock.set(period_1_end)
        await run_job(app)

        renewed = await read(client, ecommerce_key, sub["id"])
        period_2_end = period_1_end + relativedelta(months=1)
        assert (renewed["state"], renewed["period"], renewed["price"]) == ("active", 2, cny(1_500))
        assert (at(renewed["period_start"]), at(renewed["period_end"])) == (period_1_end, period_2_end)
        assert at(renewed["benefits_until"]) == period_2_end + timedelta(days=7)
        # Period 3 is the first on the new terms: billing is asked for a year at 150 yuan.
        clock.set(period_2_end - timedelta(hours=72))
        await run_job(app)
        [notice] = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert (notice["due_period"], notice["amount"]) == (3, cny(15_000))
        await pay(client, billing_key, sub["id"], period=3, amount=15_000)
        clock.set(period_2_end)
        await run_job(app)
        third = await read(client, ecommerce_key, sub["id"])
        assert (third["period"], third["price"]) == (3, cny(15_000))
        assert (at(third["period_start"]), at(third["period_end"])) == (
            period_2_end,
            period_2_end + relativedelta(years=1),
        )

    @pytest.mark.parametrize(
        "changes",
        [
            {"price": {"amount": 1500.5, "currency": "CNY"}},
            {"price": {"amount": "1500", "currency": "CNY"}},
            {"price": {"amount": -1, "currency": "CNY"}},
            {"price": {"amount": 1500, "currency": "cny"}},
            {"interval": {"unit": "month", "count": 0}},
            {"interval": {"unit": "week", "count": 1}},
            {"interval": {"unit": "month", "count": 1.5}},
            {"trial_days": 7.5},
            {"trial_days": -1},
            {"grace_days": "7"},
            {"code": "Gold Card"},
            {"benefit_ids": ["not-a-uuid"]},
            {"coupons": [{"name": "x", "coupon": {"kind": "points_multiplier", "multiplier": "2"}}]},
            {"coupons": [{"name": "x", "coupon": {"kind": "fixed_discount", "amount": 100}, "every": "day"}]},
            {"colour": "gold"},
            {"interval": {"unit": "month", "count": 1, "anchor": "first"}},
            {"price": {"amount": 1500, "currency": "CNY", "tax": 0}},
        ],
        ids=lambda c: repr(c),
    )
    async def test_a_bad_body_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, changes: dict[str, Any]
    ) -> None:
        response = await client.post("/v1/plans", json=plan_body(**changes), headers=bearer(admin_key))

        assert_problem(response, 422, "validation_error")
        assert await count(app, "plans") == 0

    async def test_a_replacement_cannot_change_the_code_or_family(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        plan = await add_plan(client, admin_key, "plus", price=1_500, unit="month")
        base = {k: plan[k] for k in ("name", "price", "interval", "trial_days", "grace_days", "coupons")}
        for extra in ({"code": "other"}, {"family": "other"}):
            response = await client.put("/v1/plans/plus", json=base | extra, headers=bearer(admin_key))
            assert_problem(response, 422, "validation_error")
        assert (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json() == plan

    async def test_replacing_an_unknown_plan_is_404(self, client: httpx.AsyncClient, admin_key: str) -> None:
        body = plan_body()
        del body["code"]
        assert_problem(
            await client.put("/v1/plans/nope", json=body, headers=bearer(admin_key)), 404, "plan_not_found"
        )
        assert_problem(
            await client.delete("/v1/plans/nope", headers=bearer(admin_key)), 404, "plan_not_found"
        )


YEARLY_GIFT = {
    "name": "Yearly gift",
    "coupon": {"kind": "fixed_discount", "amount": 2_000},
    "valid_days": 60,
    "every": "period",
}
MONTHLY = {
    "name": "Monthly 5 off",
    "coupon": {"kind": "fixed_discount", "amount": 500},
    "valid_days": 30,
    "every": "month",
}


class TestRecurringCoupons:
    @pytest.fixture
    async def yearly(self, client: httpx.AsyncClient, admin_key: str) -> dict[str, Any]:
        await set_program(client, admin_key)
        return await add_plan(
            client,
            admin_key,
            "plus-yearly",
            price=15_000,
            unit="year",
            trial_days=14,
            coupons=[YEARLY_GIFT, MONTHLY],
        )

    @staticmethod
    async def coupons(client: httpx.AsyncClient, key: str, member_id: str) -> list[tuple[str, datetime]]:
        found = await coupons_of(client, key, member_id, limit=200)
        return sorted((c["name"], at(c["valid_from"])) for c in found)

    async def test_both_at_subscribe_then_one_monthly_coupon_a_month(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        yearly: dict[str, Any],
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus-yearly")
        assert await self.coupons(client, ecommerce_key, member["id"]) == [
            ("Monthly 5 off", START),
            ("Yearly gift", START),
        ]
        listed = await coupons_of(client, ecommerce_key, member["id"])
        assert {(c["source"]["type"], c["source"]["id"]) for c in listed} == {("plan", yearly["id"])}
        gift = next(c for c in listed if c["name"] == "Yearly gift")
        assert (gift["kind"], gift["properties"]["amount"], at(gift["valid_until"])) == (
            "fixed_discount",
            2_000,
            START + timedelta(days=60),
        )

        def month(n: int) -> datetime:
            return START + relativedelta(months=n)

        def expected(months: int, periods: int = 1) -> list[tuple[str, datetime]]:
            return sorted(
                [("Monthly 5 off", month(m)) for m in range(months + 1)]
                + [("Yearly gift", month(12 * p)) for p in range(periods)]
            )

        clock.set(month(1) - timedelta(seconds=1))
        await run_job(app)
        assert await self.coupons(client, ecommerce_key, member["id"]) == expected(0)

        for m in range(1, 12):
            clock.set(month(m))
            assert await run_job(app) >= 1
            assert await self.coupons(client, ecommerce_key, member["id"]) == expected(m)
            assert await run_job(app) == 0  # again: nothing more
            assert await self.coupons(client, ecommerce_key, member["id"]) == expected(m)

        # Period 2 paid: at the year's end the gift and month 0's coupon of the new period come.
        await pay(client, billing_key, sub["id"], period=2, amount=15_000)
        clock.set(month(12))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["period"] == 2
        assert await self.coupons(client, ecommerce_key, member["id"]) == expected(12, periods=2)
        await run_job(app)
        assert await count(app, "coupons") == 15

    async def test_months_the_job_missed_are_issued_once_when_it_runs_again(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        clock: FrozenClock,
        yearly: dict[str, Any],
    ) -> None:
        member, _ = await new_paid_subscriber(client, ecommerce_key, "plus-yearly")
        now = START + relativedelta(months=4, days=3)  # the job was down for months 1 to 4
        clock.set(now)

        await run_job(app)

        found = await self.coupons(client, ecommerce_key, member["id"])
        monthly = [valid_from for name, valid_from in found if name == "Monthly 5 off"]
        assert [name for name, _ in found].count("Yearly gift") == 1
        # Months 0 to 4, one each; those issued late are valid from when they came, not already half spent.
        assert monthly == [START, now, now, now, now]
        assert await run_job(app) == 0
        assert await self.coupons(client, ecommerce_key, member["id"]) == found

    async def test_canceled_at_period_end_they_come_until_the_end_and_cancel_now_stops_them(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        clock: FrozenClock,
        yearly: dict[str, Any],
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus-yearly")
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        clock.set(START + relativedelta(months=2))
        await run_job(app)
        assert len(await self.coupons(client, ecommerce_key, member["id"])) == 1 + 3  # the gift, months 0-2

        ended = await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": False})
        assert ended.json()["state"] == "expired"
        clock.set(START + relativedelta(months=6))
        assert await run_job(app) == 0
        assert len(await self.coupons(client, ecommerce_key, member["id"])) == 4

    async def test_a_month_whose_start_moved_before_the_stored_due_time_still_gets_its_coupon(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        clock: FrozenClock,
        yearly: dict[str, Any],
    ) -> None:
        # 04:00 on 31 January in Shanghai (30 January in UTC). The release before months turned in the
        # programme's time zone stored the next coupon by UTC's calendar: 28 February 20:00 UTC, a day after
        # February's start there (27 February 20:00 UTC, 04:00 on the 28th in Shanghai).
        clock.set(datetime(2027, 1, 30, 20, tzinfo=UTC))
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus-yearly")
        stored_due = datetime(2027, 2, 28, 20, tzinfo=UTC)
        await store_as_older_code_did(app, sub["id"], next_coupon_at=stored_due, next_action_at=stored_due)

        local_starts = [datetime(2027, m, d, 4, tzinfo=SHANGHAI) for m, d in ((2, 28), (3, 31), (4, 30))]
        for moment in sorted([*local_starts, stored_due]):
            clock.set(moment)
            await run_job(app)

        monthly = [
            v
            for name, v in await self.coupons(client, ecommerce_key, member["id"])
            if name == MONTHLY["name"]
        ]
        # One a month, February's from when the job issued it: none is skipped, none comes early.
        assert monthly == [datetime(2027, 1, 30, 20, tzinfo=UTC), stored_due, *local_starts[1:]]

    async def test_a_change_of_time_zone_skips_no_month(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        yearly: dict[str, Any],
    ) -> None:
        clock.set(datetime(2027, 1, 15, 2, tzinfo=UTC))  # 10:00 in Shanghai
        member, _ = await new_paid_subscriber(client, ecommerce_key, "plus-yearly")
        for month in (2, 3):
            clock.set(datetime(2027, month, 15, 2, tzinfo=UTC))
            await run_job(app)
        clock.set(datetime(2027, 3, 20, tzinfo=UTC))
        await set_program(client, admin_key, timezone="Europe/Berlin")

        # April's month now starts at 03:00 on the 15th in Berlin (01:00 UTC), an hour before the time
        # stored for it (10:00 in Shanghai).
        berlin = ZoneInfo("Europe/Berlin")
        for moment in (
            datetime(2027, 4, 15, 3, tzinfo=berlin),
            datetime(2027, 4, 15, 2, tzinfo=UTC),
            datetime(2027, 5, 15, 3, tzinfo=berlin),
        ):
            clock.set(moment)
            await run_job(app)

        monthly = [
            v
            for name, v in await self.coupons(client, ecommerce_key, member["id"])
            if name == MONTHLY["name"]
        ]
        assert monthly == [
            *(datetime(2027, m, 15, 2, tzinfo=UTC) for m in (1, 2, 3, 4)),
            datetime(2027, 5, 15, 3, tzinfo=berlin),
        ]

    async def test_a_trial_issues_none_and_the_first_paid_period_issues_both(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        yearly: dict[str, Any],
    ) -> None:
        member, sub = await new_subscriber(client, ecommerce_key, "plus-yearly")
        assert sub["state"] == "trialing"
        assert await self.coupons(client, ecommerce_key, member["id"]) == []

        for days in (1, 7, 13):
            clock.set(START + timedelta(days=days))
            await run_job(app)
            assert await self.coupons(client, ecommerce_key, member["id"]) == []

        await pay(client, billing_key, sub["id"], period=1, amount=15_000)
        trial_end = at(sub["trial_end"])
        clock.set(trial_end)
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "active"
        assert await self.coupons(client, ecommerce_key, member["id"]) == [
            ("Monthly 5 off", trial_end),
            ("Yearly gift", trial_end),
        ]

    async def test_a_lapsed_trial_issues_none(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        clock: FrozenClock,
        yearly: dict[str, Any],
    ) -> None:
        member, sub = await new_subscriber(client, ecommerce_key, "plus-yearly")
        clock.set(at(sub["trial_end"]) + relativedelta(months=2))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "expired"
        assert await self.coupons(client, ecommerce_key, member["id"]) == []


class TestRevenue:
    async def test_paying_members_and_monthly_recurring_revenue(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=1_500, unit="month", trial_days=7, grace_days=5)
        await add_plan(client, admin_key, "plus-yearly", price=15_000, unit="year")

        async def member_on(plan: str, **extra: Any) -> dict[str, Any]:
            member = await enrol(client, ecommerce_key)
            return await subscribe(client, ecommerce_key, member["id"], plan, **extra)

        # One falls past due: paid a month, then nothing.
        late = await member_on("plus", trial=False, payment_ref=next_payment_ref())
        clock.set(at(late["period_end"]) + timedelta(days=1))
        await run_job(app)
        assert (await read(client, ecommerce_key, late["id"]))["state"] == "past_due"
        # One canceled now: expired, counted nowhere.
        gone = await member_on("plus", trial=False, payment_ref=next_payment_ref())
        await post_action(client, ecommerce_key, gone["id"], "cancel", {"at_period_end": False})
        await member_on("plus", trial=False, payment_ref=next_payment_ref())
        await member_on("plus-yearly", payment_ref=next_payment_ref())
        await member_on("plus")  # trialing

        response = await client.get("/v1/analytics/paid-membership", headers=bearer(admin_key))

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["paying_members"], body["monthly_recurring_revenue"]) == (2, cny(2_750))
        by_plan = {
            p["plan"]["code"]: (p["paying"], p["trialing"], p["past_due"], p["monthly_recurring_revenue"])
            for p in body["plans"]
        }
        assert by_plan == {
            "plus": (1, 1, 1, cny(1_500)),
            "plus-yearly": (1, 0, 0, cny(1_250)),
        }

    async def test_a_canceled_paid_period_still_counts_until_it_ends(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus-yearly", price=15_000, unit="year")
        _, sub = await new_subscriber(client, ecommerce_key, "plus-yearly", payment_ref=next_payment_ref())
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})

        body = (await client.get("/v1/analytics/paid-membership", headers=bearer(admin_key))).json()
        assert (body["paying_members"], body["monthly_recurring_revenue"]) == (1, cny(1_250))

        clock.set(at(sub["period_end"]))
        await run_job(app)
        body = (await client.get("/v1/analytics/paid-membership", headers=bearer(admin_key))).json()
        assert (body["paying_members"], body["monthly_recurring_revenue"], body["plans"]) == (0, cny(0), [])

    async def test_a_member_paying_for_two_plans_counts_once(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=1_500, unit="month")
        await add_plan(client, admin_key, "kids", price=600, unit="month", count=3)
        member = await enrol(client, ecommerce_key)
        for plan in ("plus", "kids"):
            await subscribe(client, ecommerce_key, member["id"], plan, payment_ref=next_payment_ref())

        body = (await client.get("/v1/analytics/paid-membership", headers=bearer(admin_key))).json()

        assert (body["paying_members"], body["monthly_recurring_revenue"]) == (1, cny(1_500 + 200))
        assert [
            (p["plan"]["code"], p["paying"]) for p in sorted(body["plans"], key=lambda p: p["plan"]["code"])
        ] == [
            ("kids", 1),
            ("plus", 1),
        ]

    @pytest.mark.parametrize("scope", [Scope.pos, Scope.ecommerce, Scope.billing])
    async def test_only_the_admin_reads_it(
        self, app: FastAPI, client: httpx.AsyncClient, scope: Scope
    ) -> None:
        key = await make_key(app, scope)
        response = await client.get("/v1/analytics/paid-membership", headers=bearer(key))
        assert_problem(response, 403, "scope_not_allowed")
