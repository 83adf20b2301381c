"""What PostgreSQL's planner makes of a request's statements: each statement the request sent through
SQLAlchemy, run again under EXPLAIN ANALYZE on the same database, and the rows each plan read from a table.
For tests that fill a table with many rows (and ANALYZE it) and check a request reads only what it needs.
SQLite's planner reports no rows: its plan's steps say which index a statement takes."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from tests.conftest import units_of


def rows_read(plan: Any, table: str) -> int:
    """The rows `plan` (EXPLAIN ANALYZE's JSON) read from `table`, over its nodes and loops."""
    found = 0
    if plan.get("Relation Name") == table:
        found = int(plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * int(plan["Actual Loops"])
    return found + sum(rows_read(child, table) for child in plan.get("Plans", []))


def scans(plan: Any) -> list[str]:
    """Each node of `plan` that reads a table, as "<node type> on <table>"."""
    found = [f"{plan['Node Type']} on {plan['Relation Name']}"] if "Relation Name" in plan else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


async def analyzed(app: FastAPI, sql: str, params: Any, *, generic: bool = False) -> Any:
    """EXPLAIN (ANALYZE, FORMAT JSON) of `sql` with its driver `params`, its top plan node; with `generic`,
    the plan PostgreSQL makes without looking at the values, as a prepared statement's may be (run in a
    transaction that is rolled back)."""
    async with units_of(app).begin() as uow:
        connection = (await (await uow.session.connection()).get_raw_connection()).driver_connection
        assert connection is not None
        if generic:
            await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        statement = await connection.prepare(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = await statement.fetchval(*params)
        await uow.session.rollback()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return plan[0]["Plan"]


async def assert_reads_at_most(
    app: FastAPI, statements: list[tuple[str, Any]], table: str, most: int
) -> None:
    """Each of `statements` (its SQL and driver parameters), under its custom plan and under a generic one,
    reads at most `most` rows of `table`: a page or a window, where a scan would read the whole table."""
    for sql, params in statements:
        for generic in (False, True):
            plan = await analyzed(app, sql, params, generic=generic)
            read = rows_read(plan, table)
            assert read <= most, (sql, "generic" if generic else "custom", scans(plan), read)


async def sqlite_plan(app: FastAPI, sql: str, params: Any) -> list[str]:
    """What SQLite's planner makes of `sql` with its driver `params`: EXPLAIN QUERY PLAN's steps."""
    async with units_of(app).database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert raw.driver_connection is not None
        cursor = await raw.driver_connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return [str(step[-1]) for step in await cursor.fetchall()]
