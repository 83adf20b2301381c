"""What billing must hear about money it already took: a fee paid ahead that a cancel or a closed member
leaves unused, a plan change after the next period was paid, a price change after billing was told the old
price; and plans that would let grace outlast a period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from dateutil.relativedelta import relativedelta
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import bearer, cache_kept, units_of
from tests.graphql.helpers import graphql, mutate
from tests.inspect_db import events, rows
from tests.points.helpers import cny, set_program
from tests.subscriptions.helpers import (
    NOTICE,
    add_plan,
    add_plus_family,
    at,
    new_subscriber,
    next_payment_ref,
    pay,
    pay_reply,
    post_action,
    read,
    replace_plan,
    run_job,
    subscribe_reply,
)


@pytest.fixture
async def plans(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)
    await add_plus_family(client, admin_key)


@pytest.mark.usefixtures("plans")
class TestAFeePaidAhead:
    async def test_a_cancel_names_it_for_a_refund(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, billing_key: str
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        paid = await pay(client, billing_key, sub["id"], period=2, amount=1_500)

        response = await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})

        assert response.status_code == 200, response.text
        [canceled] = [e["payload"] for e in await events(app, "subscription.canceled")]
        assert canceled["unused_payment"] == {
            "payment_ref": paid["payment"]["payment_ref"],
            "period": 2,
            "amount": cny(1_500),
        }

    async def test_a_fee_named_for_a_refund_pays_for_nothing_after_a_resume(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)  # renewal_due for period 2
        await pay(client, billing_key, sub["id"], period=2, amount=1_500, payment_ref="P2")
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        # Billing refunds P2, as subscription.canceled asked; then the member changes their mind.
        resumed = await post_action(client, ecommerce_key, sub["id"], "resume")
        assert resumed.status_code == 200, resumed.text

        await run_job(app)  # billing is asked for period 2 again
        notices = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert [(n["due_period"], n["amount"]["amount"]) for n in notices] == [(2, 1_500), (2, 1_500)]
        listed = await client.get(f"/v1/subscriptions/{sub['id']}/payments", headers=bearer(billing_key))
        assert {p["payment_ref"]: p["status"] for p in listed.json()["items"]}["P2"] == "unused"
        # P2 reported again answers as it stands; period 2 with nothing new paid is past due, not renewed.
        again = await pay_reply(client, billing_key, sub["id"], period=2, amount=1_500, payment_ref="P2")
        assert (again.status_code, again.json()["payment"]["status"]) == (201, "unused")
        clock.set(at(sub["period_end"]) + timedelta(minutes=1))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "past_due"
        # A new charge for period 2 recovers it.
        paid = await pay(client, billing_key, sub["id"], period=2, amount=1_500, payment_ref="P2-again")
        assert (paid["subscription"]["state"], paid["subscription"]["period"]) == ("active", 2)

    async def test_every_reply_showing_the_fee_says_when_the_cancel_named_it(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        member, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref="P1")
        await pay(
            client, billing_key, sub["id"], period=2, amount=1_500, status="failed", payment_ref="P2-failed"
        )
        paid = await pay(client, billing_key, sub["id"], period=2, amount=1_500, payment_ref="P2")
        assert paid["payment"]["unused_at"] is None
        clock.advance(timedelta(days=3))
        canceled_at = clock.now()
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        clock.advance(timedelta(days=1))
        # A resume since leaves the fee unused, and the time the cancel named it.
        resumed = await post_action(client, ecommerce_key, sub["id"], "resume")
        assert resumed.status_code == 200, resumed.text
        expected = {"P1": None, "P2-failed": None, "P2": canceled_at}

        def unused_at(payments: list[dict[str, Any]], key: str = "unused_at") -> dict[str, Any]:
            return {p.get("payment_ref", p.get("paymentRef")): p[key] and at(p[key]) for p in payments}

        listed = await client.get(f"/v1/subscriptions/{sub['id']}/payments", headers=bearer(billing_key))
        assert unused_at(listed.json()["items"]) == expected
        again = await pay_reply(client, billing_key, sub["id"], period=2, amount=1_500, payment_ref="P2")
        assert (again.status_code, unused_at([again.json()["payment"]])) == (201, {"P2": canceled_at})

        query = """query($id: ID!) { loyaltySubscription(id: $id) {
          payments(first: 10) { edges { node { paymentRef unusedAt } } } } }"""
        found = await graphql(client, billing_key, query, id=sub["id"])
        edges = found["data"]["loyaltySubscription"]["payments"]["edges"]
        assert unused_at([e["node"] for e in edges], "unusedAt") == expected
        reported = await mutate(
            client,
            billing_key,
            "loyaltyRecordSubscriptionPayment",
            "payment { paymentRef unusedAt }",
            input={
                "subscriptionId": sub["id"],
                "paymentRef": "P2",
                "status": "succeeded",
                "period": 2,
                "amount": {"amount": 1_500, "currency": "CNY"},
            },
        )
        assert unused_at([reported["payment"]], "unusedAt") == {"P2": canceled_at}

        exported = await client.get(f"/v1/members/{member['id']}/export", headers=bearer(admin_key))
        assert exported.status_code == 200, exported.text
        [subscription] = exported.json()["subscriptions"]
        assert unused_at(subscription["payments"]) == expected

    async def test_a_resume_with_nothing_paid_ahead_asks_billing_nothing_twice(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        await post_action(client, ecommerce_key, sub["id"], "resume")
        await run_job(app)
        assert len(await events(app, "subscription.renewal_due")) == 1

    async def test_a_cancel_with_nothing_paid_ahead_names_none(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": False})
        [canceled] = [e["payload"] for e in await events(app, "subscription.canceled")]
        assert canceled["unused_payment"] is None

    @pytest.mark.parametrize("plan", ["premium", "plus"])
    async def test_no_plan_change_once_the_next_period_is_paid(
        self, client: httpx.AsyncClient, ecommerce_key: str, billing_key: str, plan: str
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "premium", payment_ref=next_payment_ref())
        if plan == "plus":  # a pending downgrade, paid for at its price, cannot be dropped either
            await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
            await pay(client, billing_key, sub["id"], period=2, amount=1_500)
            plan = "premium"
        else:
            await pay(client, billing_key, sub["id"], period=2, amount=3_000)
            plan = "plus"
        before = await read(client, ecommerce_key, sub["id"])

        response = await post_action(
            client, ecommerce_key, sub["id"], "change-plan", {"plan": plan, "payment_ref": next_payment_ref()}
        )

        assert (response.status_code, response.json()["code"]) == (409, "period_already_paid")
        assert await read(client, ecommerce_key, sub["id"]) == before

    async def test_closing_the_member_ends_their_subscriptions_and_names_the_fee(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, billing_key: str
    ) -> None:
        member, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        await pay(client, billing_key, sub["id"], period=2, amount=1_500)

        response = await client.patch(
            f"/v1/members/{member['id']}", json={"status": "closed"}, headers=bearer(admin_key)
        )

        assert response.status_code == 200, response.text
        ended = await read(client, ecommerce_key, sub["id"])
        assert (ended["state"], ended["benefits_until"]) == ("expired", None)
        [canceled] = [e["payload"] for e in await events(app, "subscription.canceled")]
        assert canceled["unused_payment"]["period"] == 2
        assert await run_job(app) == 0  # nothing left to renew or to bill


@pytest.mark.usefixtures("plans")
class TestAPriceAnotherProcessChanged:
    async def test_a_subscription_sold_after_it_costs_the_new_price(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        """Another process raised the plan's price and this one has not heard yet (its notification on the
        way): a subscription sold here is sold at the price the plan's row holds, not at the one this
        process's cache still remembers."""
        with cache_kept(app):  # as an entry no notification cleared yet stays
            await new_subscriber(client, ecommerce_key, "plus", trial=False, payment_ref=next_payment_ref())
            async with units_of(app).begin() as uow:  # the other process's change, announced to no one here
                await uow.session.execute(
                    text("UPDATE plans SET price_amount_minor = 1800, updated_at = :now WHERE code = 'plus'"),
                    {"now": uow.clock.now() + timedelta(seconds=1)},
                )
            _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())

        assert sub["price"] == cny(1_800), sub["price"]


