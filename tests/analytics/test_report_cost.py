"""What a report over a window of time reads, with years of ledger in the database: the window's entries,
found through an index, never the whole ledger (PostgreSQL: the planner's choice). The leaderboard (a week,
a month) and the points report are asked for often; the ledger only grows."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.activities.test_leaderboard import board, opt_in
from tests.builders import enrol
from tests.conftest import START, bearer, units_of
from tests.databases import is_postgres
from tests.db.test_citus_ready import statements
from tests.partners.helpers import iso
from tests.plans import assert_reads_at_most
from tests.points.helpers import earn, set_program

pytestmark = pytest.mark.skipif(not is_postgres(), reason="the PostgreSQL planner's choice")

# A member whose 40,000 entries were all made in the year before the week the reports look at.
_OTHER_MEMBER = """
INSERT INTO members (id, member_number, status, channel, marketing_consent, referral_code, created_at,
                     updated_at)
VALUES (CAST(:member AS uuid), 'C-OTHER', 'active', 'pos', false, 'R-OTHER', :before, :before)
"""
_ENTRIES = """
INSERT INTO ledger_entries (id, member_id, type, amount, balance_after, held_change, held_after, order_ref,
                            details, created_at)
SELECT gen_random_uuid(), CAST(:member AS uuid), 'earn', 10, 10 * n, 0, 0, 'OTHER-' || n, '{}',
       CAST(:before AS timestamptz) + n * interval '13 minutes'
FROM generate_series(1, 40000) AS n
"""
# What those entries left the member holding, as every account holds the sum of its entries.
_ACCOUNT = """
INSERT INTO points_accounts (member_id, balance, held, lifetime_earned, updated_at)
VALUES (CAST(:member AS uuid), 400000, 0, 400000, :before)
"""


class TestAWindowOfTheLedger:
    async def test_is_read_through_an_index(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """Entries were found by when they were made with no index on it: the leaderboard read the whole
        ledger twice (its purchases, and the refunds of them), the points report once, however short the
        window (200 ms and 72,000 buffers for a week's board at 520,000 entries). The overview's outstanding
        points added up every entry before its end: the whole ledger, for a report of the last day."""
        await set_program(client, admin_key)
        members = [await enrol(client, pos_key, email=f"m{n}@example.com") for n in range(3)]
        for member in members:
            await opt_in(client, pos_key, member["id"])
            await earn(client, pos_key, member["id"], 100_00)
        async with units_of(app).begin() as uow:
            params = {"member": "01a24c2f-0000-7000-8000-000000000001", "before": START - timedelta(days=390)}
            for statement in (_OTHER_MEMBER, _ENTRIES, _ACCOUNT):
                await uow.session.execute(text(statement), params)
        async with units_of(app).begin() as uow:
            await uow.session.execute(text("ANALYZE ledger_entries"))
        try:
            with statements(app) as seen:
                assert len((await board(client, pos_key, period="week"))["items"]) == 3
                assert len((await board(client, pos_key, period="month"))["items"]) == 3
                report = await client.get(
                    "/v1/analytics/points",
                    params={"from": "2026-03-16T00:00:00Z", "to": "2026-03-17T00:00:00Z", "period": "day"},
                    headers=bearer(admin_key),
                )
                assert report.status_code == 200, report.text
                overview = await client.get(
                    "/v1/analytics/overview",
                    params={"from": "2026-03-16T00:00:00Z", "to": "2026-03-17T00:00:00Z"},
                    headers=bearer(admin_key),
                )
                assert overview.status_code == 200, overview.text
                # A year back: the other member's first six hours of entries, not the year after them.
                year_ago = await client.get(
                    "/v1/analytics/overview",
                    params={"from": iso(params["before"]), "to": iso(params["before"] + timedelta(hours=6))},
                    headers=bearer(admin_key),
                )
                assert year_ago.status_code == 200, year_ago.text
            assert year_ago.json()["outstanding_points"] == 27 * 10  # made every 13 minutes
            # Owed at the window's end: the other member's year of points and three earns of 100 points.
            assert overview.json()["outstanding_points"] == 400_000 + 3 * 100
            reads = [(sql, params) for sql, params in seen if "FROM ledger_entries" in sql]
            # Each overview reads the ledger's first and last entry to choose the side of its end it adds up.
            assert len(reads) == 9
            await assert_reads_at_most(app, reads, "ledger_entries", 50)
        finally:
            # At once: the fixture's DELETE checks each member's referrers, the members among them unindexed.
            async with units_of(app).begin() as uow:
                await uow.session.execute(text("TRUNCATE members CASCADE"))
