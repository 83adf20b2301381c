"""Campaigns: an audience, one action each, run by the worker in batches, each member once."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.campaigns import service as campaigns
from loyalty_api.clock import FrozenClock
from loyalty_api.worker.schedule import JOBS
from tests.builders import add_tier, enrol
from tests.campaigns.helpers import (
    COUPON_ACTION,
    POINTS_ACTION,
    create,
    create_reply,
    reached,
    read,
    run,
    seed_members,
)
from tests.conftest import START, bearer
from tests.inspect_db import count, events, rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import iso, link, register_partner
from tests.points.helpers import cny, earn, hold_points, points, set_program
from tests.subscriptions.helpers import add_plan, subscribe, subscribe_paid


async def _reached_ids(app: FastAPI, campaign_id: str) -> set[str]:
    found = await rows(
        app, "SELECT member_id FROM campaign_members WHERE campaign_id = :c", c=uuid.UUID(campaign_id)
    )
    return {str(uuid.UUID(str(row["member_id"]))) for row in found}


async def _coupons_by_member(app: FastAPI) -> Counter[str]:
    found = await rows(app, "SELECT member_id FROM coupons WHERE source_type = 'campaign'")
    return Counter(str(uuid.UUID(str(row["member_id"]))) for row in found)


class TestTenThousandMembers:
    async def test_interrupted_and_resumed_it_gives_each_member_exactly_one_coupon(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        audience = await seed_members(app, 10_000, lifecycle="lapsed")
        outside = await seed_members(app, 300, lifecycle="active")
        outside += await seed_members(app, 50, lifecycle="lapsed", status="suspended")
        campaign = await create(client, admin_key, audience={"lifecycle": "lapsed"})
        assert campaign["status"] == "pending" and campaign["counts"]["reached"] == 0

        # Three batches, then the worker stops (a deploy, say).
        assert await run(app, batch=1_000, max_batches=3) == 3_000
        halfway = await read(client, admin_key, campaign["id"])
        assert halfway["status"] == "running" and halfway["started_at"] is not None
        assert halfway["counts"]["reached"] == halfway["counts"]["coupons_issued"] == 3_000

        # The next batch dies after its coupons were written, before it commits: none of it stays.
        real = campaigns.issue_coupons

        async def crash_after_issuing(*args: Any, **kwargs: Any) -> int:
            await real(*args, **kwargs)
            raise RuntimeError("the worker was killed")

        monkeypatch.setattr(campaigns, "issue_coupons", crash_after_issuing)
        with pytest.raises(RuntimeError):
            await run(app, batch=1_000)
        monkeypatch.undo()
        assert sum((await _coupons_by_member(app)).values()) == 3_000
        assert (await read(client, admin_key, campaign["id"]))["counts"]["reached"] == 3_000

        # Restarted, it goes on from where the last committed batch left off.
        assert await run(app, batch=1_000) == 7_000
        issued = await _coupons_by_member(app)
        assert set(issued) == set(audience) and set(issued.values()) == {1}
        assert not set(issued) & set(outside)
        assert await _reached_ids(app, campaign["id"]) == set(audience)
        done = await read(client, admin_key, campaign["id"])
        assert done["status"] == "completed" and done["finished_at"] is not None
        assert done["counts"] == {
            "reached": 10_000,
            "coupons_issued": 10_000,
            "points_granted": 0,
            "purchased_since": 0,
        }
        assert len(await events(app, "coupon.issued")) == 10_000
        [completed] = await events(app, "campaign.completed")
        assert completed["payload"]["reached"] == 10_000

        # Running again finds nothing to do.
        assert await run(app, batch=1_000) == 0
        assert await count(app, "coupons") == 10_000

    async def test_each_coupon_is_the_campaigns_offer(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        campaign = await create(client, admin_key)
        await run(app)
        listed = await client.get(f"/v1/members/{member['id']}/coupons", headers=bearer(admin_key))
        [coupon] = listed.json()["items"]
        assert coupon["name"] == COUPON_ACTION["coupon_name"]
        assert coupon["kind"] == "fixed_discount"
        assert coupon["properties"]["amount"] == 2_000
        [issued] = await events(app, "coupon.issued")
        assert issued["payload"]["source_type"] == "campaign"
        assert issued["payload"]["source_id"] == campaign["id"]


class TestPoints:
    async def test_points_are_credited_through_the_ledger(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        members = [(await enrol(client, pos_key))["id"] for _ in range(3)]
        await earn(client, pos_key, members[0], 10_000)
        before = (await points(client, pos_key, members[0]))["balance"]
        campaign = await create(client, admin_key, action=POINTS_ACTION)
        assert await run(app, batch=2) == 3
        assert (await points(client, pos_key, members[0]))["balance"] == before + 150
        for member_id in members[1:]:
            assert (await points(client, pos_key, member_id))["balance"] == 150
            ledger = await client.get(
                f"/v1/members/{member_id}/ledger", params={"type": "campaign"}, headers=bearer(admin_key)
            )
            [entry] = ledger.json()["items"]
            assert entry["amount"] == 150 and entry["balance_after"] == 150
        await assert_ledger_invariant(app)
        granted = await events(app, "campaign.points_granted")
        assert sorted(e["payload"]["member_id"] for e in granted) == sorted(members)
        assert {e["payload"]["reason"] for e in granted} == {"Spring welcome back"}
        done = await read(client, admin_key, campaign["id"])
        assert done["counts"]["points_granted"] == 450 and done["counts"]["coupons_issued"] == 0

    async def test_points_past_their_end_expire_before_the_grant_as_before_an_earn(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The grant's entry and event show the balance a read shows, not points that have ended but that
        the expiry job has not yet taken."""
        await set_program(client, admin_key, expiry_months=12)
        member_id = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member_id, 10_000)  # 100 points, ending in 12 months
        clock.advance(timedelta(days=400))  # they have ended; no job has run
        assert (await points(client, pos_key, member_id))["balance"] == 0
        await create(client, admin_key, action=POINTS_ACTION)
        assert await run(app) == 1
        ledger = await client.get(f"/v1/members/{member_id}/ledger", headers=bearer(admin_key))
        oldest_first = reversed(ledger.json()["items"])
        assert [(e["type"], e["amount"], e["balance_after"]) for e in oldest_first] == [
            ("earn", 100, 100),
            ("expire", -100, 0),
            ("campaign", 150, 150),
        ]
        [granted] = await events(app, "campaign.points_granted")
        assert granted["payload"]["balance"] == 150
        assert [e["payload"]["points"] for e in await events(app, "points.expired")] == [100]
        assert (await points(client, pos_key, member_id))["balance"] == 150
        await assert_ledger_invariant(app, member_id)

    async def test_points_a_hold_spares_past_their_end_stay_held_and_expire_as_the_grant_frees_others(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """A checkout's hold spares points that ended while it holds them, as for an earn: the grant's points
        take their place under the hold, the ended ones expire, and the grant's event shows what a read
        shows."""
        await set_program(client, admin_key, expiry_months=12)
        member_id = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member_id, 10_000)  # 100 points, ending in 12 months
        clock.advance(timedelta(days=364))
        await hold_points(client, pos_key, member_id, 100, "CART", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))  # they have ended; the hold spares them
        await create(client, admin_key, action=POINTS_ACTION)
        assert await run(app) == 1
        read = await points(client, pos_key, member_id)
        assert (read["balance"], read["held"], read["available"]) == (150, 100, 50)
        [granted] = await events(app, "campaign.points_granted")
        assert granted["payload"]["balance"] == read["balance"]
        assert [e["payload"]["points"] for e in await events(app, "points.expired")] == [100]
        await assert_ledger_invariant(app, member_id)

    async def test_analytics_count_campaign_points_as_issued(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        for _ in range(2):
            await enrol(client, pos_key)
        await create(client, admin_key, action=POINTS_ACTION)
        await run(app)
        window = {
            "from": (START - timedelta(days=1)).isoformat(),
            "to": (START + timedelta(days=1)).isoformat(),
        }
        report = await client.get("/v1/analytics/points", params=window, headers=bearer(admin_key))
        assert report.status_code == 200, report.text
        [figures] = report.json()["items"]
        assert figures["issued"] == 300 and figures["net"] == 300


class TestAudience:
    async def test_each_filter_narrows_the_audience(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "silver", rank=1)
        gold = await add_tier(client, admin_key, "gold", rank=2, threshold=1_000_000)
        on_gold = await seed_members(app, 3, tier_id=uuid.UUID(gold["id"]), lifecycle="lapsed")
        lapsed = await seed_members(app, 2, lifecycle="lapsed")
        champions = await seed_members(app, 2, segment="champions")
        await seed_members(app, 2, segment="lost")
        born_in_may = [(await enrol(client, pos_key, birthday=f"1990-05-{d:02d}"))["id"] for d in (1, 31)]
        await enrol(client, pos_key, birthday="1990-06-01")
        await add_plan(client, admin_key, "plus", trial_days=14)
        paying = (await enrol(client, pos_key))["id"]
        await subscribe_paid(client, ecommerce_key, paying, "plus")
        in_trial = (await enrol(client, pos_key))["id"]
        await subscribe(client, ecommerce_key, in_trial, "plus")

        audiences: dict[str, tuple[dict[str, Any], set[str]]] = {
            "tier": ({"tier": "gold"}, set(on_gold)),
            "lifecycle": ({"lifecycle": "lapsed"}, set(on_gold + lapsed)),
            "segment": ({"segment": "champions"}, set(champions)),
            "birthday_month": ({"birthday_month": 5}, set(born_in_may)),
            "plan": ({"plan": "plus"}, {paying}),
            "tier and lifecycle": ({"tier": "gold", "lifecycle": "active"}, set()),
        }
        made = {
            name: await create(client, admin_key, audience=audience)
            for name, (audience, _) in audiences.items()
        }
        await run(app, batch=2)
        for name, (_, expected) in audiences.items():
            assert await _reached_ids(app, made[name]["id"]) == expected, name
            assert (await read(client, admin_key, made[name]["id"]))["counts"]["reached"] == len(expected), (
                name
            )
        shown = await read(client, admin_key, made["tier"]["id"])
        assert shown["audience"] == {
            "tier": "gold",
            "plan": None,
            "lifecycle": None,
            "segment": None,
            "birthday_month": None,
        }

    async def test_an_empty_audience_completes_at_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        campaign = await create(client, admin_key, audience={"segment": "champions"})
        assert await run(app) == 0
        done = await read(client, admin_key, campaign["id"])
        assert done["status"] == "completed" and done["counts"]["reached"] == 0


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"audience": {"tier": "platinum"}}, "campaign_tier_unknown"),
            ({"audience": {"plan": "nope"}}, "campaign_plan_unknown"),
            ({"audience": {"birthday_month": 13}}, "validation_error"),
            ({"audience": {"lifecycle": "asleep"}}, "validation_error"),
            ({"audience": {"colour": "red"}}, "validation_error"),
            ({"action": {"type": "grant_points", "points": 0, "reason": "x"}}, "validation_error"),
            ({"action": {"type": "grant_points", "points": 1.5, "reason": "x"}}, "validation_error"),
            ({"action": {"type": "grant_points", "points": 10}}, "validation_error"),
            ({"action": {"type": "send_sms"}}, "validation_error"),
            (
                {"action": {**COUPON_ACTION, "coupon": {"kind": "points_multiplier", "multiplier": "2"}}},
                "validation_error",
            ),
            ({"name": ""}, "validation_error"),
        ],
    )
    async def test_bad_input_is_refused_and_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, body: dict[str, Any], code: str
    ) -> None:
        response = await create_reply(client, admin_key, **body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == code
        assert await table_counts(app, "campaigns", "outbox_events") == {"campaigns": 0, "outbox_events": 0}

    async def test_an_action_is_required(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.post("/v1/campaigns", json={"name": "No action"}, headers=bearer(admin_key))
        assert response.status_code == 422 and response.json()["code"] == "validation_error"

    async def test_only_admin_keys_make_or_read_campaigns(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        assert (await create_reply(client, pos_key)).status_code == 403
        assert (await client.get("/v1/campaigns", headers=bearer(pos_key))).status_code == 403

    async def test_an_unknown_campaign_is_not_found(self, client: httpx.AsyncClient, admin_key: str) -> None:
        for path in (f"/v1/campaigns/{uuid.uuid4()}", f"/v1/campaigns/{uuid.uuid4()}/members"):
            response = await client.get(path, headers=bearer(admin_key))
            assert response.status_code == 404 and response.json()["code"] == "campaign_not_found"


class TestCancel:
    async def test_a_cancelled_campaign_reaches_nobody_more(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        members = await seed_members(app, 30)
        campaign = await create(client, admin_key)
        assert await run(app, batch=10, max_batches=1) == 10
        path = f"/v1/campaigns/{campaign['id']}/cancel"
        cancelled = await client.post(path, headers=bearer(admin_key))
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["counts"]["reached"] == 10
        assert await run(app) == 0
        assert await _reached_ids(app, campaign["id"]) == set(members[:10])
        again = await client.post(path, headers=bearer(admin_key))
        assert again.status_code == 200 and again.json() == cancelled.json()
        assert len(await events(app, "campaign.cancelled")) == 1

    async def test_a_completed_campaign_cannot_be_cancelled(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        campaign = await create(client, admin_key)
        await run(app)
        refused = await client.post(f"/v1/campaigns/{campaign['id']}/cancel", headers=bearer(admin_key))
        assert refused.status_code == 409 and refused.json()["code"] == "campaign_finished"
        assert (await read(client, admin_key, campaign["id"]))["status"] == "completed"
        unknown = await client.post(f"/v1/campaigns/{uuid.uuid4()}/cancel", headers=bearer(admin_key))
        assert unknown.status_code == 404 and unknown.json()["code"] == "campaign_not_found"


class TestIdempotency:
    async def test_the_same_key_and_body_make_one_campaign(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        body = {"name": "Once", "action": POINTS_ACTION}
        headers = bearer(admin_key, Idempotency_Key="campaign-once")
        first = await client.post("/v1/campaigns", json=body, headers=headers)
        again = await client.post("/v1/campaigns", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert await count(app, "campaigns") == 1
        other = await client.post("/v1/campaigns", json={**body, "name": "Twice"}, headers=headers)
        assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
        assert await count(app, "campaigns") == 1


class TestReport:
    async def test_it_counts_the_members_who_bought_since_it_reached_them(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        bought_before, came_back, stayed_away = [(await enrol(client, pos_key))["id"] for _ in range(3)]
        await earn(client, pos_key, bought_before, 5_000)
        clock.advance(timedelta(minutes=1))
        campaign = await create(client, admin_key)
        await run(app)
        clock.advance(timedelta(days=3))
        await earn(client, pos_key, came_back, 8_000)
        shown = await read(client, admin_key, campaign["id"])
        assert shown["counts"]["reached"] == 3 and shown["counts"]["purchased_since"] == 1
        listed = {m["member_id"]: m for m in await reached(client, admin_key, campaign["id"])}
        assert set(listed) == {bought_before, came_back, stayed_away}
        assert [m for m, row in listed.items() if row["purchased_since"]] == [came_back]
        assert {row["outcome"] for row in listed.values()} == {"coupon_issued"}

    async def test_a_receipt_from_before_it_synced_after_is_no_purchase_since(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        """A till offline when the campaign ran sends its receipts later, each with the time it was made: a
        purchase made before the campaign reached the member is not one it brought."""
        await set_program(client, admin_key)
        air = await register_partner(app, client, admin_key, "air", earn_rate="1")
        synced_late, came_back, at_partner = [(await enrol(client, pos_key))["id"] for _ in range(3)]
        await link(client, admin_key, air, at_partner, "air", "AIR-1")
        made = clock.now()
        clock.advance(timedelta(hours=2))
        campaign = await create(client, admin_key)
        await run(app)
        clock.advance(timedelta(hours=3))
        await earn(client, pos_key, synced_late, 8_000, occurred_at=iso(made))
        await earn(client, pos_key, came_back, 8_000)
        bought = {"order_ref": "AIR-ORDER-1", "amount": cny(8_000)}
        answer = await client.post("/v1/partner/members/AIR-1/earn", json=bought, headers=bearer(air))
        assert answer.status_code == 201, answer.text

        shown = await read(client, admin_key, campaign["id"])
        assert shown["counts"]["reached"] == 3 and shown["counts"]["purchased_since"] == 2
        listed = {
            m["member_id"]: m["purchased_since"] for m in await reached(client, admin_key, campaign["id"])
        }
        assert listed == {synced_late: False, came_back: True, at_partner: True}

    async def test_an_erased_member_is_counted_but_not_listed(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        """The campaign's list named an erased member's id, where the member list and every read find no
        one; its counts, figures, keep them as the analytics do."""
        await set_program(client, admin_key)
        stays, erased = [(await enrol(client, pos_key))["id"] for _ in range(2)]
        campaign = await create(client, admin_key)
        await run(app)
        clock.advance(timedelta(days=1))
        await earn(client, pos_key, erased, 8_000)
        counts = (await read(client, admin_key, campaign["id"]))["counts"]
        gone = await client.post(f"/v1/members/{erased}/erase", headers=bearer(admin_key))
        assert gone.status_code == 200, gone.text

        assert [m["member_id"] for m in await reached(client, admin_key, campaign["id"])] == [stays]
        assert (await read(client, admin_key, campaign["id"]))["counts"] == counts
        assert counts["reached"] == 2 and counts["purchased_since"] == 1

    async def test_members_and_campaigns_come_a_page_at_a_time(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        members = await seed_members(app, 5)
        made = [await create(client, admin_key, name=f"C{n}") for n in range(3)]
        await run(app)
        page = await client.get(
            f"/v1/campaigns/{made[0]['id']}/members", params={"limit": 2}, headers=bearer(admin_key)
        )
        assert [m["member_id"] for m in page.json()["items"]] == members[:2]
        assert [m["member_id"] for m in await reached(client, admin_key, made[0]["id"])] == members
        first = (await client.get("/v1/campaigns", params={"limit": 2}, headers=bearer(admin_key))).json()
        assert [c["id"] for c in first["items"]] == [c["id"] for c in made[:2]]
        rest = await client.get(
            "/v1/campaigns", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(admin_key)
        )
        assert [c["id"] for c in rest.json()["items"]] == [made[2]["id"]]
        assert all(c["status"] == "completed" for c in rest.json()["items"])


def test_the_worker_runs_campaigns_every_few_seconds() -> None:
    [job] = [job for job in JOBS if job.name == "run-campaigns"]
    assert job.every <= timedelta(seconds=10)
