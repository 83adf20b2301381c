"""Paid membership under simultaneous requests: one live subscription per member and family, one
successful payment per period, one plan per code, a plan deleted while it sells, and the renewal job run
three times at once doing each step once. Each request runs in its own transaction on its own pooled
connection: on PostgreSQL they really race for the member's, subscription's and plan's rows (and the
unique indexes behind them); on SQLite `BEGIN IMMEDIATE` serializes them, and the outcomes must be the
same."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.inspect_db import count, events, rows
from tests.points.helpers import cny, set_program
from tests.subscriptions.helpers import (
    add_plan,
    add_plus_family,
    new_paid_subscriber,
    next_payment_ref,
    pay,
    pay_reply,
    read,
    run_job,
    subscribe_reply,
)


def outcomes(responses: list[httpx.Response]) -> Counter[tuple[int, str | None]]:
    """(status, problem code) of each response; the code is None for a success."""
    return Counter((r.status_code, r.json()["code"] if r.is_error else None) for r in responses)


@pytest.fixture(autouse=True)
async def _plans(client: httpx.AsyncClient, admin_key: str) -> None:
    """Two monthly plans of one family ("plus" with a 7-day trial, a dearer "premium")."""
    await set_program(client, admin_key)
    await add_plus_family(client, admin_key, trial_days=7)


class TestConcurrentSubscribing:
    async def test_twenty_subscribes_for_one_member_and_family_make_one_subscription(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, admin_key: str
    ) -> None:
        member = await enrol(client, ecommerce_key)

        async def attempt(n: int) -> httpx.Response:
            # Trials, paid starts and the family's other plan, from a shop and the back office.
            body: dict[str, object] = {"plan": "premium" if n % 3 == 0 else "plus"}
            if n % 2 or body["plan"] == "premium":  # premium has no trial: it is paid from the start
                body |= {"trial": False, "payment_ref": f"race-{n}"}
            key = admin_key if n % 4 == 0 else ecommerce_key
            return await client.post(
                f"/v1/members/{member['id']}/subscriptions", json=body, headers=bearer(key)
            )

        responses = await asyncio.gather(*(attempt(n) for n in range(20)))

        assert outcomes(responses) == {(201, None): 1, (409, "subscription_exists"): 19}, [
            r.text for r in responses
        ]
        [winner] = [r.json() for r in responses if r.status_code == 201]
        assert {r.json()["subscription_id"] for r in responses if r.status_code == 409} <= {
            winner["id"],
            None,
        }
        assert await rows(app, "SELECT COUNT(*) AS n FROM subscriptions") == [{"n": 1}]
        listed = await client.get(f"/v1/members/{member['id']}/subscriptions", headers=bearer(ecommerce_key))
        assert [s["id"] for s in listed.json()["items"]] == [winner["id"]]
        assert len(await events(app, "subscription.created")) == 1
        # The winner's first payment, if it paid, is the only one.
        assert await count(app, "subscription_payments") == (0 if winner["state"] == "trialing" else 1)

    async def test_members_subscribing_at_once_each_get_theirs(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        members = [await enrol(client, ecommerce_key) for _ in range(10)]

        responses = await asyncio.gather(
            *(
                subscribe_reply(
                    client, ecommerce_key, m["id"], "plus", trial=False, payment_ref=next_payment_ref()
                )
                for m in members
            )
        )

        assert outcomes(responses) == {(201, None): 10}, [r.text for r in responses]
        assert await count(app, "subscriptions") == 10
        assert await count(app, "subscription_payments") == 10


class TestConcurrentPayments:
    async def test_ten_successful_reports_for_one_period_record_one(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")

        async def report(n: int) -> httpx.Response:
            return await pay_reply(
                client, billing_key, sub["id"], period=2, amount=1_500, payment_ref=f"bill-{n}"
            )

        responses = await asyncio.gather(*(report(n) for n in range(10)))

        assert outcomes(responses) == {(201, None): 1, (409, "period_already_paid"): 9}, [
            r.text for r in responses
        ]
        [winner] = [r.json()["payment"] for r in responses if r.status_code == 201]
        paid = await rows(
            app, "SELECT payment_ref FROM subscription_payments WHERE period = 2 AND status = 'succeeded'"
        )
        assert paid == [{"payment_ref": winner["payment_ref"]}]
        assert await count(app, "subscription_payments") == 2

        clock.set(START + timedelta(days=40))  # past period 1's end: the one payment renews it once
        await run_job(app)
        renewed = await read(client, ecommerce_key, sub["id"])
        assert (renewed["state"], renewed["period"]) == ("active", 2)
        assert len(await events(app, "subscription.renewed")) == 1

    async def test_ten_identical_reports_record_one_payment_and_all_answer_it(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, billing_key: str
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")

        responses = await asyncio.gather(
            *(
                pay_reply(client, billing_key, sub["id"], period=2, amount=1_500, payment_ref="bill-same")
                for _ in range(10)
            )
        )

        assert outcomes(responses) == {(201, None): 10}, [r.text for r in responses]
        assert len({r.json()["payment"]["id"] for r in responses}) == 1
        assert await count(app, "subscription_payments") == 2

    async def test_a_recovery_paid_by_racing_reports_renews_once(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.set(START + timedelta(days=32))  # period 1 ended unpaid: past due, in grace
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "past_due"

        async def report(n: int) -> httpx.Response:
            return await pay_reply(
                client, billing_key, sub["id"], period=2, amount=1_500, payment_ref=f"late-{n}"
            )

        responses = await asyncio.gather(*(report(n) for n in range(10)))

        # The first renews to period 2; the others now report period 2 while period 3 is due.
        counted = outcomes(responses)
        assert counted[(201, None)] == 1, [r.text for r in responses]
        assert set(counted) <= {(201, None), (409, "period_already_paid"), (422, "payment_not_due")}
        recovered = await read(client, ecommerce_key, sub["id"])
        assert (recovered["state"], recovered["period"]) == ("active", 2)
        assert len(await events(app, "subscription.renewed")) == 1
        assert await count(app, "subscription_payments") == 2


class TestConcurrentOperators:
    async def test_ten_creates_of_one_plan_code_make_one_plan(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        async def create(n: int) -> httpx.Response:
            body = {
                "code": "gold-card",
                "name": f"Gold {n}",
                "price": cny(10_000 + n),
                "interval": {"unit": "year", "count": 1},
            }
            return await client.post("/v1/plans", json=body, headers=bearer(admin_key))

        responses = await asyncio.gather(*(create(n) for n in range(10)))

        assert outcomes(responses) == {(201, None): 1, (409, "plan_exists"): 9}, [r.text for r in responses]
        [winner] = [r.json() for r in responses if r.status_code == 201]
        assert (await client.get("/v1/plans/gold-card", headers=bearer(admin_key))).json() == winner
        assert await count(app, "plans") == 3  # with the fixture's two


class TestConcurrentRenewalJobs:
    async def test_two_job_runs_at_once_take_each_step_once(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        subs = []
        for n in range(8):
            _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
            if n % 2:
                await pay(client, billing_key, sub["id"], period=2, amount=1_500, payment_ref=f"ahead-{n}")
            subs.append(sub)
        clock.set(START + timedelta(days=32))  # every period 1 has ended: 4 renew, 4 fall past due

        steps = await asyncio.gather(run_job(app), run_job(app), run_job(app))

        assert sum(steps) >= 8
        ids = {s["id"] for s in subs}
        for event_type, expected in (("renewed", 4), ("past_due", 4)):
            found = [e["payload"]["subscription_id"] for e in await events(app, f"subscription.{event_type}")]
            assert len(found) == len(set(found)) == expected, event_type
            assert set(found) <= ids
        notices = [e["payload"]["subscription_id"] for e in await events(app, "subscription.renewal_due")]
        assert len(notices) == len(set(notices))  # billing is told once per subscription, if at all
        assert {s["id"] for s in subs[::2]} <= set(notices)  # the unpaid ones are told
        states = Counter(r["state"] for r in await rows(app, "SELECT state FROM subscriptions"))
        assert states == {"active": 4, "past_due": 4}
        outbox = await count(app, "outbox_events")
        assert await run_job(app) == 0
        assert await count(app, "outbox_events") == outbox


class TestDeletingAPlanWhileItSells:
    async def test_a_delete_racing_subscribes_answers_clearly_and_never_leaves_an_orphan(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        await add_plan(client, admin_key, "pop-up", price=900, unit="month")
        members = [await enrol(client, ecommerce_key) for _ in range(6)]

        async def buy(member_id: str) -> httpx.Response:
            return await subscribe_reply(
                client, ecommerce_key, member_id, "pop-up", payment_ref=next_payment_ref()
            )

        *bought, deleted = await asyncio.gather(
            *(buy(m["id"]) for m in members[:3]),
            *(buy(m["id"]) for m in members[3:]),
            client.delete("/v1/plans/pop-up", headers=bearer(admin_key)),
        )

        sold = sum(r.status_code == 201 for r in bought)
        assert set(outcomes(bought)) <= {(201, None), (422, "validation_error")}, [r.text for r in bought]
        if deleted.status_code == 204:
            assert sold == 0
            assert (await client.get("/v1/plans/pop-up", headers=bearer(admin_key))).status_code == 404
        else:
            assert (deleted.status_code, deleted.json()["code"]) == (409, "plan_in_use"), deleted.text
            assert sold >= 1
        assert await count(app, "subscriptions") == sold
