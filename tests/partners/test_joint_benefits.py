"""Joint benefits: a partner's benefits reach the members linked to it, on the tiers and with the plans its
terms name, in the member's benefits, the checkout quote (source `partner`), earning, and the partner's joint
view (REST and GraphQL). Unlinking or suspending takes them away at once; members not linked never have
them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import enrol, make_partner_key
from tests.checkout.helpers import add_benefit, add_tier, cart, item, quote
from tests.conftest import UNLIMITED, bearer
from tests.graphql.helpers import graphql
from tests.inspect_db import events
from tests.partners.helpers import link
from tests.points.helpers import cny, earn, set_program
from tests.subscriptions.helpers import add_plan, subscribe_paid

CART = cart(item("BOOK", 10_000), subtotal=10_000)
JOINT = "query($ref: String!) { loyaltyPartnerMember(ref: $ref) { jointBenefits { id name kind } } }"


async def _partner(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, code: str, **terms: Any
) -> tuple[str, dict[str, Any]]:
    made = await client.post(
        "/v1/partners", json={"code": code, "name": code.title(), **terms}, headers=bearer(admin_key)
    )
    assert made.status_code == 201, made.text
    key = await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)
    return key, made.json()


async def _benefits(client: httpx.AsyncClient, key: str, member_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/members/{member_id}/benefits", headers=bearer(key))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["benefits"]
    return found


def _partner_discounts(result: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (d["source_ref"], d["name"], d["amount"]) for d in result["discounts"] if d["source"] == "partner"
    ]


@pytest.fixture
async def ladder(client: httpx.AsyncClient, admin_key: str) -> None:
    """A programme with two tiers: everyone starts on `basic`; 10,000 yuan a year makes `gold`."""
    await set_program(client, admin_key)
    await add_tier(client, admin_key, "basic", rank=0, benefit_ids=[])
    await add_tier(client, admin_key, "gold", rank=1, benefit_ids=[])


class TestJointBenefits:
    async def test_a_linked_gold_member_has_the_partners_benefit_everywhere_and_others_do_not(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        ladder: None,
    ) -> None:
        discount = await add_benefit(client, admin_key, "书店会员95折", "percent_discount", percent="5")
        key, made = await _partner(
            app, client, admin_key, "books", benefit_ids=[discount], benefit_tiers=["gold"]
        )
        assert (made["benefit_ids"], made["benefit_tiers"], made["benefit_plans"]) == (
            [discount],
            ["gold"],
            [],
        )
        gold = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, gold, 1_000_000)  # 10,000 yuan: gold
        basic = str((await enrol(client, pos_key))["id"])
        stranger = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, stranger, 1_000_000)  # gold, but not linked
        await link(client, pos_key, key, gold, "books", "B-GOLD")
        await link(client, pos_key, key, basic, "books", "B-BASIC")

        [joint] = await _benefits(client, pos_key, gold)
        assert joint["id"] == discount
        assert joint["sources"] == [{"type": "partner", "ref": "books", "name": "Books"}]
        shown = (await client.get(f"/v1/benefits/{discount}", headers=bearer(admin_key))).json()
        assert shown["sources"] == joint["sources"]  # where it is given, as the member's list says
        assert _partner_discounts(await quote(client, ecommerce_key, gold, CART)) == [
            ("books", "书店会员95折", cny(500))
        ]
        view = await client.get("/v1/partner/members/B-GOLD", headers=bearer(key))
        assert view.json()["joint_benefits"] == [
            {"id": discount, "name": "书店会员95折", "kind": "percent_discount"}
        ]
        found = await graphql(client, key, JOINT, ref="B-GOLD")
        assert found["data"]["loyaltyPartnerMember"]["jointBenefits"] == view.json()["joint_benefits"]

        # a linked member below the tier, and a gold member not linked, have none of it
        for member_id in (basic, stranger):
            assert await _benefits(client, pos_key, member_id) == []
            assert _partner_discounts(await quote(client, ecommerce_key, member_id, CART)) == []
        basic_view = await client.get("/v1/partner/members/B-BASIC", headers=bearer(key))
        assert basic_view.json()["joint_benefits"] == []

    async def test_a_plan_condition_is_met_once_the_member_holds_the_plan(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        ladder: None,
    ) -> None:
        await add_plan(client, admin_key, "plus")
        perk = await add_benefit(client, admin_key, "Reading room", "priority_service", description="休息室")
        key, _ = await _partner(app, client, admin_key, "lounge", benefit_ids=[perk], benefit_plans=["plus"])
        member = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, key, member, "lounge", "L-1")
        assert await _benefits(client, pos_key, member) == []

        await subscribe_paid(client, ecommerce_key, member, "plus")
        assert [b["id"] for b in await _benefits(client, pos_key, member)] == [perk]
        view = await client.get("/v1/partner/members/L-1", headers=bearer(key))
        assert [b["id"] for b in view.json()["joint_benefits"]] == [perk]

    async def test_unlinking_or_suspending_the_partner_takes_the_benefit_away_at_once(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        ladder: None,
    ) -> None:
        discount = await add_benefit(client, admin_key, "联名95折", "percent_discount", percent="5")
        key, _ = await _partner(app, client, admin_key, "cafe", benefit_ids=[discount])
        first = str((await enrol(client, pos_key))["id"])
        second = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, key, first, "cafe", "C-1")
        await link(client, pos_key, key, second, "cafe", "C-2")
        assert len(await _benefits(client, pos_key, first)) == 1  # the offers are cached now

        unlinked = await client.delete("/v1/partner/links/C-1", headers=bearer(key))
        assert unlinked.status_code == 204
        assert await _benefits(client, pos_key, first) == []
        assert len(await _benefits(client, pos_key, second)) == 1

        suspended = await client.put(
            "/v1/partners/cafe",
            json={"name": "Cafe", "status": "suspended", "benefit_ids": [discount]},
            headers=bearer(admin_key),
        )
        assert suspended.status_code == 200, suspended.text
        assert await _benefits(client, pos_key, second) == []
        assert _partner_discounts(await quote(client, ecommerce_key, second, CART)) == []

    async def test_a_joint_points_multiplier_applies_when_the_member_earns(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ladder: None
    ) -> None:
        double = await add_benefit(client, admin_key, "联名双倍积分", "points_multiplier", multiplier="2")
        key, _ = await _partner(app, client, admin_key, "air", benefit_ids=[double])
        linked = str((await enrol(client, pos_key))["id"])
        alone = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, key, linked, "air", "A-1")
        with_partner = await earn(client, pos_key, linked, 10_000)
        without = await earn(client, pos_key, alone, 10_000)
        assert with_partner["points_earned"] == 2 * without["points_earned"] > 0

    async def test_a_benefit_the_tier_gives_too_is_listed_once_with_both_sources(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        shipping = await add_benefit(client, admin_key, "包邮", "free_shipping")
        await add_tier(client, admin_key, "member", rank=0, benefit_ids=[shipping])
        key, _ = await _partner(app, client, admin_key, "mall", benefit_ids=[shipping])
        member = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, key, member, "mall", "M-1")
        [listed] = await _benefits(client, pos_key, member)
        assert [s["type"] for s in listed["sources"]] == ["tier", "partner"]

    @pytest.mark.parametrize(
        ("terms", "field"),
        [
            ({"benefit_ids": [str(uuid.UUID(int=7))]}, "benefit_ids"),
            ({"benefit_tiers": ["platinum"]}, "benefit_tiers"),
            ({"benefit_plans": ["no-such-plan"]}, "benefit_plans"),
        ],
    )
    async def test_terms_naming_what_does_not_exist_are_refused_and_change_nothing(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ladder: None,
        terms: dict[str, Any],
        field: str,
    ) -> None:
        refused = await client.post(
            "/v1/partners", json={"code": "bad", "name": "Bad", **terms}, headers=bearer(admin_key)
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
        assert refused.json()["errors"][0]["field"] == field
        assert (await client.get("/v1/partners/bad", headers=bearer(admin_key))).status_code == 404
        await _partner(app, client, admin_key, "good")
        again = await client.put(
            "/v1/partners/good", json={"name": "Good", "status": "active", **terms}, headers=bearer(admin_key)
        )
        assert again.status_code == 422
        read = (await client.get("/v1/partners/good", headers=bearer(admin_key))).json()
        assert (read["benefit_ids"], read["benefit_tiers"], read["benefit_plans"]) == ([], [], [])


class TestRecordingAUse:
    async def test_the_partner_records_a_use_of_a_benefit_the_member_is_entitled_to_once(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ladder: None,
    ) -> None:
        lounge = await add_benefit(client, admin_key, "贵宾厅", "priority_service", description="lounge")
        other = await add_benefit(client, admin_key, "Not theirs", "free_shipping")
        key, _ = await _partner(
            app, client, admin_key, "airline", benefit_ids=[lounge], benefit_tiers=["gold"]
        )
        member = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, key, member, "airline", "AIR-9")

        def use(benefit_id: str, use_ref: str) -> Any:
            return client.post(
                "/v1/partner/members/AIR-9/benefit-uses",
                json={"benefit_id": benefit_id, "use_ref": use_ref},
                headers=bearer(key),
            )

        # on the entry tier the member is not entitled yet
        early = await use(lounge, "V-1")
        assert (early.status_code, early.json()["code"]) == (409, "benefit_not_entitled")
        await earn(client, pos_key, member, 1_000_000)  # gold
        recorded = await use(lounge, "V-1")
        assert recorded.status_code == 201, recorded.text
        assert (recorded.json()["benefit_id"], recorded.json()["use_ref"]) == (lounge, "V-1")
        again = await use(lounge, "V-1")
        assert (again.status_code, again.json()["code"]) == (409, "benefit_use_already_recorded")
        not_theirs = await use(other, "V-2")
        assert (not_theirs.status_code, not_theirs.json()["code"]) == (409, "benefit_not_entitled")
        [told] = await events(app, "partner.benefit_used")
        assert (told["payload"]["benefit_id"], told["payload"]["partner_customer_ref"]) == (lounge, "AIR-9")

        period = {"from": "2026-01-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}
        statement = await client.get("/v1/partner/settlements", params=period, headers=bearer(key))
        assert statement.json()["benefit_uses"] == 1
