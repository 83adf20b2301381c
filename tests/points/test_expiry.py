from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.points.expiry import expire_points
from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import events, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import earn, hold_points, points, set_program


@pytest.fixture
async def member_id(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> str:
    await set_program(client, admin_key, expiry_months=12)
    return str((await enrol(client, pos_key))["id"])


class TestExpiry:
    async def test_points_expire_twelve_months_after_earning_oldest_first(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="E1")  # 100, earned 2026-03-16
        clock.advance(timedelta(days=60))
        await earn(client, pos_key, member_id, 20_000, order_ref="E2")  # 200, earned 2026-05-15
        summary = await points(client, pos_key, member_id)
        assert [(e["month"], e["points"]) for e in summary["expiring"]] == [
            ("2027-03", 100),
            ("2027-05", 200),
        ]

        clock.advance(timedelta(days=300))  # 2027-03-11: nothing due yet
        assert (await expire_points(app.state.units)).points == 0
        clock.advance(timedelta(days=6))  # 2027-03-17: the first lot is due
        run = await expire_points(app.state.units)
        assert (run.members, run.points) == (1, 100)
        assert (await expire_points(app.state.units)).points == 0
        assert (await points(client, pos_key, member_id))["balance"] == 200
        [event] = await events(app, "points.expired")
        assert event["payload"]["points"] == 100
        await assert_ledger_invariant(app, member_id)

    async def test_spending_uses_the_soonest_expiring_points(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="E3")
        clock.advance(timedelta(days=30))
        await earn(client, pos_key, member_id, 10_000, order_ref="E4")
        await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 100, "order_ref": "E5"},
            headers=bearer(pos_key),
        )
        clock.advance(timedelta(days=340))  # past the first lot's expiry only
        assert (await expire_points(app.state.units)).points == 0
        assert (await points(client, pos_key, member_id))["balance"] == 100

    async def test_held_points_are_spared_until_the_hold_ends(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="E6")
        clock.advance(timedelta(days=364))  # a day before the points end, a checkout holds 60 of them
        hold = await client.post(
            f"/v1/members/{member_id}/holds",
            json={"points": 60, "order_ref": "W1", "ttl_seconds": 7 * 24 * 3600},
            headers=bearer(pos_key),
        )
        clock.advance(timedelta(days=2))
        assert (await expire_points(app.state.units)).points == 40
        released = await client.post(f"/v1/holds/{hold.json()['id']}/release", headers=bearer(pos_key))
        assert released.json()["balance"] == 0  # the 60 it spared expire as it lets them go
        assert (await expire_points(app.state.units)).points == 0
        assert [e["payload"]["points"] for e in await events(app, "points.expired")] == [40, 60]
        assert (await points(client, pos_key, member_id))["balance"] == 0
        await assert_ledger_invariant(app, member_id)

    async def test_two_runs_at_once_expire_each_point_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        others = [str((await enrol(client, pos_key))["id"]) for _ in range(4)]
        for who in [member_id, *others]:
            await earn(client, pos_key, who, 10_000)
        clock.advance(timedelta(days=400))
        runs = await asyncio.gather(expire_points(app.state.units), expire_points(app.state.units))
        assert sum(run.points for run in runs) == 500
        assert len(await events(app, "points.expired")) == 5
        await assert_ledger_invariant(app)

    async def test_points_past_their_end_cannot_be_spent_before_the_job_runs(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="E7")
        clock.advance(timedelta(days=400))
        response = await client.post(
            f"/v1/members/{member_id}/redeem", json={"points": 50, "order_ref": "E8"}, headers=bearer(pos_key)
        )
        assert response.status_code == 422
        assert response.json()["code"] == "insufficient_points"
        assert response.json()["available"] == 0
        # A refusal writes nothing, the expiry included: the job records it.
        assert await events(app, "points.expired") == []
        assert (await expire_points(app.state.units)).points == 100
        assert (await points(client, pos_key, member_id))["balance"] == 0
        await assert_ledger_invariant(app, member_id)

    async def test_the_balance_read_before_the_jobs_run_is_the_one_a_spend_finds(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        ecommerce_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="E9")  # 100, ending in 12 months
        clock.advance(timedelta(days=300))
        await earn(client, pos_key, member_id, 5_000, order_ref="E10")  # 50, good for a year yet
        hold = await client.post(
            f"/v1/members/{member_id}/holds",
            json={"points": 30, "order_ref": "W9", "ttl_seconds": 60},
            headers=bearer(ecommerce_key),
        )
        assert hold.status_code == 201, hold.text
        clock.advance(timedelta(days=100))  # the first lot has ended, the hold has run out; no job has run

        def shown(summary: dict[str, object]) -> tuple[object, object, object]:
            return summary["balance"], summary["held"], summary["available"]

        assert shown(await points(client, pos_key, member_id)) == (50, 0, 50)
        member = (await client.get(f"/v1/members/{member_id}", headers=bearer(pos_key))).json()
        assert member["points"] == 50
        found = await client.get(
            "/v1/members/lookup", params={"member_number": member["member_number"]}, headers=bearer(pos_key)
        )
        assert found.json()["points"] == 50
        query = f'{{ loyaltyMember(id: "{member_id}") {{ pointsAccount {{ balance held available }} }} }}'
        graphql = await client.post(
            "/graphql",
            json={"query": query},
            headers=bearer(pos_key),
        )
        assert graphql.json()["data"]["loyaltyMember"]["pointsAccount"] == {
            "balance": 50,
            "held": 0,
            "available": 50,
        }
        # What the reads showed is what a spend finds, and what the jobs leave.
        too_much = await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 51, "order_ref": "E11"},
            headers=bearer(pos_key),
        )
        assert (too_much.status_code, too_much.json()["available"]) == (422, 50)
        assert (await expire_points(app.state.units)).points == 100
        assert shown(await points(client, pos_key, member_id)) == (50, 0, 50)
        await assert_ledger_invariant(app, member_id)

    async def test_members_whose_points_are_held_do_not_starve_the_others(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key, expiry_months=12)
        held, free = [], []
        for n in range(6):
            member = str((await enrol(client, pos_key))["id"])
            await earn(client, pos_key, member, 10_000)
            (held if n % 2 else free).append(member)
        clock.advance(timedelta(days=364))
        for member in held:
            response = await client.post(
                f"/v1/members/{member}/holds",
                json={"points": 100, "order_ref": f"H-{member[-6:]}", "ttl_seconds": 7 * 24 * 3600},
                headers=bearer(pos_key),
            )
            assert response.status_code == 201, response.text
        clock.advance(timedelta(days=2))
        run = await expire_points(app.state.units, batch=2)
        assert (run.members, run.points) == (3, 300)  # the held members' points wait for their holds
        for member in free:
            assert (await points(client, pos_key, member))["balance"] == 0
        await assert_ledger_invariant(app)

    async def test_an_erased_members_points_expire_in_the_figures_without_an_event(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        """After `member.erased`, receivers heard `points.expired` about the erased member a year on. Their
        anonymous account still loses the points (the analytics count them expired), but no event says so."""
        await earn(client, pos_key, member_id, 10_000)
        erased = await client.post(f"/v1/members/{member_id}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        clock.advance(timedelta(days=400))

        assert (await expire_points(app.state.units)).points == 100

        assert await events(app, "points.expired") == []
        [entry] = await rows(app, "SELECT amount FROM ledger_entries WHERE type = 'expire'")
        assert entry["amount"] == -100
        await assert_ledger_invariant(app, member_id)


class TestAnswersBeforeTheJobsRun:
    """An earn or an adjustment answered with the account's row, which still counted points past their end
    and points of holds past their time until the jobs ran: the till printed a balance no read showed."""

    async def test_an_earn_answers_with_what_a_read_shows(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000)  # 100, ending in 12 months
        clock.advance(timedelta(days=366))
        earned = await earn(client, pos_key, member_id, 5_000)  # 50
        summary = await points(client, pos_key, member_id)
        assert (
            (earned["balance"], earned["available"]) == (summary["balance"], summary["available"]) == (50, 50)
        )
        assert [e["payload"]["points"] for e in await events(app, "points.expired")] == [100]
        assert (await expire_points(app.state.units)).points == 0
        await assert_ledger_invariant(app, member_id)

    async def test_an_earn_frees_the_points_of_a_hold_past_its_time(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000)
        await hold_points(client, pos_key, member_id, 60, "W-PAST", ttl=60)
        clock.advance(timedelta(minutes=5))
        earned = await earn(client, pos_key, member_id, 5_000)
        summary = await points(client, pos_key, member_id)
        assert (
            (earned["balance"], earned["available"])
            == (summary["balance"], summary["available"])
            == (150, 150)
        )
        await assert_ledger_invariant(app, member_id)

    async def test_an_adjustment_answers_with_what_a_read_shows(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        await earn(client, pos_key, member_id, 10_000)
        clock.advance(timedelta(days=366))
        adjusted = await client.post(
            f"/v1/members/{member_id}/adjustments",
            json={"points": 30, "reason": "goodwill"},
            headers=bearer(admin_key),
        )
        assert adjusted.status_code in (200, 201), adjusted.text
        summary = await points(client, pos_key, member_id)
        assert (adjusted.json()["balance"], summary["balance"]) == (30, 30)
        await assert_ledger_invariant(app, member_id)

    async def test_an_earn_beside_a_hold_sparing_ended_points_answers_what_a_read_shows(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """The hold spared the ended points until the earn freed points for them to expire from."""
        await earn(client, pos_key, member_id, 10_000)  # 100, ending in 12 months
        clock.advance(timedelta(days=364))
        await hold_points(client, pos_key, member_id, 100, "CART", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))
        earned = await earn(client, pos_key, member_id, 5_000)
        read = await points(client, pos_key, member_id)
        assert (earned["balance"], earned["available"]) == (read["balance"], read["available"]) == (100, 0)
        await assert_ledger_invariant(app, member_id)

    async def test_an_adjustment_beside_a_hold_sparing_ended_points_answers_what_a_read_shows(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        await earn(client, pos_key, member_id, 10_000)  # 100, ending in 12 months
        clock.advance(timedelta(days=364))
        await hold_points(client, pos_key, member_id, 100, "CART", ttl=3 * 24 * 3600)
        clock.advance(timedelta(days=2))
        adjusted = await client.post(
            f"/v1/members/{member_id}/adjustments",
            json={"points": 30, "reason": "goodwill"},
            headers=bearer(admin_key),
        )
        assert adjusted.status_code == 201, adjusted.text
        read = await points(client, pos_key, member_id)
        answered = (adjusted.json()["balance"], adjusted.json()["available"])
        assert answered == (read["balance"], read["available"]) == (100, 0)
        await assert_ledger_invariant(app, member_id)

    async def test_a_release_or_a_capture_answers_what_a_read_shows(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """Points past their end that the hold spared expire once it lets them go: the answer gave the row's
        balance, the released (or the uncaptured) points still in it."""
        await earn(client, pos_key, member_id, 10_000)  # 100, ending in 12 months
        clock.advance(timedelta(days=364))
        holds = []
        for order_ref, held in (("CART-1", 60), ("CART-2", 40)):
            made = await client.post(
                f"/v1/members/{member_id}/holds",
                json={"points": held, "order_ref": order_ref, "ttl_seconds": 3 * 24 * 3600},
                headers=bearer(pos_key),
            )
            assert made.status_code == 201, made.text
            holds.append(made.json()["id"])
        clock.advance(timedelta(days=2))  # the points have ended; the holds spare them
        captured = await client.post(
            f"/v1/holds/{holds[0]}/capture", json={"points": 20}, headers=bearer(pos_key)
        )
        assert captured.status_code == 200, captured.text
        read = await points(client, pos_key, member_id)
        assert (captured.json()["balance"], captured.json()["available"]) == (
            read["balance"],
            read["available"],
        )
        assert (read["balance"], read["available"]) == (40, 0)
        released = await client.post(f"/v1/holds/{holds[1]}/release", headers=bearer(pos_key))
        assert released.status_code == 200, released.text
        read = await points(client, pos_key, member_id)
        assert (released.json()["balance"], released.json()["available"]) == (
            read["balance"],
            read["available"],
        )
        assert read["balance"] == 0
        await assert_ledger_invariant(app, member_id)


class TestExpiryInTheProgrammesTimeZone:
    @pytest.mark.parametrize(
        ("zone", "earned_at", "ends_at"),
        [
            # 30 March, 21:00 in New York (already the 31st in UTC): one month on is 30 April, 21:00 there.
            (
                "America/New_York",
                datetime(2026, 3, 31, 1, 0, tzinfo=UTC),
                datetime(2026, 5, 1, 1, 0, tzinfo=UTC),
            ),
            # 31 March, 07:00 in Shanghai (still the 30th in UTC): one month on is 30 April, its last day.
            (
                "Asia/Shanghai",
                datetime(2026, 3, 30, 23, 0, tzinfo=UTC),
                datetime(2026, 4, 29, 23, 0, tzinfo=UTC),
            ),
            # 10 January, noon in New York (EST): six months on is 10 July, noon there (EDT).
            (
                "America/New_York",
                datetime(2026, 1, 10, 17, 0, tzinfo=UTC),
                datetime(2026, 7, 10, 16, 0, tzinfo=UTC),
            ),
        ],
        ids=["new-york-month-end", "shanghai-month-end", "new-york-dst"],
    )
    async def test_points_end_the_months_later_on_the_programmes_calendar(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
        zone: str,
        earned_at: datetime,
        ends_at: datetime,
    ) -> None:
        months = 6 if ends_at.month == 7 else 1
        await set_program(client, admin_key, timezone=zone, expiry_months=months)
        clock.set(earned_at)
        member_id = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, member_id, 10_000, order_ref="TZ1")
        [lot] = await rows(app, "SELECT expires_at FROM point_lots")
        assert _utc(lot["expires_at"]) == ends_at

        clock.set(ends_at - timedelta(seconds=1))
        assert (await expire_points(app.state.units)).points == 0
        assert (await points(client, pos_key, member_id))["balance"] == 100
        clock.set(ends_at)
        assert (await expire_points(app.state.units)).points == 100
        assert (await expire_points(app.state.units)).points == 0
        assert (await points(client, pos_key, member_id))["balance"] == 0
        await assert_ledger_invariant(app, member_id)


def _utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
