"""A paid plan's benefits follow the subscription's state everywhere benefits count: the checkout quote (REST
and GraphQL), the earn multipliers, a member's benefits list; and a suspended member has none of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from dateutil.relativedelta import relativedelta
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.checkout.helpers import add_benefit, add_tier, cart, graphql_quote, item, quote, quote_reply, snake
from tests.conftest import bearer
from tests.points.helpers import earn, set_program
from tests.subscriptions.helpers import (
    add_plan,
    at,
    member_benefits,
    new_paid_subscriber,
    next_payment_ref,
    pay,
    post_action,
    read,
    replace_plan,
    run_job,
    subscribe,
    subscribe_paid,
    subscribe_reply,
)

GRACE = timedelta(days=5)
CART = cart(item("SHOE", 6_000, 1, "shoes"), item("SOCK", 1_000, 4, "apparel"), subtotal=10_000)
PLAN_DISCOUNT = ("plan", "plus", "Plus", "percent_discount", "Plus 5% off", 500)


def discounts(result: dict[str, Any]) -> list[tuple[str, str, str, str, str, int]]:
    return [
        (d["source"], d["source_ref"], d["source_name"], d["kind"], d["name"], d["amount"]["amount"])
        for d in result["discounts"]
    ]


@pytest.fixture
async def plus(client: httpx.AsyncClient, admin_key: str) -> dict[str, Any]:
    """A monthly "Plus" card (7-day trial, 5 days' grace) giving 5 % off; no tiers."""
    await set_program(client, admin_key)
    benefit = await add_benefit(client, admin_key, "Plus 5% off", "percent_discount", percent="5")
    return await add_plan(
        client,
        admin_key,
        "plus",
        price=1_500,
        unit="month",
        trial_days=7,
        grace_days=GRACE.days,
        benefit_ids=[benefit],
    )


Scenario = Callable[[FastAPI, httpx.AsyncClient, str, str, FrozenClock, str], Awaitable[dict[str, Any]]]


async def trialing(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe(client, key, member_id, "plus")
    clock.set(at(sub["period_end"]) - timedelta(minutes=1))  # the trial's last minute
    await run_job(app)
    return sub


async def active(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    return await subscribe_paid(client, key, member_id, "plus")


async def renewed(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe_paid(client, key, member_id, "plus")
    await pay(client, billing, sub["id"], period=2, amount=1_500)
    clock.set(at(sub["period_end"]) + timedelta(days=1))
    await run_job(app)
    return sub


async def canceled_at_period_end(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe_paid(client, key, member_id, "plus")
    response = await post_action(client, key, sub["id"], "cancel", {"at_period_end": True})
    assert response.status_code == 200, response.text
    clock.set(at(sub["period_end"]) - timedelta(seconds=1))
    await run_job(app)
    return sub


async def past_due_in_grace(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe_paid(client, key, member_id, "plus")
    await pay(client, billing, sub["id"], period=2, amount=1_500, status="failed")
    clock.set(at(sub["period_end"]) + GRACE - timedelta(seconds=1))
    await run_job(app)
    return sub


async def trial_lapsed_in_grace(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe(client, key, member_id, "plus")
    clock.set(at(sub["period_end"]) + timedelta(days=1))
    await run_job(app)
    return sub


async def expired_after_grace(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe_paid(client, key, member_id, "plus")
    clock.set(at(sub["period_end"]) + GRACE)
    await run_job(app)
    return sub


async def expired_after_cancel_at_period_end(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe_paid(client, key, member_id, "plus")
    await post_action(client, key, sub["id"], "cancel", {"at_period_end": True})
    clock.set(at(sub["period_end"]))
    await run_job(app)
    return sub


async def canceled_now(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe_paid(client, key, member_id, "plus")
    response = await post_action(client, key, sub["id"], "cancel", {"at_period_end": False})
    assert response.status_code == 200, response.text
    return sub


async def past_due_canceled(
    app: FastAPI, client: httpx.AsyncClient, key: str, billing: str, clock: FrozenClock, member_id: str
) -> dict[str, Any]:
    sub = await subscribe_paid(client, key, member_id, "plus")
    clock.set(at(sub["period_end"]) + timedelta(days=1))
    await run_job(app)
    response = await post_action(client, key, sub["id"], "cancel", {"at_period_end": True})
    assert response.status_code == 200, response.text
    return sub


IN_FORCE: list[tuple[Scenario, str]] = [
    (trialing, "trialing"),
    (active, "active"),
    (renewed, "active"),
    (canceled_at_period_end, "canceled"),
    (past_due_in_grace, "past_due"),
    (trial_lapsed_in_grace, "past_due"),
]
ENDED: list[tuple[Scenario, str]] = [
    (expired_after_grace, "expired"),
    (expired_after_cancel_at_period_end, "expired"),
    (canceled_now, "expired"),
    (past_due_canceled, "expired"),
]


@pytest.mark.usefixtures("plus")
class TestQuoteFollowsTheSubscription:
    @pytest.mark.parametrize(("scenario", "state"), IN_FORCE, ids=[s.__name__ for s, _ in IN_FORCE])
    async def test_the_plan_discount_applies_while_the_plan_is_in_force(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        scenario: Scenario,
        state: str,
    ) -> None:
        member = await enrol(client, ecommerce_key)
        sub = await scenario(app, client, ecommerce_key, billing_key, clock, member["id"])
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == state

        result = await quote(client, ecommerce_key, member["id"], CART)

        assert discounts(result) == [PLAN_DISCOUNT]
        assert result["goods_total"]["amount"] == 9_500

    @pytest.mark.parametrize(("scenario", "state"), ENDED, ids=[s.__name__ for s, _ in ENDED])
    async def test_no_plan_discount_once_it_has_ended(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        scenario: Scenario,
        state: str,
    ) -> None:
        member = await enrol(client, ecommerce_key)
        sub = await scenario(app, client, ecommerce_key, billing_key, clock, member["id"])
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == state

        result = await quote(client, ecommerce_key, member["id"], CART)

        assert discounts(result) == []
        assert result["goods_total"]["amount"] == 10_000

    async def test_one_member_through_the_states(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
    ) -> None:
        member = await enrol(client, ecommerce_key)

        async def plan_discounts() -> list[tuple[str, str, str, str, str, int]]:
            return discounts(await quote(client, ecommerce_key, member["id"], CART))

        assert await plan_discounts() == []  # not subscribed yet
        sub = await subscribe(client, ecommerce_key, member["id"], "plus")
        assert await plan_discounts() == [PLAN_DISCOUNT]  # trialing

        await pay(client, billing_key, sub["id"], period=1, amount=1_500)
        clock.set(at(sub["period_end"]))
        await run_job(app)
        sub = await read(client, ecommerce_key, sub["id"])
        assert sub["state"] == "active"
        assert await plan_discounts() == [PLAN_DISCOUNT]

        clock.set(at(sub["period_end"]) + timedelta(days=1))  # period 2 unpaid
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "past_due"
        assert await plan_discounts() == [PLAN_DISCOUNT]

        clock.set(at(sub["period_end"]) + GRACE)
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "expired"
        assert await plan_discounts() == []

    async def test_a_paid_member_keeps_the_discount_when_the_period_ends_before_the_job_runs(
        self, client: httpx.AsyncClient, ecommerce_key: str, billing_key: str, clock: FrozenClock
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await pay(client, billing_key, sub["id"], period=2, amount=1_500)

        clock.set(at(sub["period_end"]) + timedelta(minutes=1))  # the renewal job has not run yet

        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == [PLAN_DISCOUNT]

    async def test_a_paid_member_keeps_the_discount_through_the_paid_period_however_late_the_job(
        self, client: httpx.AsyncClient, ecommerce_key: str, billing_key: str, clock: FrozenClock
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await pay(client, billing_key, sub["id"], period=2, amount=1_500)

        clock.set(at(sub["period_end"]) + GRACE + timedelta(days=1))  # the worker has been down past grace
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == [PLAN_DISCOUNT]

        period_2_end = at(sub["period_end"]) + relativedelta(months=1)
        clock.set(period_2_end + GRACE)  # period 3 is not paid: past its grace, the plan is over
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == []

    async def test_an_unpaid_member_keeps_the_discount_through_grace_before_the_job_runs_and_not_after(
        self, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")

        clock.set(at(sub["period_end"]) + timedelta(days=1))  # in grace; no job has run
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == [PLAN_DISCOUNT]

        clock.set(at(sub["period_end"]) + GRACE)  # grace over; still no job
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == []

    async def test_a_canceled_subscription_ends_at_period_end_before_the_job_runs(
        self, client: httpx.AsyncClient, ecommerce_key: str, clock: FrozenClock
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})

        clock.set(at(sub["period_end"]))

        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == []

    async def test_a_benefit_from_both_tier_and_plan_applies_once(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        plan = (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json()
        [shared] = [b["id"] for b in plan["benefits"]]
        await add_tier(client, admin_key, "gold", benefit_ids=[shared])
        member, _ = await new_paid_subscriber(client, ecommerce_key, "plus")

        result = await quote(client, ecommerce_key, member["id"], CART)

        assert discounts(result) == [("tier", "gold", "Gold", "percent_discount", "Plus 5% off", 500)]
        assert result["goods_total"]["amount"] == 9_500


@pytest.mark.usefixtures("plus")
class TestPlanBenefitChanges:
    async def test_a_changed_benefit_reaches_the_quote_of_plan_members(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        member, _ = await new_paid_subscriber(client, ecommerce_key, "plus")
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == [PLAN_DISCOUNT]
        plan = (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json()
        [benefit] = [b["id"] for b in plan["benefits"]]

        body = {"name": "Plus 10% off", "kind": "percent_discount", "properties": {"percent": "10"}}
        replaced = await client.put(f"/v1/benefits/{benefit}", json=body, headers=bearer(admin_key))
        assert replaced.status_code == 200, replaced.text
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == [
            ("plan", "plus", "Plus", "percent_discount", "Plus 10% off", 1_000)
        ]

        deleted = await client.delete(f"/v1/benefits/{benefit}", headers=bearer(admin_key))
        assert deleted.status_code == 204, deleted.text
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == []
        assert (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json()["benefits"] == []

    async def test_a_plan_given_a_new_benefit_gives_it_to_its_members_at_once(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        member, _ = await new_paid_subscriber(client, ecommerce_key, "plus")
        extra = await add_benefit(client, admin_key, "Plus 3 off", "fixed_discount", amount=300)
        plan = (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json()
        await replace_plan(client, admin_key, "plus", benefit_ids=[plan["benefits"][0]["id"], extra])

        result = await quote(client, ecommerce_key, member["id"], CART)

        assert [(d["source"], d["name"], d["amount"]["amount"]) for d in result["discounts"]] == [
            ("plan", "Plus 5% off", 500),
            ("plan", "Plus 3 off", 300),
        ]


@pytest.mark.usefixtures("plus")
class TestGraphQLQuote:
    async def test_graphql_gives_the_rest_answer_with_the_plan_discount(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        shipping = await add_benefit(client, admin_key, "Plus free shipping", "free_shipping")
        plan = (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json()
        await replace_plan(client, admin_key, "plus", benefit_ids=[plan["benefits"][0]["id"], shipping])
        member, _ = await new_paid_subscriber(client, ecommerce_key, "plus")
        request = {
            "member_id": member["id"],
            "cart": cart(item("SHOE", 6_000, 1, "shoes"), subtotal=10_000, shipping=800),
            "channel": "online",
        }

        rest = await quote_reply(client, ecommerce_key, request)
        graph = await graphql_quote(client, ecommerce_key, request)

        assert rest.status_code == 200, rest.text
        assert [(d["source"], d["source_ref"], d["kind"]) for d in rest.json()["discounts"]] == [
            ("plan", "plus", "percent_discount"),
            ("plan", "plus", "free_shipping"),
        ]
        assert "errors" not in graph, graph
        assert snake(graph["data"]["loyaltyCheckoutQuote"]) == rest.json()


@pytest.fixture
async def double_points(client: httpx.AsyncClient, admin_key: str) -> str:
    """A monthly plan whose benefit doubles base points; the programme earns 1 point a yuan."""
    await set_program(client, admin_key)
    benefit = await add_benefit(client, admin_key, "Plus 2x points", "points_multiplier", multiplier="2")
    await add_plan(
        client, admin_key, "plus", price=1_500, unit="month", grace_days=GRACE.days, benefit_ids=[benefit]
    )
    return benefit


class TestEarnMultiplier:
    async def test_the_plan_doubles_base_points_until_it_expires(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        double_points: str,
    ) -> None:
        member = await enrol(client, pos_key)
        before = await earn(client, pos_key, member["id"], 12_990)
        assert (before["points_earned"], before["breakdown"]) == (
            129,
            [{"rule": "base", "kind": "base_rate", "points": 129}],
        )

        sub = await subscribe_paid(client, ecommerce_key, member["id"], "plus")
        doubled = await earn(client, pos_key, member["id"], 12_990)
        assert doubled["breakdown"] == [
            {"rule": "base", "kind": "base_rate", "points": 129},
            {"rule": "Plus 2x points", "kind": "points_multiplier", "points": 129},
        ]
        assert (doubled["points_earned"], doubled["balance"]) == (258, 129 + 258)

        clock.set(at(sub["period_end"]) + GRACE)
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "expired"
        after = await earn(client, pos_key, member["id"], 12_990)
        assert (after["points_earned"], after["breakdown"]) == (
            129,
            [{"rule": "base", "kind": "base_rate", "points": 129}],
        )

    async def test_a_multiplier_from_both_tier_and_plan_counts_once(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        double_points: str,
    ) -> None:
        await add_tier(client, admin_key, "gold", benefit_ids=[double_points])
        member = await enrol(client, pos_key)
        await subscribe_paid(client, ecommerce_key, member["id"], "plus")

        result = await earn(client, pos_key, member["id"], 10_000)

        assert result["points_earned"] == 200
        assert [line["kind"] for line in result["breakdown"]] == ["base_rate", "points_multiplier"]


class TestBackdatedEarn:
    """A receipt earns with the plans the member held when it was paid (`occurred_at`), as the earning rules
    already apply as of then: a till syncing offline receipts late neither gains nor loses the plan."""

    async def test_a_purchase_from_before_the_subscription_earns_without_the_plan(
        self,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        double_points: str,
    ) -> None:
        member = await enrol(client, pos_key)
        paid_at = clock.now()
        clock.advance(timedelta(days=3))
        await subscribe_paid(client, ecommerce_key, member["id"], "plus")

        result = await earn(client, pos_key, member["id"], 10_000, occurred_at=paid_at.isoformat())

        assert (result["points_earned"], [line["kind"] for line in result["breakdown"]]) == (
            100,
            ["base_rate"],
        )
        now = await earn(client, pos_key, member["id"], 10_000)  # a purchase now has the plan
        assert now["points_earned"] == 200

    @pytest.mark.parametrize("ended", ["canceled_at_period_end", "unpaid"])
    async def test_a_purchase_while_the_plan_was_held_earns_with_it_once_it_has_ended(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        double_points: str,
        ended: str,
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        if ended == "canceled_at_period_end":
            await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
            benefits_end = at(sub["period_end"])
        else:
            benefits_end = at(sub["period_end"]) + GRACE  # grace keeps the plan, unpaid
        clock.set(benefits_end + timedelta(days=1))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "expired"

        held = await earn(
            client,
            pos_key,
            member["id"],
            10_000,
            occurred_at=(benefits_end - timedelta(minutes=1)).isoformat(),
        )
        after = await earn(
            client,
            pos_key,
            member["id"],
            10_000,
            occurred_at=(benefits_end + timedelta(minutes=1)).isoformat(),
        )

        assert (held["points_earned"], after["points_earned"]) == (200, 100)

    async def test_a_purchase_before_a_cancel_now_earns_with_the_plan_and_one_after_without(
        self,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        double_points: str,
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        clock.advance(timedelta(days=3))
        canceled_at = clock.now()
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": False})
        clock.advance(timedelta(days=1))

        before = await earn(
            client, pos_key, member["id"], 10_000, occurred_at=(canceled_at - timedelta(hours=1)).isoformat()
        )
        after = await earn(
            client, pos_key, member["id"], 10_000, occurred_at=(canceled_at + timedelta(hours=1)).isoformat()
        )

        assert (before["points_earned"], after["points_earned"]) == (200, 100)


def sources_by_name(body: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {b["name"]: [(s["type"], s["ref"]) for s in b["sources"]] for b in body["benefits"]}


class TestMemberBenefitsList:
    @pytest.fixture
    async def setup(self, client: httpx.AsyncClient, admin_key: str) -> dict[str, str]:
        """Tier "gold" gives 10 % off and free shipping; plan "plus" gives double points and the same free
        shipping; plan "kids" (another family) gives free shipping too."""
        await set_program(client, admin_key)
        ids = {
            "ten_off": await add_benefit(client, admin_key, "Gold 10% off", "percent_discount", percent="10"),
            "shipping": await add_benefit(client, admin_key, "Free shipping", "free_shipping"),
            "double": await add_benefit(client, admin_key, "2x points", "points_multiplier", multiplier="2"),
        }
        await add_tier(client, admin_key, "gold", benefit_ids=[ids["ten_off"], ids["shipping"]])
        await add_plan(
            client, admin_key, "plus", unit="month", price=1_500, benefit_ids=[ids["double"], ids["shipping"]]
        )
        await add_plan(client, admin_key, "kids", unit="month", price=500, benefit_ids=[ids["shipping"]])
        return ids

    async def test_tier_and_plan_benefits_each_with_its_sources(
        self, client: httpx.AsyncClient, ecommerce_key: str, setup: dict[str, str]
    ) -> None:
        member = await enrol(client, ecommerce_key)
        listed = await member_benefits(client, ecommerce_key, member["id"])
        assert (listed["tier"]["code"], listed["plans"]) == ("gold", [])
        assert sources_by_name(listed) == {
            "Gold 10% off": [("tier", "gold")],
            "Free shipping": [("tier", "gold")],
        }

        await subscribe_paid(client, ecommerce_key, member["id"], "plus")
        body = await member_benefits(client, ecommerce_key, member["id"])

        assert (body["tier"]["code"], body["plans"]) == ("gold", ["plus"])
        assert len(body["benefits"]) == 3  # free shipping, given twice, is listed once
        assert sources_by_name(body) == {
            "Gold 10% off": [("tier", "gold")],
            "Free shipping": [("tier", "gold"), ("plan", "plus")],
            "2x points": [("plan", "plus")],
        }
        shipping = next(b for b in body["benefits"] if b["name"] == "Free shipping")
        assert (shipping["id"], shipping["kind"]) == (setup["shipping"], "free_shipping")
        assert [s["name"] for s in shipping["sources"]] == ["Gold", "Plus"]

    async def test_two_plans_and_a_tier_give_one_benefit(
        self, client: httpx.AsyncClient, ecommerce_key: str, setup: dict[str, str]
    ) -> None:
        member, _ = await new_paid_subscriber(client, ecommerce_key, "plus")
        kids = await subscribe_paid(client, ecommerce_key, member["id"], "kids")

        body = await member_benefits(client, ecommerce_key, member["id"])
        assert sorted(body["plans"]) == ["kids", "plus"]
        assert sorted(sources_by_name(body)["Free shipping"]) == [
            ("plan", "kids"),
            ("plan", "plus"),
            ("tier", "gold"),
        ]
        assert sources_by_name(body)["Free shipping"][0] == ("tier", "gold")  # the tier first

        await post_action(client, ecommerce_key, kids["id"], "cancel", {"at_period_end": False})
        body = await member_benefits(client, ecommerce_key, member["id"])
        assert body["plans"] == ["plus"]
        assert sources_by_name(body)["Free shipping"] == [("tier", "gold"), ("plan", "plus")]

    async def test_plan_benefits_leave_the_list_when_the_plan_ends(
        self, client: httpx.AsyncClient, ecommerce_key: str, setup: dict[str, str]
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": False})

        body = await member_benefits(client, ecommerce_key, member["id"])

        assert (body["tier"]["code"], body["plans"]) == ("gold", [])
        assert sources_by_name(body) == {
            "Gold 10% off": [("tier", "gold")],
            "Free shipping": [("tier", "gold")],
        }


@pytest.mark.usefixtures("plus")
class TestSuspendedMember:
    async def _set_status(
        self, client: httpx.AsyncClient, admin_key: str, member_id: str, status: str
    ) -> None:
        response = await client.patch(
            f"/v1/members/{member_id}", json={"status": status}, headers=bearer(admin_key)
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status

    async def test_a_suspended_member_gets_no_plan_benefits_until_reactivated(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        assert (await member_benefits(client, ecommerce_key, member["id"]))["plans"] == ["plus"]

        await self._set_status(client, admin_key, member["id"], "suspended")

        body = await member_benefits(client, ecommerce_key, member["id"])
        assert (body["plans"], body["benefits"]) == ([], [])
        refused = await quote_reply(client, ecommerce_key, {"member_id": member["id"], "cart": CART})
        assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")
        no_earn = await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": "SUSPENDED-1", "amount": {"amount": 10_000, "currency": "CNY"}},
            headers=bearer(ecommerce_key),
        )
        assert (no_earn.status_code, no_earn.json()["code"]) == (409, "member_not_active")
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "active"  # the subscription stays

        other_family = await add_plan(client, admin_key, "kids", price=500, unit="month")
        refused = await subscribe_reply(
            client, ecommerce_key, member["id"], other_family["code"], payment_ref=next_payment_ref()
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")

        await self._set_status(client, admin_key, member["id"], "active")
        body = await member_benefits(client, ecommerce_key, member["id"])
        assert (body["plans"], [b["name"] for b in body["benefits"]]) == (["plus"], ["Plus 5% off"])
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == [PLAN_DISCOUNT]

    async def test_a_suspended_member_may_cancel_but_not_resume_or_change_plan_as_they_may_not_subscribe(
        self, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        await add_plan(client, admin_key, "premium", price=3_000, unit="month", family="plus")
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        await self._set_status(client, admin_key, member["id"], "suspended")

        upgrade = {"plan": "premium", "payment_ref": next_payment_ref()}
        refused = await post_action(client, ecommerce_key, sub["id"], "change-plan", upgrade)
        assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")
        canceled = await post_action(client, ecommerce_key, sub["id"], "cancel", {"at_period_end": True})
        assert canceled.status_code == 200, canceled.text  # winding a membership down stays open
        refused = await post_action(client, ecommerce_key, sub["id"], "resume")
        assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")
        after = await read(client, ecommerce_key, sub["id"])
        assert (after["state"], after["plan"]["code"], after["period"]) == ("canceled", "plus", 1)

        await self._set_status(client, admin_key, member["id"], "active")
        resumed = await post_action(client, ecommerce_key, sub["id"], "resume")
        assert (resumed.status_code, resumed.json()["state"]) == (200, "active")
        upgraded = await post_action(client, ecommerce_key, sub["id"], "change-plan", upgrade)
        assert (upgraded.status_code, upgraded.json()["plan"]["code"]) == (200, "premium")


@pytest.mark.usefixtures("plus")
class TestGraceChangeReachesRunningSubscriptions:
    """An operator's new `grace_days` is the grace of subscriptions already running on the plan, past due
    ones included, from the change on: benefits end by it even when the renewal job is late."""

    async def test_a_shorter_grace_ends_the_benefits_of_one_past_due_without_the_job(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
    ) -> None:
        member = await enrol(client, ecommerce_key)
        sub = await subscribe_paid(client, ecommerce_key, member["id"], "plus")
        period_end = at(sub["period_end"])
        clock.set(period_end + timedelta(hours=1))
        await run_job(app)
        assert at((await read(client, ecommerce_key, sub["id"]))["grace_until"]) == period_end + GRACE

        await replace_plan(client, admin_key, "plus", grace_days=2)
        clock.set(period_end + timedelta(days=3))  # the worker is down: the job has not run since

        after = await read(client, ecommerce_key, sub["id"])
        assert (after["state"], at(after["grace_until"]), at(after["benefits_until"])) == (
            "past_due",
            period_end + timedelta(days=2),
            period_end + timedelta(days=2),
        )
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == []
        await run_job(app)
        ended = await read(client, ecommerce_key, sub["id"])
        assert (ended["state"], at(ended["ended_at"])) == ("expired", period_end + timedelta(days=2))

    async def test_a_new_grace_moves_the_benefits_end_of_running_subscriptions(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
    ) -> None:
        member = await enrol(client, ecommerce_key)
        sub = await subscribe_paid(client, ecommerce_key, member["id"], "plus")
        period_end = at(sub["period_end"])
        assert at(sub["benefits_until"]) == period_end + GRACE

        await replace_plan(client, admin_key, "plus", grace_days=1)
        assert at((await read(client, ecommerce_key, sub["id"]))["benefits_until"]) == period_end + timedelta(
            days=1
        )
        clock.set(period_end + timedelta(days=2))  # the job has not lapsed it yet
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == []

        await replace_plan(client, admin_key, "plus", grace_days=6)  # longer again: back in grace
        assert at((await read(client, ecommerce_key, sub["id"]))["benefits_until"]) == period_end + timedelta(
            days=6
        )
        assert discounts(await quote(client, ecommerce_key, member["id"], CART)) == [PLAN_DISCOUNT]

    async def test_a_new_grace_counts_from_the_end_of_a_period_paid_ahead(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        billing_key: str,
    ) -> None:
        """Billing took the next period's fee before it began: the benefits run through that period and the
        new grace after it, beside a subscriber of the plan who has not paid ahead."""
        member = await enrol(client, ecommerce_key)
        ahead = await subscribe_paid(client, ecommerce_key, member["id"], "plus")
        _, level = await new_paid_subscriber(client, ecommerce_key, "plus")
        await pay(client, billing_key, ahead["id"], period=2, amount=1_500)
        next_end = at(ahead["period_end"]) + relativedelta(months=1)
        assert at((await read(client, ecommerce_key, ahead["id"]))["benefits_until"]) == next_end + GRACE

        await replace_plan(client, admin_key, "plus", grace_days=2)
        benefits_until = {
            sub["id"]: at((await read(client, ecommerce_key, sub["id"]))["benefits_until"])
            for sub in (ahead, level)
        }
        assert benefits_until == {
            ahead["id"]: next_end + timedelta(days=2),
            level["id"]: at(level["period_end"]) + timedelta(days=2),
        }
