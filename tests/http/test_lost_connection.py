"""A request whose database connection is lost midway (the server restarted, a proxy cut it): the caller gets
a 503 `database_unavailable` that changed nothing, and retrying with the same Idempotency-Key runs the
request anew instead of being told for minutes that it is still in flight. PostgreSQL only: SQLite has no
connection to lose."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.db.uow import UnitsOfWork
from tests.builders import enrol
from tests.conftest import bearer
from tests.databases import account_locked, is_postgres
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import earn, points, set_program

WAIT_SECONDS = 10.0


@pytest.mark.skipif(not is_postgres(), reason="only PostgreSQL has a server connection to lose")
class TestLostConnection:
    async def test_the_retry_of_a_redeem_that_lost_its_connection_runs(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 10_000, order_ref="E-1")
        before = await points(client, pos_key, member["id"])
        headers = bearer(pos_key) | {"Idempotency-Key": "till-7-receipt-42"}
        body = {"points": 30, "order_ref": "R-1"}

        units: UnitsOfWork = app.state.units
        async with account_locked(units.settings, member["id"]) as watcher:
            redeem = asyncio.ensure_future(
                client.post(f"/v1/members/{member['id']}/redeem", json=body, headers=headers)
            )
            # The redeem's server process, once it waits for the lock, is ended.
            deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
            ended = False
            while not ended and asyncio.get_running_loop().time() < deadline:
                ended = bool(
                    await watcher.scalar(
                        text(
                            "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    )
                )
            lost = await redeem
        assert ended, "the redeem never waited for the account's lock"

        assert lost.status_code == 503, lost.text
        assert lost.json()["code"] == "database_unavailable"
        assert lost.headers["retry-after"] == "2"
        assert await points(client, pos_key, member["id"]) == before

        retried = await client.post(f"/v1/members/{member['id']}/redeem", json=body, headers=headers)
        assert retried.status_code == 200, retried.text
        assert retried.json()["points_redeemed"] == 30
        after = await points(client, pos_key, member["id"])
        assert after["balance"] == before["balance"] - 30
        await assert_ledger_invariant(app, member["id"])

        # The pool does not hand the lost connection out again: every connection it holds still works.
        for n in range(units.settings.database_pool_size + 1):
            response = await client.post(
                f"/v1/members/{member['id']}/redeem",
                json={"points": 1, "order_ref": f"R-more-{n}"},
                headers=bearer(pos_key),
            )
            assert response.status_code == 200, response.text
