"""The programme's return window: a referrer's points wait it out, a return within it that leaves the purchase
short of the referral minimum voids the referral, and the points purchases earned within it cannot be sent to
another member or a partner until it has passed (buy, give the points away, return the purchase)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Uuid, bindparam, text

from loyalty_api.clock import FrozenClock
from loyalty_api.points.referrals import credit_referrers
from tests.activities.test_leaderboard import board, opt_in, places
from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.databases import is_postgres
from tests.inspect_db import events, rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import exchange_out, iso, link, register_partner
from tests.points.helpers import earn, next_order, points, set_program

WINDOW = {"return_window_days": 14}
REFERRAL = {
    "referral_friend_points": 200,
    "referral_referrer_points": 500,
    "referral_min_purchase_minor": 5_000,
}


async def refund(client: httpx.AsyncClient, key: str, order_ref: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/orders/{order_ref}/refund", json=body, headers=bearer(key))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def referred(client: httpx.AsyncClient, pos_key: str) -> tuple[str, str]:
    referrer = await enrol(client, pos_key)
    friend = await enrol(client, pos_key, referral_code=referrer["referral_code"])
    return str(referrer["id"]), str(friend["id"])


async def rewarded_purchase(client: httpx.AsyncClient, pos_key: str) -> tuple[str, str, str]:
    """A referrer, the friend they referred, and the friend's first purchase (100 yuan: 100 points and the
    friend's 200 referral points); the order's reference."""
    referrer, friend = await referred(client, pos_key)
    order = next_order()
    await earn(client, pos_key, friend, 10_000, order_ref=order)
    return referrer, friend, order


async def reward_row(app: FastAPI, friend: str) -> dict[str, Any]:
    [found] = await rows(
        app,
        "SELECT credited_at, referrer_credited, voided_at FROM referral_rewards WHERE friend_id = :f",
        f=uuid.UUID(friend),
    )
    return found


async def last_entry(client: httpx.AsyncClient, key: str, member: str) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{member}/ledger", headers=bearer(key))
    assert response.status_code == 200, response.text
    entry: dict[str, Any] = response.json()["items"][0]
    return entry


async def balance(client: httpx.AsyncClient, key: str, member: str) -> int:
    found: int = (await points(client, key, member))["balance"]
    return found


class TestReferralsWaitOutTheWindow:
    async def test_the_referrer_is_credited_once_the_window_has_passed(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        referrer, friend = await referred(client, pos_key)
        assert (await earn(client, pos_key, friend, 10_000))["balance"] == 100 + 200  # the friend's at once
        clock.advance(timedelta(days=13, hours=23))
        assert await credit_referrers(units_of(app)) == 0
        assert await balance(client, pos_key, referrer) == 0
        clock.advance(timedelta(hours=1))
        assert await credit_referrers(units_of(app)) == 1
        assert await balance(client, pos_key, referrer) == 500
        assert (await reward_row(app, friend))["voided_at"] is None

    async def test_a_return_within_the_window_voids_the_referral(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        referrer, friend, order = await rewarded_purchase(client, pos_key)
        clock.advance(timedelta(days=3))
        # 60 of 100 yuan back: 40 yuan left, below the 50-yuan minimum.
        answer = await refund(client, pos_key, order, amount={"amount": 6_000, "currency": "CNY"})
        assert (answer["points_taken_back"], answer["referral_taken_back"]) == (60, 200)
        assert answer["balance"] == 100 + 200 - 60 - 200
        mine = await points(client, pos_key, friend)
        assert (mine["balance"], mine["lifetime_earned"]) == (40, 40)  # none of the reward was earned
        # Taken back as a refund takes back what the purchase earned.
        void = await last_entry(client, admin_key, friend)
        assert (void["type"], void["amount"], void["order_ref"]) == ("refund", -200, order)
        assert void["details"] == {
            "referral_voided": True,
            "taken_back": 200,
            "given_back": 0,
            "not_taken_back": 0,
        }
        voided = [e["payload"] for e in await events(app, "referral.voided")]
        assert sorted((e["role"], e["member_id"], e["points_taken_back"]) for e in voided) == sorted(
            [("friend", friend, 200), ("referrer", referrer, 0)]
        )
        # The window passes: the referrer gets nothing, and the job never looks at the reward again.
        clock.advance(timedelta(days=30))
        assert await credit_referrers(units_of(app)) == 0
        assert await balance(client, pos_key, referrer) == 0
        reward = await reward_row(app, friend)
        assert reward["voided_at"] is not None and not reward["referrer_credited"]
        # The friend's export says so; the referrer's too.
        for member, role in ((friend, "friend"), (referrer, "referrer")):
            export = await client.get(f"/v1/members/{member}/export", headers=bearer(admin_key))
            assert export.status_code == 200, export.text
            [side] = export.json()["engagement"]["referral_rewards"]
            assert (side["role"], side["status"]) == (role, "voided")
        for member in (referrer, friend):
            await assert_ledger_invariant(app, member)

    async def test_a_return_that_leaves_the_purchase_qualifying_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        referrer, _, order = await rewarded_purchase(client, pos_key)
        answer = await refund(client, pos_key, order, amount={"amount": 5_000, "currency": "CNY"})
        assert (answer["points_taken_back"], answer["referral_taken_back"]) == (50, 0)  # 50 yuan still counts
        assert await events(app, "referral.voided") == []
        clock.advance(timedelta(days=14))
        assert await credit_referrers(units_of(app)) == 1
        assert await balance(client, pos_key, referrer) == 500

    async def test_points_the_friend_spent_are_not_owed(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        _, friend, order = await rewarded_purchase(client, pos_key)  # 100 + 200
        spent = await client.post(
            f"/v1/members/{friend}/redeem",
            json={"points": 250, "order_ref": next_order()},
            headers=bearer(pos_key),
        )
        assert spent.status_code == 200, spent.text
        answer = await refund(client, pos_key, order, full=True)
        # 100 earned points to take back from 50: 50 taken, 50 owed; nothing left for the reward's 200.
        taken = (answer["points_taken_back"], answer["shortfall"], answer["referral_taken_back"])
        assert taken == (50, 50, 0)
        void = await last_entry(client, admin_key, friend)
        assert (void["type"], void["amount"], void["details"]["not_taken_back"]) == ("refund", 0, 200)
        assert (await points(client, pos_key, friend))["balance"] == 0
        assert (await reward_row(app, friend))["voided_at"] is not None
        await assert_ledger_invariant(app, friend)

    async def test_a_return_after_the_window_leaves_the_reward_though_the_job_has_not_run(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        referrer, friend, order = await rewarded_purchase(client, pos_key)
        clock.advance(timedelta(days=20))  # the worker was down: the referrer is not credited yet
        answer = await refund(client, pos_key, order, full=True)
        assert (answer["points_taken_back"], answer["referral_taken_back"]) == (100, 0)
        assert (await reward_row(app, friend))["voided_at"] is None
        assert await credit_referrers(units_of(app)) == 1
        assert await balance(client, pos_key, referrer) == 500

    async def test_a_receipt_synced_late_counts_the_window_from_the_purchase(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        # A till offline for ten days syncs the friend's first purchase (occurred_at); five days on, the
        # purchase is fifteen days old: past the 14-day window, so the reward stands.
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        referrer, friend = await referred(client, pos_key)
        order = next_order()
        bought = clock.now() - timedelta(days=10)
        await earn(client, pos_key, friend, 10_000, order_ref=order, occurred_at=iso(bought))
        clock.advance(timedelta(days=3, hours=23))  # 13 days 23 hours since the purchase
        assert await credit_referrers(units_of(app)) == 0
        clock.advance(timedelta(days=1, hours=1))  # 15 days
        answer = await refund(client, pos_key, order, full=True)
        assert (answer["points_taken_back"], answer["referral_taken_back"]) == (100, 0)
        assert await balance(client, pos_key, friend) == 200
        assert (await reward_row(app, friend))["voided_at"] is None
        assert await credit_referrers(units_of(app)) == 1
        assert await balance(client, pos_key, referrer) == 500
        for member in (referrer, friend):
            await assert_ledger_invariant(app, member)

    async def test_a_receipt_synced_late_is_voided_by_a_return_within_the_window(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        referrer, friend = await referred(client, pos_key)
        order = next_order()
        bought = clock.now() - timedelta(days=10)
        await earn(client, pos_key, friend, 10_000, order_ref=order, occurred_at=iso(bought))
        clock.advance(timedelta(days=3))  # 13 days since the purchase
        answer = await refund(client, pos_key, order, full=True)
        assert (answer["points_taken_back"], answer["referral_taken_back"]) == (100, 200)
        clock.advance(timedelta(days=30))
        assert await credit_referrers(units_of(app)) == 0
        assert await balance(client, pos_key, referrer) == 0

    async def test_a_return_is_measured_against_the_minimum_the_purchase_qualified_under(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        _, _, order = await rewarded_purchase(client, pos_key)
        raised = REFERRAL | {"referral_min_purchase_minor": 20_000}
        await set_program(client, admin_key, **raised, **WINDOW)
        answer = await refund(client, pos_key, order, amount={"amount": 100, "currency": "CNY"})
        assert answer["referral_taken_back"] == 0  # 99 yuan kept: still past the 50 it qualified with
        answer = await refund(client, pos_key, order, amount={"amount": 5_000, "currency": "CNY"})
        assert answer["referral_taken_back"] == 200  # 49 yuan kept

    async def test_the_void_counts_as_taken_back_in_the_analytics_and_from_the_purchases_week(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL, **WINDOW)
        _, friend = await referred(client, pos_key)
        await opt_in(client, pos_key, friend)
        order = next_order()
        await earn(client, pos_key, friend, 10_000, order_ref=order)  # 100 + 200 this week
        week = (await board(client, pos_key, period="week"))["start"]
        assert places(await board(client, pos_key, period="week")) == [(1, friend, 300)]
        clock.advance(timedelta(days=7))  # next week, within the window
        await refund(client, pos_key, order, full=True)
        # Nothing of the returned purchase stands on its week's board, nor shows on this week's.
        assert places(await board(client, pos_key, period="week", **{"from": week})) == []
        assert places(await board(client, pos_key, period="week")) == []
        now = clock.now()
        today = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
        report = await client.get("/v1/analytics/points", params=today, headers=bearer(admin_key))
        assert report.status_code == 200, report.text
        [figures] = report.json()["items"]
        assert (figures["issued"], figures["taken_back"], figures["net"]) == (0, 300, -300)

    async def test_without_a_window_the_credited_reward_stands(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **REFERRAL)  # return_window_days 0: as before
        referrer, friend, order = await rewarded_purchase(client, pos_key)
        assert await credit_referrers(units_of(app)) == 1
        answer = await refund(client, pos_key, order, full=True)
        assert (answer["points_taken_back"], answer["referral_taken_back"]) == (100, 0)
        assert await balance(client, pos_key, friend) == 200
        assert await balance(client, pos_key, referrer) == 500
        assert (await reward_row(app, friend))["voided_at"] is None

    async def test_the_window_cannot_be_negative(self, client: httpx.AsyncClient, admin_key: str) -> None:
        program = (await client.get("/v1/program", headers=bearer(admin_key))).json()
        response = await client.put(
            "/v1/program", json=program | {"return_window_days": -1}, headers=bearer(admin_key)
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"


class TestSendingPointsWaitsOutTheWindow:
    async def test_a_purchases_points_are_sent_only_once_the_window_has_passed(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, transfers_enabled=True, **WINDOW)
        sender, recipient = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        given = await client.post(
            f"/v1/members/{sender}/adjustments",
            json={"points": 300, "reason": "goodwill"},
            headers=bearer(admin_key),
        )
        assert given.status_code == 201, given.text
        await earn(client, pos_key, sender, 100_000)  # 1,000 points a return could still take back
        before = await table_counts(app, "ledger_entries", "point_lots", "outbox_events")
        body = {"to_member_id": recipient, "points": 301}
        path = f"/v1/members/{sender}/transfers"
        refused = await client.post(path, json=body, headers=bearer(admin_key))
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "points_in_return_window"
        assert (problem["available"], problem["transferable"], problem["requested"]) == (1_300, 300, 301)
        assert problem["return_window_days"] == 14
        assert await table_counts(app, "ledger_entries", "point_lots", "outbox_events") == before
        sent = await client.post(path, json=body | {"points": 300}, headers=bearer(admin_key))
        assert sent.status_code == 201, sent.text
        clock.advance(timedelta(days=14))
        rest = await client.post(path, json=body | {"points": 1_000}, headers=bearer(admin_key))
        assert rest.status_code == 201, rest.text
        assert (await balance(client, admin_key, sender), await balance(client, admin_key, recipient)) == (
            0,
            1_300,
        )

    async def test_a_returned_purchase_no_longer_holds_back_other_points(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, transfers_enabled=True, **WINDOW)
        sender, recipient = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        given = await client.post(
            f"/v1/members/{sender}/adjustments",
            json={"points": 300, "reason": "goodwill"},
            headers=bearer(admin_key),
        )
        assert given.status_code == 201, given.text
        order = next_order()
        await earn(client, pos_key, sender, 100_000, order_ref=order)
        await refund(client, pos_key, order, amount={"amount": 60_000, "currency": "CNY"})  # 600 taken back
        path = f"/v1/members/{sender}/transfers"
        body = {"to_member_id": recipient, "points": 301}
        refused = await client.post(path, json=body, headers=bearer(admin_key))
        assert refused.status_code == 422, refused.text
        assert (refused.json()["available"], refused.json()["transferable"]) == (700, 300)
        await refund(client, pos_key, order, full=True)
        sent = await client.post(path, json=body | {"points": 300}, headers=bearer(admin_key))
        assert sent.status_code == 201, sent.text

    async def test_more_than_is_available_is_still_insufficient_points(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, transfers_enabled=True, **WINDOW)
        sender, recipient = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        await earn(client, pos_key, sender, 10_000)
        refused = await client.post(
            f"/v1/members/{sender}/transfers",
            json={"to_member_id": recipient, "points": 101},
            headers=bearer(admin_key),
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "insufficient_points"

    async def test_an_exchange_to_a_partner_waits_too(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key, **WINDOW)
        partner_key = await register_partner(app, client, admin_key, "cafe", exchange_out_rate="1")
        member = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, partner_key, member, "cafe", "C-1")
        await earn(client, pos_key, member, 10_000)
        refused = await exchange_out(client, pos_key, member, "cafe", 50)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["code"], refused.json()["transferable"]) == ("points_in_return_window", 0)
        clock.advance(timedelta(days=14))
        sent = await exchange_out(client, pos_key, member, "cafe", 50)
        assert sent.status_code == 201, sent.text


# Berlin moves its clocks on an hour on 29 March 2026 and back on 25 October: 14 days from noon there end at
# noon there, an hour before or after 14 times 24 hours.
ACROSS_A_CLOCK_CHANGE = pytest.mark.parametrize(
    ("bought", "ends"),
    [
        (datetime(2026, 3, 20, 11, tzinfo=UTC), datetime(2026, 4, 3, 10, tzinfo=UTC)),
        (datetime(2026, 10, 20, 10, tzinfo=UTC), datetime(2026, 11, 3, 11, tzinfo=UTC)),
    ],
    ids=["spring", "autumn"],
)


class TestTheWindowIsTheProgrammesCalendarDays:
    """A shop's "returns within 14 days" of a purchase at noon end at noon 14 days on, as its till's clock
    reads them: the return window runs to the same time on the programme's clock."""

    @ACROSS_A_CLOCK_CHANGE
    async def test_the_referrer_is_credited_and_the_points_sent_as_the_window_ends_there(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        clock: FrozenClock,
        admin_key: str,
        pos_key: str,
        bought: datetime,
        ends: datetime,
    ) -> None:
        await set_program(
            client, admin_key, timezone="Europe/Berlin", transfers_enabled=True, **REFERRAL, **WINDOW
        )
        referrer, friend = await referred(client, pos_key)
        other = str((await enrol(client, pos_key))["id"])
        clock.set(bought)
        await earn(client, pos_key, friend, 10_000)  # 100 points and the friend's 200
        path = f"/v1/members/{friend}/transfers"
        body = {"to_member_id": other, "points": 300}

        clock.set(ends - timedelta(minutes=1))
        assert await credit_referrers(units_of(app)) == 0
        refused = await client.post(path, json=body, headers=bearer(admin_key))
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "points_in_return_window"

        clock.set(ends)
        assert await credit_referrers(units_of(app)) == 1
        assert await balance(client, pos_key, referrer) == 500
        sent = await client.post(path, json=body, headers=bearer(admin_key))
        assert sent.status_code == 201, sent.text

    @ACROSS_A_CLOCK_CHANGE
    async def test_a_return_voids_the_referral_until_the_window_ends_there(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        clock: FrozenClock,
        admin_key: str,
        pos_key: str,
        bought: datetime,
        ends: datetime,
    ) -> None:
        await set_program(client, admin_key, timezone="Europe/Berlin", **REFERRAL, **WINDOW)
        clock.set(bought)
        (_, within, returned_within), (_, after, returned_after) = [
            await rewarded_purchase(client, pos_key) for _ in range(2)
        ]
        clock.set(ends - timedelta(minutes=1))
        assert (await refund(client, pos_key, returned_within, full=True))["referral_taken_back"] == 200
        clock.set(ends)  # the worker has not credited the other referrer yet
        assert (await refund(client, pos_key, returned_after, full=True))["referral_taken_back"] == 0
        assert (await reward_row(app, within))["voided_at"] is not None
        assert (await reward_row(app, after))["voided_at"] is None


