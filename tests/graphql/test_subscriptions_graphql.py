"""Plans, subscriptions and billing's payments over GraphQL: REST's answers, under REST's rules and scopes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import enrol, make_partner_key
from tests.checkout.helpers import add_benefit
from tests.conftest import bearer
from tests.graphql.helpers import graphql, mutate
from tests.partners.helpers import add_partner
from tests.points.helpers import cny, set_program
from tests.subscriptions.helpers import (
    add_plan,
    add_plus_family,
    at,
    new_paid_subscriber,
    new_subscriber,
    next_payment_ref,
    post_action,
    read,
    subscribe,
)

SUB = (
    "id memberId plan planName family state period periodStart periodEnd trialEnd price { amount currency } "
    "graceUntil benefitsUntil cancelAtPeriodEnd pendingPlan pendingPlanName paymentRef canceledAt endedAt "
    "createdAt updatedAt"
)
SUBSCRIPTION = f"subscription {{ {SUB} }}"
PLAN = (
    "id code family name price { amount currency } interval { unit count } trialDays graceDays "
    "benefits { id name kind active } coupons { name coupon { __typename ... on FixedDiscountProperties { "
    "amount { amount currency } minSubtotal { amount currency } categories channels } } validDays every } "
    "partnerPerks { partner name source perk } active createdAt updatedAt"
)
_TIMES = ("periodStart", "periodEnd", "trialEnd", "graceUntil", "benefitsUntil", "canceledAt", "endedAt")
_TIMES += ("createdAt", "updatedAt")
MONTHLY_COUPON = {
    "name": "Monthly 5 off",
    "coupon": {"kind": "fixed_discount", "amount": 500},
    "valid_days": 30,
    "every": "month",
}


def _timed(found: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL object with its timestamps as instants, to compare with REST's whatever their spelling."""
    return {k: at(v) if k in _TIMES and v is not None else v for k, v in found.items()}


def as_graphql(rest: dict[str, Any]) -> dict[str, Any]:
    """A subscription as REST answers it, in GraphQL's shape."""
    pending = rest["pending_plan"]
    return _timed(
        {
            "id": rest["id"],
            "memberId": rest["member_id"],
            "plan": rest["plan"]["code"],
            "planName": rest["plan"]["name"],
            "family": rest["family"],
            "state": rest["state"],
            "period": rest["period"],
            "periodStart": rest["period_start"],
            "periodEnd": rest["period_end"],
            "trialEnd": rest["trial_end"],
            "price": rest["price"],
            "graceUntil": rest["grace_until"],
            "benefitsUntil": rest["benefits_until"],
            "cancelAtPeriodEnd": rest["cancel_at_period_end"],
            "pendingPlan": None if pending is None else pending["code"],
            "pendingPlanName": None if pending is None else pending["name"],
            "paymentRef": rest["payment_ref"],
            "canceledAt": rest["canceled_at"],
            "endedAt": rest["ended_at"],
            "createdAt": rest["created_at"],
            "updatedAt": rest["updated_at"],
        }
    )


def _terms(subscription: dict[str, Any]) -> dict[str, Any]:
    """What two subscriptions of two members to the same plan at the same moment share."""
    return {k: v for k, v in subscription.items() if k not in ("id", "memberId", "paymentRef")}


def _fixed_discount_as_graphql(offer: dict[str, Any], currency: str) -> dict[str, Any]:
    """REST's fixed-discount offer (minor units of the programme's currency) in GraphQL's shape."""
    assert offer["kind"] == "fixed_discount"
    minimum = offer["min_subtotal"]
    return {
        "__typename": "FixedDiscountProperties",
        "amount": {"amount": offer["amount"], "currency": currency},
        "minSubtotal": None if minimum is None else {"amount": minimum, "currency": currency},
        "categories": offer["categories"],
        "channels": offer["channels"],
    }


def _plan_as_graphql(rest: dict[str, Any]) -> dict[str, Any]:
    currency = rest["price"]["currency"]  # a plan's price is in the programme's currency, as its coupons are
    return _timed(
        {
            "id": rest["id"],
            "code": rest["code"],
            "family": rest["family"],
            "name": rest["name"],
            "price": rest["price"],
            "interval": rest["interval"],
            "trialDays": rest["trial_days"],
            "graceDays": rest["grace_days"],
            "benefits": rest["benefits"],
            "coupons": [
                {
                    "name": c["name"],
                    "coupon": _fixed_discount_as_graphql(c["coupon"], currency),
                    "validDays": c["valid_days"],
                    "every": c["every"],
                }
                for c in rest["coupons"]
            ],
            "partnerPerks": rest["partner_perks"],
            "active": rest["active"],
            "createdAt": rest["created_at"],
            "updatedAt": rest["updated_at"],
        }
    )


