"""The audit log: who changed the programme, a tier, a balance or a plan, when, and what it was before."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from loyalty_api.auth.principal import Scope
from loyalty_api.settings import Settings
from loyalty_api.webhooks.delivery import dispatch_events, send_due
from tests.builders import add_tier, enrol, make_key
from tests.conftest import UNLIMITED, bearer, cache_kept, units_of
from tests.databases import is_postgres, lock_waiters, side_engine, until_waiting_for_a_lock
from tests.graphql.helpers import mutate
from tests.inspect_db import rows
from tests.points.helpers import earn, set_program
from tests.subscriptions.helpers import add_plan, pay_reply, subscribe_paid
from tests.webhooks.endpoint_helpers import PUBLIC_URL, add_endpoint
from tests.webhooks.receiver import running_receiver
from tests.webhooks.test_delivery_flow import with_settings


async def _audit(client: httpx.AsyncClient, admin_key: str, **filters: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/audit-events", params=filters, headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


_TIER = {
    "name": "Gold",
    "rank": 1,
    "metric": "spend",
    "window": "calendar_year",
    "threshold": 0,
    "points_multiplier": "1",
    "grace_days": 0,
    "benefit_ids": [],
}


class TestWhatIsRecorded:
    async def test_a_tier_change_names_the_key_and_shows_the_tier_before_and_after(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_tier(client, admin_key, "gold", rank=1, threshold=5_000)
        replacement = {**_TIER, "threshold": 8_000}
        response = await client.put("/v1/tiers/gold", json=replacement, headers=bearer(admin_key))
        assert response.status_code == 200, response.text

        entries = await _audit(client, admin_key, subject_type="tiers", subject_id="gold")
        assert [e["action"] for e in entries] == ["replace_tier", "create_tier"]
        replaced, created = entries
        assert replaced["before"]["threshold"] == 5_000
        assert replaced["after"]["threshold"] == 8_000
        assert replaced["method"] == "PUT" and replaced["path"] == "/v1/tiers/gold"
        assert replaced["status"] == 200 and replaced["channel"] == "rest"
        assert replaced["request_id"] == response.headers["X-Request-Id"]
        assert replaced["key_prefix"] == admin_key.split("_")[1]
        assert created["before"] is None and created["after"]["threshold"] == 5_000

    async def test_a_balance_adjustment_shows_the_balance_before_and_after(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 10_000)
        response = await client.post(
            f"/v1/members/{member['id']}/adjustments",
            json={"points": -30, "reason": "goodwill reversed"},
            headers=bearer(admin_key),
        )
        assert response.status_code == 201, response.text

        (entry,) = await _audit(client, admin_key, member_id=member["id"])
        assert entry["action"] == "adjust" and entry["subject_type"] == "members"
        assert entry["before"]["balance"] == 100
        assert entry["after"]["balance"] == 70

    async def test_the_programme_before_and_after(self, client: httpx.AsyncClient, admin_key: str) -> None:
        await set_program(client, admin_key, earn_rate="1")
        await set_program(client, admin_key, earn_rate="2")
        latest = (await _audit(client, admin_key, subject_type="program"))[0]
        assert latest["action"] == "put_program"
        assert (latest["before"]["earn_rate"], latest["after"]["earn_rate"]) == ("1", "2")

    async def test_keeps_no_personal_data_of_a_member(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        member = await enrol(
            client,
            admin_key,
            phone="13812340001",
            email="audit.me@example.cn",
            name="审计",
            birthday="1990-04-05",
        )
        response = await client.patch(
            f"/v1/members/{member['id']}",
            json={"name": "新名字", "status": "suspended"},
            headers=bearer(admin_key),
        )
        assert response.status_code == 200, response.text

        entries = await _audit(client, admin_key, member_id=member["id"])
        assert [e["action"] for e in entries] == ["update_member", "enrol_member"]
        assert entries[0]["before"]["status"] == "active" and entries[0]["after"]["status"] == "suspended"
        stored = str(await rows(app, "SELECT * FROM audit_events"))
        for personal in ("13812340001", "audit.me", "审计", "新名字", "1990-04-05", member["phone"]):
            assert personal not in stored

    async def test_an_import_is_in_the_changes_of_each_member_it_made(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        batch = {
            "members": [
                {"name": "从旧系统来", "phone": "13812340002", "points": [{"points": 30}]},
                {"email": "old.system@example.cn"},
            ]
        }
        response = await client.post(
            "/v1/members/import", json=batch, headers=bearer(admin_key, X_Request_Id="import-7")
        )
        assert response.status_code == 201, response.text
        made = response.json()["members"]
        for line in made:
            [entry] = await _audit(client, admin_key, member_id=line["id"])
            assert (entry["action"], entry["subject_type"], entry["subject_id"]) == (
                "import_members",
                "members",
                line["id"],
            )
            assert entry["path"] == "/v1/members/import" and entry["request_id"] == "import-7"
            # The card number is the member's, like their phone: the log keeps the rest of the line.
            assert entry["after"] == {name: value for name, value in line.items() if name != "member_number"}
        stored = str(await rows(app, "SELECT * FROM audit_events"))
        cards = [line["member_number"] for line in made]
        for personal in ("13812340002", "old.system", "从旧系统来", *cards):
            assert personal not in stored

    async def test_a_webhook_secret_is_not_kept(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.post(
            "/v1/webhook-endpoints", json={"url": PUBLIC_URL}, headers=bearer(admin_key)
        )
        assert response.status_code == 201, response.text
        secret = response.json()["secret"]
        (entry,) = await _audit(client, admin_key, subject_type="webhook-endpoints")
        assert entry["after"]["url"] == PUBLIC_URL
        assert secret not in str(entry)

    async def test_a_receivers_answer_to_a_delivery_retried_by_hand_is_not_kept(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """A receiver may echo what it was sent: the delivery's `before` keeps its attempts, not their
        answers, which an erasure forgets and the audit log, never changed, would keep."""
        await set_program(client, admin_key)
        # The receiver is on loopback.
        units = with_settings(units_of(app), webhook_allow_private_targets=True)
        async with running_receiver() as receiver:
            endpoint_id, _ = await add_endpoint(units, receiver.url, event_types=["member.enrolled"])
            member = await enrol(client, pos_key, email="echoed@example.cn")
            echo = {"error": "unknown", "email": "echoed@example.cn", "card": member["member_number"]}
            receiver.bodies.append(json.dumps(echo).encode())
            receiver.answers.append(500)
            await dispatch_events(units)
            assert await send_due(units) == 1
            listed = await client.get(
                f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=bearer(admin_key)
            )
            [delivery] = listed.json()["items"]
            retried = await client.post(
                f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=bearer(admin_key)
            )
            assert retried.status_code == 200, retried.text

        (entry,) = await _audit(client, admin_key, subject_type="webhook-deliveries")
        [attempt] = entry["before"]["attempt_log"]
        assert attempt["status_code"] == 500 and "response_body" not in attempt
        stored = str(await rows(app, "SELECT * FROM audit_events"))
        for personal in ("echoed@example.cn", member["member_number"]):
            assert personal not in stored

    async def test_a_graphql_mutation_by_an_admin_key(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        payload = await mutate(
            client,
            admin_key,
            "loyaltyAdjustPoints",
            "adjustment { balance }",
            input={"memberId": member["id"], "points": 25, "reason": "welcome"},
        )
        assert payload["userErrors"] == []
        (entry,) = await _audit(client, admin_key, member_id=member["id"])
        assert entry["channel"] == "graphql" and entry["action"] == "loyaltyAdjustPoints"
        assert entry["subject_type"] == "members" and entry["subject_id"] == member["id"]
        assert entry["after"]["balance"] == 25
        assert entry["before"]["points"] == 0 and entry["before"]["id"] == member["id"]
        assert "member_number" not in entry["before"] and "phone" not in entry["before"]

    async def test_a_graphql_mutation_naming_a_subscription_is_filed_under_its_member(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus")
        member = await enrol(client, pos_key)
        subscription = await subscribe_paid(client, admin_key, member["id"], "plus")
        payload = await mutate(
            client,
            admin_key,
            "loyaltyCancelSubscription",
            "subscription { id }",
            input={"subscriptionId": subscription["id"], "atPeriodEnd": False},
        )
        assert payload["userErrors"] == []
        entries = await _audit(client, admin_key, member_id=member["id"])
        assert [e["action"] for e in entries] == ["loyaltyCancelSubscription", "subscribe"]  # newest first
        assert entries[0]["subject_type"] == "subscriptions"
        assert entries[0]["subject_id"] == subscription["id"]

    async def test_graphql_files_a_write_under_the_subject_rest_does(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        amount = {"amount": 10_000, "currency": "CNY"}
        rest = await client.post(
            f"/v1/members/{member['id']}/earn",
            json={"order_ref": "AU-R", "amount": amount, "store_id": "S-7"},
            headers=bearer(admin_key),
        )
        assert rest.status_code == 200, rest.text
        earned = await mutate(
            client,
            admin_key,
            "loyaltyEarnPoints",
            "earned { balance }",
            input={"memberId": member["id"], "orderRef": "AU-G", "amount": amount, "storeId": "S-7"},
        )
        assert earned["userErrors"] == []
        refunded = await mutate(
            client,
            admin_key,
            "loyaltyRefundPoints",
            "refund { balance }",
            input={"orderRef": "AU-G", "full": True},
        )
        assert refunded["userErrors"] == []
        rest_refund = await client.post(
            "/v1/orders/AU-R/refund", json={"full": True}, headers=bearer(admin_key)
        )
        assert rest_refund.status_code == 200, rest_refund.text
        entries = await _audit(client, admin_key, member_id=member["id"])
        subjects = {(e["channel"], e["subject_type"], e["subject_id"]) for e in entries}
        assert subjects == {
            ("rest", "members", member["id"]),
            ("graphql", "members", member["id"]),
            ("rest", "orders", "AU-R"),
            ("graphql", "orders", "AU-G"),
        }

    async def test_a_graphql_payment_is_filed_under_its_member_as_rest_files_one(
        self, client: httpx.AsyncClient, admin_key: str, billing_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=19_800)
        rest_member = await enrol(client, admin_key)
        rest_subscription = await subscribe_paid(client, admin_key, rest_member["id"], "plus")
        rest = await pay_reply(client, billing_key, rest_subscription["id"], period=2, amount=19_800)
        assert rest.status_code in (200, 201), rest.text
        member = await enrol(client, admin_key)
        subscription = await subscribe_paid(client, admin_key, member["id"], "plus")
        payload = await mutate(
            client,
            billing_key,
            "loyaltyRecordSubscriptionPayment",
            "payment { status }",
            input={
                "subscriptionId": subscription["id"],
                "status": "succeeded",
                "paymentRef": "pay-graphql-2",
                "amount": {"amount": 19_800, "currency": "CNY"},
                "period": 2,
            },
        )
        assert payload["userErrors"] == []
        filed = {}
        for channel, member_id in (("rest", rest_member["id"]), ("graphql", member["id"])):
            entries = await _audit(client, admin_key, member_id=member_id, subject_type="subscriptions")
            filed[channel] = [(e["channel"], e["subject_type"]) for e in entries]
        assert filed == {"rest": [("rest", "subscriptions")], "graphql": [("graphql", "subscriptions")]}

    async def test_a_graphql_enrolment_is_filed_under_the_member_it_made(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        rest = await enrol(client, admin_key)
        payload = await mutate(
            client, admin_key, "loyaltyEnrolMember", "member { id }", input={"name": "王五"}
        )
        assert payload["userErrors"] == []
        made = payload["member"]["id"]
        (entry,) = await _audit(client, admin_key, member_id=made)
        assert entry["channel"] == "graphql" and entry["action"] == "loyaltyEnrolMember"
        assert (entry["subject_type"], entry["subject_id"]) == ("members", made)
        assert entry["after"]["id"] == made and "name" not in entry["after"]
        (rest_entry,) = await _audit(client, admin_key, member_id=rest["id"])
        assert (rest_entry["subject_type"], rest_entry["subject_id"]) == ("members", rest["id"])


@pytest.mark.skipif(not is_postgres(), reason="holds a reward's row from a second PostgreSQL connection")
class TestRacingReplaces:
    async def test_each_replace_records_the_subject_the_other_left_as_its_before(
        self, client: httpx.AsyncClient, admin_key: str, settings: Settings
    ) -> None:
        """Two PUTs of one reward at once: the second applied replaced what the first left, and its entry
        says so, not the reward as both found it before either took its lock."""
        body = {"name": "A", "cost_points": 100, "coupon": {"kind": "fixed_discount", "amount": 500}}
        body |= {"coupon_valid_days": 30}
        created = await client.post("/v1/rewards", json=body, headers=bearer(admin_key))
        assert created.status_code == 201, created.text
        path = f"/v1/rewards/{created.json()['id']}"
        engine = side_engine(settings)
        try:
            async with engine.connect() as other, engine.connect() as watcher:
                await watcher.execution_options(isolation_level="AUTOCOMMIT")
                # Another write holds the reward: both replaces wait for it, then for each other.
                await other.execute(
                    text("SELECT 1 FROM rewards WHERE id = :id FOR UPDATE"),
                    {"id": uuid.UUID(created.json()["id"])},
                )
                first = asyncio.ensure_future(
                    client.put(path, json=body | {"name": "B"}, headers=bearer(admin_key))
                )
                await until_waiting_for_a_lock(watcher, first)
                second = asyncio.ensure_future(
                    client.put(path, json=body | {"name": "C"}, headers=bearer(admin_key))
                )
                for _ in range(500):
                    if second.done() or await lock_waiters(watcher) >= 2:
                        break
                    await asyncio.sleep(0.01)
                await other.rollback()
                replies = await asyncio.gather(first, second)
        finally:
            await engine.dispose()
        assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
        entries = await _audit(client, admin_key, subject_type="rewards", action="replace_reward")
        pairs = sorted((e["before"]["name"], e["after"]["name"]) for e in entries)
        assert pairs in ([("A", "B"), ("B", "C")], [("A", "C"), ("C", "B")]), pairs


class TestAReplaceAfterAnotherProcessChangedIt:
    async def test_records_the_change_this_process_has_not_heard_of_as_its_before(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """Another process changed the programme and this one has not heard yet (its notification on the
        way): a replace here finds that change behind the row's lock, and its entry's `before` is that, not
        the programme as this process's cache still holds it."""
        with cache_kept(app):  # as an entry no notification cleared yet stays
            await set_program(client, admin_key, earn_rate="10")
            assert (await client.get("/v1/program", headers=bearer(admin_key))).json()["earn_rate"] == "10"
            async with units_of(app).begin() as uow:  # the other process's change, announced to no one
                await uow.session.execute(text("UPDATE programs SET earn_rate = 11"))
            assert (await client.get("/v1/program", headers=bearer(admin_key))).json()["earn_rate"] == "10"
            await set_program(client, admin_key, earn_rate="12")
        [entry] = (await _audit(client, admin_key, subject_type="program"))[:1]
        assert (entry["before"]["earn_rate"], entry["after"]["earn_rate"]) == ("11", "12")


