"""A member's paid membership through GraphQL: the same subscriptions and benefits as REST."""

from __future__ import annotations

from datetime import timedelta

import httpx

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import bearer
from tests.graphql.test_members_graphql import graphql
from tests.points.helpers import set_program
from tests.subscriptions.helpers import add_plan, at, next_payment_ref, subscribe

QUERY = """query($id: ID!) { loyaltyMember(id: $id) {
  benefits { name kind sources { type ref name } }
  subscriptions { plan planName state period periodEnd benefitsUntil cancelAtPeriodEnd }
} }"""


class TestMemberPaidMembership:
    async def test_subscriptions_and_plan_benefits_match_rest(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        benefit = await client.post(
            "/v1/benefits",
            json={"name": "Plus free shipping", "kind": "free_shipping", "properties": {}},
            headers=bearer(admin_key),
        )
        await add_plan(client, admin_key, "plus", benefit_ids=[benefit.json()["id"]])
        member = await enrol(client, admin_key)
        sub = await subscribe(client, admin_key, member["id"], "plus", payment_ref=next_payment_ref())

        body = await graphql(client, pos_key, QUERY, id=member["id"])

        assert "errors" not in body, body
        found = body["data"]["loyaltyMember"]
        assert found["benefits"] == [
            {
                "name": "Plus free shipping",
                "kind": "free_shipping",
                "sources": [{"type": "plan", "ref": "plus", "name": "Plus"}],
            }
        ]
        [listed] = found["subscriptions"]
        assert (listed["plan"], listed["state"], listed["period"], listed["cancelAtPeriodEnd"]) == (
            "plus",
            "active",
            1,
            False,
        )
        assert at(listed["periodEnd"]) == at(sub["period_end"])

        clock.set(at(sub["period_end"]) + timedelta(days=7, seconds=1))  # past the default grace
        later = await graphql(client, pos_key, QUERY, id=member["id"])
        # past period end and grace: the perks are gone
        assert later["data"]["loyaltyMember"]["benefits"] == []
