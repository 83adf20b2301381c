"""A member suspended, closed or erased while a campaign batch runs is not reached: the batch shares the
members' rows it picks, so a change of status under way finishes first and the batch reads it (PostgreSQL;
on SQLite the writers take turns)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.members.models import MemberStatus
from loyalty_api.money import Money
from loyalty_api.points import service as points_service
from loyalty_api.privacy.erasure import erase_member
from loyalty_api.profiles import service as profiles
from loyalty_api.settings import Settings
from tests.builders import enrol
from tests.campaigns.helpers import POINTS_ACTION, create, reached, read, run, seed_members
from tests.conftest import bearer, units_of
from tests.databases import account_locked, is_postgres, until_waiting_for_a_lock
from tests.inspect_db import rows
from tests.points.helpers import points, set_program

pytestmark = pytest.mark.skipif(not is_postgres(), reason="SQLite has no row locks: its writers take turns")

Change = Callable[[UnitOfWork, uuid.UUID], Awaitable[object]]


async def _suspend(uow: UnitOfWork, member_id: uuid.UUID) -> object:
    return await profiles.update(uow, member_id, status=MemberStatus.suspended)


async def _run_while_changing(app: FastAPI, change: Change, member_ids: list[str], **options: int) -> int:
    """A campaign run started while `change` of each member is under way, and finished after it commits."""
    units: UnitsOfWork = units_of(app)
    async with units.begin() as uow:
        for member_id in sorted(member_ids):
            await change(uow, uuid.UUID(member_id))
        running = asyncio.ensure_future(run(app, **options))
        await asyncio.sleep(1)  # the batch is under way, waiting for what the change holds
    return await running


async def _reached_ids(app: FastAPI, campaign_id: str) -> set[str]:
    found = await rows(
        app, "SELECT member_id FROM campaign_members WHERE campaign_id = :c", c=uuid.UUID(campaign_id)
    )
    return {str(uuid.UUID(str(row["member_id"]))) for row in found}


class TestStatusChangedWhileABatchRuns:
    @pytest.mark.parametrize("change", [erase_member, _suspend], ids=["erased", "suspended"])
    async def test_the_member_gets_no_points(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, change: Change
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        campaign = await create(client, admin_key, action=POINTS_ACTION)
        assert await _run_while_changing(app, change, [member["id"]]) == 0
        assert not await _reached_ids(app, campaign["id"])
        entries = await rows(app, "SELECT amount FROM ledger_entries WHERE type = 'campaign'")
        assert entries == []
        if change is _suspend:
            assert (await points(client, admin_key, member["id"]))["balance"] == 0
        done = await read(client, admin_key, campaign["id"])
        assert done["status"] == "completed" and done["counts"]["points_granted"] == 0

    @pytest.mark.parametrize("change", [erase_member, _suspend], ids=["erased", "suspended"])
    async def test_the_member_gets_no_coupon(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, change: Change
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        campaign = await create(client, admin_key)
        assert await _run_while_changing(app, change, [member["id"]]) == 0
        assert not await _reached_ids(app, campaign["id"])
        assert await rows(app, "SELECT id FROM coupons WHERE status = 'active'") == []
        if change is _suspend:
            listed = await client.get(f"/v1/members/{member['id']}/coupons", headers=bearer(admin_key))
            assert listed.status_code == 200 and listed.json()["items"] == []

    async def test_the_others_of_the_batch_are_all_reached_before_it_completes(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        members = sorted(await seed_members(app, 9))
        campaign = await create(client, admin_key)
        # Two of the first batch of three drop out: the batch still takes three, and the campaign goes on.
        dropped = members[:2]
        assert await _run_while_changing(app, _suspend, dropped, batch=3) == 7
        assert await _reached_ids(app, campaign["id"]) == set(members) - set(dropped)
        done = await read(client, admin_key, campaign["id"])
        assert done["status"] == "completed" and done["counts"]["reached"] == 7


class TestAGrantIsStampedBehindTheLock:
    async def test_a_grant_that_waited_for_the_members_account_follows_what_was_written_meanwhile(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        """The ledger's times follow its order: a client reading a member's ledger `since` the last time it
        saw misses no grant."""
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await create(client, admin_key, action=POINTS_ACTION)
        async with account_locked(settings, member["id"]) as watcher:
            running = asyncio.ensure_future(run(app))
            await until_waiting_for_a_lock(watcher, running)  # the batch waits for the account
            clock.advance(timedelta(minutes=1))  # what holds the account commits a minute on
            let_go = clock.now()
        assert await running == 1
        [entry] = await rows(app, "SELECT created_at FROM ledger_entries WHERE type = 'campaign'")
        assert entry["created_at"] == let_go

    async def test_the_campaign_finishes_no_earlier_than_its_last_grant(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        clock: FrozenClock,
    ) -> None:
        """A client that reads `finished_at`, then the ledger since then, has seen every grant before it: no
        grant is stamped after the campaign says it finished (nor after its campaign.completed event)."""
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        campaign = await create(client, admin_key, action=POINTS_ACTION)
        async with account_locked(settings, member["id"]) as watcher:
            running = asyncio.ensure_future(run(app))
            await until_waiting_for_a_lock(watcher, running)
            clock.advance(timedelta(minutes=1))
        assert await running == 1
        [entry] = await rows(app, "SELECT created_at FROM ledger_entries WHERE type = 'campaign'")
        done = await read(client, admin_key, campaign["id"])
        assert done["status"] == "completed"
        assert datetime.fromisoformat(done["finished_at"]) >= entry["created_at"]
        [event] = await rows(app, "SELECT payload FROM outbox_events WHERE type = 'campaign.completed'")
        assert datetime.fromisoformat(event["payload"]["finished_at"]) >= entry["created_at"]


class TestAPurchaseBeforeTheReach:
    async def test_a_purchase_that_held_the_member_while_the_batch_began_is_not_counted_as_since(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        """A batch that began while a purchase held the member reaches them once it commits: the purchase came
        before the campaign did, and is not the member coming back because of it."""
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        campaign = await create(client, admin_key)
        units: UnitsOfWork = units_of(app)
        async with units.begin() as uow:
            await points_service.earn(
                uow,
                member_id=uuid.UUID(member["id"]),
                order_ref="before-the-reach",
                amount=Money(5_000, "CNY"),
            )
            running = asyncio.ensure_future(run(app))
            await asyncio.sleep(1)  # the batch is under way, waiting for the member the purchase holds
            clock.advance(timedelta(minutes=1))  # the purchase commits a minute on
        assert await running == 1
        [row] = await reached(client, admin_key, campaign["id"])
        assert row["member_id"] == member["id"] and row["purchased_since"] is False
        shown = await read(client, admin_key, campaign["id"])
        assert shown["counts"]["purchased_since"] == 0
