"""A tier has one shape wherever it appears: `{code, name, rank}` in every REST reply (member, earn, tier
status and history, a member's benefits, the checkout quote), in webhook payloads (`member.enrolled`,
`tier.upgraded`, `tier.downgraded`) and in GraphQL (`Member.tier`, `CheckoutQuote.tier`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from tests.builders import add_tier, enrol
from tests.checkout.helpers import add_benefit, cart, item, quote
from tests.conftest import START, bearer
from tests.inspect_db import events
from tests.points.helpers import earn, set_program

MEMBER = {"code": "member", "name": "普通会员", "rank": 0}
SILVER = {"code": "silver", "name": "银卡", "rank": 1}


async def graphql(client: httpx.AsyncClient, key: str, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


class TestOneShape:
    async def test_the_same_tier_reads_the_same_in_every_reply_payload_and_graphql_type(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        discount = await add_benefit(client, admin_key, "银卡95折", "percent_discount", percent="5")
        await add_tier(client, admin_key, "member", rank=0, name="普通会员")
        await add_tier(
            client, admin_key, "silver", rank=1, name="银卡", threshold=10_000, benefit_ids=[discount]
        )

        member = await enrol(client, pos_key)
        assert member["tier"] == MEMBER
        [enrolled] = await events(app, "member.enrolled")
        assert enrolled["payload"]["tier"] == MEMBER

        earned = await earn(client, pos_key, member["id"], 20_000)
        assert (earned["tier"], earned["tier_changed"]) == (SILVER, True)
        [upgraded] = await events(app, "tier.upgraded")
        assert (upgraded["payload"]["from_tier"], upgraded["payload"]["to_tier"]) == (MEMBER, SILVER)

        path = f"/v1/members/{member['id']}"
        assert (await client.get(path, headers=bearer(pos_key))).json()["tier"] == SILVER
        status = (await client.get(f"{path}/tier", headers=bearer(pos_key))).json()
        assert (status["tier"], status["keep"]["tier"], status["next"]) == (SILVER, SILVER, None)
        [change] = (await client.get(f"{path}/tier/history", headers=bearer(pos_key))).json()["items"]
        assert (change["from_tier"], change["to_tier"]) == (MEMBER, SILVER)
        benefits = (await client.get(f"{path}/benefits", headers=bearer(pos_key))).json()
        assert benefits["tier"] == SILVER
        quoted = await quote(client, pos_key, member["id"], cart(item("TEA", 10_000)))
        assert quoted["tier"] == SILVER

        tier = "tier { code name rank }"
        data = await graphql(
            client,
            pos_key,
            f"query($id: ID!, $input: CheckoutQuoteInput!) {{ loyaltyMember(id: $id) {{ {tier} }} "
            f"loyaltyCheckoutQuote(input: $input) {{ {tier} }} }}",
            id=member["id"],
            input={"memberId": member["id"], "cart": {"subtotal": {"amount": 10_000, "currency": "CNY"}}},
        )
        assert data == {"loyaltyMember": {"tier": SILVER}, "loyaltyCheckoutQuote": {"tier": SILVER}}

    async def test_history_names_a_tier_as_the_ladder_of_the_change_did(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "member", rank=0, name="普通会员")
        await add_tier(client, admin_key, "silver", rank=1, name="银卡", threshold=10_000)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 20_000)
        override = {"tier": "member", "until": (START + timedelta(days=30)).isoformat(), "reason": "test"}
        path = f"/v1/members/{member['id']}/tier"
        assert (
            await client.put(f"{path}/override", json=override, headers=bearer(admin_key))
        ).status_code == 200
        # The ladder changes afterwards: silver is renamed and moved up. The history still shows the tiers
        # as they stood when each change was decided; the member's status shows the ladder as it is now.
        renamed = {
            "name": "银卡会员",
            "rank": 5,
            "metric": "spend",
            "window": "calendar_year",
            "threshold": 10_000,
            "benefit_ids": [],
        }
        assert (
            await client.put("/v1/tiers/silver", json=renamed, headers=bearer(admin_key))
        ).status_code == 200

        changes = (await client.get(f"{path}/history", headers=bearer(pos_key))).json()["items"]
        assert [(c["change"], c["from_tier"], c["to_tier"]) for c in changes] == [
            ("override", SILVER, MEMBER),
            ("upgrade", MEMBER, SILVER),
        ]
        now = (await client.get(path, headers=bearer(pos_key))).json()
        assert now["tier"] == MEMBER and now["next"]["tier"] == {
            "code": "silver",
            "name": "银卡会员",
            "rank": 5,
        }
