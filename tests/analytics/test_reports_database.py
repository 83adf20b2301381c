"""LOYALTY_REPORTS_DATABASE_URL: the analytics reports read the reports' database (a streaming replica in
production) and everything else the primary. Here the two are different databases with different members and
points, so each answer shows where it was read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from loyalty_api.auth.principal import Scope
from loyalty_api.clock import SystemClock
from loyalty_api.db.engine import create_engine
from loyalty_api.db.migrations import upgrade
from loyalty_api.settings import Settings
from tests.apps import serving
from tests.builders import add_tier, enrol, make_key
from tests.conftest import START, bearer
from tests.databases import fresh_database, listen_url, pooler
from tests.partners.helpers import iso
from tests.points.helpers import earn, set_program

WINDOW = {"from": iso(START - timedelta(days=1)), "to": iso(SystemClock().now() + timedelta(days=1))}


async def overview(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    answer = await client.get("/v1/analytics/overview", params=WINDOW, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def a_programme_with_members(
    client: httpx.AsyncClient, admin: str, pos: str, spends: list[int]
) -> None:
    await set_program(client, admin)
    await add_tier(client, admin, "member", rank=0)
    for spend in spends:
        member = await enrol(client, pos)
        await earn(client, pos, member["id"], spend)


async def test_reports_read_the_reports_database_and_everything_else_the_primary(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings, tmp_path: Path
) -> None:
    await a_programme_with_members(client, admin_key, pos_key, [10_000, 20_000])
    primary = await overview(client, admin_key)
    async with fresh_database(tmp_path, "reports") as reports_url:
        engine = create_engine(reports_url, pooler=pooler())
        await upgrade(engine)
        await engine.dispose()
        # What the replica holds: a programme of its own, with one member.
        replica_settings = settings.model_copy(
            update={"database_url": reports_url, "listen_database_url": listen_url(reports_url)}
        )
        async with serving(replica_settings) as (replica_app, replica_client):
            replica_admin = await make_key(replica_app, Scope.admin)
            await a_programme_with_members(
                replica_client, replica_admin, await make_key(replica_app, Scope.pos), [45_000]
            )
            # A replica behind the primary: the programme as it was before a change of the earn rate.
            await set_program(replica_client, replica_admin, earn_rate="7")
            replica = await overview(replica_client, await make_key(replica_app, Scope.admin))
        assert (primary["members"], replica["members"]) == (2, 1)
        assert primary["points"]["issued"] != replica["points"]["issued"]

        async with serving(settings, reports_database_url=reports_url) as (served, served_client):
            key = await make_key(served, Scope.admin)  # keys are checked on the primary
            assert await overview(served_client, key) == replica
            # What the report read of the replica's programme and ladder was not kept for the tills: the
            # first read of them in this process was the report's.
            program = await served_client.get("/v1/program", headers=bearer(key))
            assert program.json()["earn_rate"] == "1"
            till = await make_key(served, Scope.pos)
            earned = await earn(served_client, till, (await enrol(served_client, till))["id"], 10_000)
            assert earned["points_earned"] == 100
            points = await served_client.get("/v1/analytics/points", params=WINDOW, headers=bearer(key))
            assert points.status_code == 200, points.text
            assert points.json()["items"][0]["issued"] == replica["points"]["issued"]
            # Everything else reads and writes the primary: its members, its programme.
            members = await served_client.get("/v1/members", headers=bearer(key))
            assert members.status_code == 200, members.text
            assert len(members.json()["items"]) == 3
