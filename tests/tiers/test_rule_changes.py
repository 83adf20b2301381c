"""A tier's rules changed while members hold it: the window their review judges stays the one they were
promised, whatever the new grace, and a new window is a whole one of its kind, never ending sooner."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, select, update

from loyalty_api.app import create_app
from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.members.models import Member
from loyalty_api.settings import Settings
from loyalty_api.tiers.redating import redate_window_ends
from loyalty_api.tiers.reminders import remind_tier_reviews
from tests.apps import client_for
from tests.builders import add_tier, enrol
from tests.conftest import START, bearer, units_of
from tests.databases import is_postgres
from tests.inspect_db import events, rows
from tests.points.helpers import earn, set_program
from tests.tiers.test_qualification import (
    KEPT_2026,
    KEPT_2027,
    history,
    iso,
    put_override,
    review,
    standard_ladder,
    tier_of,
)

END_OF_2026 = "2026-12-31T16:00:00Z"  # 1 January 2027 in Shanghai, the programme's zone
END_OF_2027 = "2027-12-31T16:00:00Z"


async def change_tier(client: httpx.AsyncClient, admin_key: str, code: str, **changes: Any) -> None:
    """PUT the tier as it is, but for `changes`."""
    tier = (await client.get(f"/v1/tiers/{code}", headers=bearer(admin_key))).json()
    body = {
        key: tier[key]
        for key in ("name", "rank", "metric", "window", "window_days", "threshold", "points_multiplier")
    }
    body |= {"grace_days": tier["grace_days"], "benefit_ids": [b["id"] for b in tier["benefits"]]}
    response = await client.put(f"/v1/tiers/{code}", json=body | changes, headers=bearer(admin_key))
    assert response.status_code == 200, response.text


async def stored_end(app: FastAPI, member_id: str) -> tuple[datetime | None, int | None]:
    """The end of the window the member is judged on as stored, and the revision of the tier's window it was
    worked out under."""
    async with units_of(app).read() as uow:
        found = await uow.session.execute(
            select(Member.tier_window_end, Member.tier_window_revision).where(
                Member.id == uuid.UUID(member_id)
            )
        )
        end, revision = found.one()
        return end, revision


@asynccontextmanager
async def _a_process_not_told_of_changes(
    settings: Settings, clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of another instance of the service on the test database, which keeps what it caches for a
    minute: on PostgreSQL it listens on another database, where no change of this one is announced."""
    async with _another_process_not_told_of_changes(settings, clock) as (_, client):
        yield client


