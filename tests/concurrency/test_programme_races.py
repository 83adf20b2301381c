"""Operators configuring the programme at once: the settings, the earning rules, benefits, plans and tiers.
Each request gets a clear answer (never a 500), and each change is written, announced and audited once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.db.uow import UnitsOfWork
from tests.builders import add_tier
from tests.checkout.helpers import add_benefit
from tests.conftest import bearer
from tests.databases import is_postgres
from tests.inspect_db import events, rows
from tests.points.helpers import DEMO_LIKE_PROGRAM, add_rule, cny, set_program
from tests.subscriptions.helpers import add_plan, new_paid_subscriber, store_as_older_code_did

ROUNDS = 5


class TestEarningRulesAtOnce:
    async def test_replaces_and_deletes_of_one_rule_at_once_answer_200_204_or_404(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        body = {"name": "Monday x2", "kind": "member_day", "properties": {"weekday": 1, "multiplier": "2"}}
        for _ in range(ROUNDS):
            rule = await add_rule(client, admin_key, **body)
            path = f"/v1/earning-rules/{rule['id']}"
            replaced = body | {"name": "Monday x3", "properties": {"weekday": 1, "multiplier": "3"}}
            replies = await asyncio.gather(
                *(client.put(path, json=replaced, headers=bearer(admin_key)) for _ in range(6)),
                *(client.delete(path, headers=bearer(admin_key)) for _ in range(6)),
            )
            puts, deletes = replies[:6], replies[6:]
            assert {r.status_code for r in puts} <= {200, 404}, [r.text for r in puts]
            assert all(r.json()["code"] == "earning_rule_not_found" for r in puts if r.status_code == 404)
            assert Counter(r.status_code for r in deletes) == {204: 1, 404: 5}, [r.text for r in deletes]
            assert (await client.get(path, headers=bearer(admin_key))).status_code == 404
            changes = Counter(
                e["payload"]["change"]
                for e in await events(app, "earning_rule.changed")
                if e["payload"]["rule_id"] == rule["id"]
            )
            applied = sum(r.status_code == 200 for r in puts)
            # The six replaces send the same rule: the first applied changes it, the others find it so and
            # announce nothing.
            assert changes == Counter(created=1, replaced=min(applied, 1), deleted=1)
            audited = await rows(
                app,
                "SELECT method, status FROM audit_events WHERE subject_id = :id AND method = 'DELETE'",
                id=rule["id"],
            )
            assert audited == [{"method": "DELETE", "status": 204}]


class TestProgrammeAtOnce:
    async def test_first_settings_sent_at_once_all_answer_200_and_make_one_programme(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        replies = await asyncio.gather(
            *(
                client.put(
                    "/v1/program",
                    json=DEMO_LIKE_PROGRAM | {"earn_rate": str(n + 1)},
                    headers=bearer(admin_key),
                )
                for n in range(10)
            )
        )
        assert [r.status_code for r in replies] == [200] * 10, [r.text for r in replies if r.is_error]
        [programme] = await rows(app, "SELECT earn_rate FROM programs")
        # The last one applied wins, and every one applied was announced.
        assert len(await events(app, "program.updated")) == 10
        assert Decimal(str(programme["earn_rate"])) in {Decimal(n + 1) for n in range(10)}
        shown = await client.get("/v1/program", headers=bearer(admin_key))
        assert Decimal(shown.json()["earn_rate"]) == Decimal(str(programme["earn_rate"]))


async def _race(
    client: httpx.AsyncClient, admin_key: str, path: str, replaced: dict[str, Any]
) -> tuple[list[httpx.Response], list[httpx.Response]]:
    """Six replaces and six deletes of one thing at once: the replaces' and the deletes' answers."""
    replies = await asyncio.gather(
        *(client.put(path, json=replaced, headers=bearer(admin_key)) for _ in range(6)),
        *(client.delete(path, headers=bearer(admin_key)) for _ in range(6)),
    )
    return list(replies[:6]), list(replies[6:])


def _answered_once(puts: list[httpx.Response], deletes: list[httpx.Response], not_found: str) -> int:
    """Each replace 200 or 404, one delete 204 and the others 404 with `not_found`; how many replaces
    applied."""
    assert {r.status_code for r in puts} <= {200, 404}, [r.text for r in puts]
    assert all(r.json()["code"] == not_found for r in (*puts, *deletes) if r.status_code == 404)
    assert Counter(r.status_code for r in deletes) == {204: 1, 404: 5}, [r.text for r in deletes]
    return sum(r.status_code == 200 for r in puts)


async def _deletes_audited(app: FastAPI, subject: str) -> list[dict[str, Any]]:
    return await rows(
        app,
        "SELECT method, status FROM audit_events WHERE subject_id = :id AND method = 'DELETE'",
        id=subject,
    )


class TestBenefitsPlansAndTiersAtOnce:
    """As earning rules: a replace racing a delete was a 500 on PostgreSQL (StaleDataError), and every delete
    answered 204 and announced the deletion."""

    async def test_replaces_and_deletes_of_one_benefit_at_once_answer_200_204_or_404(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        for _ in range(ROUNDS):
            benefit = await add_benefit(client, admin_key, "10% off", "percent_discount", percent=10)
            path = f"/v1/benefits/{benefit}"
            replaced = {"name": "12% off", "kind": "percent_discount", "properties": {"percent": 12}}
            puts, deletes = await _race(client, admin_key, path, replaced)
            applied = _answered_once(puts, deletes, "benefit_not_found")
            assert (await client.get(path, headers=bearer(admin_key))).status_code == 404
            changes = Counter(
                e["payload"]["change"]
                for e in await events(app, "benefit.changed")
                if e["payload"]["benefit_id"] == benefit
            )
            # The six replaces send the same terms: the first applied changes the benefit, the others find
            # it so and announce nothing.
            assert changes == Counter(created=1, replaced=min(applied, 1), deleted=1)
            assert await _deletes_audited(app, benefit) == [{"method": "DELETE", "status": 204}]

    async def test_replaces_and_deletes_of_one_plan_at_once_answer_200_204_or_404(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        for round_ in range(ROUNDS):
            code = f"plus-{round_}"
            plan = await add_plan(client, admin_key, code, price=1_500, unit="month")
            path = f"/v1/plans/{code}"
            replaced = {
                "name": "Plus",
                "price": cny(1_800),
                "interval": {"unit": "month", "count": 1},
                "trial_days": 0,
                "grace_days": 7,
                "benefit_ids": [],
                "coupons": [],
            }
            puts, deletes = await _race(client, admin_key, path, replaced)
            applied = _answered_once(puts, deletes, "plan_not_found")
            assert (await client.get(path, headers=bearer(admin_key))).status_code == 404
            changes = Counter(
                e["payload"]["change"]
                for e in await events(app, "plan.changed")
                if e["payload"]["plan_id"] == plan["id"]
            )
            # As for benefits: the first identical replace applied is the one change.
            assert changes == Counter(created=1, replaced=min(applied, 1), deleted=1)
            assert await _deletes_audited(app, code) == [{"method": "DELETE", "status": 204}]

    async def test_replaces_and_deletes_of_one_tier_at_once_answer_200_204_or_404(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "base", rank=0)
        for round_ in range(ROUNDS):
            code = f"gold-{round_}"
            await add_tier(client, admin_key, code, rank=1, threshold=1_000)
            ladder_changes = len(await events(app, "tier_ladder.changed"))
            path = f"/v1/tiers/{code}"
            replaced = {
                "name": "Gold+",
                "rank": 1,
                "metric": "spend",
                "window": "calendar_year",
                "threshold": 2_000,
                "points_multiplier": "1",
                "grace_days": 0,
                "benefit_ids": [],
            }
            puts, deletes = await _race(client, admin_key, path, replaced)
            applied = _answered_once(puts, deletes, "tier_not_found")
            assert (await client.get(path, headers=bearer(admin_key))).status_code == 404
            # a new ladder version for the first replace applied (the others send the same tier again and
            # change nothing) and the one delete
            assert len(await events(app, "tier_ladder.changed")) == ladder_changes + min(applied, 1) + 1
            assert await _deletes_audited(app, code) == [{"method": "DELETE", "status": 204}]


class TestPartnersAtOnce:
    async def test_the_same_partner_put_sent_at_once_is_one_change(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """Operators saving one partner at once: each replace compares what it sends with what the one before
        it left, so the terms and joint benefits saved eight times are announced once."""
        benefit = await add_benefit(client, admin_key, "Free coffee", "percent_discount", percent=5)
        made = await client.post(
            "/v1/partners", json={"code": "books", "name": "Books"}, headers=bearer(admin_key)
        )
        assert made.status_code == 201, made.text
        body = {"name": "Books & Co", "status": "active", "earn_rate": "0.5", "benefit_ids": [benefit]}

        replies = await asyncio.gather(
            *(client.put("/v1/partners/books", json=body, headers=bearer(admin_key)) for _ in range(8))
        )

        assert [r.status_code for r in replies] == [200] * 8, [r.text for r in replies if r.is_error]
        changes = [e["payload"]["change"] for e in await events(app, "partner.changed")]
        assert changes == ["created", "replaced"]
        assert {r.json()["benefit_ids"][0] for r in replies} == {benefit}


@pytest.mark.skipif(
    not is_postgres(), reason="holds a subscription's row from a second PostgreSQL connection"
)
class TestPlanPriceChangeBesidePayments:
    async def test_a_price_change_and_a_payment_moving_a_subscription_onto_the_plan_both_go_through(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, ecommerce_key: str
    ) -> None:
        """Billing's payment (or a plan change) locks the subscription, then writing its plan takes a
        key-share lock on the plan's row for the foreign key; a price change locks the plan, then its renotice
        waits for that subscription. A replace holding the plan FOR UPDATE made that a deadlock (a 500)."""
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", price=1_500, unit="month")
        _, subscription = await new_paid_subscriber(client, ecommerce_key, "plus")
        plan_id = uuid.UUID((await client.get("/v1/plans/plus", headers=bearer(admin_key))).json()["id"])
        # Billing has been told the next period's price: the price change tells it again.
        await store_as_older_code_did(app, subscription["id"], notice_sent_for=subscription["period"])
        units: UnitsOfWork = app.state.units
        async with units.database.engine.connect() as payment:  # billing's payment, under way
            await payment.execute(
                text("SELECT 1 FROM subscriptions WHERE id = :s FOR UPDATE"),
                {"s": uuid.UUID(subscription["id"])},
            )
            plan = (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json()
            body = {k: plan[k] for k in ("name", "interval", "trial_days", "grace_days", "coupons", "active")}
            body |= {"price": cny(1_800), "benefit_ids": []}
            change = asyncio.create_task(client.put("/v1/plans/plus", json=body, headers=bearer(admin_key)))
            await asyncio.sleep(0.5)  # the price change holds the plan and waits for the subscription
            await payment.execute(text("SELECT 1 FROM plans WHERE id = :p FOR KEY SHARE"), {"p": plan_id})
            await payment.commit()
        answer = await change
        assert answer.status_code == 200, answer.text
        assert answer.json()["price"] == cny(1_800)
