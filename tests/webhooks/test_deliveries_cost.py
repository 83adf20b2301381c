"""What a page of an endpoint's deliveries, and a replay, read with many rows in the database: a page found
through an index, never the whole table (the planner's choice)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, text

from loyalty_api.db.ids import new_id
from loyalty_api.outbox.models import OutboxEvent
from loyalty_api.outbox.repository import event_row
from loyalty_api.webhooks.endpoints import _REPLAY_BATCH
from tests.conftest import START, bearer, units_of
from tests.databases import is_postgres
from tests.db.test_citus_ready import statements
from tests.plans import assert_reads_at_most, sqlite_plan
from tests.webhooks.endpoint_helpers import add_endpoint
from tests.webhooks.test_deliveries_api import replay

_EVENTS = """
INSERT INTO outbox_events (id, type, occurred_at, aggregate_type, aggregate_id, payload, dispatched_at)
SELECT id, :type, now(), 'member', 'm', '{}', now() FROM unnest(CAST(:ids AS uuid[])) AS id
"""
_DELIVERIES = """
INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, ordering_key, status, attempts,
                                next_attempt_at, created_at, delivered_at)
SELECT id, CAST(:endpoint AS uuid), id, :type, 'm', 'succeeded', 1, now(), now(), now()
FROM unnest(CAST(:ids AS uuid[])) AS id
"""


@pytest.mark.skipif(not is_postgres(), reason="the PostgreSQL planner's choice")
class TestAPageOfOneType:
    async def test_reads_the_page_not_every_delivery(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """An endpoint that takes every event, and its deliveries of a type it seldom gets (coupon.issued
        among purchases): ?event_type= was answered by reading the endpoint's deliveries newest first and
        filtering them, so a page read every delivery made since the type's last ones (418,000 rows, 84-112
        ms for the first page at 420,000 deliveries)."""
        endpoint_id, _ = await add_endpoint(units_of(app), "https://93.184.216.34/hooks")
        async with units_of(app).begin() as uow:
            for kind, count in (("coupon.issued", 60), ("points.earned", 40_000)):
                ids = [new_id() for _ in range(count)]
                params = {"ids": ids, "type": kind, "endpoint": endpoint_id}
                await uow.session.execute(text(_EVENTS), params)
                await uow.session.execute(text(_DELIVERIES), params)
        async with units_of(app).begin() as uow:
            await uow.session.execute(text("ANALYZE webhook_deliveries"))
        path = f"/v1/webhook-endpoints/{endpoint_id}/deliveries"
        with statements(app) as seen:
            params = {"event_type": "coupon.issued", "limit": 25}
            for _ in range(2):
                page = await client.get(path, params=params, headers=bearer(admin_key))
                assert page.status_code == 200, page.text
                assert len(page.json()["items"]) == 25
                params["cursor"] = page.json()["next_cursor"]
        reads = [(sql, params) for sql, params in seen if "FROM webhook_deliveries" in sql]
        assert len(reads) == 2
        await assert_reads_at_most(app, reads, "webhook_deliveries", 30)


class TestAReplay:
    async def test_reads_each_page_of_events_once_whatever_else_the_database_holds(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """An endpoint disabled for days is replayed: tens of thousands of events. Each page of events the
        replay walks through is read through the primary key, and reads no deliveries. PostgreSQL's planner
        took the deliveries table to be as small as when it was last analyzed, while the replay filled it,
        and read every delivery made so far for each page; SQLite's took the index of types and sorted every
        event of the type for each page. A replay of 100,000 events outlasted the request's 30 s, and was
        rolled back each time it was asked again."""
        endpoint_id, _ = await add_endpoint(
            units_of(app), "https://93.184.216.34/hooks", event_types=["points.earned"]
        )
        made = 20 * _REPLAY_BATCH
        taken = made * 9 // 10  # a tenth of another type
        rows = [
            event_row(
                event_type="points.earned" if n % 10 else "member.updated",
                occurred_at=START,
                aggregate_type="member",
                aggregate_id=str(n % 100),
                member_id=None,
                payload={},
            )
            | {"dispatched_at": START}
            for n in range(made)
        ]
        async with units_of(app).begin() as uow:
            await uow.session.execute(insert(OutboxEvent), rows)
        if is_postgres():
            async with units_of(app).begin() as uow:
                await uow.session.execute(text("ANALYZE outbox_events"))
                await uow.session.execute(text("ANALYZE webhook_deliveries"))
        with statements(app) as seen:
            assert await replay(client, admin_key, endpoint_id) == taken
        pages = [(sql, params) for sql, params in seen if "FROM outbox_events" in sql and "LIMIT" in sql]
        assert len(pages) > taken // _REPLAY_BATCH  # every page, and the one that finds none left
        if is_postgres():
            await assert_reads_at_most(app, pages, "webhook_deliveries", 0)
            await assert_reads_at_most(app, pages, "outbox_events", 2 * _REPLAY_BATCH)
        else:
            for sql, params in pages:
                plan = await sqlite_plan(app, sql, params)
                assert not [step for step in plan if "TEMP B-TREE" in step or "webhook_deliveries" in step], (
                    plan
                )