class TestWhatIsNot:
    async def test_a_tills_writes_are_in_the_ledger_not_the_audit_log(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 10_000)
        assert await _audit(client, admin_key, member_id=member["id"]) == []

    async def test_a_refused_write_leaves_no_entry(self, client: httpx.AsyncClient, admin_key: str) -> None:
        await add_tier(client, admin_key, "gold", rank=1)
        again = await client.post(
            "/v1/tiers",
            json={
                "code": "gold",
                "name": "Gold",
                "rank": 2,
                "metric": "spend",
                "window": "calendar_year",
                "threshold": 0,
                "points_multiplier": "1",
                "grace_days": 0,
                "benefit_ids": [],
            },
            headers=bearer(admin_key),
        )
        assert again.status_code == 409
        assert [e["action"] for e in await _audit(client, admin_key)] == ["create_tier"]

    async def test_only_admin_keys_read_it(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        for scope in (Scope.pos, Scope.ecommerce, Scope.billing):
            key = await make_key(app, scope, rate_limit=UNLIMITED)
            response = await client.get("/v1/audit-events", headers=bearer(key))
            assert response.status_code == 403
            assert response.json()["code"] == "scope_not_allowed"


class TestReading:
    async def test_pages_newest_first_and_filters(self, client: httpx.AsyncClient, admin_key: str) -> None:
        for rank, code in enumerate(("bronze", "silver", "gold"), start=1):
            await add_tier(client, admin_key, code, rank=rank)
        first = await client.get("/v1/audit-events", params={"limit": 2}, headers=bearer(admin_key))
        page = first.json()
        assert [e["subject_id"] for e in page["items"]] == ["gold", "silver"]
        second = await client.get(
            "/v1/audit-events", params={"limit": 2, "cursor": page["next_cursor"]}, headers=bearer(admin_key)
        )
        assert [e["subject_id"] for e in second.json()["items"]] == ["bronze"]
        assert second.json()["next_cursor"] is None
        assert await _audit(client, admin_key, action="delete_tier") == []
        assert len(await _audit(client, admin_key, action="create_tier")) == 3

    async def test_a_subject_is_filed_and_found_by_its_id_however_a_path_spelt_it(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        # The path takes a member's id in upper case or without dashes as that member: the entry was filed
        # under the id as spelt, so `?subject_id=` with the member's id did not find the adjustment.
        await set_program(client, admin_key)
        member = await enrol(client, admin_key)
        spelt = member["id"].upper().replace("-", "")
        adjusted = await client.post(
            f"/v1/members/{spelt}/adjustments",
            json={"points": 5, "reason": "goodwill"},
            headers=bearer(admin_key),
        )
        assert adjusted.status_code == 201, adjusted.text
        found = await _audit(
            client, admin_key, subject_type="members", subject_id=member["id"], action="adjust"
        )
        assert [e["subject_id"] for e in found] == [member["id"]]
        # A filter may spell the id as a path may.
        assert await _audit(client, admin_key, subject_id=spelt, action="adjust") == found

    async def test_a_bad_cursor_is_a_422(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.get("/v1/audit-events", params={"cursor": "nope!"}, headers=bearer(admin_key))
        assert response.status_code == 422


class TestAppendOnly:
    async def test_the_database_refuses_to_change_an_entry(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_tier(client, admin_key, "gold", rank=1)
        async with units_of(app).database.engine.connect() as connection:
            with pytest.raises(DBAPIError, match="never changed"):
                await connection.execute(text("UPDATE audit_events SET actor = 'someone else'"))
        (entry,) = await _audit(client, admin_key)
        assert entry["actor"] != "someone else"
