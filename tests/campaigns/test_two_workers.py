"""Two workers running campaigns at once reach each member once: each batch locks its campaign's row (a
worker skips a campaign another holds, on PostgreSQL; on SQLite `BEGIN IMMEDIATE` makes them take turns),
and campaign_members' key is (campaign, member)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.db.uow import UnitsOfWork
from tests.campaigns.helpers import POINTS_ACTION, create, read, run, seed_members
from tests.conftest import units_of
from tests.databases import is_postgres, side_engine
from tests.inspect_db import count, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import set_program


class TestTwoWorkers:
    async def test_two_workers_at_once_give_each_member_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        members = await seed_members(app, 2_000)
        coupons = await create(client, admin_key, name="Coupons")
        grant = await create(client, admin_key, name="Points", action=POINTS_ACTION)
        done = await asyncio.gather(run(app, batch=100), run(app, batch=100))
        assert sum(done) == 4_000
        reached = await rows(app, "SELECT campaign_id, member_id FROM campaign_members")
        assert len(reached) == 4_000
        issued = Counter(str(row["member_id"]) for row in await rows(app, "SELECT member_id FROM coupons"))
        assert len(issued) == 2_000 and set(issued.values()) == {1}
        entries = await rows(app, "SELECT member_id, amount FROM ledger_entries WHERE type = 'campaign'")
        assert len({str(e["member_id"]) for e in entries}) == len(entries) == len(members)
        assert {e["amount"] for e in entries} == {150}
        await assert_ledger_invariant(app)
        for campaign in (coupons, grant):
            shown = await read(client, admin_key, campaign["id"])
            assert shown["status"] == "completed" and shown["counts"]["reached"] == 2_000

    @pytest.mark.skipif(not is_postgres(), reason="SQLite has no row locks: its writers take turns")
    async def test_a_campaign_another_worker_holds_is_skipped(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await seed_members(app, 10)
        campaign = await create(client, admin_key)
        units: UnitsOfWork = units_of(app)
        engine = side_engine(units.settings)
        try:
            async with engine.connect() as other_worker:
                await other_worker.execute(
                    text("SELECT id FROM campaigns WHERE id = :c FOR UPDATE"),
                    {"c": uuid.UUID(campaign["id"])},
                )
                # Skipped at once rather than waited for: nothing to do for this worker now.
                assert await asyncio.wait_for(run(app), timeout=10) == 0
                assert await count(app, "campaign_members") == 0
                await other_worker.rollback()
        finally:
            await engine.dispose()
        assert await run(app) == 10
        assert (await read(client, admin_key, campaign["id"]))["counts"]["reached"] == 10
