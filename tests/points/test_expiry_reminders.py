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
from sqlalchemy import update

from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.models import Member
from loyalty_api.points.expiry import expire_points
from loyalty_api.points.reminders import remind_expiring_points
from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.inspect_db import events
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import earn, set_program


@pytest.fixture
async def member_id(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> str:
    await set_program(client, admin_key, expiry_months=12, expiry_reminder_days=30)
    return str((await enrol(client, pos_key))["id"])


async def reminders(app: FastAPI) -> list[dict[str, Any]]:
    return [event["payload"] for event in await events(app, "points.expiring")]


class TestExpiryReminders:
    async def test_a_member_hears_of_a_months_ends_once_as_the_first_comes_within_the_days(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="X1")  # 100, ends 2027-03-16 18:00 Shanghai
        clock.advance(timedelta(hours=10))  # 2026-03-17 04:00 in Shanghai, still the 16th in UTC
        await earn(client, pos_key, member_id, 5_000, order_ref="X2")  # 50, ends the next day there
        clock.advance(timedelta(days=10))
        await earn(client, pos_key, member_id, 20_000, order_ref="X3")  # 200, ends 2027-03-27
        clock.advance(timedelta(days=20))
        await earn(client, pos_key, member_id, 40_000, order_ref="X4")  # 400, ends 2027-04-16
        assert await remind_expiring_points(app.state.units) == 0

        clock.advance(timedelta(days=310))  # 2027-02-19: the first two lots end within 30 days
        assert await remind_expiring_points(app.state.units) == 1
        [first] = await reminders(app)
        assert first["member_id"] == member_id
        assert first["points"] == 350  # March's, the 27th's too: told of a month at once
        assert first["expires_at"] == "2027-03-16T10:00:00Z"
        assert first["expiring"] == [
            {"date": "2027-03-16", "points": 100},
            {"date": "2027-03-17", "points": 50},
            {"date": "2027-03-27", "points": 200},
        ]
        assert (first["balance"], first["available"]) == (750, 750)
        assert await remind_expiring_points(app.state.units) == 0  # told of those already
        clock.advance(timedelta(days=7))  # the 27th's lot comes within the days: told of already
        assert await remind_expiring_points(app.state.units) == 0

        clock.advance(timedelta(days=20))  # 2027-03-18: April's lot comes within the days
        assert await remind_expiring_points(app.state.units) == 1
        second = (await reminders(app))[1]
        assert second["points"] == 600  # every point ending by April's end: the 27th's, told of before, too
        assert [day["date"] for day in second["expiring"]] == ["2027-03-27", "2027-04-16"]
        assert await remind_expiring_points(app.state.units) == 0

        clock.advance(timedelta(days=30))  # all have ended: nothing to tell, the expiry takes them
        assert await remind_expiring_points(app.state.units) == 0
        assert (await expire_points(app.state.units)).points == 750
        await assert_ledger_invariant(app, member_id)

    async def test_a_member_who_shops_every_day_hears_once_a_month(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        for _ in range(40):  # 10 points a day, ending 2027-03-16 to 2027-04-24 in Shanghai
            await earn(client, pos_key, member_id, 1_000)
            clock.advance(timedelta(days=1))
        clock.advance(timedelta(days=365 - 40 - 35))  # 2027-02-09
        for _ in range(50):
            await remind_expiring_points(app.state.units)
            clock.advance(timedelta(days=1))
        told = await reminders(app)
        assert [reminder["points"] for reminder in told] == [160, 400]  # March's 16 lots, then all 40
        assert [reminder["expires_at"] for reminder in told] == ["2027-03-16T10:00:00Z"] * 2

    async def test_a_months_reminder_ends_where_the_month_does_on_the_programmes_calendar(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """Points ending just after midnight on 1 April in Shanghai (still 31 March in UTC) end in April:
        March's reminder leaves them to April's."""
        clock.set(datetime(2026, 3, 31, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
        await earn(client, pos_key, member_id, 10_000, order_ref="M1")  # 100, ends 2027-03-31 23:30 there
        clock.set(datetime(2026, 3, 31, 16, 30, tzinfo=UTC))  # 00:30 on 1 April in Shanghai
        await earn(client, pos_key, member_id, 5_000, order_ref="A1")  # 50, ends 2027-04-01 00:30 there

        clock.set(datetime(2027, 3, 1, 15, 45, tzinfo=UTC))  # March's lot within the 30 days, April's not
        assert await remind_expiring_points(app.state.units) == 1
        [march] = await reminders(app)
        assert (march["points"], march["expiring"]) == (100, [{"date": "2027-03-31", "points": 100}])

        clock.set(datetime(2027, 3, 1, 16, 45, tzinfo=UTC))  # April's within the days too
        assert await remind_expiring_points(app.state.units) == 1
        april = (await reminders(app))[1]
        assert april["points"] == 150  # every point ending by April's end, March's told of before too
        assert [day["date"] for day in april["expiring"]] == ["2027-03-31", "2027-04-01"]

    async def test_points_spent_are_not_counted_and_a_spent_lot_is_not_told_of(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        await earn(client, pos_key, member_id, 10_000, order_ref="S1")  # 100
        clock.advance(timedelta(days=1))
        await earn(client, pos_key, member_id, 10_000, order_ref="S2")  # 100, a day later
        spent = await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": 140, "order_ref": "S3"},
            headers=bearer(pos_key),
        )
        assert spent.status_code == 200, spent.text
        clock.advance(timedelta(days=350))
        held = await client.post(
            f"/v1/members/{member_id}/holds",
            json={"points": 10, "order_ref": "S4", "ttl_seconds": 3600},
            headers=bearer(pos_key),
        )
        assert held.status_code == 201, held.text

        assert await remind_expiring_points(app.state.units) == 1
        [reminder] = await reminders(app)
        assert reminder["points"] == 60  # the first lot went on the redemption, 40 of the second
        assert [day["points"] for day in reminder["expiring"]] == [60]
        assert (reminder["balance"], reminder["available"]) == (60, 50)

    async def test_no_reminders_unless_the_programme_asks_for_them(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        await set_program(client, admin_key, expiry_months=12, expiry_reminder_days=0)
        await earn(client, pos_key, member_id, 10_000)
        clock.advance(timedelta(days=360))
        assert await remind_expiring_points(app.state.units) == 0
        assert await reminders(app) == []

        # Asked for later, the points already within the days are told of at the next run.
        await set_program(client, admin_key, expiry_months=12, expiry_reminder_days=7)
        assert await remind_expiring_points(app.state.units) == 1
        assert [reminder["points"] for reminder in await reminders(app)] == [100]

    async def test_suspended_and_closed_members_are_not_told_until_active_again(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member_id: str,
        clock: FrozenClock,
    ) -> None:
        closed = str((await enrol(client, pos_key))["id"])
        for who in (member_id, closed):
            await earn(client, pos_key, who, 10_000)
        for who, status in ((member_id, "suspended"), (closed, "closed")):
            changed = await client.patch(
                f"/v1/members/{who}", json={"status": status}, headers=bearer(admin_key)
            )
            assert changed.status_code == 200, changed.text
        clock.advance(timedelta(days=350))
        assert await remind_expiring_points(app.state.units) == 0

        reinstated = await client.patch(
            f"/v1/members/{member_id}", json={"status": "active"}, headers=bearer(admin_key)
        )
        assert reinstated.status_code == 200, reinstated.text
        assert await remind_expiring_points(app.state.units) == 1
        assert [reminder["member_id"] for reminder in await reminders(app)] == [member_id]

    async def test_a_member_suspended_after_the_walk_listed_them_is_not_told(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        """The walk lists active members with points ending soon, then claims each: one suspended, closed or
        erased in between (receivers told `member.erased` already) hears nothing, as the claim reads."""
        await earn(client, pos_key, member_id, 10_000)
        clock.advance(timedelta(days=350))

        class SuspendingFirst(UnitsOfWork):
            """The member suspended as the walk's first claim begins, after its list was read."""

            suspended = False

            @asynccontextmanager
            async def begin(self, **limits: Any) -> AsyncIterator[UnitOfWork]:
                if not self.suspended:
                    self.suspended = True
                    async with super().begin() as uow:
                        await uow.session.execute(
                            update(Member).where(Member.id == uuid.UUID(member_id)).values(status="suspended")
                        )
                async with super().begin(**limits) as uow:
                    yield uow

        units = units_of(app)
        walking = SuspendingFirst(units.database, units.clock, units.vault, units.settings)
        walking.cache = units.cache
        assert await remind_expiring_points(walking) == 0
        assert await reminders(app) == []

    async def test_runs_at_once_tell_each_member_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        others = [str((await enrol(client, pos_key))["id"]) for _ in range(5)]
        for who in [member_id, *others]:
            await earn(client, pos_key, who, 10_000)
            await earn(client, pos_key, who, 5_000)
        clock.advance(timedelta(days=340))
        runs = await asyncio.gather(*(remind_expiring_points(app.state.units, batch=3) for _ in range(3)))
        assert sum(runs) == 6
        told = await reminders(app)
        assert sorted(reminder["member_id"] for reminder in told) == sorted([member_id, *others])
        assert {reminder["points"] for reminder in told} == {150}

    async def test_a_small_batch_walks_every_lot(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_id: str, clock: FrozenClock
    ) -> None:
        others = [str((await enrol(client, pos_key))["id"]) for _ in range(4)]
        for who in [member_id, *others]:
            for _ in range(3):
                await earn(client, pos_key, who, 1_000)
                clock.advance(timedelta(minutes=1))
        clock.advance(timedelta(days=340))
        assert await remind_expiring_points(app.state.units, batch=2) == 5
        assert len(await reminders(app)) == 5
