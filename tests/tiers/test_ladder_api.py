"""The tier ladder over REST: defining tiers, versions, benefits attached, and who may change them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.tiers.redating import redate_window_ends
from tests.builders import add_tier, enrol
from tests.conftest import bearer, units_of
from tests.inspect_db import count, events
from tests.points.helpers import set_program


async def add_benefit(client: httpx.AsyncClient, admin_key: str, name: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/benefits", json={"name": name, **body}, headers=bearer(admin_key))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


class TestDefiningTheLadder:
    async def test_tiers_are_listed_lowest_rank_first_with_their_benefits(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        discount = await add_benefit(
            client, admin_key, "金卡9折", kind="percent_discount", properties={"percent": "10"}
        )
        await add_tier(
            client,
            admin_key,
            "gold",
            rank=2,
            threshold=800_000,
            points_multiplier="1.5",
            grace_days=60,
            benefit_ids=[discount["id"]],
        )
        await add_tier(client, admin_key, "member", rank=0)
        await add_tier(
            client,
            admin_key,
            "silver",
            rank=1,
            metric="points",
            window="rolling_days",
            window_days=365,
            threshold=2000,
        )
        response = await client.get("/v1/tiers", headers=bearer(pos_key))
        assert response.status_code == 200
        ladder = response.json()
        assert [t["code"] for t in ladder["items"]] == ["member", "silver", "gold"]
        gold = ladder["items"][2]
        assert gold["threshold"] == 800_000
        assert gold["points_multiplier"] == "1.5"
        assert gold["benefits"] == [
            {"id": discount["id"], "name": "金卡9折", "kind": "percent_discount", "active": True}
        ]
        assert ladder["items"][1]["window_days"] == 365
        assert ladder["version"] == 3
        benefit = (await client.get(f"/v1/benefits/{discount['id']}", headers=bearer(pos_key))).json()
        assert benefit["sources"] == [{"type": "tier", "ref": "gold", "name": "Gold"}]

    async def test_each_change_is_a_new_version_that_keeps_the_old_rules(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_tier(client, admin_key, "member", rank=0)
        silver = await add_tier(client, admin_key, "silver", rank=1, threshold=100_000)
        changed = {k: v for k, v in silver.items() if k not in ("id", "code", "benefits")}
        response = await client.put(
            "/v1/tiers/silver", json=changed | {"threshold": 150_000}, headers=bearer(admin_key)
        )
        assert response.status_code == 200, response.text
        assert response.json()["threshold"] == 150_000

        versions = (await client.get("/v1/tier-versions", headers=bearer(admin_key))).json()["items"]
        assert [v["version"] for v in versions] == [3, 2, 1]
        old = (await client.get("/v1/tier-versions/2", headers=bearer(admin_key))).json()
        assert [(t["code"], t["threshold"]) for t in old["tiers"]] == [("member", 0), ("silver", 100_000)]
        assert [e["payload"]["version"] for e in await events(app, "tier_ladder.changed")] == [1, 2, 3]

    async def test_the_same_tier_put_again_is_no_new_version(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        """PUT takes no Idempotency-Key (a repeat sets the same values): the tier sent again, its benefits
        in another order, makes no new ladder version and tells no receiver the ladder changed."""
        shipping = await add_benefit(client, admin_key, "包邮", kind="free_shipping", properties={})
        line = await add_benefit(
            client, admin_key, "专属客服", kind="priority_service", properties={"description": "VIP"}
        )
        await add_tier(client, admin_key, "member", rank=0)
        silver = await add_tier(client, admin_key, "silver", rank=1, threshold=100_000)
        body = {k: v for k, v in silver.items() if k not in ("id", "code", "benefits")}
        body |= {"threshold": 150_000, "benefit_ids": [shipping["id"], line["id"]]}
        first = await client.put("/v1/tiers/silver", json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=5))
        body["benefit_ids"].reverse()
        again = await client.put("/v1/tiers/silver", json=body, headers=bearer(admin_key))
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert [e["payload"]["version"] for e in await events(app, "tier_ladder.changed")] == [1, 2, 3]
        assert (await client.get("/v1/tiers", headers=bearer(admin_key))).json()["version"] == 3

    async def test_refusals_change_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_tier(client, admin_key, "member", rank=0)
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"code": "member", "rank": 5}, 409, "tier_exists"),
            ({"code": "silver", "rank": 0}, 409, "tier_rank_taken"),
            ({"code": "silver", "rank": 1, "window": "rolling_days"}, 422, "validation_error"),
            ({"code": "silver", "rank": 1, "window_days": 30}, 422, "validation_error"),
            ({"code": "silver", "rank": 1, "threshold": 10.5}, 422, "validation_error"),
            ({"code": "silver", "rank": 1, "metric": "visits"}, 422, "validation_error"),
            ({"code": "Silver!", "rank": 1}, 422, "validation_error"),
            (
                {"code": "silver", "rank": 1, "benefit_ids": ["0190f5f0-0000-7000-8000-000000000000"]},
                422,
                "validation_error",
            ),
        ]
        base = {
            "name": "Silver",
            "metric": "spend",
            "window": "calendar_year",
            "threshold": 0,
            "points_multiplier": "1",
            "grace_days": 0,
        }
        for body, status, code in cases:
            response = await client.post("/v1/tiers", json=base | body, headers=bearer(admin_key))
            assert (response.status_code, response.json()["code"]) == (status, code), body
        assert await count(app, "tiers") == 1
        assert await count(app, "tier_ladder_versions") == 1

    async def test_only_an_operator_changes_the_ladder(
        self, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str
    ) -> None:
        body = {
            "code": "gold",
            "name": "Gold",
            "rank": 1,
            "metric": "spend",
            "window": "calendar_year",
            "threshold": 1,
        }
        for key in (pos_key, ecommerce_key):
            response = await client.post("/v1/tiers", json=body, headers=bearer(key))
            assert response.status_code == 403
            assert response.json()["code"] == "scope_not_allowed"

    async def test_a_tier_members_hold_cannot_be_removed(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await add_tier(client, admin_key, "member", rank=0)
        await add_tier(client, admin_key, "silver", rank=1, threshold=100)
        await enrol(client, pos_key)
        response = await client.delete("/v1/tiers/member", headers=bearer(admin_key))
        assert response.status_code == 409
        assert response.json()["code"] == "tier_in_use"
        assert (await client.delete("/v1/tiers/silver", headers=bearer(admin_key))).status_code == 204
        assert (await client.get("/v1/tiers/silver", headers=bearer(admin_key))).status_code == 404


class TestBenefits:
    async def test_benefit_kinds_are_validated(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        bad = [
            {"kind": "percent_discount", "properties": {"percent": "150"}},
            {"kind": "percent_discount", "properties": {"percent": "10", "colour": "red"}},
            {"kind": "fixed_discount", "properties": {"amount": 10.5}},
            {"kind": "member_day_price", "properties": {"weekday": 8, "percent": "20"}},
            {"kind": "points_multiplier", "properties": {"multiplier": "1"}},
            {
                "kind": "birthday_gift",
                "properties": {"coupon_name": "x", "coupon": {"kind": "points_multiplier"}},
            },
            {"kind": "teleport", "properties": {}},
        ]
        for body in bad:
            response = await client.post(
                "/v1/benefits", json={"name": "x", **body}, headers=bearer(admin_key)
            )
            assert response.status_code == 422, body
            assert response.json()["code"] == "validation_error"
        assert await count(app, "benefits") == 0

    async def test_a_member_gets_the_active_benefits_of_their_tier_with_the_source(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        shipping = await add_benefit(client, admin_key, "包邮", kind="free_shipping", properties={})
        paused = await add_benefit(
            client, admin_key, "停用", kind="percent_discount", properties={"percent": "5"}, active=False
        )
        await add_tier(
            client, admin_key, "member", rank=0, name="普通会员", benefit_ids=[shipping["id"], paused["id"]]
        )
        member = await enrol(client, pos_key)
        response = await client.get(f"/v1/members/{member['id']}/benefits", headers=bearer(pos_key))
        assert response.status_code == 200
        found = response.json()
        assert found["tier"] == {"code": "member", "name": "普通会员", "rank": 0}
        assert [(b["name"], b["kind"], b["sources"]) for b in found["benefits"]] == [
            ("包邮", "free_shipping", [{"type": "tier", "ref": "member", "name": "普通会员"}])
        ]

    async def test_members_enrolled_before_the_first_tier_start_on_it_once_the_worker_has_been(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        # A programme that enrols members first and sets its ladder up later: the lowest tier is where every
        # member starts, with its benefits at the checkout, in the member list and in a campaign's audience.
        early = [await enrol(client, pos_key) for _ in range(3)]
        off = await add_benefit(
            client, admin_key, "九五折", kind="percent_discount", properties={"percent": "5"}
        )
        await add_tier(client, admin_key, "member", rank=0, benefit_ids=[off["id"]])
        await add_tier(client, admin_key, "silver", rank=1, threshold=100_000)

        assert await redate_window_ends(units_of(app), batch=2) == 3
        assert await redate_window_ends(units_of(app), batch=2) == 0
        for member in early:
            tier = await client.get(f"/v1/members/{member['id']}/tier", headers=bearer(pos_key))
            assert tier.json()["tier"]["code"] == "member"
            assert tier.json()["kept_until"] is None  # the entry tier is never lost
        quote = await client.post(
            "/v1/checkout/quote",
            json={"member_id": early[0]["id"], "cart": {"subtotal": {"amount": 10_000, "currency": "CNY"}}},
            headers=bearer(pos_key),
        )
        assert quote.json()["total"] == {"amount": 9_500, "currency": "CNY"}
        listed = await client.get("/v1/members?tier=member", headers=bearer(admin_key))
        assert {item["id"] for item in listed.json()["items"]} == {member["id"] for member in early}

    async def test_the_same_benefit_put_again_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        """PUT takes no Idempotency-Key (a repeat sets the same values): a benefit sent again as it is keeps
        its `updated_at`, and receivers hear of one change, not two."""
        created = await add_benefit(
            client, admin_key, "金卡9折", kind="percent_discount", properties={"percent": "10"}
        )
        body = {"name": "金卡88折", "kind": "percent_discount", "properties": {"percent": "12"}}
        path = f"/v1/benefits/{created['id']}"
        clock.advance(timedelta(minutes=1))
        first = await client.put(path, json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=5))
        again = await client.put(path, json=body | {"active": True}, headers=bearer(admin_key))
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        changes = [e["payload"]["change"] for e in await events(app, "benefit.changed")]
        assert changes == ["created", "replaced"]

    async def test_deleting_a_benefit_takes_it_from_its_tiers_in_a_new_version(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        gift = await add_benefit(
            client, admin_key, "专属客服", kind="priority_service", properties={"description": "VIP line"}
        )
        await add_tier(client, admin_key, "member", rank=0, benefit_ids=[gift["id"]])
        assert (
            await client.delete(f"/v1/benefits/{gift['id']}", headers=bearer(admin_key))
        ).status_code == 204
        ladder = (await client.get("/v1/tiers", headers=bearer(admin_key))).json()
        assert ladder["items"][0]["benefits"] == []
        assert ladder["version"] == 2

    async def test_the_programme_downgrade_policy_is_a_programme_setting(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        program = await set_program(client, admin_key)
        assert program["tier_downgrade"] == "one_step"
        program = await set_program(client, admin_key, tier_downgrade="to_qualified")
        assert program["tier_downgrade"] == "to_qualified"


class TestPointsMultiplierBenefit:
    async def test_it_adds_a_breakdown_line_when_its_conditions_are_met(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        double = await add_benefit(
            client,
            admin_key,
            "满200元双倍积分",
            kind="points_multiplier",
            properties={"multiplier": "2", "min_subtotal": 20_000, "channels": ["store"]},
        )
        await add_tier(
            client,
            admin_key,
            "member",
            rank=0,
            name="普通会员",
            points_multiplier="1.1",
            benefit_ids=[double["id"]],
        )
        member = await enrol(client, pos_key)

        async def breakdown(amount: int, channel: str) -> list[tuple[str, int]]:
            body = {
                "order_ref": f"PM-{amount}-{channel}",
                "amount": {"amount": amount, "currency": "CNY"},
                "channel": channel,
            }
            response = await client.post(
                f"/v1/members/{member['id']}/earn", json=body, headers=bearer(pos_key)
            )
            assert response.status_code == 200, response.text
            return [(line["kind"], line["points"]) for line in response.json()["breakdown"]]

        assert await breakdown(30_000, "store") == [
            ("base_rate", 300),
            ("tier_multiplier", 30),
            ("points_multiplier", 300),
        ]
        assert await breakdown(10_000, "store") == [("base_rate", 100), ("tier_multiplier", 10)]
        assert await breakdown(30_000, "online") == [("base_rate", 300), ("tier_multiplier", 30)]