@asynccontextmanager
async def _another_process_not_told_of_changes(
    settings: Settings, clock: FrozenClock
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """That instance and a client of it (its worker's jobs run on its units of work)."""
    changes: dict[str, Any] = {"cache_seconds": 60.0}
    if is_postgres():
        elsewhere = make_url(settings.listen_url).set(database="postgres")
        changes["listen_database_url"] = elsewhere.render_as_string(hide_password=False)
    other = create_app(settings.model_copy(update=changes), clock=clock)
    async with other.router.lifespan_context(other), client_for(other) as client:
        units: UnitsOfWork = other.state.units
        for _ in range(500):  # until it listens, and has forgotten everything as it then does
            if not is_postgres() or units.cache.stamp():
                break
            await asyncio.sleep(0.01)
        yield other, client


@pytest.fixture
async def ladder(client: httpx.AsyncClient, admin_key: str) -> None:
    await set_program(client, admin_key)
    await standard_ladder(client, admin_key)  # silver: 100000 in a calendar year, 30 days of grace


@pytest.mark.usefixtures("ladder")
class TestGraceChanged:
    async def test_a_shorter_grace_still_judges_the_year_the_tier_was_won_in(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The review took the grace in force at review off a date worked out with the old one, and judged
        January 2027 instead of 2026: the member, over the bar in 2026, went down."""
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 150_000)  # silver, kept until 1 January 2027 + 30 days
        clock.set(datetime(2026, 6, 1, tzinfo=UTC))
        await change_tier(client, admin_key, "silver", grace_days=0)

        status = await tier_of(client, pos_key, member["id"])
        assert status["kept_until"] == END_OF_2026
        assert (status["keep"]["window_start"], status["keep"]["by"], status["keep"]["value"]) == (
            "2025-12-31T16:00:00Z",
            END_OF_2026,
            150_000,
        )
        clock.set(KEPT_2026)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"]) == ("silver", "2027-12-31T16:00:00Z")
        assert (await history(client, pos_key, member["id"]))[0]["change"] == "renewal"

    async def test_a_grace_change_moves_every_date_by_the_difference_to_the_microsecond(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The end of each member's window stays as it was stored; the date they keep the tier until is that
        end and the grace as it now stands: a rolling tier's date has the qualifying purchase's
        microseconds."""
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        clock.set(datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=UTC))
        members = [await enrol(client, pos_key) for _ in range(3)]
        for member in members[:2]:
            await earn(client, pos_key, member["id"], 150_000)
        before = [(await tier_of(client, pos_key, m["id"]))["kept_until"] for m in members]
        assert before[:2] == ["2027-05-31T08:30:15.123456Z"] * 2  # 365 days and 30 of grace
        await change_tier(client, admin_key, "silver", grace_days=10)
        after = [(await tier_of(client, pos_key, m["id"]))["kept_until"] for m in members]
        assert after == ["2027-05-11T08:30:15.123456Z", "2027-05-11T08:30:15.123456Z", before[2]]

    async def test_a_longer_grace_keeps_the_tier_longer_and_judges_the_whole_year(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """Grace 30 -> 60 days during the grace: the review on the old date judged 2025 only up to 1 December,
        leaving out the December purchase that won the tier."""
        clock.set(datetime(2025, 10, 10, tzinfo=UTC))
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 60_000)
        clock.set(datetime(2025, 12, 10, tzinfo=UTC))
        assert (await earn(client, pos_key, member["id"], 50_000))["tier"]["code"] == "silver"
        clock.set(datetime(2026, 1, 10, tzinfo=UTC))
        await change_tier(client, admin_key, "silver", grace_days=60)

        kept_until = datetime(2025, 12, 31, 16, tzinfo=UTC) + timedelta(days=60)
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(kept_until)
        clock.set(kept_until)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"]) == ("silver", "2027-03-01T16:00:00Z")
        assert (await history(client, pos_key, member["id"]))[0]["qualification"]["silver"] == {
            "metric": "spend",
            "window_start": "2024-12-31T16:00:00Z",
            "value": 110_000,
            "threshold": 100_000,
        }

    async def test_the_tier_earned_before_an_override_is_judged_on_its_year_when_it_ends(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The override's own end is the operator's date and stays; the silver earned before it keeps the end
        of its window, so that when the override ends after silver's time, the review it gets judges 2026."""
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 150_000)  # silver for 2026
        until = datetime(2027, 3, 1, tzinfo=UTC)
        await put_override(client, admin_key, member["id"], "gold", until, "promotion")
        clock.set(datetime(2026, 6, 1, tzinfo=UTC))
        await change_tier(client, admin_key, "silver", grace_days=0)
        assert (await tier_of(client, pos_key, member["id"]))["override_until"] == iso(until)

        clock.set(until)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["override_until"]) == ("silver", None)


