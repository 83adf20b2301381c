"""A data-subject access request: `GET /v1/members/{id}/export` gives everything the service holds about one
member, as one document, and nothing of anyone else's. One member goes through every feature over the API;
their export is then checked part by part against what the API answered along the way."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from tests.activities.helpers import add_activity_rule, record
from tests.builders import enrol, make_key
from tests.campaigns.helpers import POINTS_ACTION
from tests.campaigns.helpers import create as create_campaign
from tests.campaigns.helpers import run as run_campaigns
from tests.conftest import UNLIMITED, bearer
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import cny, earn, points, set_program
from tests.privacy.conftest import Story


async def export_of(client: httpx.AsyncClient, key: str, member_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{member_id}/export", headers=bearer(key))
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


class TestExport:
    async def test_every_part_of_the_members_data_is_there(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, story: Story
    ) -> None:
        member_id = story.member["id"]
        document = await export_of(client, admin_key, member_id)
        assert document["format_version"] == 1
        assert document["exported_at"] == "2026-03-16T10:05:00Z"
        assert document["member_id"] == member_id

        profile = document["profile"]
        assert profile["phone"] == "+8613812345678" == story.member["phone"]
        assert (profile["email"], profile["name"], profile["birthday"]) == (
            "li.na@example.cn",
            "李娜",
            "1990-07-08",
        )
        assert (profile["member_number"], profile["status"], profile["channel"]) == (
            story.member["member_number"],
            "active",
            "online",
        )
        assert profile["created_at"] == story.member["created_at"]
        assert document["identifiers"] == {
            "external_ids": [
                {"system": "pos", "external_id": "C-1001"},
                {"system": "webshop", "external_id": "WEB-500087"},
            ],
            "referral_code": story.member["referral_code"],
            "referred_by": story.referrer["id"],
        }
        consents = document["consents"]
        assert consents["marketing_consent"] is True
        [consent] = consents["partner_link_consents"]
        assert (consent["partner"], consent["grants"], consent["used_at"] is not None) == (
            "cafe",
            ["basic", "points"],
            True,
        )

        # The points: the balance is the sum of the ledger exported, and what the API answers.
        account = document["points"]
        ledger = account["ledger"]
        assert account["balance"] == sum(entry["amount"] for entry in ledger)
        assert account["held"] == sum(entry["held_change"] for entry in ledger) == 0
        answered = await points(client, pos_key, member_id)
        assert {k: account[k] for k in ("balance", "held", "available", "lifetime_earned")} == {
            k: answered[k] for k in ("balance", "held", "available", "lifetime_earned")
        }
        assert [entry["balance_after"] for entry in ledger][-1] == account["balance"]
        assert {entry["type"] for entry in ledger} == {
            "earn",
            "referral",
            "redeem",
            "hold",
            "capture",
            "refund",
            "adjust",
            "reward",
            "exchange_out",
        }
        assert [entry["id"] for entry in ledger] == sorted(entry["id"] for entry in ledger)
        [partner_earned] = [e for e in ledger if e["order_ref"] == "cafe/C-ORDER-1"]
        assert partner_earned["amount"] == 30 and partner_earned["partner_id"] is not None
        [adjusted] = [e for e in ledger if e["type"] == "adjust"]
        assert (adjusted["amount"], adjusted["details"]["reason"]) == (50, "Goodwill")
        assert sum(lot["remaining"] for lot in account["lots"]) == account["balance"]
        [hold] = account["holds"]
        assert (hold["id"], hold["status"], hold["captured_points"]) == (story.hold_id, "captured", 200)
        await assert_ledger_invariant(app, member_id)

        # Orders: the member's purchases and orders paid with points, with their refunds.
        orders = {order["order_ref"]: order for order in document["orders"]}
        assert set(orders) == {"SH-1", "SH-2", "SH-3", "WEB-1", "cafe/C-ORDER-1"}
        assert orders["SH-1"]["total"] == cny(150_000) and orders["SH-1"]["points_earned"] == 1_500
        assert orders["SH-2"]["refunded"] == cny(5_000) and orders["SH-2"]["points_taken_back"] == 50
        assert orders["SH-3"]["points_redeemed"] == 300 and orders["SH-3"]["total"] is None
        assert orders["WEB-1"]["points_redeemed"] == 200
        # The purchase at the partner keeps the partner's reference of the member it was made under.
        assert orders["cafe/C-ORDER-1"]["partner_customer_ref"] == "CAFE-7"
        assert orders["SH-1"]["partner_customer_ref"] is None

        tier = document["tier"]
        assert tier["tier"]["code"] == "gold" and tier["since"] is not None
        [upgrade] = tier["history"]
        assert (upgrade["from_tier"]["code"], upgrade["to_tier"]["code"], upgrade["change"]) == (
            "basic",
            "gold",
            "upgrade",
        )

        [coupon] = document["coupons"]
        assert (coupon["id"], coupon["code"], coupon["status"]) == (
            story.coupon["id"],
            story.coupon["code"],
            "active",
        )
        [redemption] = document["reward_redemptions"]
        assert (redemption["coupon_id"], redemption["points"]) == (story.coupon["id"], 100)

        [subscription] = document["subscriptions"]
        assert (subscription["id"], subscription["plan"], subscription["state"]) == (
            story.subscription["id"],
            "plus",
            "active",
        )
        [payment] = subscription["payments"]
        assert (payment["payment_ref"], payment["status"], payment["amount"], payment["period"]) == (
            "PAY-1",
            "succeeded",
            cny(19_800),
            1,
        )

        partners = document["partners"]
        [linked] = partners["links"]
        assert (linked["partner"], linked["partner_customer_ref"], linked["grants"]) == (
            "cafe",
            "CAFE-7",
            ["basic", "points"],
        )
        [exchange] = partners["exchanges"]
        assert (exchange["direction"], exchange["status"], exchange["points"], exchange["rate"]) == (
            "out",
            "pending",
            100,
            "0.1",
        )
        [use] = partners["benefit_uses"]
        assert (use["partner"], use["benefit_id"], use["use_ref"]) == ("cafe", story.benefit_id, "USE-1")
        [perk] = partners["perks"]
        assert (perk["partner"], perk["name"], perk["plan"], perk["status"]) == (
            "cafe",
            "A free coffee",
            "plus",
            "issued",
        )

        engagement = document["engagement"]
        assert engagement["lifecycle"]["stage"] == "active"
        assert engagement["rfm"] is not None and engagement["rfm"]["purchases"] == 2
        assert engagement["rfm"]["spend"] == cny(150_000 + 20_000 - 5_000)
        assert engagement["referral_rewards"] == [
            {
                "role": "friend",
                "points": 200,
                "order_ref": "SH-1",
                "status": "credited",
                "created_at": "2026-03-16T10:00:00Z",
                "credited_at": "2026-03-16T10:00:00Z",
            }
        ]

        # Events are named, not copied, with where they went.
        events = document["events"]
        types = [event["type"] for event in events]
        assert types[0] == "member.enrolled"
        assert {"points.earned", "tier.upgraded", "subscription.created", "partner.linked"} <= set(types)
        assert all(set(event) == {"id", "type", "occurred_at", "deliveries"} for event in events)
        enrolled = events[0]
        assert [(d["endpoint_id"], d["status"]) for d in enrolled["deliveries"]] == [
            (story.endpoint_id, "pending")
        ]

    async def test_the_referrer_sees_their_side_and_nothing_of_the_friend(
        self, client: httpx.AsyncClient, admin_key: str, story: Story
    ) -> None:
        document = await export_of(client, admin_key, story.referrer["id"])
        [side] = document["engagement"]["referral_rewards"]
        assert (side["role"], side["points"], side["order_ref"], side["status"]) == (
            "referrer",
            500,
            None,
            "credited",
        )
        text = json.dumps(document, ensure_ascii=False)
        for friends in (story.member["id"], story.member["member_number"], "李娜", "SH-1"):
            assert friends not in text

    async def test_another_members_data_is_absent(
        self, client: httpx.AsyncClient, admin_key: str, story: Story
    ) -> None:
        text = json.dumps(await export_of(client, admin_key, story.member["id"]), ensure_ascii=False)
        for theirs in (
            story.other["id"],
            story.other["member_number"],
            story.other["phone"],
            "王芳",
            "wang.fang@example.cn",
            story.other_order,
            # The referrer appears only as the id the member enrolled under.
            story.referrer["member_number"],
            "referrer@example.cn",
            "推荐人",
        ):
            assert theirs not in text, theirs

    async def test_no_amount_is_a_float(
        self, client: httpx.AsyncClient, admin_key: str, story: Story
    ) -> None:
        response = await client.get(f"/v1/members/{story.member['id']}/export", headers=bearer(admin_key))
        floats: list[float] = []
        json.loads(response.text, parse_float=lambda text: floats.append(float(text)))
        assert floats == []

    async def test_reading_in_batches_of_one_gives_the_same_document(
        self, client: httpx.AsyncClient, admin_key: str, story: Story, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Nothing is capped: every list is followed to its end, whatever the size of a batch or page."""
        whole = await export_of(client, admin_key, story.member["id"])
        monkeypatch.setattr("loyalty_api.privacy.export.BATCH", 1)
        monkeypatch.setattr("loyalty_api.privacy.export.MAX_LIMIT", 1)
        assert await export_of(client, admin_key, story.member["id"]) == whole
        assert len(whole["points"]["ledger"]) > 1 and len(whole["events"]) > 1

    async def test_who_exported_whom_is_in_the_audit_log(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key, phone="13900004444")
        response = await client.get(f"/v1/members/{member['id']}/export", headers=bearer(admin_key))
        assert response.status_code == 200, response.text

        found = await client.get(
            "/v1/audit-events",
            params={"member_id": member["id"], "action": "export_member"},
            headers=bearer(admin_key),
        )
        [entry] = found.json()["items"]
        assert entry["key_prefix"] == admin_key.split("_")[1] and entry["after"] is None
        assert entry["request_id"] == response.headers["X-Request-Id"]


