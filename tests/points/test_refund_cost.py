"""What a refund at the till reads, with many lots in the database: only the refunding member's rows, never
the whole table of lots (PostgreSQL: the planner's choice)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.databases import is_postgres
from tests.db.test_citus_ready import statements
from tests.plans import assert_reads_at_most
from tests.points.helpers import cny, earn, set_program

pytestmark = pytest.mark.skipif(not is_postgres(), reason="the PostgreSQL planner's choice")

# Another member with years of purchases: 40,000 entries, each with its lot.
_OTHER_MEMBER = """
INSERT INTO members (id, member_number, status, channel, marketing_consent, referral_code, created_at,
                     updated_at)
VALUES (CAST(:member AS uuid), 'C-OTHER', 'active', 'pos', false, 'R-OTHER', now(), now())
"""
_ENTRIES = """
INSERT INTO ledger_entries (id, member_id, type, amount, balance_after, held_change, held_after, order_ref,
                            details, created_at)
SELECT gen_random_uuid(), CAST(:member AS uuid), 'earn', 10, 10 * n, 0, 0, 'OTHER-' || n, '{}', now()
FROM generate_series(1, 40000) AS n
"""
_LOTS = """
INSERT INTO point_lots (id, member_id, entry_id, order_ref, points, remaining, created_at, expires_at)
SELECT gen_random_uuid(), member_id, id, order_ref, 10, 10, now(), now() + interval '365 days'
FROM ledger_entries WHERE member_id = CAST(:member AS uuid)
"""


class TestARefundAtTheTill:
    async def test_reads_the_members_lots_not_every_lot(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The points the order's earn lost to expiry are looked for among the lots of the order's earn: they
        were found by joining every lot to the entry, and lots have no index on the entry, so each refund
        that took points back read the whole table of lots (52 ms at 220,000 lots)."""
        await set_program(client, admin_key)
        member_id = str((await enrol(client, pos_key))["id"])
        await earn(client, pos_key, member_id, 10_000, order_ref="R-COST")
        other = "01a24c2f-0000-7000-8000-000000000001"
        async with units_of(app).begin() as uow:
            for statement in (_OTHER_MEMBER, _ENTRIES, _LOTS):
                await uow.session.execute(text(statement), {"member": other})
        async with units_of(app).begin() as uow:
            await uow.session.execute(text("ANALYZE point_lots"))
            await uow.session.execute(text("ANALYZE ledger_entries"))
        try:
            with statements(app) as seen:
                refunded = await client.post(
                    "/v1/orders/R-COST/refund", json={"amount": cny(5_000)}, headers=bearer(pos_key)
                )
                assert refunded.status_code == 200, refunded.text
                assert refunded.json()["points_taken_back"] == 50
            reads = [(sql, params) for sql, params in seen if "FROM point_lots" in sql and "SELECT" in sql]
            assert reads
            await assert_reads_at_most(app, reads, "point_lots", 10)
        finally:
            # At once: the fixture's DELETE checks each member's referrers, the members among them unindexed.
            async with units_of(app).begin() as uow:
                await uow.session.execute(text("TRUNCATE members CASCADE"))