@pytest.mark.usefixtures("ladder")
class TestWindowChanged:
    async def test_a_rolling_window_made_a_calendar_year_judges_a_whole_year_never_ending_sooner(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The review of a year took the end of the rolling window (March) as the year's end: it judged
        January to March 2027 alone."""
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # kept until START + 365 + 30 days
        await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)

        status = await tier_of(client, pos_key, member["id"])
        assert status["kept_until"] == iso(KEPT_2027)
        assert (status["keep"]["window_start"], status["keep"]["by"]) == (END_OF_2026, "2027-12-31T16:00:00Z")

    async def test_an_upgrade_by_a_process_not_told_of_the_change_yet_is_judged_on_the_new_window(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        """Another process keeps the ladder it read until the change's notification reaches it (PostgreSQL)
        or its cache's time runs out: an upgrade there meanwhile stored the end of a 365-day window (16 March
        2027) on a tier whose members the change had moved to the 1 January after theirs. It is read as the
        new window has it, the review leaves it be at the old end, and the worker stores it so."""
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        holder, member = await enrol(client, pos_key), await enrol(client, pos_key)
        await earn(client, pos_key, holder["id"], 100_000)  # silver, its window ending 16 March 2027
        await earn(client, pos_key, member["id"], 60_000)
        async with _a_process_not_told_of_changes(settings, clock) as till:
            read = await till.get("/v1/tiers", headers=bearer(admin_key))  # its ladder, kept
            assert read.status_code == 200, read.text
            await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
            assert (await earn(till, pos_key, member["id"], 40_000))["tier"]["code"] == "silver"
        for someone in (holder, member):
            status = await tier_of(client, pos_key, someone["id"])
            assert (status["kept_until"], status["keep"]["by"]) == (iso(KEPT_2027), END_OF_2027)

        clock.set(datetime(2027, 4, 16, tzinfo=UTC))  # the old window and its grace are over
        assert await review(app) == 0
        assert await redate_window_ends(units_of(app)) == 2  # the member and the holder the PUT did not write
        assert await redate_window_ends(units_of(app)) == 0
        assert await stored_end(app, member["id"]) == (datetime(2027, 12, 31, 16, tzinfo=UTC), 2)
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(KEPT_2027)

    async def test_an_end_from_before_two_changes_is_re_dated_through_both(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        """90 days, then 365 (each end 275 days on), then a calendar year (to the 1 January after each): an
        end of a 90-day window stored after both is taken through each, as the members on the tier were
        (re-dated from 90 days straight to a year, it would end on 1 January 2027)."""
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=90)
        holder, member = await enrol(client, pos_key), await enrol(client, pos_key)
        await earn(client, pos_key, holder["id"], 100_000)
        await earn(client, pos_key, member["id"], 60_000)
        async with _a_process_not_told_of_changes(settings, clock) as till:
            read = await till.get("/v1/tiers", headers=bearer(admin_key))  # its ladder, kept
            assert read.status_code == 200, read.text
            await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
            assert (await earn(till, pos_key, member["id"], 40_000))["tier"]["code"] == "silver"
        await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
        for someone in (holder, member):
            status = await tier_of(client, pos_key, someone["id"])
            assert (status["kept_until"], status["keep"]["by"]) == (iso(KEPT_2027), END_OF_2027)
        assert await redate_window_ends(units_of(app)) == 2
        for someone in (holder, member):
            status = await tier_of(client, pos_key, someone["id"])
            assert (status["kept_until"], status["keep"]["by"]) == (iso(KEPT_2027), END_OF_2027)

    async def test_a_longer_rolling_window_runs_from_the_purchase_that_won_the_tier(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=90)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365, grace_days=10)
        kept_until = START + timedelta(days=365 + 10)
        assert (await tier_of(client, pos_key, member["id"]))["kept_until"] == iso(kept_until)

    async def test_a_longer_rolling_window_moves_each_end_to_the_microsecond(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """The ends move in the database, in one statement (SQLite keeps them as text and its date functions
        keep whole seconds); a member not on the tier keeps no date."""
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=90)
        won = datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=UTC)
        clock.set(won)
        members = [await enrol(client, pos_key) for _ in range(3)]
        for member in members[:2]:
            await earn(client, pos_key, member["id"], 100_000)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365, grace_days=10)
        after = [(await tier_of(client, pos_key, m["id"]))["kept_until"] for m in members]
        assert after == ["2027-05-11T08:30:15.123456Z"] * 2 + [None]

    async def test_a_shorter_window_or_a_rolling_one_after_a_year_ends_where_it_did(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)  # silver for 2026
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        status = await tier_of(client, pos_key, member["id"])
        assert (status["kept_until"], status["keep"]["by"]) == (iso(KEPT_2026), END_OF_2026)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=90, grace_days=5)
        status = await tier_of(client, pos_key, member["id"])
        kept_until = datetime(2026, 12, 31, 16, tzinfo=UTC) + timedelta(days=5)
        assert (status["kept_until"], status["keep"]["by"]) == (iso(kept_until), END_OF_2026)
        # The window is the new one's length, ending where the old one did.
        assert status["keep"]["window_start"] == "2026-10-02T16:00:00.000001Z"

    async def test_a_calendar_year_moves_each_end_to_its_own_next_1_january(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """Rolling ends a year apart reach three different 1 Januaries; one ending on a 1 January stays; the
        silver earned before an override moves as well, so the override's end gives it back until then."""
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        won = {
            "march": START,  # ends 16 March 2027: 1 January 2028
            "overridden": datetime(2026, 6, 1, tzinfo=UTC),  # ends 1 June 2027: 1 January 2028
            "december": datetime(2026, 12, 20, tzinfo=UTC),  # ends 20 December 2027: 1 January 2028
            "midnight": datetime(2026, 12, 31, 16, tzinfo=UTC),  # ends on 1 January 2028 itself
            "new year": datetime(2026, 12, 31, 17, tzinfo=UTC),  # 1 January 2027, 01:00: 1 January 2029
        }
        members = {}
        for name, at in won.items():
            clock.set(at)
            members[name] = (await enrol(client, pos_key))["id"]
            assert (await earn(client, pos_key, members[name], 100_000))["tier"]["code"] == "silver"
        until = datetime(2027, 2, 1, tzinfo=UTC)
        await put_override(client, admin_key, members["overridden"], "gold", until, "promotion")
        await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)

        kept = {name: (await tier_of(client, pos_key, m))["kept_until"] for name, m in members.items()}
        kept_2028 = "2029-01-30T16:00:00Z"
        assert kept == {
            "march": iso(KEPT_2027),
            "overridden": iso(until),
            "december": iso(KEPT_2027),
            "midnight": iso(KEPT_2027),
            "new year": kept_2028,
        }
        keep = (await tier_of(client, pos_key, members["new year"]))["keep"]
        assert (keep["window_start"], keep["by"]) == ("2027-12-31T16:00:00Z", "2028-12-31T16:00:00Z")

        clock.set(until)
        assert await review(app) == 1
        status = await tier_of(client, pos_key, members["overridden"])
        assert (status["tier"]["code"], status["kept_until"]) == ("silver", iso(KEPT_2027))


