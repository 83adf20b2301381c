"""The edge constraints' revision (0007) on a database that has rows in it.

The migration test builds an empty database; this one puts rows in every table the revision rebuilds on
SQLite, including rows other tables reference (ledger entries, rewards, plans, subscriptions), then goes down
to 0006 and up again: every row stays as it was, and so do the schema's other parts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_api.app import create_app
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.db.migrations import current_revision, downgrade, head_revision, upgrade
from loyalty_api.schema import metadata
from loyalty_api.settings import Settings
from tests.builders import enrol, make_key
from tests.conftest import START, bearer, units_of
from tests.databases import fresh_database
from tests.migrations.test_migrations import diff_against_models
from tests.points.helpers import cny, earn, set_program
from tests.rewards.helpers import add_reward, redeem
from tests.subscriptions.helpers import add_plan, subscribe_paid

BEFORE = "0006"
EDGE = "0007"  # the revision under test; later ones add tables of their own

Snapshot = dict[str, Any]


@asynccontextmanager
async def _service_on(settings: Settings, url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings.model_copy(update={"database_url": url}), clock=FrozenClock(START))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as client,
    ):
        yield app, client


async def _populate(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Members with points, holds captured and active, refunds, rewards redeemed, paid subscriptions."""
    admin, pos, shop = [await make_key(app, scope) for scope in (Scope.admin, Scope.pos, Scope.ecommerce)]
    await set_program(client, admin)
    reward = await add_reward(client, admin, stock=10, per_member_limit=3)
    await add_plan(client, admin, "plus")
    for n in range(3):
        member_id = str((await enrol(client, pos))["id"])
        await earn(client, pos, member_id, 50_000, order_ref=f"E-{n}")
        await earn(client, pos, member_id, 20_000, order_ref=f"F-{n}")
        refunded = await client.post(
            f"/v1/orders/F-{n}/refund", json={"amount": cny(5_000)}, headers=bearer(pos)
        )
        assert refunded.status_code == 200, refunded.text
        for suffix in ("active", "captured"):  # the last one is captured
            held = await client.post(
                f"/v1/members/{member_id}/holds",
                json={"points": 50, "order_ref": f"H-{n}-{suffix}", "ttl_seconds": 900},
                headers=bearer(shop),
            )
            assert held.status_code == 201, held.text
        captured = await client.post(f"/v1/holds/{held.json()['id']}/capture", headers=bearer(shop))
        assert captured.status_code == 200, captured.text
        assert (await redeem(client, pos, member_id, reward["id"])).status_code == 201
        await subscribe_paid(client, shop, member_id, "plus")


def _look(connection: Connection) -> Snapshot:
    """Every row of every table, and every part of the schema but the CHECK constraints."""
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    tables = [table for table in metadata.tables if table in existing]
    rows: dict[str, list[str]] = {}
    for table in tables:
        found = connection.execute(text(f"SELECT * FROM {table}")).mappings()
        rows[table] = sorted(
            repr(sorted((k, v) for k, v in row.items() if k != "rate_limit")) for row in found
        )
    schema: dict[str, Any] = {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c["default"])
                for c in inspector.get_columns(table)
                if c["name"] != "rate_limit"
            ],
            "foreign_keys": sorted(inspector.get_foreign_keys(table), key=lambda fk: str(fk["name"])),
            "unique": inspector.get_unique_constraints(table),
            "primary_key": inspector.get_pk_constraint(table),
        }
        for table in tables
    }
    if connection.dialect.name == "sqlite":
        schema["indexes"] = connection.execute(
            text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
        ).all()
        assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
    else:
        schema["indexes"] = connection.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname")
        ).all()
    return {"rows": rows, "schema": schema}


def _checks(connection: Connection) -> dict[str, list[str]]:
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    return {
        table: sorted(str(c["name"]) for c in inspector.get_check_constraints(table))
        for table in metadata.tables
        if table in existing
    }


async def _run(engine: AsyncEngine, look: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.run_sync(look)


class TestEdgeConstraintsRevision:
    async def test_down_and_up_again_keep_every_row_and_the_rest_of_the_schema(
        self, tmp_path: Path, settings: Settings
    ) -> None:
        async with (
            fresh_database(tmp_path, "edge") as url,
            _service_on(settings, url) as (app, client),
        ):
            engine = units_of(app).database.engine
            await upgrade(engine, BEFORE)
            before = await _run(engine, _look)
            await upgrade(engine, EDGE)
            assert await _run(engine, _look) == before  # SQLite's rebuilt tables keep their indexes, keys…
            # Today's service writes today's schema: fill it at head, then step down to the revision under
            # test (the later revisions' downgrades keep these rows too).
            await upgrade(engine)
            await _populate(app, client)
            await downgrade(engine, EDGE)
            at_head = await _run(engine, _look)
            assert all(
                at_head["rows"][table]
                for table in ("point_lots", "reward_redemptions", "subscription_payments")
            )
            checks_at_head = await _run(engine, _checks)

            await downgrade(engine, BEFORE)
            assert await current_revision(engine) == BEFORE
            assert await _run(engine, _look) == at_head
            assert not any((await _run(engine, _checks)).values())
            assert "rate_limit" not in await _run(engine, _api_key_columns)

            await upgrade(engine, EDGE)
            assert await _run(engine, _look) == at_head
            assert await _run(engine, _checks) == checks_at_head
            assert "rate_limit" in await _run(engine, _api_key_columns)
            await upgrade(engine)
            assert await current_revision(engine) == head_revision()
            assert await diff_against_models(engine) == []


def _api_key_columns(connection: Connection) -> list[str]:
    return [c["name"] for c in inspect(connection).get_columns("api_keys")]