class TestExportedState:
    async def test_a_hold_past_its_time_is_exported_as_expired_as_the_api_reads_it(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        member_id = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member_id, 10_000)
        made = await client.post(
            f"/v1/members/{member_id}/holds",
            json={"points": 40, "order_ref": "WEB-X", "ttl_seconds": 60},
            headers=bearer(pos_key),
        )
        assert made.status_code == 201, made.text
        clock.advance(timedelta(seconds=61))  # the release job has not run
        read = await client.get(f"/v1/holds/{made.json()['id']}", headers=bearer(pos_key))
        [hold] = (await export_of(client, admin_key, member_id))["points"]["holds"]
        assert hold["status"] == read.json()["status"] == "expired"


class TestRefusals:
    async def test_an_unknown_member_is_404(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.get(f"/v1/members/{uuid.uuid4()}/export", headers=bearer(admin_key))
        assert (response.status_code, response.json()["code"]) == (404, "member_not_found")

    @pytest.mark.parametrize("scope", [Scope.pos, Scope.ecommerce, Scope.billing])
    async def test_only_an_admin_key_may_export(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, scope: Scope
    ) -> None:
        member = await enrol(client, pos_key)
        key = await make_key(app, scope, rate_limit=UNLIMITED)
        response = await client.get(f"/v1/members/{member['id']}/export", headers=bearer(key))
        assert (response.status_code, response.json()["code"]) == (403, "scope_not_allowed")
        assert member["phone"] not in response.text


async def test_the_members_activities_are_exported_whatever_they_earned(
    client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    await set_program(client, admin_key)
    await add_activity_rule(client, admin_key, type="check_in", points=0)
    await add_activity_rule(client, admin_key, type="review", name="Product review", points=30)
    member = await enrol(client, pos_key)
    await record(client, pos_key, member["id"], "STORE-7-0316")
    clock.advance(timedelta(days=1))
    await record(client, pos_key, member["id"], "REVIEW-88", type="review")
    activities = (await export_of(client, admin_key, member["id"]))["engagement"]["activities"]
    assert [(a["type"], a["ref"], a["points"], a["streak"]) for a in activities] == [
        ("check_in", "STORE-7-0316", 0, 1),
        ("review", "REVIEW-88", 30, 1),
    ]
    assert activities[0]["entry_id"] is None  # a check-in that earned nothing is there all the same
    document = await export_of(client, admin_key, member["id"])
    credited = [e for e in document["points"]["ledger"] if e["id"] == activities[1]["entry_id"]]
    assert [e["amount"] for e in credited] == [30]


async def test_the_campaigns_that_reached_the_member_are_exported(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    member = await enrol(client, pos_key)
    campaign = await create_campaign(client, admin_key, action=POINTS_ACTION)
    assert await run_campaigns(app, batch=10) == 1
    [reach] = (await export_of(client, admin_key, member["id"]))["engagement"]["campaigns"]
    assert (reach["campaign_id"], reach["name"]) == (campaign["id"], campaign["name"])
    assert reach["outcome"] == "points_granted"


async def test_the_members_orders_are_listed_oldest_first(
    client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    """As every list of the export: by when the order was made, not by its number."""
    await set_program(client, admin_key)
    member = await enrol(client, pos_key)
    for order_ref in ("Z-100", "M-200", "A-300"):
        await earn(client, pos_key, member["id"], 1_000, order_ref=order_ref)
        clock.advance(timedelta(minutes=1))
    orders = (await export_of(client, admin_key, member["id"]))["orders"]
    assert [order["order_ref"] for order in orders] == ["Z-100", "M-200", "A-300"]