class TestWindowChangedMembersReDatedByTheWorker:
    """A change of a tier's window writes the tier alone: its members are read as the new window has them at
    once, and the worker stores their ends, a batch at a time."""

    async def test_the_put_writes_no_member_and_the_worker_stores_their_ends_in_batches(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The PUT moved every member's end in its own transaction, some 36 µs a member: on a tier of a
        million members, past the request's 30 s."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        members = [(await enrol(client, pos_key))["id"] for _ in range(5)]
        for member in members:
            await earn(client, pos_key, member, 100_000)  # silver, its window ending 16 March 2027
        before = [await stored_end(app, member) for member in members]
        assert before == [(START + timedelta(days=365), 1)] * 5

        await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
        assert [await stored_end(app, member) for member in members] == before
        for member in members:
            status = await tier_of(client, pos_key, member)
            assert (status["kept_until"], status["keep"]["by"]) == (iso(KEPT_2027), END_OF_2027)

        assert await redate_window_ends(units_of(app), batch=2) == 5
        new_year_2028 = datetime(2027, 12, 31, 16, tzinfo=UTC)
        assert [await stored_end(app, member) for member in members] == [(new_year_2028, 2)] * 5
        assert await redate_window_ends(units_of(app), batch=2) == 0

    async def test_until_the_worker_has_been_the_review_and_reminders_go_by_the_new_window(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key, tier_reminder_days=30)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 100_000)  # its window ending 16 March 2027
        await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)

        clock.set(datetime(2027, 2, 20, tzinfo=UTC))  # the old window would end within 30 days
        assert await remind_tier_reviews(units_of(app)) == 0
        clock.set(datetime(2027, 4, 16, tzinfo=UTC))  # and its grace would be over
        assert await review(app) == 0
        status = await tier_of(client, pos_key, member)
        assert (status["tier"]["code"], status["kept_until"]) == ("silver", iso(KEPT_2027))

        assert await redate_window_ends(units_of(app)) == 1
        clock.set(datetime(2027, 12, 5, tzinfo=UTC))
        assert await remind_tier_reviews(units_of(app)) == 1
        [told] = await events(app, "tier.review_due")
        assert (told["payload"]["window_end"], told["payload"]["kept_until"]) == (END_OF_2027, iso(KEPT_2027))

    async def test_a_second_change_that_moves_no_end_before_the_worker_has_been_keeps_the_first_s_ends(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """365 days, then 730 (each end a year on), then 500 before the worker has stored the ends (a shorter
        window moves no end): the members keep the end the first change gave them, as they would had the
        worker been quicker. Re-dated straight from 365 days to 500, the end came back 230 days, sooner than
        the member was told after the first change."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 100_000)  # silver, its window ending 16 March 2027
        kept = iso(START + timedelta(days=730 + 30))
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=730)
        assert (await tier_of(client, pos_key, member))["kept_until"] == kept
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=500)
        assert (await tier_of(client, pos_key, member))["kept_until"] == kept

        assert await redate_window_ends(units_of(app)) == 1
        assert await stored_end(app, member) == (START + timedelta(days=730), 2)
        assert (await tier_of(client, pos_key, member))["kept_until"] == kept

    async def test_a_window_made_shorter_then_longer_again_counts_from_the_purchase_that_won_the_tier(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """365 days, then 90 (no end moves), then 365 again: a member who won silver under the first window
        keeps the end that purchase won, 365 days on. It was read as a 90-day end after the second change, and
        the third put it 275 days later (16 December 2027 for 16 March). One who won it under the 90-day
        window gets 365 days from their purchase. The worker stores both so."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        first, later = (await enrol(client, pos_key))["id"], (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, first, 100_000)  # silver, its window ending 16 March 2027
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=90)
        won_later = START + timedelta(days=10)
        clock.set(won_later)
        await earn(client, pos_key, later, 100_000)  # silver, its window 90 days
        assert (await tier_of(client, pos_key, later))["kept_until"] == iso(
            won_later + timedelta(days=90 + 30)
        )
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        expected = {first: START + timedelta(days=365), later: won_later + timedelta(days=365)}
        for member, end in expected.items():
            assert (await tier_of(client, pos_key, member))["kept_until"] == iso(end + timedelta(days=30))
        assert await redate_window_ends(units_of(app)) == 2
        for member, end in expected.items():
            assert await stored_end(app, member) == (end, 2)
            assert (await tier_of(client, pos_key, member))["kept_until"] == iso(end + timedelta(days=30))

    @pytest.mark.parametrize("ended_by", ["operator", "review"])
    async def test_the_end_an_override_gives_back_keeps_the_days_it_runs_from_the_purchase(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
        ended_by: str,
    ) -> None:
        """365 days, then 90, an override that ends, then 365 again: the silver the override gives back
        keeps the end its purchase won, 365 days on. Given back as a 90-day end, the third change counted
        365 days from 90 days before it (275 days later). The override ends after the 90 days its purchase
        would count for, so that the member qualifies for nothing now."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 100_000)  # silver, its window ending 16 March 2027
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=90)
        until = START + timedelta(days=100)
        await put_override(client, admin_key, member, "gold", until, "promotion")
        clock.set(until - timedelta(days=1))
        if ended_by == "operator":
            ended = await client.delete(f"/v1/members/{member}/tier/override", headers=bearer(admin_key))
            assert ended.status_code == 200, ended.text
        else:
            clock.set(until)
            assert await review(app) == 1
        kept = iso(START + timedelta(days=365 + 30))
        status = await tier_of(client, pos_key, member)
        assert (status["tier"]["code"], status["kept_until"]) == ("silver", kept)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        assert (await tier_of(client, pos_key, member))["kept_until"] == kept
        await redate_window_ends(units_of(app))
        assert (await tier_of(client, pos_key, member))["kept_until"] == kept

    @pytest.mark.parametrize("ended_by", ["operator", "purchase"])
    async def test_an_override_that_ends_on_the_tier_the_member_qualifies_for_keeps_its_later_end(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
        ended_by: str,
    ) -> None:
        """365 days, then 90 (silver still kept a year on from its purchase), an override that ends while the
        purchase still counts for 90 days: the member qualifies for silver now, and its window from now (90
        days) ended sooner than the one they had earned and were told of, which they keep."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 100_000)  # silver, its window ending 16 March 2027
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=90)
        kept = iso(START + timedelta(days=365 + 30))
        assert (await tier_of(client, pos_key, member))["kept_until"] == kept
        until = START + timedelta(days=5)
        await put_override(client, admin_key, member, "gold", until, "promotion")
        if ended_by == "operator":
            ended = await client.delete(f"/v1/members/{member}/tier/override", headers=bearer(admin_key))
            assert ended.status_code == 200, ended.text
        else:  # a small purchase after the override ran out, before the review got to it
            clock.set(until + timedelta(days=1))
            assert (await earn(client, pos_key, member, 1_000))["tier"]["code"] == "silver"
        status = await tier_of(client, pos_key, member)
        assert (status["tier"]["code"], status["kept_until"]) == ("silver", kept)

    async def test_an_end_written_by_the_code_before_revisions_is_taken_as_of_the_window_then(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """A process still running the code before 0042 (during a deploy) writes an end naming no revision:
        the worker marks it as of the window the tier has, so that a later change re-dates it."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        member = (await enrol(client, pos_key))["id"]
        await earn(client, pos_key, member, 100_000)
        async with units_of(app).begin() as uow:
            await uow.session.execute(
                update(Member).where(Member.id == uuid.UUID(member)).values(tier_window_revision=None)
            )
        assert await redate_window_ends(units_of(app)) == 1
        assert await stored_end(app, member) == (START + timedelta(days=365), 1)

        await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
        assert await redate_window_ends(units_of(app)) == 1
        assert await stored_end(app, member) == (datetime(2027, 12, 31, 16, tzinfo=UTC), 2)


class TestEntryTierChanged:
    async def test_a_member_put_back_on_the_old_entry_tier_by_a_process_not_told_is_dated(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        """The override ended at a till of a process that still had bronze as the entry tier: it put the
        member back on bronze with no window (the entry tier is never lost), after basic had been ranked below
        bronze and bronze's members dated. They kept bronze for good, never reviewed."""
        await set_program(client, admin_key)
        await add_tier(client, admin_key, "bronze", rank=10)
        await add_tier(client, admin_key, "gold", rank=20, threshold=500_000)
        member = await enrol(client, pos_key)
        until = datetime(2026, 6, 1, tzinfo=UTC)
        await put_override(client, admin_key, member["id"], "gold", until, "promotion")
        async with _a_process_not_told_of_changes(settings, clock) as till:
            read = await till.get("/v1/tiers", headers=bearer(admin_key))  # its ladder, kept
            assert read.status_code == 200, read.text
            await add_tier(client, admin_key, "basic", rank=0)
            clock.set(datetime(2026, 6, 2, tzinfo=UTC))  # the override has ended
            assert (await earn(till, pos_key, member["id"], 1_000))["tier"]["code"] == "bronze"
        status = await tier_of(client, pos_key, member["id"])
        assert (status["tier"]["code"], status["kept_until"]) == ("bronze", END_OF_2026)
        assert await redate_window_ends(units_of(app)) == 1  # the worker dates them
        assert await stored_end(app, member["id"]) == (datetime(2026, 12, 31, 16, tzinfo=UTC), 1)


class TestPlacingOnTheEntryTier:
    async def test_a_worker_whose_ladder_is_out_of_date_places_no_one_once_the_tier_is_gone(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        settings: Settings,
        clock: FrozenClock,
    ) -> None:
        """The first tier made, and deleted before anyone was put on it (a mistake put right at once): a
        worker still holding the ladder it read before the delete, or reading it just before, runs the
        placement. Its statement's entry tier was none: it wrote no tier and a tier_since on each member it
        took, and, taking a whole batch every time, took the same members again without end."""
        await set_program(client, admin_key)
        for _ in range(3):
            await enrol(client, pos_key)
        await add_tier(client, admin_key, "member", rank=0)
        async with _another_process_not_told_of_changes(settings, clock) as (worker, worker_client):
            ladder = await worker_client.get("/v1/tiers", headers=bearer(admin_key))
            assert [tier["code"] for tier in ladder.json()["items"]] == ["member"]  # kept for a minute
            deleted = await client.delete("/v1/tiers/member", headers=bearer(admin_key))
            assert deleted.status_code == 204, deleted.text

            placed = await asyncio.wait_for(redate_window_ends(worker.state.units, batch=2), timeout=30)

        assert placed == 0
        found = await rows(app, "SELECT tier_id, tier_since FROM members")
        assert [(row["tier_id"], row["tier_since"]) for row in found] == [(None, None)] * 3