@pytest.mark.usefixtures("plans")
class TestBillingHearsTheRightPrice:
    async def test_a_price_change_after_the_notice_sends_a_new_one(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)
        await replace_plan(client, admin_key, "plus", price=cny(1_800), benefit_ids=[])

        await run_job(app)

        notices = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert [(n["due_period"], n["amount"]["amount"]) for n in notices] == [(2, 1_500), (2, 1_800)]
        assert await run_job(app) == 0

    async def test_changes_during_a_trial_send_the_new_price_not_the_trial_s_end_again(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        await add_plan(client, admin_key, "trial-plus", price=3_000, unit="month", trial_days=7, family="tp")
        await add_plan(client, admin_key, "trial-basic", price=1_000, unit="month", family="tp")
        _, sub = await new_subscriber(client, ecommerce_key, "trial-plus")
        assert sub["state"] == "trialing"
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)
        await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "trial-basic"})
        await run_job(app)
        await replace_plan(client, admin_key, "trial-basic", price=cny(800))
        await run_job(app)

        assert len(await events(app, "subscription.trial_will_end")) == 1
        notices = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert [(n["due_plan"], n["amount"]["amount"]) for n in notices] == [
            ("trial-plus", 3_000),
            ("trial-basic", 1_000),
            ("trial-basic", 800),
        ]

    async def test_a_price_change_while_past_due_sends_the_new_price(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        clock.set(at(sub["period_end"]) + timedelta(minutes=1))
        await run_job(app)  # renewal_due at 15 yuan, then past due
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "past_due"
        await replace_plan(client, admin_key, "plus", price=cny(2_000))

        await run_job(app)

        notices = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert [(n["due_period"], n["amount"]["amount"]) for n in notices] == [(2, 1_500), (2, 2_000)]
        assert await run_job(app) == 0
        # Billing charges what it was last told, and the subscription recovers.
        paid = await pay(client, billing_key, sub["id"], period=2, amount=2_000)
        assert (paid["subscription"]["state"], paid["subscription"]["period"]) == ("active", 2)

    async def test_a_price_change_while_canceled_is_sent_once_resumed(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)  # renewal_due at 15 yuan
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        await replace_plan(client, admin_key, "plus", price=cny(2_000))
        await run_job(app)
        assert len(await events(app, "subscription.renewal_due")) == 1  # nothing to bill while canceled

        resumed = await post_action(client, ecommerce_key, sub["id"], "resume")
        assert resumed.status_code == 200, resumed.text
        await run_job(app)

        notices = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert [(n["due_period"], n["amount"]["amount"]) for n in notices] == [(2, 1_500), (2, 2_000)]
        assert (await pay_reply(client, billing_key, sub["id"], period=2, amount=2_000)).status_code == 201

    async def test_a_pending_downgrade_survives_a_cancel_and_resume(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "premium", payment_ref=next_payment_ref())
        await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)  # renewal_due: plus at 15 yuan
        canceled = await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        assert canceled.json()["pending_plan"]["code"] == "plus"

        resumed = await post_action(client, ecommerce_key, sub["id"], "resume")

        assert resumed.json()["pending_plan"]["code"] == "plus"
        await run_job(app)
        notices = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert [(n["due_plan"], n["amount"]["amount"]) for n in notices] == [("plus", 1_500)]
        # Billing charges what it was told, and period 2 begins on plus.
        assert (await pay_reply(client, billing_key, sub["id"], period=2, amount=1_500)).status_code == 201
        clock.set(at(sub["period_end"]))
        await run_job(app)
        renewed = await read(client, ecommerce_key, sub["id"])
        assert (renewed["plan"]["code"], renewed["period"], renewed["price"]) == ("plus", 2, cny(1_500))

    async def test_the_pending_downgrade_named_again_changes_nothing_and_asks_billing_nothing_twice(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        """A checkout that sends the same downgrade twice (no Idempotency-Key, or a new one): the second
        answers the subscription as it is, with no second plan_changed and no second renewal notice."""
        _, sub = await new_subscriber(client, ecommerce_key, "premium", payment_ref=next_payment_ref())
        first = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        assert first.status_code == 200, first.text
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)  # renewal_due: plus at 15 yuan
        before = await read(client, ecommerce_key, sub["id"])
        clock.advance(timedelta(minutes=5))

        again = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})

        assert again.status_code == 200, again.text
        assert again.json() == before  # pending_plan plus, updated_at where it was
        assert await read(client, ecommerce_key, sub["id"]) == before
        assert len(await events(app, "subscription.plan_changed")) == 1
        assert await run_job(app) == 0
        notices = [e["payload"] for e in await events(app, "subscription.renewal_due")]
        assert [(n["due_plan"], n["amount"]["amount"]) for n in notices] == [("plus", 1_500)]

    async def test_the_pending_downgrade_named_again_once_taken_off_sale_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        """The downgrade is pending and the operator then takes its plan off sale (it keeps those who have
        it, pending ones too: the period end renews onto it). The checkout's repeat of the downgrade answers
        it as made, as it does while the plan is on sale, not 422 "no plan on sale", which read as a
        downgrade refused that is in fact pending. With a payment it is refused as the first would be."""
        _, sub = await new_subscriber(client, ecommerce_key, "premium", payment_ref=next_payment_ref())
        first = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        assert first.status_code == 200, first.text
        await replace_plan(client, admin_key, "plus", active=False)
        before = await read(client, ecommerce_key, sub["id"])
        clock.advance(timedelta(minutes=5))

        again = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})

        assert again.status_code == 200, again.text
        assert again.json() == before  # pending_plan plus, updated_at where it was
        assert len(await events(app, "subscription.plan_changed")) == 1
        paid = await post_action(
            client,
            ecommerce_key,
            sub["id"],
            "change-plan",
            {"plan": "plus", "payment_ref": next_payment_ref()},
        )
        assert (paid.status_code, paid.json()["errors"][0]["field"]) == (422, "payment_ref")
        assert await read(client, ecommerce_key, sub["id"]) == before

    async def test_a_pending_plan_off_sale_and_dearer_since_is_not_sold_as_an_upgrade(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "premium", payment_ref=next_payment_ref())
        await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        await replace_plan(client, admin_key, "plus", active=False, price=cny(4_000))
        before = await read(client, ecommerce_key, sub["id"])

        body = {"plan": "plus", "payment_ref": next_payment_ref()}
        refused = await post_action(client, ecommerce_key, sub["id"], "change-plan", body)

        assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "plan")
        assert await read(client, ecommerce_key, sub["id"]) == before

    async def test_an_upgrade_sent_again_with_its_payment_answers_the_upgrade_it_made(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        """A checkout whose upgrade answer was lost sends it again, with the same payment (no Idempotency-Key,
        or a new one): the upgrade is made, the member charged, and the repeat answers the subscription as it
        is, as the pending downgrade named again does, rather than a 422 that reads as a failed upgrade."""
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        body = {"plan": "premium", "payment_ref": next_payment_ref()}
        first = await post_action(client, ecommerce_key, sub["id"], "change-plan", body)
        assert first.status_code == 200, first.text
        assert (first.json()["plan"]["code"], first.json()["period"]) == ("premium", 2)
        clock.advance(timedelta(minutes=5))

        again = await post_action(client, ecommerce_key, sub["id"], "change-plan", body)

        assert again.status_code == 200, again.text
        assert again.json() == first.json()  # updated_at where it was
        assert await read(client, ecommerce_key, sub["id"]) == first.json()
        assert len(await events(app, "subscription.plan_changed")) == 1
        paid = await rows(app, "SELECT period, amount_minor FROM subscription_payments ORDER BY period")
        assert [(p["period"], p["amount_minor"]) for p in paid] == [(1, 1_500), (2, 3_000)]

    async def test_an_upgrade_sent_again_after_its_member_was_suspended_answers_the_upgrade_it_made(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        """The member suspended between the upgrade and the checkout's repeat: the upgrade was made and paid
        for, so the repeat answers it, where a 409 `member_not_active` read as an upgrade refused that the
        member was charged for. A change not made yet is still refused."""
        member, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        body = {"plan": "premium", "payment_ref": next_payment_ref()}
        first = await post_action(client, ecommerce_key, sub["id"], "change-plan", body)
        assert first.status_code == 200, first.text
        suspended = await client.patch(
            f"/v1/members/{member['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text

        again = await post_action(client, ecommerce_key, sub["id"], "change-plan", body)

        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert len(await events(app, "subscription.plan_changed")) == 1
        other = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        assert (other.status_code, other.json()["code"]) == (409, "member_not_active")
        assert await read(client, ecommerce_key, sub["id"]) == first.json()

    async def test_the_current_plan_with_another_payment_is_still_refused(
        self, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        upgraded = await post_action(
            client,
            ecommerce_key,
            sub["id"],
            "change-plan",
            {"plan": "premium", "payment_ref": next_payment_ref()},
        )
        assert upgraded.status_code == 200, upgraded.text

        for body in ({"plan": "premium"}, {"plan": "premium", "payment_ref": next_payment_ref()}):
            response = await post_action(client, ecommerce_key, sub["id"], "change-plan", body)
            assert (response.status_code, response.json()["code"]) == (422, "validation_error")
        assert await read(client, ecommerce_key, sub["id"]) == upgraded.json()

    async def test_no_renewal_notice_for_a_period_already_paid(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        await pay(client, billing_key, sub["id"], period=2, amount=1_500)
        clock.set(at(sub["period_end"]) - NOTICE)
        await run_job(app)
        assert await events(app, "subscription.renewal_due") == []


class TestGrace:
    @pytest.mark.parametrize(("unit", "grace_days"), [("month", 28), ("month", 90)])
    async def test_grace_as_long_as_a_period_is_refused(
        self, client: httpx.AsyncClient, admin_key: str, unit: str, grace_days: int
    ) -> None:
        await set_program(client, admin_key)
        body = {
            "code": "short",
            "name": "Short",
            "price": cny(100),
            "interval": {"unit": unit, "count": 1},
            "grace_days": grace_days,
        }
        response = await client.post("/v1/plans", json=body, headers=bearer(admin_key))
        assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "grace_days")
        assert (await client.get("/v1/plans", headers=bearer(admin_key))).json()["items"] == []

    async def test_a_yearly_plan_may_have_a_long_grace(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        plan = await add_plan(client, admin_key, "long", unit="year", grace_days=60)
        assert plan["grace_days"] == 60


def test_notice_matches_the_default_setting() -> None:
    from loyalty_api.settings import Settings

    assert timedelta(hours=Settings.model_fields["subscription_notice_hours"].default) == NOTICE


class TestLateAndMistakenPayments:
    async def test_a_recovery_after_a_downgrade_to_shorter_periods_buys_a_whole_period_from_now(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "gold", price=120_000, unit="year", grace_days=60, family="club")
        await add_plan(client, admin_key, "silver", price=5_000, unit="month", grace_days=7, family="club")
        _, sub = await new_subscriber(
            client, ecommerce_key, "gold", trial=False, payment_ref=next_payment_ref()
        )
        await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "silver"})
        late = at(sub["period_end"]) + timedelta(days=40)  # in gold's grace; a silver month would be over
        clock.set(late)
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "past_due"

        paid = await pay(client, billing_key, sub["id"], period=2, amount=5_000)

        recovered = paid["subscription"]
        assert (recovered["state"], recovered["plan"]["code"], recovered["period"]) == ("active", "silver", 2)
        assert at(recovered["period_start"]) == late
        assert at(recovered["period_end"]) == late + relativedelta(months=1)
        assert await events(app, "subscription.expired") == []

    async def test_a_payment_ref_with_a_trial_is_refused_not_dropped(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "trialled", price=1_500, unit="month", trial_days=7)
        member = await enrol(client, ecommerce_key)
        refused = await subscribe_reply(
            client, ecommerce_key, member["id"], "trialled", payment_ref="pay-now"
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "payment_ref"
        assert await rows(app, "SELECT id FROM subscriptions") == []
        paid = await subscribe_reply(
            client, ecommerce_key, member["id"], "trialled", payment_ref="pay-now", trial=False
        )
        assert (paid.status_code, paid.json()["state"]) == (201, "active")

    async def test_a_pending_downgrade_can_be_dropped_once_the_current_plan_is_off_sale(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, plans: None
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "premium", payment_ref=next_payment_ref())
        await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "plus"})
        await replace_plan(client, admin_key, "premium", active=False)  # off sale; it keeps its subscribers

        dropped = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "premium"})

        assert dropped.status_code == 200, dropped.text
        assert (dropped.json()["plan"]["code"], dropped.json()["pending_plan"]) == ("premium", None)
        # Off sale, it is still no plan to move to.
        other = await new_subscriber(client, ecommerce_key, "plus", payment_ref=next_payment_ref())
        moved = await post_action(client, ecommerce_key, other[1]["id"], "change-plan", {"plan": "premium"})
        assert moved.status_code == 422, moved.text