_HOLD_MEMBER = text("SELECT 1 FROM members WHERE id = :m FOR UPDATE").bindparams(bindparam("m", type_=Uuid()))


@pytest.mark.skipif(
    not is_postgres(), reason="a return, the referral job and a transfer at once: PostgreSQL's locks"
)
class TestConcurrency:
    @pytest.mark.parametrize("window", [0, 14])
    async def test_a_return_never_waits_for_the_referral_job(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        clock: FrozenClock,
        admin_key: str,
        pos_key: str,
        window: int,
    ) -> None:
        """A transfer from the referrer to the friend (the referrer's id first) holds the referrer and waits
        for the friend; the job holds the reward and waits for the referrer; the friend's return holds the
        friend. Had the return waited for the reward, the three would deadlock (a 500)."""
        await set_program(client, admin_key, transfers_enabled=True, return_window_days=window, **REFERRAL)
        referrer, friend = await referred(client, pos_key)
        assert uuid.UUID(referrer) < uuid.UUID(friend)  # ids are time-ordered: the transfer locks it first
        given = await client.post(
            f"/v1/members/{referrer}/adjustments",
            json={"points": 100, "reason": "x"},
            headers=bearer(admin_key),
        )
        assert given.status_code == 201, given.text
        order = next_order()
        await earn(client, pos_key, friend, 10_000, order_ref=order)
        units = units_of(app)
        clock.advance(timedelta(days=window))  # the window's last instant: the job takes the reward

        # Something briefly holding the friend's member row (a profile change) lines the three up.
        async with units.database.engine.connect() as other:
            await other.execute(_HOLD_MEMBER, {"m": uuid.UUID(friend)})
            transfer = asyncio.ensure_future(
                client.post(
                    f"/v1/members/{referrer}/transfers",
                    json={"to_member_id": friend, "points": 10},
                    headers=bearer(admin_key),
                )
            )
            await asyncio.sleep(0.3)  # the transfer holds the referrer, waits for the friend's row
            job = asyncio.ensure_future(credit_referrers(units))
            await asyncio.sleep(0.3)  # the job holds the reward, waits for the referrer
            returned = asyncio.ensure_future(
                client.post(f"/v1/orders/{order}/refund", json={"full": True}, headers=bearer(pos_key))
            )
            await asyncio.sleep(1.0)
            await other.commit()
        sent, settled, answer = await asyncio.gather(transfer, job, returned)
        assert (sent.status_code, answer.status_code, settled) == (201, 200, 1), (sent.text, answer.text)
        # The job had the reward: it stands.
        assert answer.json()["referral_taken_back"] == 0
        assert await balance(client, pos_key, referrer) == 100 - 10 + 500
        for member in (referrer, friend):
            await assert_ledger_invariant(app, member)
