"""What the worker's `redate-tier-windows` job costs when it has nothing to do, as it has on almost every one
of its runs (every 5 s): it looks for work on each tier with statements that read an index, never the whole
table of members (PostgreSQL: the planner's choice)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.tiers.redating import redate_window_ends
from tests.conftest import units_of
from tests.databases import is_postgres
from tests.db.test_citus_ready import statements
from tests.points.helpers import set_program
from tests.tiers.test_qualification import standard_ladder
from tests.tiers.test_rule_changes import change_tier

pytestmark = pytest.mark.skipif(not is_postgres(), reason="the PostgreSQL planner's choice")

_MEMBERS = """
INSERT INTO members (id, member_number, status, tier_id, channel, marketing_consent, referral_code,
                     created_at, updated_at, tier_since, tier_window_end, tier_window_revision)
SELECT gen_random_uuid(), 'C' || n, 'active',
       CASE WHEN n % 4 = 0 THEN CAST(:silver AS uuid) ELSE CAST(:entry AS uuid) END, 'pos', false, 'R' || n,
       now(), now(), now(), CASE WHEN n % 4 = 0 THEN now() + interval '100 days' END,
       CASE WHEN n % 4 = 0 THEN 2 END
FROM generate_series(1, 40000) AS n
"""


def _scans(plan: Any) -> list[str]:
    """Each node of `plan` (EXPLAIN's JSON) that reads a table, with the table."""
    found = [f"{plan['Node Type']} on {plan['Relation Name']}"] if "Relation Name" in plan else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


class TestAnIdleRun:
    async def test_reads_no_member_but_through_an_index(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """Most members are on the entry tier, whose ends name no revision: taking the tier and the missing
        revision for independent, the planner expected a fifth of the members on silver with none and read
        the table from the start for the first of them (a quarter of a second a tier at a million members,
        every 5 s), finding none."""
        await set_program(client, admin_key)
        await standard_ladder(client, admin_key)
        await change_tier(client, admin_key, "silver", window="rolling_days", window_days=365)
        await change_tier(client, admin_key, "silver", window="calendar_year", window_days=None)
        async with units_of(app).begin() as uow:
            found = await uow.session.execute(text("SELECT code, CAST(id AS text) FROM tiers"))
            tiers = {code: tier_id for code, tier_id in found.all()}
            await uow.session.execute(text(_MEMBERS), {"silver": tiers["silver"], "entry": tiers["member"]})
        async with units_of(app).begin() as uow:
            await uow.session.execute(text("ANALYZE members"))

        try:
            with statements(app) as seen:
                assert await redate_window_ends(units_of(app)) == 0
            looks = [(sql, params) for sql, params in seen if "members" in sql]
            # For silver's ends of an earlier revision, and each tier's but the entry tier's that name none:
            # of members on the tier, and of members under an override who had earned it; and for members on
            # no tier.
            assert len(looks) == 2 + 2 * 2 + 1
            async with units_of(app).read() as uow:
                connection = (await (await uow.session.connection()).get_raw_connection()).driver_connection
                assert connection is not None
                for sql, params in looks:
                    plan = await connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *params)
                    if isinstance(plan, str):
                        plan = json.loads(plan)
                    scans = _scans(plan[0]["Plan"])
                    assert "Seq Scan on members" not in scans, (sql, scans)
        finally:
            # At once: the fixture's DELETE checks each member's referrers, the members among them unindexed.
            async with units_of(app).begin() as uow:
                await uow.session.execute(text("TRUNCATE members CASCADE"))


_MEMBERS_ON_NO_TIER = """
INSERT INTO members (id, member_number, status, channel, marketing_consent, referral_code, created_at,
                     updated_at)
SELECT gen_random_uuid(), 'C' || n, 'active', 'pos', false, 'R' || n, now(), now()
FROM generate_series(1, 40000) AS n
"""


def _rows_read(plan: Any) -> int:
    """The rows `plan` (EXPLAIN ANALYZE's JSON) read from members, over its nodes."""
    found = int(plan["Actual Rows"]) if plan.get("Relation Name") == "members" else 0
    return found + sum(_rows_read(child) for child in plan.get("Plans", []))


class TestPlacingOnTheEntryTier:
    async def test_a_batch_reads_a_batch_of_members_however_many_wait(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """Members enrolled before the first tier, many (an import before the ladder): each batch is placed
        for a batch's reading. In (tier_id, id) order, which no index gives, each read every member still on
        no tier and sorted them, on disk past a few hundred thousand: a million members took about 2,000
        batches of a second or so each."""
        await set_program(client, admin_key)
        async with units_of(app).begin() as uow:
            await uow.session.execute(text(_MEMBERS_ON_NO_TIER))
        async with units_of(app).begin() as uow:
            await uow.session.execute(text("ANALYZE members"))
        await standard_ladder(client, admin_key)
        try:
            with statements(app) as seen:
                assert await redate_window_ends(units_of(app), batch=500) == 40_000
            [(sql, params), *_] = [(sql, params) for sql, params in seen if "SKIP LOCKED" in sql]
            async with units_of(app).begin() as uow:
                await uow.session.execute(text("UPDATE members SET tier_id = NULL, tier_since = NULL"))
            async with units_of(app).begin() as uow:
                await uow.session.execute(text("ANALYZE members"))
            async with units_of(app).begin() as uow:
                connection = (await (await uow.session.connection()).get_raw_connection()).driver_connection
                assert connection is not None
                plan = await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params)
                if isinstance(plan, str):
                    plan = json.loads(plan)
                assert _rows_read(plan[0]["Plan"]) <= 500, (sql, plan)
        finally:
            async with units_of(app).begin() as uow:
                await uow.session.execute(text("TRUNCATE members CASCADE"))
