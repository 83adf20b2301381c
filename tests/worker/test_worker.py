from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url

from loyalty_api.clock import FrozenClock
from loyalty_api.db.engine import Database, create_engine
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.worker.runner import Worker
from loyalty_api.worker.schedule import ALL_JOBS, DELIVER_WEBHOOKS, JOBS, Job
from tests.builders import enrol
from tests.conftest import bearer, units_of
from tests.databases import closed_database, is_postgres
from tests.points.helpers import earn, set_program


async def _wait_for_hold_status(client: httpx.AsyncClient, key: str, hold_id: str, status: str) -> str:
    for _ in range(200):
        current = (await client.get(f"/v1/holds/{hold_id}", headers=bearer(key))).json()["status"]
        if current == status:
            return current
        await asyncio.sleep(0.05)
    return current


class TestWorker:
    async def test_the_worker_releases_a_hold_nobody_captured(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 10_000)
        hold = await client.post(
            f"/v1/members/{member['id']}/holds",
            json={"points": 50, "order_ref": "W-1", "ttl_seconds": 60},
            headers=bearer(pos_key),
        )
        clock.advance(timedelta(seconds=61))
        worker = Worker(app.state.units, tick_seconds=0.05)
        task = asyncio.create_task(worker.run())
        try:
            assert await _wait_for_hold_status(client, pos_key, hold.json()["id"], "expired") == "expired"
        finally:
            worker.stop()
            await asyncio.wait_for(task, timeout=10)

    async def test_a_failing_job_does_not_stop_the_others(self, app: FastAPI) -> None:
        ran: list[str] = []

        async def broken(_: object) -> int:
            ran.append("broken")
            raise RuntimeError("boom")

        async def fine(_: object) -> int:
            ran.append("fine")
            return 0

        worker = Worker(
            app.state.units,
            [Job("broken", timedelta(hours=1), broken), Job("fine", timedelta(hours=1), fine)],
            tick_seconds=0.01,
        )
        task = asyncio.create_task(worker.run())
        for _ in range(100):
            if "fine" in ran:
                break
            await asyncio.sleep(0.01)
        worker.stop()
        await asyncio.wait_for(task, timeout=10)
        assert ran[:2] == ["broken", "fine"]


class TestEveryJobFinishes:
    @pytest.mark.parametrize("job", ALL_JOBS, ids=lambda job: job.name)
    async def test_run_again_and_again_it_comes_to_nothing_left(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        clock: FrozenClock,
        admin_key: str,
        pos_key: str,
        job: Job,
    ) -> None:
        """`loyalty-api jobs NAME` runs a job until it answers 0: every job must, once its work is done."""
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 10_000)
        clock.set(clock.now() + timedelta(days=1))  # the purchase is history: jobs that count it see it
        runs = [await job.run(units_of(app)) for _ in range(3)]
        assert runs[-1] == 0, runs


# Nothing listens at the discard port; on the test's own server, a database that is not there (dropped,
# renamed, being restored): each connection's login is refused.
NOWHERE = {
    "no server": lambda _: "postgresql+asyncpg://postgres@127.0.0.1:9/loyalty",
    "no such database": lambda url: make_url(url).set(database="loyalty_gone").render_as_string(False),
}


# Or one an operator closed to connections (for maintenance, a restore): its logins are refused too.
CLOSED = "closed to connections"


@pytest.mark.parametrize("where", [*NOWHERE, CLOSED])
async def test_while_the_database_is_out_of_reach_each_loop_says_so_once_and_none_logs_a_failure(
    app: FastAPI, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """The jobs and webhook delivery keep trying (delivery four times a second in production), but an outage
    is one warning per loop, not a stack trace at each turn."""
    units = units_of(app)
    if where != "no server" and not is_postgres():
        pytest.skip("SQLite's database is a file of the process's, not a server's")
    async with contextlib.AsyncExitStack() as stack:
        if where == CLOSED:
            nowhere = await stack.enter_async_context(closed_database("ALLOW_CONNECTIONS false"))
        else:
            nowhere = NOWHERE[where](units.settings.database_url)
        await _outage_seen_by_the_worker(units, nowhere, caplog)


async def _outage_seen_by_the_worker(
    units: UnitsOfWork, nowhere: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = units.settings.model_copy(update={"database_url": nowhere, "listen_database_url": None})
    away = UnitsOfWork(Database(create_engine(nowhere)), units.clock, units.vault, settings)
    caplog.set_level(logging.INFO, logger="loyalty_api.worker")
    worker = Worker(away, tick_seconds=0.01)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(300):
            waiting = [r for r in caplog.records if r.getMessage() == "job waits for the database"]
            if len(waiting) == len(JOBS) + 1:  # each job's loop, and webhook delivery's
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # delivery's loop turns some thirty times more
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)
        await away.database.dispose()
    waiting = [r for r in caplog.records if r.getMessage() == "job waits for the database"]
    assert sorted(r.job for r in waiting) == sorted([job.name for job in JOBS] + [DELIVER_WEBHOOKS.name])
    assert not [r for r in caplog.records if r.getMessage() == "job failed"]
