"""A subscription's whole life through the API, driven by an injected clock and the renewal job as the
worker runs it: trial, payments, renewals, grace, expiry, cancel, resume, plan changes."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from loyalty_api.clock import FrozenClock
from loyalty_api.db.engine import Database, create_engine
from loyalty_api.db.outage import database_out_of_reach
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.subscriptions.jobs import run_subscriptions
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.databases import is_postgres
from tests.inspect_db import events, rows
from tests.points.helpers import cny, set_program
from tests.relay import Relay
from tests.subscriptions.helpers import (
    NOTICE,
    add_plan,
    add_plus_family,
    at,
    benefit_names,
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
    subscribe_paid,
    subscribe_reply,
)


@pytest.fixture
async def plans(client: httpx.AsyncClient, admin_key: str) -> dict[str, Any]:
    """A monthly "Plus" card with a 7-day trial, 5 days' grace and a 5 % discount; a dearer "Premium" in the
    same family."""
    await set_program(client, admin_key)
    response = await client.post(
        "/v1/benefits",
        json={"name": "Plus 5% off", "kind": "percent_discount", "properties": {"percent": "5"}},
        headers=bearer(admin_key),
    )
    assert response.status_code == 201, response.text
    return await add_plus_family(
        client, admin_key, trial_days=7, grace_days=5, benefit_ids=[response.json()["id"]]
    )


@pytest.mark.usefixtures("plans")
class TestTrialToRenewalsToGraceAndBack:
    async def test_the_whole_lifecycle(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        member, sub = await new_subscriber(client, ecommerce_key, "plus")
        trial_end = START + timedelta(days=7)
        assert (sub["state"], sub["period"], at(sub["period_end"]), at(sub["trial_end"])) == (
            "trialing",
            0,
            trial_end,
            trial_end,
        )
        assert await benefit_names(client, ecommerce_key, member["id"]) == ["Plus 5% off"]

        # Three days ahead billing hears the trial ends and what to collect.
        clock.set(trial_end - NOTICE)
        assert await run_job(app) == 1
        [due] = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert (due["due_period"], due["amount"]) == (1, {"amount": 1_500, "currency": "CNY"})
        assert len(await events(app, "subscription.trial_will_end")) == 1

        await pay(client, billing_key, sub["id"], period=1, amount=1_500)
        assert (await read(client, ecommerce_key, sub["id"]))[
            "state"
        ] == "trialing"  # paid ahead; trial runs on

        clock.set(trial_end)
        await run_job(app)
        sub = await read(client, ecommerce_key, sub["id"])
        assert (sub["state"], sub["period"], at(sub["period_start"])) == ("active", 1, trial_end)
        assert at(sub["period_end"]) == datetime(2026, 4, 23, 10, tzinfo=trial_end.tzinfo)

        # Two renewals, each paid ahead.
        for period in (2, 3):
            await pay(client, billing_key, sub["id"], period=period, amount=1_500)
            clock.set(at(sub["period_end"]))
            await run_job(app)
            previous_end, sub = sub["period_end"], await read(client, ecommerce_key, sub["id"])
            assert (sub["state"], sub["period"], sub["period_start"]) == ("active", period, previous_end)

        # The fourth fee fails: the member keeps the period they paid for, then falls past due into grace.
        failed = await pay(client, billing_key, sub["id"], period=4, amount=1_500, status="failed")
        assert failed["subscription"]["state"] == "active"
        period_3_end = at(sub["period_end"])
        clock.set(period_3_end)
        await run_job(app)
        sub = await read(client, ecommerce_key, sub["id"])
        assert (sub["state"], at(sub["grace_until"])) == ("past_due", period_3_end + timedelta(days=5))
        assert await benefit_names(client, ecommerce_key, member["id"]) == ["Plus 5% off"]  # grace keeps them

        # Paid during grace: active again at once, period 4 counted from where period 3 ended.
        clock.advance(timedelta(days=2))
        outcome = await pay(client, billing_key, sub["id"], period=4, amount=1_500)
        sub = outcome["subscription"]
        assert (sub["state"], sub["period"], at(sub["period_start"]), sub["grace_until"]) == (
            "active",
            4,
            period_3_end,
            None,
        )
        assert len(await events(app, "subscription.renewed")) == 4  # trial → 1, 2, 3, and 4 on recovery
        assert len(await events(app, "subscription.past_due")) == 1


@pytest.mark.usefixtures("plans")
class TestUnpaid:
    async def test_failed_then_grace_runs_out_and_it_expires(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        assert (sub["state"], sub["period"]) == ("active", 1)
        await pay(client, billing_key, sub["id"], period=2, amount=1_500, status="failed")

        clock.set(at(sub["period_end"]))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "past_due"

        clock.set(at(sub["period_end"]) + timedelta(days=5))
        await run_job(app)
        sub = await read(client, ecommerce_key, sub["id"])
        assert (sub["state"], sub["benefits_until"]) == ("expired", None)
        assert await benefit_names(client, ecommerce_key, member["id"]) == []
        [expired] = await events(app, "subscription.expired")
        assert expired["payload"]["reason"] == "unpaid"

        late = await pay_reply(client, billing_key, sub["id"], period=2, amount=1_500)
        assert late.status_code == 409
        assert (late.json()["code"], late.json()["state"]) == (
            "subscription_transition_not_allowed",
            "expired",
        )

    async def test_benefits_end_on_time_even_before_the_job_runs(
        self, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.set(at(sub["period_end"]) + timedelta(days=5))  # past period end and grace; no job has run
        assert await benefit_names(client, ecommerce_key, member["id"]) == []


@pytest.mark.usefixtures("plans")
class TestCancel:
    async def test_cancel_at_period_end_keeps_benefits_then_ends(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        response = await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["cancel_at_period_end"]) == ("canceled", True)
        clock.set(at(sub["period_end"]) - timedelta(seconds=1))
        assert await benefit_names(client, ecommerce_key, member["id"]) == ["Plus 5% off"]
        await run_job(app)
        assert not await events(app, "subscription.renewal_due")  # a canceled subscription is not billed

        clock.set(at(sub["period_end"]))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "expired"
        assert await benefit_names(client, ecommerce_key, member["id"]) == []

    async def test_cancel_without_a_body_cancels_at_period_end(
        self, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")

        response = await client.post(f"/v1/subscriptions/{sub['id']}/cancel", headers=bearer(ecommerce_key))

        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["cancel_at_period_end"]) == ("canceled", True)
        assert response.json()["benefits_until"] == sub["period_end"]

    async def test_cancel_now_ends_benefits_at_once(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        response = await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": False})
        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["ended_at"] is not None) == ("expired", True)
        assert await benefit_names(client, ecommerce_key, member["id"]) == []
        assert [len(await events(app, f"subscription.{t}")) for t in ("canceled", "expired")] == [1, 1]

    async def test_resume_undoes_a_pending_cancel(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        response = await post_action(client, ecommerce_key, sub["id"], "resume")
        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["canceled_at"]) == ("active", None)

        await pay(client, billing_key, sub["id"], period=2, amount=1_500)
        clock.set(at(sub["period_end"]))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["period"] == 2  # renews as if never canceled

    async def test_a_canceled_trial_resumes_as_a_trial(
        self, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus")
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        response = await post_action(client, ecommerce_key, sub["id"], "resume")
        assert response.json()["state"] == "trialing"


@pytest.mark.usefixtures("plans")
class TestIllegalTransitions:
    @pytest.mark.parametrize(
        ("setup", "action", "body", "state"),
        [
            ("none", "resume", None, "active"),
            ("cancel_at_end", "cancel", {"at_period_end": True}, "canceled"),
            ("cancel_now", "cancel", {"at_period_end": True}, "expired"),
            ("cancel_now", "resume", None, "expired"),
            ("cancel_at_end", "change-plan", {"plan": "premium", "payment_ref": "x-1"}, "canceled"),
        ],
    )
    async def test_refused_with_the_current_state_and_nothing_changes(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        setup: str,
        action: str,
        body: dict[str, Any] | None,
        state: str,
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        if setup != "none":
            cancel = {"at_period_end": setup == "cancel_at_end"}
            assert (await post_action(client, ecommerce_key, sub["id"], "cancel", cancel)).status_code == 200
        before = await read(client, ecommerce_key, sub["id"])
        outbox = len(await rows(app, "SELECT id FROM outbox_events"))

        response = await post_action(client, ecommerce_key, sub["id"], action, body)

        assert response.status_code == 409, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert (response.json()["code"], response.json()["state"]) == (
            "subscription_transition_not_allowed",
            state,
        )
        assert await read(client, ecommerce_key, sub["id"]) == before
        assert len(await rows(app, "SELECT id FROM outbox_events")) == outbox


@pytest.mark.usefixtures("plans")
class TestPlanChange:
    async def test_upgrade_now_then_downgrade_at_period_end(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.advance(timedelta(days=10))

        no_payment = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "premium"})
        assert no_payment.status_code == 422
        upgraded = await post_action(
            client,
            ecommerce_key,
            sub["id"],
            "change-plan",
            {"plan": "premium", "payment_ref": next_payment_ref()},
        )
        assert upgraded.status_code == 200, upgraded.text
        sub = upgraded.json()
        assert (sub["plan"]["code"], sub["period"], at(sub["period_start"]), sub["price"]["amount"]) == (
            "premium",
            2,
            START + timedelta(days=10),
            3_000,
        )

        downgraded = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        assert downgraded.status_code == 200, downgraded.text
        assert (downgraded.json()["plan"]["code"], downgraded.json()["pending_plan"]["code"]) == (
            "premium",
            "plus",
        )
        changes = [e["payload"] for e in await events(app, "subscription.plan_changed")]
        assert [(c["to_plan"], at(c["effective_at"])) for c in changes] == [
            ("premium", START + timedelta(days=10)),
            ("plus", at(sub["period_end"])),
        ]

        # Billing is asked for the cheaper plan's price, and the next period is on it.
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)
        [due] = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert (due["due_plan"], due["amount"]["amount"]) == ("plus", 1_500)
        wrong = await pay_reply(client, billing_key, sub["id"], period=3, amount=3_000)
        assert (wrong.status_code, wrong.json()["code"]) == (422, "payment_amount_mismatch")
        await pay(client, billing_key, sub["id"], period=3, amount=1_500)
        clock.set(at(sub["period_end"]))
        await run_job(app)
        sub = await read(client, ecommerce_key, sub["id"])
        assert (sub["plan"]["code"], sub["pending_plan"], sub["period"], sub["price"]["amount"]) == (
            "plus",
            None,
            3,
            1_500,
        )

    async def test_a_pending_downgrade_is_dropped_while_past_due_and_the_overdue_period_stays_on_the_plan(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        """A premium member asked to move to plus at period end, then the card failed: past due, billing asks
        for plus's fee. They would rather stay on premium. Naming premium drops the pending downgrade as it
        does before period end (refused, the only ways back were paying for plus and then buying premium again
        with a new period, or ending the subscription); billing is asked for premium's fee, which recovers
        the subscription on premium."""
        _, sub = await new_paid_subscriber(client, ecommerce_key, "premium")
        await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        clock.set(at(sub["period_end"]) + timedelta(hours=1))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "past_due"

        kept = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "premium"})

        assert kept.status_code == 200, kept.text
        assert (kept.json()["state"], kept.json()["plan"]["code"], kept.json()["pending_plan"]) == (
            "past_due",
            "premium",
            None,
        )
        await run_job(app)
        dues = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert [(d["due_period"], d["due_plan"], d["amount"]["amount"]) for d in dues] == [
            (2, "plus", 1_500),
            (2, "premium", 3_000),
        ]
        old_price = await pay_reply(client, billing_key, sub["id"], period=2, amount=1_500)
        assert (old_price.status_code, old_price.json()["code"]) == (422, "payment_amount_mismatch")
        paid = await pay(client, billing_key, sub["id"], period=2, amount=3_000)
        recovered = paid["subscription"]
        assert (recovered["state"], recovered["plan"]["code"], recovered["period"], recovered["price"]) == (
            "active",
            "premium",
            2,
            cny(3_000),
        )

    async def test_a_shorter_period_waits_for_the_end_of_the_paid_one_though_dearer_per_month(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        await add_plan(client, admin_key, "gold-year", price=15_000, unit="year", family="gold")
        await add_plan(client, admin_key, "gold-month", price=1_500, unit="month", family="gold")
        _, sub = await new_paid_subscriber(client, ecommerce_key, "gold-year")
        clock.advance(timedelta(days=10))
        # Nothing is to be paid now: a fee sent for it would be dropped, so it is refused.
        paying = await post_action(
            client,
            ecommerce_key,
            sub["id"],
            "change-plan",
            {"plan": "gold-month", "payment_ref": next_payment_ref()},
        )
        assert (paying.status_code, paying.json()["errors"][0]["field"]) == (422, "payment_ref")

        response = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "gold-month"})

        # The prepaid year runs to its end; the monthly plan takes over then.
        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["plan"]["code"], changed["pending_plan"]["code"]) == ("gold-year", "gold-month")
        assert (changed["period"], changed["period_end"], changed["price"]) == (
            1,
            sub["period_end"],
            cny(15_000),
        )
        [change] = [e["payload"] for e in await events(app, "subscription.plan_changed")]
        assert at(change["effective_at"]) == at(sub["period_end"])
        listed = await client.get(f"/v1/subscriptions/{sub['id']}/payments", headers=bearer(ecommerce_key))
        assert [p["period"] for p in listed.json()["items"]] == [1]  # nothing charged for a month now

    async def test_a_dearer_period_at_least_as_long_starts_now(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        # 20 000 a year is dearer per month than 1 500 a month and runs longer: an upgrade, starting now
        # (what is left of the month is billing's to prorate).
        await add_plan(client, admin_key, "plus-year", price=20_000, unit="year", family="plus")
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.advance(timedelta(days=10))

        response = await post_action(
            client,
            ecommerce_key,
            sub["id"],
            "change-plan",
            {"plan": "plus-year", "payment_ref": next_payment_ref()},
        )

        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["plan"]["code"], changed["period"], at(changed["period_start"])) == (
            "plus-year",
            2,
            START + timedelta(days=10),
        )

    async def test_a_longer_period_cheaper_per_month_waits_for_the_end_of_the_paid_one(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        # 15 000 a year costs more than the month and runs longer, but is cheaper per month (1 250): started
        # now it would throw away the paid month's remaining 29 days, with no credit for them.
        await add_plan(client, admin_key, "plus-year", price=15_000, unit="year", family="plus")
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.advance(timedelta(days=1))
        paying = await post_action(
            client,
            ecommerce_key,
            sub["id"],
            "change-plan",
            {"plan": "plus-year", "payment_ref": next_payment_ref()},
        )
        assert (paying.status_code, paying.json()["errors"][0]["field"]) == (422, "payment_ref")

        response = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus-year"})

        # The paid month runs to its end; the yearly plan takes over then.
        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["plan"]["code"], changed["pending_plan"]["code"]) == ("plus", "plus-year")
        assert (changed["period"], changed["period_start"], changed["period_end"], changed["price"]) == (
            1,
            sub["period_start"],
            sub["period_end"],
            cny(1_500),
        )
        [change] = [e["payload"] for e in await events(app, "subscription.plan_changed")]
        assert at(change["effective_at"]) == at(sub["period_end"])
        listed = await client.get(f"/v1/subscriptions/{sub['id']}/payments", headers=bearer(ecommerce_key))
        assert [p["period"] for p in listed.json()["items"]] == [1]  # nothing charged for a year now

    async def test_an_upgrade_in_the_trial_ends_the_trial_now(
        self, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus")  # in its trial for 7 days
        clock.advance(timedelta(days=2))

        response = await post_action(
            client,
            ecommerce_key,
            sub["id"],
            "change-plan",
            {"plan": "premium", "payment_ref": next_payment_ref()},
        )

        # The paid period 1 runs from now: the trial is over, not running on for 5 more days beside it.
        assert response.status_code == 200, response.text
        upgraded = await read(client, ecommerce_key, sub["id"])
        assert (upgraded["state"], upgraded["period"], at(upgraded["period_start"])) == (
            "active",
            1,
            START + timedelta(days=2),
        )
        assert at(upgraded["trial_end"]) == START + timedelta(days=2)

    async def test_another_family_is_refused(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        await add_plan(client, admin_key, "kids-club", price=100, unit="month")
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        response = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "kids-club"})
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")


@pytest.mark.usefixtures("plans")
class TestSubscribing:
    async def test_a_second_live_subscription_in_the_family_is_409(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        member, first = await new_subscriber(client, ecommerce_key, "plus")
        for plan in ("plus", "premium"):
            response = await subscribe_reply(
                client, ecommerce_key, member["id"], plan, payment_ref=next_payment_ref()
            )
            assert (response.status_code, response.json()["code"]) == (409, "subscription_exists")
            assert response.json()["subscription_id"] == first["id"]
        await add_plan(client, admin_key, "kids-club", price=100, unit="month")
        await subscribe(client, ecommerce_key, member["id"], "kids-club", payment_ref=next_payment_ref())
        listed = await client.get(f"/v1/members/{member['id']}/subscriptions", headers=bearer(ecommerce_key))
        assert [s["plan"]["code"] for s in listed.json()["items"]] == ["kids-club", "plus"]

    async def test_a_subscription_sent_again_once_its_plan_is_off_sale_is_answered_as_made(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        """The checkout's subscribe, its reply lost, sent again without a key after the operator took the plan
        off sale (it keeps its subscribers): the subscription was made and its first fee recorded, and the
        repeat is 409 subscription_exists naming it, as while the plan is on sale, not 422 "no plan on sale",
        which reads as the member not subscribed (billing would refund the fee). A new subscriber is
        refused."""
        member = await enrol(client, ecommerce_key)
        body = {"trial": False, "payment_ref": next_payment_ref()}
        first = await subscribe(client, ecommerce_key, member["id"], "plus", **body)
        await replace_plan(client, admin_key, "plus", active=False)
        before = await rows(app, "select count(*) as n from subscription_payments")
        again = await subscribe_reply(client, ecommerce_key, member["id"], "plus", **body)
        assert (again.status_code, again.json()["code"]) == (409, "subscription_exists"), again.text
        assert again.json()["subscription_id"] == first["id"]
        other = await enrol(client, ecommerce_key)
        new = await subscribe_reply(client, ecommerce_key, other["id"], "plus", **body)
        assert (new.status_code, new.json()["code"]) == (422, "validation_error"), new.text
        assert await rows(app, "select count(*) as n from subscription_payments") == before

    @pytest.mark.parametrize("status", ["suspended", "closed"])
    async def test_a_subscription_sent_again_after_its_member_was_suspended_is_answered_as_made(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, status: str
    ) -> None:
        """The checkout's subscribe, its reply lost, sent again without a key after the member was suspended
        (a suspension keeps the subscription): it was made, and the repeat is 409 subscription_exists naming
        it, as an earn's or a plan change's repeat is answered as made then, not member_not_active, which
        reads as the member not subscribed. Another plan family is still member_not_active; so is the repeat
        once the member was closed, which ended the subscription."""
        member = await enrol(client, ecommerce_key)
        body = {"trial": False, "payment_ref": next_payment_ref()}
        first = await subscribe(client, ecommerce_key, member["id"], "plus", **body)
        await add_plan(client, admin_key, "kids-club", price=100, unit="month")
        suspended = await client.patch(
            f"/v1/members/{member['id']}", json={"status": status}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text
        before = await rows(app, "select count(*) as n from subscription_payments")
        again = await subscribe_reply(client, ecommerce_key, member["id"], "plus", **body)
        if status == "closed":
            assert (again.status_code, again.json()["code"]) == (409, "member_not_active"), again.text
        else:
            assert (again.status_code, again.json()["code"]) == (409, "subscription_exists"), again.text
            assert again.json()["subscription_id"] == first["id"]
        other = await subscribe_reply(client, ecommerce_key, member["id"], "kids-club", **body)
        assert (other.status_code, other.json()["code"]) == (409, "member_not_active"), other.text
        assert await rows(app, "select count(*) as n from subscription_payments") == before

    async def test_one_that_ended_before_the_renewal_job_came_is_no_obstacle(
        self, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        member, first = await new_paid_subscriber(client, ecommerce_key, "plus")
        canceled = await post_action(client, ecommerce_key, first["id"], "cancel", {"at_period_end": True})
        assert canceled.status_code == 200, canceled.text
        clock.set(at(first["period_end"]) + timedelta(minutes=1))  # the job has not run since
        again = await subscribe_reply(
            client, ecommerce_key, member["id"], "premium", payment_ref=next_payment_ref()
        )
        assert again.status_code == 201, again.text
        assert (await read(client, ecommerce_key, first["id"]))["state"] == "expired"
        listed = await client.get(f"/v1/members/{member['id']}/subscriptions", headers=bearer(ecommerce_key))
        assert [(s["plan"]["code"], s["state"]) for s in listed.json()["items"]] == [
            ("premium", "active"),
            ("plus", "expired"),
        ]

    async def test_one_trial_per_family(self, client: httpx.AsyncClient, ecommerce_key: str) -> None:
        member, sub = await new_subscriber(client, ecommerce_key, "plus")
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": False})
        again = await subscribe_reply(client, ecommerce_key, member["id"], "plus")
        assert (again.status_code, again.json()["code"]) == (409, "trial_already_used")
        paid = await subscribe_paid(client, ecommerce_key, member["id"], "plus")
        assert paid["state"] == "active"

    async def test_without_a_trial_the_first_payment_is_required(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        member = await enrol(client, ecommerce_key)
        response = await subscribe_reply(client, ecommerce_key, member["id"], "premium")
        assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "payment_ref")
        assert await rows(app, "SELECT id FROM subscriptions") == []


@pytest.mark.usefixtures("plans")
class TestRenewalJob:
    async def test_running_it_twice_changes_nothing_the_second_time(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        members = [await enrol(client, ecommerce_key) for _ in range(3)]
        subs = [await subscribe(client, ecommerce_key, m["id"], "plus") for m in members]
        await pay(client, billing_key, subs[0]["id"], period=1, amount=1_500)
        clock.set(START + timedelta(days=8))

        assert await run_job(app) > 0
        state = await rows(app, "SELECT * FROM subscriptions ORDER BY id")
        outbox = await rows(app, "SELECT id FROM outbox_events")
        assert await run_job(app) == 0
        assert await rows(app, "SELECT * FROM subscriptions ORDER BY id") == state
        assert await rows(app, "SELECT id FROM outbox_events") == outbox
        assert sorted(s["state"] for s in state) == ["active", "past_due", "past_due"]

    async def test_a_trial_that_ended_while_the_worker_was_down_is_not_told_it_will_end(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        """The worker is down from before the notice until a day after the trial's end: billing hears what to
        collect and that the subscription is past due, not that a trial already over will end."""
        _, sub = await new_subscriber(client, ecommerce_key, "plus")
        trial_end = at(sub["period_end"])
        clock.set(trial_end + timedelta(days=1))
        await run_job(app)

        assert await events(app, "subscription.trial_will_end") == []
        [due] = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert (due["due_period"], due["amount"]) == (1, {"amount": 1_500, "currency": "CNY"})
        [lapsed] = [e["payload"] for e in await events(app, "subscription.past_due")]
        assert (lapsed["state"], at(lapsed["period_end"])) == ("past_due", trial_end)

    async def test_a_renewal_notice_sent_after_the_period_end_says_it_is_overdue_and_until_when(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
    ) -> None:
        """On time the notice asks for the fee before `period_end`. Sent after it (the worker was down, or
        a price change reached a period already overdue), it must not ask for the fee by a time gone by: it
        says the period is overdue, and that the fee is wanted by the end of grace, when the subscription
        expires unpaid."""
        _, on_time = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.set(at(on_time["period_end"]) - NOTICE)
        await run_job(app)
        [due] = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert (due["overdue"], at(due["collect_by"])) == (False, at(on_time["period_end"]))

        _, late = await new_paid_subscriber(client, ecommerce_key, "plus")
        period_end = at(late["period_end"])
        clock.set(period_end + timedelta(days=1))  # the worker down from before the notice until now
        await run_job(app)
        [told_late] = [
            e["payload"]
            for e in await events(app, "subscription.renewal_due")
            if e["payload"]["subscription_id"] == late["id"]
        ]
        assert (told_late["overdue"], at(told_late["collect_by"])) == (True, period_end + timedelta(days=5))
        assert (await read(client, ecommerce_key, late["id"]))["state"] == "past_due"

        await replace_plan(client, admin_key, "plus", price=cny(1_800))
        await run_job(app)
        again = [
            e["payload"]
            for e in await events(app, "subscription.renewal_due")
            if e["payload"]["subscription_id"] == late["id"]
        ]
        assert [(d["amount"]["amount"], d["overdue"], at(d["collect_by"])) for d in again] == [
            (1_500, True, period_end + timedelta(days=5)),
            (1_800, True, period_end + timedelta(days=5)),
        ]

    async def test_a_trial_told_late_but_before_its_end_is_still_told(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus")
        clock.set(at(sub["period_end"]) - timedelta(minutes=1))  # late for the notice, the trial not over
        await run_job(app)
        [told] = [e["payload"] for e in await events(app, "subscription.trial_will_end")]
        assert (told["state"], at(told["period_end"])) == ("trialing", at(sub["period_end"]))

    async def test_a_price_change_reaches_a_subscription_at_its_next_period(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await replace_plan(
            client, admin_key, "plus", price={"amount": 1_800, "currency": "CNY"}, benefit_ids=[]
        )

        assert (await read(client, ecommerce_key, sub["id"]))["price"][
            "amount"
        ] == 1_500  # this period as sold
        old_price = await pay_reply(client, billing_key, sub["id"], period=2, amount=1_500)
        assert (old_price.status_code, old_price.json()["expected"]) == (
            422,
            {"amount": 1_800, "currency": "CNY"},
        )
        await pay(client, billing_key, sub["id"], period=2, amount=1_800)
        clock.set(at(sub["period_end"]))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["price"]["amount"] == 1_800

    async def test_month_end_anchors_do_not_drift(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        clock.set(datetime(2027, 1, 31, 12, tzinfo=START.tzinfo))
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        ends = [sub["period_end"][:10]]
        for period in (2, 3):
            await pay(client, billing_key, sub["id"], period=period, amount=1_500)
            clock.set(at(sub["period_end"]))
            await run_job(app)
            sub = await read(client, ecommerce_key, sub["id"])
            ends.append(sub["period_end"][:10])
        assert ends == ["2027-02-28", "2027-03-31", "2027-04-30"]

    @pytest.mark.parametrize(
        ("local_start", "local_ends"),
        [
            # 1 March 05:00 in Shanghai is still 28 February in UTC: the months are Shanghai's.
            ("2027-03-01T05:00", ["2027-04-01T05:00", "2027-05-01T05:00", "2027-06-01T05:00"]),
            # A month-end anchor in local time still comes back to the 31st.
            ("2027-01-31T05:00", ["2027-02-28T05:00", "2027-03-31T05:00", "2027-04-30T05:00"]),
        ],
    )
    async def test_months_are_counted_in_the_programme_s_time_zone(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        local_start: str,
        local_ends: list[str],
    ) -> None:
        shanghai = ZoneInfo("Asia/Shanghai")  # the programme's time zone (set_program)
        clock.set(datetime.fromisoformat(local_start).replace(tzinfo=shanghai))
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        ends = [at(sub["period_end"])]
        for period in (2, 3):
            await pay(client, billing_key, sub["id"], period=period, amount=1_500)
            clock.set(at(sub["period_end"]))
            await run_job(app)
            sub = await read(client, ecommerce_key, sub["id"])
            ends.append(at(sub["period_end"]))
        assert [e.astimezone(shanghai).strftime("%Y-%m-%dT%H:%M") for e in ends] == local_ends

    async def test_a_period_begun_in_the_hour_a_clock_change_repeats_begins_then(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        """New York turns its clocks back at 02:00 on 1 November 2026: 01:00 to 02:00 comes twice. A card
        bought at the second 01:30 (06:30 UTC) has its period begin then, not at the first 01:30 an hour
        before it was bought. A trial ending at 01:30 that day (its days are the programme's calendar days,
        and a time that comes twice is read as its first pass, as months read it) is followed by period 1
        then."""
        await set_program(client, admin_key, timezone="America/New_York")
        second_pass = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
        clock.set(second_pass)
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        assert (at(sub["period_start"]), at(sub["period_end"])) == (
            second_pass,
            datetime(2026, 12, 1, 6, 30, tzinfo=UTC),  # 01:30 on 1 December (EST)
        )

        first_pass = second_pass - timedelta(hours=1)
        clock.set(datetime(2026, 10, 25, 5, 30, tzinfo=UTC))  # 01:30 EDT, 7 days before
        _, trial = await new_subscriber(client, ecommerce_key, "plus")
        assert at(trial["trial_end"]) == first_pass
        await pay(client, billing_key, trial["id"], period=1, amount=1_500)
        clock.set(first_pass)
        await run_job(app)
        paid = await read(client, ecommerce_key, trial["id"])
        assert (paid["period"], at(paid["period_start"])) == (1, first_pass)

    @pytest.mark.parametrize(
        ("zone", "started", "local_trial_end", "local_period_1_end"),
        [
            # New York turns its clocks back on 1 November 2026 and on on 8 March 2026: a trial begun at
            # noon ends at noon, and the periods after it renew at noon.
            ("America/New_York", "2026-10-28T16:00Z", "2026-11-04T12:00", "2026-12-04T12:00"),
            ("America/New_York", "2026-03-05T17:00Z", "2026-03-12T12:00", "2026-04-12T12:00"),
            # Havana's clocks go back from 01:00 to midnight on 1 November 2026: a trial begun at the first
            # 00:30 ends at 00:30 on the 8th, not at 23:30 on the 7th.
            ("America/Havana", "2026-11-01T04:30Z", "2026-11-08T00:30", "2026-12-08T00:30"),
            # On 8 March they go on from midnight to 01:00: 00:30 is skipped, and is read as 01:30.
            ("America/Havana", "2026-03-01T05:30Z", "2026-03-08T01:30", "2026-04-08T01:30"),
        ],
    )
    async def test_a_trial_lasts_its_days_on_the_programme_s_clock(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        zone: str,
        started: str,
        local_trial_end: str,
        local_period_1_end: str,
    ) -> None:
        await set_program(client, admin_key, timezone=zone)
        clock.set(datetime.fromisoformat(started))
        _, sub = await new_subscriber(client, ecommerce_key, "plus")
        await pay(client, billing_key, sub["id"], period=1, amount=1_500)
        clock.set(at(sub["trial_end"]))
        await run_job(app)
        paid = await read(client, ecommerce_key, sub["id"])
        assert paid["period_start"] == sub["trial_end"] == sub["period_end"]
        local = [
            at(t).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
            for t in (sub["trial_end"], paid["period_end"])
        ]
        assert (paid["period"], *local) == (1, local_trial_end, local_period_1_end)

    async def test_grace_lasts_its_days_on_the_programme_s_clock_across_a_clock_change(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
    ) -> None:
        """New York turns its clocks back on 1 November 2026. A period ending at noon on 30 October, unpaid,
        keeps its benefits through 5 days of grace to noon on 4 November there (17:00 UTC), not to 11:00."""
        await set_program(client, admin_key, timezone="America/New_York")
        clock.set(datetime(2026, 9, 30, 16, tzinfo=UTC))  # noon in New York
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        period_end, grace_end = datetime(2026, 10, 30, 16, tzinfo=UTC), datetime(2026, 11, 4, 17, tzinfo=UTC)
        assert (at(sub["period_end"]), at(sub["benefits_until"])) == (period_end, grace_end)

        clock.set(period_end)
        await run_job(app)
        sub = await read(client, ecommerce_key, sub["id"])
        assert (sub["state"], at(sub["grace_until"]), at(sub["benefits_until"])) == (
            "past_due",
            grace_end,
            grace_end,
        )
        [past_due] = await events(app, "subscription.past_due")
        assert at(past_due["payload"]["grace_until"]) == grace_end

        clock.set(grace_end - timedelta(minutes=30))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "past_due"
        assert await benefit_names(client, ecommerce_key, member["id"]) == ["Plus 5% off"]
        clock.set(grace_end)
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "expired"

    async def test_a_period_stored_by_utc_s_calendar_is_followed_back_to_back(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        # 04:00 on 1 March in Shanghai, 28 February 20:00 in UTC: the release before months turned in the
        # programme's time zone ended the month by UTC's calendar, on 28 March 20:00 UTC.
        clock.set(datetime(2027, 2, 28, 20, tzinfo=UTC))
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        stored_end = datetime(2027, 3, 28, 20, tzinfo=UTC)
        await store_as_older_code_did(
            app,
            sub["id"],
            period_end=stored_end,
            benefits_until=stored_end + timedelta(days=5),
            next_action_at=stored_end - NOTICE,
        )
        await pay(client, billing_key, sub["id"], period=2, amount=1_500)

        clock.set(stored_end)
        await run_job(app)

        # Period 2 starts where period 1 ended (not on 31 March, three unpaid days later), a month long.
        sub = await read(client, ecommerce_key, sub["id"])
        assert (sub["period"], at(sub["period_start"]), at(sub["period_end"])) == (
            2,
            stored_end,
            datetime(2027, 4, 28, 20, tzinfo=UTC),
        )

    @pytest.mark.parametrize(
        ("subscribed_in", "renewed_in", "period_2"),
        [
            # Subscribed on 28 February in Berlin, 1 March already in Shanghai: counted from 1 March, period 2
            # would start on 1 April there, three days after period 1 ended.
            ("Europe/Berlin", "Asia/Shanghai", ("2027-03-28T19:00", "2027-04-28T19:00")),
            # The other way, period 2 would start on 28 March in Berlin, three days before period 1 ended.
            ("Asia/Shanghai", "Europe/Berlin", ("2027-03-31T20:00", "2027-04-30T20:00")),
        ],
    )
    async def test_a_change_of_time_zone_keeps_periods_back_to_back(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        subscribed_in: str,
        renewed_in: str,
        period_2: tuple[str, str],
    ) -> None:
        await set_program(client, admin_key, timezone=subscribed_in)
        clock.set(datetime(2027, 2, 28, 20, tzinfo=UTC))
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await pay(client, billing_key, sub["id"], period=2, amount=1_500)
        clock.set(datetime(2027, 3, 10, tzinfo=UTC))
        await set_program(client, admin_key, timezone=renewed_in)

        clock.set(at(sub["period_end"]))
        await run_job(app)

        renewed = await read(client, ecommerce_key, sub["id"])
        assert renewed["period_start"] == sub["period_end"]
        assert (renewed["period"], renewed["period_start"][:16], renewed["period_end"][:16]) == (2, *period_2)


@pytest.mark.skipif(not is_postgres(), reason="SQLite is a file of the process: it has no connection to lose")
@pytest.mark.usefixtures("plans")
async def test_the_renewal_run_ends_when_the_database_goes_away_instead_of_failing_each_subscription(
    app: FastAPI,
    client: httpx.AsyncClient,
    ecommerce_key: str,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The database goes away after the run listed what is due: one broken subscription is logged and the run
    goes on, but an outage is everyone's, so the run ends with it (the worker says so once, and runs it again)
    rather than logging a stack trace for each subscription of the batch."""
    subscriptions = [(await new_paid_subscriber(client, ecommerce_key, "plus"))[1] for _ in range(3)]
    units: UnitsOfWork = app.state.units
    url = make_url(units.settings.database_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    port = await relay.start()
    engine = create_engine(
        url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False),
        pooler=units.settings.database_pooler,
    )
    relayed = UnitsOfWork(Database(engine), units.clock, units.vault, units.settings)
    caplog.set_level(logging.ERROR, logger="loyalty_api.subscriptions")
    try:
        # A run with nothing due yet: the list's statement is prepared on the relayed connection, so the
        # run below lists in one round trip, whose answer the relay holds back.
        assert await run_subscriptions(relayed) == 0
        clock.set(max(at(sub["period_end"]) for sub in subscriptions))  # every one of them is due
        relay.hold()
        run = asyncio.ensure_future(run_subscriptions(relayed))
        for _ in range(500):  # until the list of what is due is on its way back
            if relay.held:
                break
            await asyncio.sleep(0.01)
        relay.dropping = True  # every connection goes as soon as the run next sends
        relay.release()
        with pytest.raises(SQLAlchemyError) as caught:
            await run
    finally:
        relay.release()
        await engine.dispose()
        await relay.close()
    assert database_out_of_reach(caught.value)
    assert [r.getMessage() for r in caplog.records] == []