def _code(body: dict[str, Any]) -> str:
    [error] = body["errors"]
    code: str = error["extensions"]["code"]
    return code


@pytest.fixture
async def plus_family(client: httpx.AsyncClient, admin_key: str) -> dict[str, dict[str, Any]]:
    """Monthly "plus" (15 yuan, a 7-day trial) and dearer "premium" (30 yuan) of the family "plus"."""
    await set_program(client, admin_key)
    return await add_plus_family(client, admin_key, trial_days=7)


class TestPlans:
    async def test_plans_are_listed_page_by_page_as_rest_lists_them(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, billing_key: str
    ) -> None:
        await set_program(client, admin_key)
        gift = await add_benefit(client, admin_key, "Plus free shipping", "free_shipping")
        await add_plan(client, admin_key, "basic", price=900, unit="month", active=False)
        await add_partner(app, client, admin_key, "delivery")
        perks = [
            {"partner": "delivery", "name": "A month of delivery", "source": "pool", "perk": "month-pass"},
            {"partner": "delivery", "name": "A free coffee", "source": "ours", "perk": None},
        ]
        await add_plan(
            client,
            admin_key,
            "plus",
            trial_days=14,
            benefit_ids=[gift],
            coupons=[MONTHLY_COUPON],
            partner_perks=perks,
        )
        query = (
            "query($after: String) { loyaltyPlans(first: 1, after: $after) { "
            f"edges {{ cursor node {{ {PLAN} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        )

        first = (await graphql(client, billing_key, query))["data"]["loyaltyPlans"]
        rest = await client.get("/v1/plans", params={"limit": 1}, headers=bearer(billing_key))
        second = (await graphql(client, billing_key, query, after=first["pageInfo"]["endCursor"]))["data"]
        rest_second = await client.get(
            "/v1/plans",
            params={"limit": 1, "cursor": rest.json()["next_cursor"]},
            headers=bearer(billing_key),
        )

        assert [_timed(e["node"]) for e in first["edges"]] == [
            _plan_as_graphql(p) for p in rest.json()["items"]
        ]
        assert first["pageInfo"] == {"hasNextPage": True, "endCursor": rest.json()["next_cursor"]}
        [plus] = second["loyaltyPlans"]["edges"]
        assert _timed(plus["node"]) == _plan_as_graphql(rest_second.json()["items"][0])
        assert plus["node"]["interval"] == {"unit": "year", "count": 1}
        assert [p["perk"] for p in plus["node"]["partnerPerks"]] == ["month-pass", None]
        [coupon] = plus["node"]["coupons"]
        assert (coupon["coupon"]["__typename"], coupon["coupon"]["amount"], coupon["every"]) == (
            "FixedDiscountProperties",
            {"amount": 500, "currency": "CNY"},
            "month",
        )
        assert second["loyaltyPlans"]["pageInfo"]["hasNextPage"] is False

    async def test_a_plan_is_an_entity_keyed_by_code(
        self, client: httpx.AsyncClient, pos_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        query = (
            "query($r: [_Any!]!) { _entities(representations: $r) { "
            "... on Plan { code name price { amount } } } }"
        )
        representations = [
            {"__typename": "Plan", "code": "premium"},
            {"__typename": "Plan", "code": "no-such-plan"},
            {"__typename": "Plan", "name": "Premium"},
        ]

        body = await graphql(client, pos_key, query, r=representations)

        assert body["data"]["_entities"] == [
            {"code": "premium", "name": "Premium", "price": {"amount": 3_000}},
            None,
            None,
        ]
        [error] = body["errors"]  # only the one without its key: an unknown code is null, not an error
        assert (error["path"], error["extensions"]["code"]) == (["_entities", 2], "validation_error")

    async def test_a_plan_representation_whose_code_is_no_string_is_refused_as_a_tier_one_is(
        self, client: httpx.AsyncClient, pos_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        """A router that lost the key's value (null) or sent it in another shape is told so: it was looked
        up as the text `None` or `['premium']` and answered null, as for a plan that does not exist."""
        query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Plan { code } } }"
        representations = [
            {"__typename": "Plan", "code": None},
            {"__typename": "Plan", "code": ["premium"]},
            {"__typename": "Tier", "code": None},
        ]

        body = await graphql(client, pos_key, query, r=representations)

        assert body["data"]["_entities"] == [None, None, None]
        assert sorted((e["path"][1], e["extensions"]["code"]) for e in body.get("errors", [])) == [
            (0, "validation_error"),
            (1, "validation_error"),
            (2, "validation_error"),
        ]

    @pytest.mark.parametrize("code", ["Premium", "premium plan", "x" * 33, ""])
    async def test_a_code_no_plan_can_have_is_the_validation_error_rest_answers_not_null(
        self, client: httpx.AsyncClient, pos_key: str, plus_family: dict[str, dict[str, Any]], code: str
    ) -> None:
        """GET /v1/plans/Premium is 422 validation_error on `code` (codes are lower case); GraphQL answered
        null, which a till reads as "there is no such plan" when the code is only spelt wrong."""
        if code:  # a path cannot name an empty code
            rest = await client.get(f"/v1/plans/{code}", headers=bearer(pos_key))
            assert (rest.status_code, rest.json()["code"]) == (422, "validation_error"), rest.text
        by_code = await graphql(
            client, pos_key, "query($c: String!) { loyaltyPlan(code: $c) { code } }", c=code
        )
        assert by_code["data"] == {"loyaltyPlan": None}
        [error] = by_code["errors"]
        assert error["extensions"]["code"] == "validation_error"
        assert [e["field"] for e in error["extensions"]["errors"]] == ["code"]
        query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Plan { code } } }"
        joined = await graphql(client, pos_key, query, r=[{"__typename": "Plan", "code": code}])
        assert joined["data"]["_entities"] == [None]
        [error] = joined["errors"]
        assert (error["extensions"]["code"], error["path"]) == ("validation_error", ["_entities", 0])
        assert [e["field"] for e in error["extensions"]["errors"]] == ["code"]

    async def test_plans_need_a_reading_scope(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        partner = await make_partner_key(app)
        body = await graphql(client, partner, "{ loyaltyPlans { edges { node { code } } } }")
        assert body["data"] is None and _code(body) == "scope_not_allowed"


class TestSubscribe:
    async def test_subscribes_as_rest_does(
        self, client: httpx.AsyncClient, ecommerce_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        one, two = await enrol(client, ecommerce_key), await enrol(client, ecommerce_key)

        payload = await mutate(
            client,
            ecommerce_key,
            "loyaltySubscribeToPlan",
            SUBSCRIPTION,
            input={"memberId": one["id"], "plan": "plus"},
        )
        by_rest = await subscribe(client, ecommerce_key, two["id"], "plus")

        found = _timed(payload["subscription"])
        assert payload["userErrors"] == [] and payload["replayed"] is False
        assert (found["state"], found["period"], found["price"]) == (
            "trialing",
            0,
            {"amount": 1_500, "currency": "CNY"},
        )
        assert found == as_graphql(await read(client, ecommerce_key, found["id"]))
        assert _terms(found) == _terms(as_graphql(by_rest))

    async def test_a_paid_start_records_the_first_payment(
        self, client: httpx.AsyncClient, ecommerce_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        member = await enrol(client, ecommerce_key)
        payload = await mutate(
            client,
            ecommerce_key,
            "loyaltySubscribeToPlan",
            "subscription { state period paymentRef "
            "payments { edges { node { period status paymentRef amount { amount } } } } }",
            input={"memberId": member["id"], "plan": "premium", "trial": False, "paymentRef": "web-77"},
        )
        assert payload["subscription"] == {
            "state": "active",
            "period": 1,
            "paymentRef": "web-77",
            "payments": {
                "edges": [
                    {
                        "node": {
                            "period": 1,
                            "status": "succeeded",
                            "paymentRef": "web-77",
                            "amount": {"amount": 3_000},
                        }
                    }
                ]
            },
        }

    async def test_the_same_key_and_input_replays_without_subscribing_twice(
        self, client: httpx.AsyncClient, ecommerce_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        member = await enrol(client, ecommerce_key)
        given = {"memberId": member["id"], "plan": "plus", "trial": False, "paymentRef": "web-1"}

        first = await mutate(
            client, ecommerce_key, "loyaltySubscribeToPlan", SUBSCRIPTION, given, idempotency_key="shop/1"
        )
        again = await mutate(
            client, ecommerce_key, "loyaltySubscribeToPlan", SUBSCRIPTION, given, idempotency_key="shop/1"
        )

        assert first["replayed"] is False and again["replayed"] is True
        assert again["subscription"] == first["subscription"] and again["userErrors"] == []
        listed = await client.get(f"/v1/members/{member['id']}/subscriptions", headers=bearer(ecommerce_key))
        assert [s["id"] for s in listed.json()["items"]] == [first["subscription"]["id"]]

    async def test_refusals_are_user_errors_with_the_rest_codes(
        self, client: httpx.AsyncClient, ecommerce_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        member, _ = await new_subscriber(client, ecommerce_key, "plus")

        async def refused(given: dict[str, Any]) -> list[tuple[str | None, str]]:
            payload = await mutate(client, ecommerce_key, "loyaltySubscribeToPlan", SUBSCRIPTION, given)
            assert payload["subscription"] is None
            return [(e["field"], e["code"]) for e in payload["userErrors"]]

        assert await refused({"memberId": member["id"], "plan": "premium"}) == [(None, "subscription_exists")]
        other = await enrol(client, ecommerce_key)
        unknown_plan = await client.post(
            f"/v1/members/{other['id']}/subscriptions", json={"plan": "gold"}, headers=bearer(ecommerce_key)
        )
        invalid = unknown_plan.json()["code"]
        assert await refused({"memberId": other["id"], "plan": "gold"}) == [("plan", invalid)]
        assert await refused({"memberId": other["id"], "plan": "plus", "trial": False}) == [
            ("paymentRef", invalid)
        ]
        assert await refused({"memberId": "not-a-uuid", "plan": "plus"}) == [("memberId", "validation_error")]
        assert await refused({"memberId": str(uuid.uuid4()), "plan": "plus"}) == [(None, "member_not_found")]
        rest = await client.post(
            f"/v1/members/{member['id']}/subscriptions",
            json={"plan": "premium"},
            headers=bearer(ecommerce_key),
        )
        assert (rest.status_code, rest.json()["code"]) == (409, "subscription_exists")
        listed = await client.get(f"/v1/members/{other['id']}/subscriptions", headers=bearer(ecommerce_key))
        assert listed.json()["items"] == []

    async def test_only_sellers_subscribe(
        self,
        client: httpx.AsyncClient,
        pos_key: str,
        billing_key: str,
        plus_family: dict[str, dict[str, Any]],
    ) -> None:
        member = await enrol(client, pos_key)
        query = (
            "mutation($input: SubscribeToPlanInput!) { loyaltySubscribeToPlan(input: $input) { "
            "subscription { id } } }"
        )
        for key in (pos_key, billing_key):
            body = await graphql(client, key, query, input={"memberId": member["id"], "plan": "plus"})
            assert _code(body) == "scope_not_allowed"
        listed = await client.get(f"/v1/members/{member['id']}/subscriptions", headers=bearer(pos_key))
        assert listed.json()["items"] == []


class TestCancelAndResume:
    async def test_cancel_and_resume_answer_what_rest_answers(
        self, client: httpx.AsyncClient, ecommerce_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        _, ours = await new_paid_subscriber(client, ecommerce_key, "plus")
        _, theirs = await new_paid_subscriber(client, ecommerce_key, "plus")

        canceled = await mutate(
            client,
            ecommerce_key,
            "loyaltyCancelSubscription",
            SUBSCRIPTION,
            input={"subscriptionId": ours["id"]},
        )
        rest_canceled = await post_action(client, ecommerce_key, theirs["id"], "cancel")

        found = _timed(canceled["subscription"])
        assert (found["state"], found["cancelAtPeriodEnd"], found["benefitsUntil"]) == (
            "canceled",
            True,
            at(ours["period_end"]),
        )
        assert found == as_graphql(await read(client, ecommerce_key, ours["id"]))
        assert _terms(found) == _terms(as_graphql(rest_canceled.json()))

        resumed = await mutate(
            client, ecommerce_key, "loyaltyResumeSubscription", SUBSCRIPTION, {"subscriptionId": ours["id"]}
        )
        rest_resumed = await post_action(client, ecommerce_key, theirs["id"], "resume")

        assert resumed["subscription"]["state"] == "active"
        assert resumed["subscription"]["cancelAtPeriodEnd"] is False
        assert _terms(_timed(resumed["subscription"])) == _terms(as_graphql(rest_resumed.json()))

        again = await mutate(
            client, ecommerce_key, "loyaltyResumeSubscription", SUBSCRIPTION, {"subscriptionId": ours["id"]}
        )
        rest_again = await post_action(client, ecommerce_key, theirs["id"], "resume")
        assert again["subscription"] is None
        assert [e["code"] for e in again["userErrors"]] == [rest_again.json()["code"]]
        assert rest_again.json()["code"] == "subscription_transition_not_allowed"

    async def test_cancel_now_ends_it_at_once(
        self, client: httpx.AsyncClient, ecommerce_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        payload = await mutate(
            client,
            ecommerce_key,
            "loyaltyCancelSubscription",
            "subscription { state endedAt }",
            input={"subscriptionId": sub["id"], "atPeriodEnd": False},
        )
        assert payload["subscription"]["state"] == "expired"
        assert (await read(client, ecommerce_key, sub["id"]))["state"] == "expired"

    async def test_an_unknown_subscription_is_the_rest_not_found(
        self, client: httpx.AsyncClient, ecommerce_key: str
    ) -> None:
        payload = await mutate(
            client,
            ecommerce_key,
            "loyaltyCancelSubscription",
            SUBSCRIPTION,
            input={"subscriptionId": str(uuid.uuid4())},
        )
        assert [e["code"] for e in payload["userErrors"]] == ["subscription_not_found"]


class TestChangePlan:
    async def test_an_upgrade_starts_now_and_a_downgrade_waits_as_in_rest(
        self, client: httpx.AsyncClient, ecommerce_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        _, ours = await new_paid_subscriber(client, ecommerce_key, "plus")
        _, theirs = await new_paid_subscriber(client, ecommerce_key, "plus")

        up = await mutate(
            client,
            ecommerce_key,
            "loyaltyChangeSubscriptionPlan",
            SUBSCRIPTION,
            input={"subscriptionId": ours["id"], "plan": "premium", "paymentRef": "up-1"},
        )
        rest_up = await post_action(
            client, ecommerce_key, theirs["id"], "change-plan", {"plan": "premium", "payment_ref": "up-2"}
        )

        upgraded = _timed(up["subscription"])
        assert (upgraded["plan"], upgraded["period"], upgraded["price"]["amount"]) == ("premium", 2, 3_000)
        assert upgraded == as_graphql(await read(client, ecommerce_key, ours["id"]))
        assert _terms(upgraded) == _terms(as_graphql(rest_up.json()))

        down = await mutate(
            client,
            ecommerce_key,
            "loyaltyChangeSubscriptionPlan",
            SUBSCRIPTION,
            input={"subscriptionId": ours["id"], "plan": "plus"},
        )
        rest_down = await post_action(client, ecommerce_key, theirs["id"], "change-plan", {"plan": "plus"})

        downgraded = _timed(down["subscription"])
        assert (downgraded["plan"], downgraded["pendingPlan"], downgraded["pendingPlanName"]) == (
            "premium",
            "plus",
            "Plus",
        )
        assert _terms(downgraded) == _terms(as_graphql(rest_down.json()))

    async def test_an_upgrade_without_a_payment_is_refused_as_in_rest(
        self, client: httpx.AsyncClient, ecommerce_key: str, plus_family: dict[str, dict[str, Any]]
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        payload = await mutate(
            client,
            ecommerce_key,
            "loyaltyChangeSubscriptionPlan",
            SUBSCRIPTION,
            input={"subscriptionId": sub["id"], "plan": "premium"},
        )
        rest = await post_action(client, ecommerce_key, sub["id"], "change-plan", {"plan": "premium"})
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            ("paymentRef", rest.json()["code"])
        ]
        assert (await read(client, ecommerce_key, sub["id"]))["plan"]["code"] == "plus"

    async def test_a_suspended_member_neither_changes_plan_nor_resumes_as_in_rest(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        plus_family: dict[str, dict[str, Any]],
    ) -> None:
        member, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        suspended = await client.patch(
            f"/v1/members/{member['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text

        upgrade = await mutate(
            client,
            ecommerce_key,
            "loyaltyChangeSubscriptionPlan",
            SUBSCRIPTION,
            input={"subscriptionId": sub["id"], "plan": "premium", "paymentRef": "up-1"},
        )
        rest = await post_action(
            client, ecommerce_key, sub["id"], "change-plan", {"plan": "premium", "payment_ref": "up-2"}
        )
        assert [e["code"] for e in upgrade["userErrors"]] == ["member_not_active"]
        assert rest.json()["code"] == "member_not_active"
        await post_action(client, ecommerce_key, sub["id"], "cancel")
        resume = await mutate(
            client, ecommerce_key, "loyaltyResumeSubscription", SUBSCRIPTION, {"subscriptionId": sub["id"]}
        )
        assert (resume["subscription"], [e["code"] for e in resume["userErrors"]]) == (
            None,
            ["member_not_active"],
        )
        after = await read(client, ecommerce_key, sub["id"])
        assert (after["state"], after["plan"]["code"]) == ("canceled", "plus")


PAYMENT = "payment { period status paymentRef amount { amount currency } } subscription { id state period }"


class TestPayments:
    async def test_billing_records_a_payment_as_rest_does(
        self,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        plus_family: dict[str, dict[str, Any]],
    ) -> None:
        _, ours = await new_paid_subscriber(client, ecommerce_key, "plus")
        _, theirs = await new_paid_subscriber(client, ecommerce_key, "plus")
        given = {"status": "succeeded", "period": 2, "amount": {"amount": 1_500, "currency": "CNY"}}

        payload = await mutate(
            client,
            billing_key,
            "loyaltyRecordSubscriptionPayment",
            PAYMENT,
            input={"subscriptionId": ours["id"], "paymentRef": "bill-1", **given},
        )
        rest = await client.post(
            f"/v1/subscriptions/{theirs['id']}/payments",
            json={"status": "succeeded", "period": 2, "amount": cny(1_500), "payment_ref": "bill-1"},
            headers=bearer(billing_key),
        )

        assert payload["userErrors"] == []
        assert rest.status_code == 201, rest.text
        assert payload["payment"] == {
            "period": rest.json()["payment"]["period"],
            "status": rest.json()["payment"]["status"],
            "paymentRef": "bill-1",
            "amount": rest.json()["payment"]["amount"],
        }
        assert payload["subscription"] == {"id": ours["id"], "state": "active", "period": 1}
        assert rest.json()["subscription"]["state"] == "active" and rest.json()["subscription"]["period"] == 1

        query = """query($id: ID!, $after: String) { loyaltySubscription(id: $id) {
          payments(first: 1, after: $after) { edges { cursor node { id period status paymentRef recordedAt } }
          pageInfo { hasNextPage endCursor } } } }"""
        page = (await graphql(client, billing_key, query, id=ours["id"]))["data"]["loyaltySubscription"]
        listed = await client.get(
            f"/v1/subscriptions/{ours['id']}/payments", params={"limit": 1}, headers=bearer(billing_key)
        )
        [newest] = listed.json()["items"]
        assert [e["node"]["id"] for e in page["payments"]["edges"]] == [newest["id"]]
        assert page["payments"]["edges"][0]["node"]["period"] == 2
        assert page["payments"]["pageInfo"] == {
            "hasNextPage": True,
            "endCursor": listed.json()["next_cursor"],
        }
        older = await graphql(
            client, billing_key, query, id=ours["id"], after=page["payments"]["pageInfo"]["endCursor"]
        )
        [first] = older["data"]["loyaltySubscription"]["payments"]["edges"]
        assert first["node"]["period"] == 1 and first["node"]["paymentRef"] == ours["payment_ref"]

    async def test_a_wrong_amount_is_the_rest_refusal_and_records_nothing(
        self,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        plus_family: dict[str, dict[str, Any]],
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        payload = await mutate(
            client,
            billing_key,
            "loyaltyRecordSubscriptionPayment",
            PAYMENT,
            input={
                "subscriptionId": sub["id"],
                "status": "succeeded",
                "paymentRef": next_payment_ref(),
                "period": 2,
                "amount": {"amount": 999, "currency": "CNY"},
            },
        )
        assert payload["payment"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["payment_amount_mismatch"]
        listed = await client.get(f"/v1/subscriptions/{sub['id']}/payments", headers=bearer(billing_key))
        assert [p["period"] for p in listed.json()["items"]] == [1]

    async def test_only_billing_records_payments(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        plus_family: dict[str, dict[str, Any]],
    ) -> None:
        _, sub = await new_paid_subscriber(client, ecommerce_key, "plus")
        query = (
            "mutation($input: RecordSubscriptionPaymentInput!) { "
            "loyaltyRecordSubscriptionPayment(input: $input) { payment { id } } }"
        )
        given = {
            "subscriptionId": sub["id"],
            "status": "succeeded",
            "paymentRef": "bill-9",
            "period": 2,
            "amount": {"amount": 1_500, "currency": "CNY"},
        }
        for key in (admin_key, ecommerce_key):
            assert _code(await graphql(client, key, query, input=given)) == "scope_not_allowed"


class TestReadingSubscriptions:
    async def test_a_subscription_by_id_reads_as_rest_and_null_when_unknown(
        self,
        client: httpx.AsyncClient,
        ecommerce_key: str,
        billing_key: str,
        plus_family: dict[str, dict[str, Any]],
    ) -> None:
        _, sub = await new_subscriber(client, ecommerce_key, "plus")
        query = f"query($id: ID!) {{ loyaltySubscription(id: $id) {{ {SUB} }} }}"

        found = await graphql(client, billing_key, query, id=sub["id"])
        missing = await graphql(client, billing_key, query, id=str(uuid.uuid4()))

        assert _timed(found["data"]["loyaltySubscription"]) == as_graphql(sub)
        assert missing == {"data": {"loyaltySubscription": None}}
        not_an_id = await graphql(client, billing_key, query, id="42")
        assert _code(not_an_id) == "validation_error"

    async def test_a_members_subscriptions_read_as_rest_lists_them(
        self,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        plus_family: dict[str, dict[str, Any]],
    ) -> None:
        member, trial = await new_subscriber(client, ecommerce_key, "plus")
        await post_action(client, ecommerce_key, trial["id"], "cancel", {"at_period_end": False})
        await subscribe(client, ecommerce_key, member["id"], "premium", trial=False, payment_ref="web-5")
        query = f"query($id: ID!) {{ loyaltyMember(id: $id) {{ subscriptions {{ {SUB} }} }} }}"

        body = await graphql(client, pos_key, query, id=member["id"])
        listed = await client.get(f"/v1/members/{member['id']}/subscriptions", headers=bearer(pos_key))

        found = [_timed(s) for s in body["data"]["loyaltyMember"]["subscriptions"]]
        assert found == [as_graphql(s) for s in listed.json()["items"]]
        assert [(s["plan"], s["state"]) for s in found] == [("premium", "active"), ("plus", "expired")]

    async def test_billing_pages_a_members_subscriptions_with_rests_cursors(
        self,
        client: httpx.AsyncClient,
        billing_key: str,
        ecommerce_key: str,
        plus_family: dict[str, dict[str, Any]],
    ) -> None:
        # GET /v1/members/{id}/subscriptions is billing's too; Member (and so Member.subscriptions, a list
        # of the newest `first` without cursors) is not: a billing key had no way to list them over GraphQL.
        member, trial = await new_subscriber(client, ecommerce_key, "plus")
        await post_action(client, ecommerce_key, trial["id"], "cancel", {"at_period_end": False})
        await subscribe(client, ecommerce_key, member["id"], "premium", trial=False, payment_ref="web-6")
        query = f"""query($id: ID!, $after: String) {{
          loyaltyMemberSubscriptions(memberId: $id, first: 1, after: $after) {{
            edges {{ cursor node {{ {SUB} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
        listed = await client.get(f"/v1/members/{member['id']}/subscriptions", headers=bearer(billing_key))

        first = (await graphql(client, billing_key, query, id=member["id"]))["data"][
            "loyaltyMemberSubscriptions"
        ]
        assert first["pageInfo"]["hasNextPage"] is True
        # The cursor is REST's: REST goes on from it, and GraphQL from REST's.
        rest_next = await client.get(
            f"/v1/members/{member['id']}/subscriptions",
            params={"limit": 1, "cursor": first["pageInfo"]["endCursor"]},
            headers=bearer(billing_key),
        )
        second = await graphql(client, billing_key, query, id=member["id"], after=first["edges"][0]["cursor"])
        page = second["data"]["loyaltyMemberSubscriptions"]
        assert page["pageInfo"]["hasNextPage"] is False
        found = [_timed(e["node"]) for e in first["edges"] + page["edges"]]
        assert found == [as_graphql(s) for s in listed.json()["items"]]
        assert [as_graphql(s) for s in rest_next.json()["items"]] == found[1:]

        unknown = await graphql(client, billing_key, query, id=str(uuid.uuid4()))
        assert _code(unknown) == "member_not_found"
