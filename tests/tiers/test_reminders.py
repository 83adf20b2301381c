"""Members hear, the programme's `tier_reminder_days` before the window that keeps their tier ends, what
keeping it takes: once for each window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.tiers.reminders import remind_tier_reviews
from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import events
from tests.points.helpers import earn, set_program
from tests.tiers.test_qualification import (
    KEPT_2026,
    KEPT_2027,
    MEMBER,
    SILVER,
    iso,
    put_override,
    review,
    standard_ladder,
    tier_of,
)

WINDOW_2026_END = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 1 January 2027 in Shanghai


@pytest.fixture
async def ladder(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key, tier_reminder_days=30)
    await standard_ladder(client, admin_key)  # silver at 100,000 of yearly spend, 30 days of grace


async def silver_member(client: httpx.AsyncClient, pos_key: str) -> str:
    member_id = str((await enrol(client, pos_key))["id"])
    assert (await earn(client, pos_key, member_id, 110_000))["tier"] == SILVER
    return member_id


async def reminders(app: FastAPI) -> list[dict[str, Any]]:
    return [event["payload"] for event in await events(app, "tier.review_due")]


async def remind(app: FastAPI, **kwargs: Any) -> int:
    return await remind_tier_reviews(app.state.units, **kwargs)


@pytest.mark.usefixtures("ladder")
class TestTierReminders:
    async def test_told_once_a_window_what_keeping_the_tier_takes(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        member_id = await silver_member(client, pos_key)  # 2026-03-16: silver kept until 2027-01-30
        assert await remind(app) == 0

        clock.advance(WINDOW_2026_END - timedelta(days=31) - clock.now())
        assert await remind(app) == 0  # the window ends in 31 days: not yet
        clock.advance(timedelta(days=2))
        assert await remind(app) == 1
        assert await reminders(app) == [
            {
                "member_id": member_id,
                "tier": SILVER,
                "metric": "spend",
                "value": 110_000,
                "threshold": 100_000,
                "remaining": 0,  # 2026 reached the bar already: the member keeps silver
                "window_start": "2025-12-31T16:00:00Z",
                "window_end": iso(WINDOW_2026_END),
                "kept_until": iso(KEPT_2026),
            }
        ]
        assert await remind(app) == 0

        clock.advance(KEPT_2026 - clock.now() + timedelta(hours=1))
        assert await review(app) == 1  # renewed: 2027 is judged now
        await earn(client, pos_key, member_id, 30_000)
        clock.advance(timedelta(days=300))  # 2027-11-27: 2027's window ends in about 34 days
        assert await remind(app) == 0
        clock.advance(timedelta(days=5))
        assert await remind(app) == 1
        latest = (await reminders(app))[-1]
        assert (latest["value"], latest["remaining"]) == (30_000, 70_000)
        assert (latest["window_start"], latest["window_end"]) == (
            "2026-12-31T16:00:00Z",
            "2027-12-31T16:00:00Z",
        )
        assert latest["kept_until"] == iso(KEPT_2027)
        assert await remind(app) == 0

    async def test_a_member_in_the_grace_or_under_an_override_is_not_told(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        await silver_member(client, pos_key)
        overridden = await silver_member(client, pos_key)
        await put_override(client, admin_key, overridden, "gold", KEPT_2026, "a VIP from another store")
        clock.advance(WINDOW_2026_END - clock.now() + timedelta(days=5))  # the window ended; the grace runs
        assert await remind(app) == 0
        assert await reminders(app) == []

    async def test_a_window_told_of_before_a_short_override_is_not_told_of_again_after_it(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        member_id = await silver_member(client, pos_key)
        clock.advance(WINDOW_2026_END - clock.now() - timedelta(days=25))
        assert await remind(app) == 1
        ends = clock.now() + timedelta(days=7)
        await put_override(client, admin_key, member_id, "gold", ends, "a week as gold")
        assert await remind(app) == 0
        clock.advance(timedelta(days=7, hours=1))
        assert await review(app) == 1  # the override ended: back on silver, kept until as before
        assert await remind(app) == 0
        assert len(await reminders(app)) == 1

    async def test_each_tier_is_told_its_own_grace_ahead(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        changed = await client.put(  # gold keeps a longer grace than silver's 30 days
            "/v1/tiers/gold",
            json={
                "name": "金卡",
                "rank": 2,
                "metric": "spend",
                "window": "calendar_year",
                "threshold": 500_000,
                "points_multiplier": "1.5",
                "grace_days": 90,
                "benefit_ids": [],
            },
            headers=bearer(admin_key),
        )
        assert changed.status_code == 200, changed.text
        silver = await silver_member(client, pos_key)
        gold = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, gold, 600_000)
        clock.advance(WINDOW_2026_END - clock.now() - timedelta(days=31))
        assert await remind(app) == 0  # both windows end with the year: not yet, whatever the grace
        clock.advance(timedelta(days=2))
        assert await remind(app) == 2
        told = {reminder["member_id"]: reminder for reminder in await reminders(app)}
        assert told[silver]["window_end"] == told[gold]["window_end"] == iso(WINDOW_2026_END)
        assert told[gold]["kept_until"] == iso(WINDOW_2026_END + timedelta(days=90))

    async def test_suspended_members_are_not_told(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        member_id = await silver_member(client, pos_key)
        told = await silver_member(client, pos_key)
        suspended = await client.patch(
            f"/v1/members/{member_id}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert suspended.status_code == 200, suspended.text
        clock.advance(WINDOW_2026_END - clock.now() - timedelta(days=10))
        assert await remind(app) == 1
        assert [reminder["member_id"] for reminder in await reminders(app)] == [told]

    async def test_runs_at_once_tell_each_member_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        members = [await silver_member(client, pos_key) for _ in range(6)]
        clock.advance(WINDOW_2026_END - clock.now() - timedelta(days=10))
        runs = await asyncio.gather(*(remind(app, batch=2) for _ in range(3)))
        assert sum(runs) == 6
        assert sorted(reminder["member_id"] for reminder in await reminders(app)) == sorted(members)


async def test_no_reminders_unless_the_programme_asks_for_them(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    await set_program(client, admin_key)
    await standard_ladder(client, admin_key)
    await silver_member(client, pos_key)
    clock.advance(WINDOW_2026_END - clock.now() - timedelta(days=10))
    assert await remind(app) == 0
    assert await reminders(app) == []


class TestGraceEndingAcrossAClockChange:
    """Berlin moves its clocks on an hour on 29 March 2026 and back on 25 October. The walk lists a tier's
    members by window end from 7 times 24 hours before its run (tiers/reminders.py), while a grace of 7 days
    is kept until noon there 7 days on (kept_until): an hour apart when the grace crosses the change. Runs in
    that hour tell the member whose window ended nothing more and tell those whose window ends within the
    reminder days; the member whose grace it is heard once, before the window ended."""

    @pytest.mark.parametrize(
        ("window_end", "kept"),
        [
            # Noon on 25 March (CET), kept until noon on 1 April (CEST); 7 × 24 hours run to 11:00 UTC.
            (datetime(2026, 3, 25, 11, tzinfo=UTC), datetime(2026, 4, 1, 10, tzinfo=UTC)),
            # Noon on 20 October (CEST), kept until noon on 27 October (CET); 7 × 24 hours run to 10:00 UTC.
            (datetime(2026, 10, 20, 10, tzinfo=UTC), datetime(2026, 10, 27, 11, tzinfo=UTC)),
        ],
        ids=["spring", "autumn"],
    )
    async def test_told_once_before_the_window_ends_whenever_the_job_runs(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
        window_end: datetime,
        kept: datetime,
    ) -> None:
        await set_program(client, admin_key, timezone="Europe/Berlin", tier_reminder_days=7)
        await standard_ladder(client, admin_key, window="rolling_days", window_days=30, grace_days=7)
        clock.set(window_end - timedelta(days=30))
        member_id = await silver_member(client, pos_key)  # judged on the 30 days to `window_end`
        assert (await tier_of(client, pos_key, member_id))["kept_until"] == iso(kept)
        disputed = min(kept, window_end + timedelta(days=7)) + timedelta(minutes=30)  # the hour between
        # Another member whose window comes within the reminder days during that hour.
        clock.set(disputed + timedelta(days=7, minutes=-15) - timedelta(days=30))
        later_id = await silver_member(client, pos_key)

        clock.set(window_end - timedelta(days=7, hours=1))
        assert await remind(app) == 0  # not yet
        clock.set(window_end - timedelta(days=2))
        assert await remind(app) == 1
        [told] = await reminders(app)
        assert (told["member_id"], told["window_end"], told["kept_until"]) == (
            member_id,
            iso(window_end),
            iso(kept),
        )
        for at in (window_end - timedelta(minutes=1), window_end, window_end + timedelta(days=3)):
            clock.set(at)
            assert await remind(app) == 0
        clock.set(disputed)  # the grace ends within the hour, on one reckoning or the other
        assert await remind(app) == 1
        assert [reminder["member_id"] for reminder in await reminders(app)] == [member_id, later_id]
        for at in (kept - timedelta(seconds=1), kept, kept + timedelta(hours=1)):
            clock.set(at)
            assert await remind(app) == 0
        assert await review(app) == 1  # the purchase that won silver does not keep it: back to member
        assert (await tier_of(client, pos_key, member_id))["tier"] == MEMBER
        assert len(await reminders(app)) == 2
